/* Mode "cold": every round the peer spawns W fresh workers (MPI_Comm_spawn), sends them the
 * weights, hands out its K tasks, gathers the gradients in task order, and retires the
 * workers: a cloud function's cold start, every round. The gradient-computation phase spans
 * spawn -> averaged gradient in hand, as in the study.
 *
 * This file also holds the pool engine the serverless modes share (declared in train.h): the
 * worker command line, one pool per peer, spawn/run/retire, and the accounting of worker
 * lifetimes and invocations that the cost model (bench/cost.h) prices. Cold and warm differ
 * only in when they retire the pool. */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/train.h"

typedef struct {
  float *weights; /* params | buffers, what workers receive */
  size_t weights_len;
  char *argv_storage[16];
  char *argv[17];
  cm_pool *pool;
  int pool_size;
  double spawned_at; /* MPI_Wtime before the pool's spawn call */
  double last_used;  /* MPI_Wtime when the pool last finished its tasks */
  int64_t *peak_rss; /* [workers] highest RSS each worker of the pool reported */
} engine_state;

int mf_pool_workers(const mf_train *t) {
  int tasks = t->tasks_per_round;
  if (t->config.workers > 0) return t->config.workers < tasks ? t->config.workers : tasks;
  int *universe = NULL, found = 0;
  MPI_Comm_get_attr(MPI_COMM_WORLD, MPI_UNIVERSE_SIZE, &universe, &found);
  int free_slots = found && universe ? *universe - t->peers : 0;
  int per_peer = free_slots / t->peers;
  if (per_peer < 1) per_peer = 1;
  return per_peer < tasks ? per_peer : tasks;
}

int mf_engine_setup(mf_train *t, char *err, size_t errlen) {
  engine_state *s = calloc(1, sizeof *s);
  if (!s) {
    snprintf(err, errlen, "out of memory");
    return -1;
  }
  t->mode_state = s;
  s->pool_size = mf_pool_workers(t);
  s->weights_len = t->model->num_params + t->model->num_buffers;
  s->weights = malloc((s->weights_len ? s->weights_len : 1) * sizeof(float));
  s->peak_rss = calloc((size_t)s->pool_size, sizeof *s->peak_rss);
  if (!s->weights || !s->peak_rss) {
    snprintf(err, errlen, "out of memory for %zu weights", s->weights_len);
    return -1;
  }
  if (t->config.workers == 0 && t->rank == 0)
    fprintf(stderr,
            "%s: note: --workers auto: %d worker%s per peer (%d tasks per round, free "
            "slots from MPI_UNIVERSE_SIZE minus %d peers, at least 1)\n",
            t->program, s->pool_size, s->pool_size == 1 ? "" : "s", t->tasks_per_round, t->peers);
  /* The worker's command line: what it needs to build the same model and read the data. Its
   * idle timeout outlasts both a task and the keep-alive, so the peer, not the worker, decides
   * when a warm pool is retired. A stalled task sleeps well past the peer's task timeout. */
  char spec[DS_PATH_MAX + 32], batch[32], threads[32], idle[32], stall[32];
  mf_source_spec(&t->staged, spec, sizeof spec);
  snprintf(batch, sizeof batch, "%d", t->config.batch);
  snprintf(threads, sizeof threads, "%d", t->config.worker_threads);
  double longest =
      t->config.task_timeout > t->config.keep_alive ? t->config.task_timeout : t->config.keep_alive;
  snprintf(idle, sizeof idle, "%g", longest + 60);
  snprintf(stall, sizeof stall, "%g", 2 * t->config.task_timeout + 1);
  const char *words[] = {
      "--model",   t->config.model, "--dataset",      spec, "--batch",         batch,
      "--threads", threads,         "--idle-timeout", idle, "--stall-seconds", stall};
  int n = 0;
  for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
    s->argv_storage[n++] = strdup(words[i]);
  for (int i = 0; i < n; i++) s->argv[i] = s->argv_storage[i];
  s->argv[n] = NULL;
  return 0;
}

/* Retires the pool and books its workers' lifetimes. */
static int retire(mf_train *t, engine_state *s, char *err, size_t errlen) {
  if (!s->pool) return 0;
  double start = MPI_Wtime();
  int size = cm_pool_size(s->pool);
  int rc = cm_pool_close(s->pool, t->config.spawn_timeout, err, errlen);
  s->pool = NULL;
  double end = MPI_Wtime();
  double lifetime = end - s->spawned_at;
  t->usage.worker_seconds += size * lifetime;
  for (int w = 0; w < size; w++)
    t->usage.measured_byte_seconds += (double)s->peak_rss[w] * lifetime;
  t->phase[MF_PHASE_TEARDOWN] += end - start;
  return rc;
}

double mf_engine_idle_seconds(const mf_train *t) {
  const engine_state *s = t->mode_state;
  return s && s->pool ? MPI_Wtime() - s->last_used : -1;
}

int mf_engine_degraded(const mf_train *t) {
  const engine_state *s = t->mode_state;
  return s && s->pool && cm_pool_alive(s->pool) < cm_pool_size(s->pool);
}

int mf_engine_round(mf_train *t, int round, int retire_before, int retire_after, char *err,
                    size_t errlen) {
  engine_state *s = t->mode_state;
  const kn_model *m = t->model;
  if (retire_before && retire(t, s, err, errlen) != 0) return -1;
  double start = MPI_Wtime();
  memcpy(s->weights, m->params, m->num_params * sizeof(float));
  if (m->num_buffers)
    memcpy(s->weights + m->num_params, m->buffers, m->num_buffers * sizeof(float));

  if (!s->pool) {
    cm_spawn_request spawn = {
        .command = t->worker_command,
        .argv = s->argv,
        .workers = s->pool_size,
        .spawn_timeout = t->config.spawn_timeout,
        .spawn_lock = strcmp(t->config.spawn_lock, "none") != 0 ? t->config.spawn_lock : NULL,
        .lock_wait_seconds = &t->phase[MF_PHASE_SPAWN_WAIT]};
    s->spawned_at = MPI_Wtime();
    if (cm_pool_spawn(&spawn, &s->pool, &t->phase[MF_PHASE_SPAWN], err, errlen) != 0) return -1;
    memset(s->peak_rss, 0, (size_t)s->pool_size * sizeof *s->peak_rss);
    t->usage.pools++;
    t->usage.workers_spawned += s->pool_size;
  }

  double dispatch_start = MPI_Wtime();
  int rc = cm_pool_send_weights(s->pool, s->weights, s->weights_len, round, t->config.task_timeout,
                                err, errlen);
  t->phase[MF_PHASE_DISPATCH] = MPI_Wtime() - dispatch_start;
  if (rc == 0) {
    cm_pool_run_request run = {.tasks = t->tasks,
                               .indices = t->task_indices,
                               .ntasks = t->tasks_per_round,
                               .result_len = t->result_len,
                               .sum = t->result_sum,
                               .records = t->records,
                               .records_cap = t->records_cap,
                               .task_timeout = t->config.task_timeout,
                               .max_retries = t->config.max_retries,
                               .inject_fail_rate = t->config.inject_failures,
                               .inject_stall_rate = t->config.inject_stalls,
                               .inject_seed = (uint64_t)t->config.failure_seed,
                               .inject_peer = t->rank};
    rc = cm_pool_run(s->pool, &run, err, errlen);
    t->records_used = run.records_used;
    t->usage.invocations += run.records_used;
    for (int i = 0; i < run.records_used; i++) {
      const cm_task_record *r = &t->records[i];
      if (r->worker >= 0 && r->worker < s->pool_size && r->peak_rss_bytes > s->peak_rss[r->worker])
        s->peak_rss[r->worker] = r->peak_rss_bytes;
    }
  }
  s->last_used = MPI_Wtime();
  t->phase[MF_PHASE_COMPUTE] = s->last_used - start;
  if (retire_after || rc != 0) {
    char close_err[256];
    if (retire(t, s, close_err, sizeof close_err) != 0 && rc == 0) {
      snprintf(err, errlen, "%s", close_err);
      rc = -1;
    }
  }
  return rc;
}

void mf_engine_teardown(mf_train *t) {
  engine_state *s = t->mode_state;
  if (!s) return;
  char err[256];
  if (retire(t, s, err, sizeof err) != 0)
    fprintf(stderr, "%s: warning: peer %d: %s\n", t->program, t->rank, err);
  for (int i = 0; s->argv_storage[i]; i++) free(s->argv_storage[i]);
  free(s->weights);
  free(s->peak_rss);
  free(s);
  t->mode_state = NULL;
}

static int cold_compute(mf_train *t, int round, char *err, size_t errlen) {
  return mf_engine_round(t, round, 0, 1, err, errlen);
}

const mf_mode mf_mode_cold = {
    .name = "cold",
    .summary = "per round, fresh workers spawned with MPI_Comm_spawn compute the tasks",
    .phases = MF_PHASES_COMMON | MF_PHASE_BIT(MF_PHASE_SPAWN) | MF_PHASE_BIT(MF_PHASE_SPAWN_WAIT) |
              MF_PHASE_BIT(MF_PHASE_DISPATCH) | MF_PHASE_BIT(MF_PHASE_TEARDOWN),
    .setup = mf_engine_setup,
    .compute = cold_compute,
    .teardown = mf_engine_teardown,
};
