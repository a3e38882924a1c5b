/* Mode "cold": every round the peer spawns W fresh workers (MPI_Comm_spawn), sends them the
 * weights, hands out its K tasks, gathers the gradients in task order, and retires the
 * workers: a cloud function's cold start, every round. The gradient-computation phase spans
 * spawn -> averaged gradient in hand, as in the study. */
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
} cold_state;

static int cold_setup(mf_train *t, char *err, size_t errlen) {
  cold_state *s = calloc(1, sizeof *s);
  if (!s) {
    snprintf(err, errlen, "out of memory");
    return -1;
  }
  s->weights_len = t->model->num_params + t->model->num_buffers;
  s->weights = malloc((s->weights_len ? s->weights_len : 1) * sizeof(float));
  if (!s->weights) {
    snprintf(err, errlen, "out of memory for %zu weights", s->weights_len);
    free(s);
    return -1;
  }
  /* The worker's command line: what it needs to build the same model and read the data. */
  char spec[DS_PATH_MAX + 32], batch[32], threads[32], idle[32];
  mf_source_spec(&t->staged, spec, sizeof spec);
  snprintf(batch, sizeof batch, "%d", t->config.batch);
  snprintf(threads, sizeof threads, "%d", t->config.worker_threads);
  snprintf(idle, sizeof idle, "%g", t->config.task_timeout + 60);
  const char *words[] = {"--model",   t->config.model, "--dataset",      spec,
                         "--batch",   batch,           "--threads",      threads,
                         "--idle-timeout", idle};
  int n = 0;
  for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
    s->argv_storage[n++] = strdup(words[i]);
  for (int i = 0; i < n; i++) s->argv[i] = s->argv_storage[i];
  s->argv[n] = NULL;
  t->mode_state = s;
  return 0;
}

static int cold_compute(mf_train *t, int round, char *err, size_t errlen) {
  cold_state *s = t->mode_state;
  const kn_model *m = t->model;
  double start = MPI_Wtime();
  memcpy(s->weights, m->params, m->num_params * sizeof(float));
  if (m->num_buffers)
    memcpy(s->weights + m->num_params, m->buffers, m->num_buffers * sizeof(float));

  int workers = t->config.workers < t->tasks_per_round ? t->config.workers : t->tasks_per_round;
  cm_spawn_request spawn = {.command = t->worker_command,
                            .argv = s->argv,
                            .workers = workers,
                            .spawn_timeout = t->config.spawn_timeout};
  cm_pool *pool = NULL;
  if (cm_pool_spawn(&spawn, &pool, &t->phase[MF_PHASE_SPAWN], err, errlen) != 0) return -1;

  double dispatch_start = MPI_Wtime();
  int rc = cm_pool_send_weights(pool, s->weights, s->weights_len, round, t->config.task_timeout,
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
                               .max_retries = t->config.max_retries};
    rc = cm_pool_run(pool, &run, err, errlen);
    t->records_used = run.records_used;
  }
  t->phase[MF_PHASE_COMPUTE] = MPI_Wtime() - start;
  double teardown_start = MPI_Wtime();
  char close_err[256];
  if (cm_pool_close(pool, t->config.spawn_timeout, close_err, sizeof close_err) != 0 && rc == 0) {
    snprintf(err, errlen, "%s", close_err);
    rc = -1;
  }
  t->phase[MF_PHASE_TEARDOWN] = MPI_Wtime() - teardown_start;
  return rc;
}

static void cold_teardown(mf_train *t) {
  cold_state *s = t->mode_state;
  if (!s) return;
  for (int i = 0; s->argv_storage[i]; i++) free(s->argv_storage[i]);
  free(s->weights);
  free(s);
  t->mode_state = NULL;
}

const mf_mode mf_mode_cold = {
    .name = "cold",
    .summary = "per round, fresh workers spawned with MPI_Comm_spawn compute the tasks",
    .phases = MF_PHASES_COMMON | MF_PHASE_BIT(MF_PHASE_SPAWN) | MF_PHASE_BIT(MF_PHASE_DISPATCH) |
              MF_PHASE_BIT(MF_PHASE_TEARDOWN),
    .setup = cold_setup,
    .compute = cold_compute,
    .teardown = cold_teardown,
};
