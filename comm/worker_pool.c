/* The peer side of the peer <-> worker protocol (see worker_pool.h for why it is shaped so).
 *
 * The pool is a flat list of workers in group order (oldest group first) plus the list of
 * groups; a worker addresses its group's intercommunicator by its rank there.
 *
 * Scheduling: tasks go to idle serving workers in task order; a worker gets its next task as
 * soon as it answers. Results may arrive out of order, so they are parked in a small window of
 * slots (2 x serving workers) and folded into the sum strictly in task order: the summation is
 * the same as the baseline's, whatever the timing and the number of workers. A task is only
 * dispatched while its slot is free, which bounds the peer's memory to window x result_len
 * floats. */
#include "comm/worker_pool.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

enum { WORKER_IDLE = 0, WORKER_BUSY = 1, WORKER_ABANDONED = 2 };

typedef struct {
  int state;
  int group;   /* index into cm_pool.groups */
  int rank;    /* in the group's intercommunicator */
  int id;      /* stable while the worker lives; what records carry */
  int serving; /* chosen by the last cm_pool_send_weights */
  int task;    /* task index while busy */
  int attempt;
  double dispatched; /* MPI_Wtime at dispatch */
  int64_t peak_rss;  /* highest RSS the worker reported */
  char host[64];     /* where it was spawned ("" unknown), then where it says it runs */
  MPI_Request reply_request;
  int undelivered; /* busy, but its task was never taken (dispatch) */
  cm_reply reply;
} worker_state;

typedef struct {
  MPI_Comm intercomm;
  int size;
  double spawned_at, last_used;
} group_state;

struct cm_pool {
  worker_state *workers; /* size of them, in group order */
  int size, workers_cap;
  group_state *groups;
  int ngroups, groups_cap;
  float *slots; /* window x slot_len floats */
  int window;
  size_t slot_len;
  char *task_buffer; /* packed task header + indices */
  size_t task_buffer_len;
};

static void sleep_briefly(long nanoseconds) {
  struct timespec t = {0, nanoseconds};
  nanosleep(&t, NULL);
}

int cm_wait_until(MPI_Request *request, MPI_Status *status, double deadline) {
  long backoff = 2000;
  for (;;) {
    int done = 0;
    /* An error (the intercommunicators return them) means the other side is gone. */
    if (MPI_Test(request, &done, status ? status : MPI_STATUS_IGNORE) != MPI_SUCCESS) return -1;
    if (done) return 0;
    if (MPI_Wtime() >= deadline) return -1;
    sleep_briefly(backoff);
    if (backoff < 200000) backoff *= 2;
  }
}

/* Gives up a request that has not completed (its worker is abandoned); MPI_REQUEST_NULL when an
 * error already released it. */
static void drop_request(MPI_Request *request) {
  if (*request == MPI_REQUEST_NULL) return;
  MPI_Cancel(request);
  MPI_Request_free(request);
}

/* Gives a worker up, dead or stalled (why: "did not ..."), with a warning: it serves no more and
 * its process is left to end with the job. */
static void abandon(worker_state *worker, const char *why, ...) {
  worker->state = WORKER_ABANDONED;
  worker->serving = 0;
  va_list args;
  va_start(args, why);
  char text[160];
  vsnprintf(text, sizeof text, why, args);
  va_end(args);
  fprintf(stderr, "mayfly: warning: worker %d %s; abandoned it\n", worker->id, text);
}

int cm_pool_create(cm_pool **out, char *err, size_t errlen) {
  *out = calloc(1, sizeof **out);
  if (!*out) snprintf(err, errlen, "out of memory for a pool");
  return *out ? 0 : -1;
}

static int id_taken(const cm_pool *pool, int id) {
  for (int w = 0; w < pool->size; w++)
    if (pool->workers[w].id == id) return 1;
  return 0;
}

/* One app context per host, each with its own "host" (and "map_by") info. */
static int spawn_on_hosts(const cm_spawn_request *request, int n, MPI_Comm *intercomm, int *codes) {
  const int hosts = request->hosts;
  char **commands = calloc((size_t)hosts, sizeof *commands);
  char ***argvs = calloc((size_t)hosts, sizeof *argvs);
  int *counts = calloc((size_t)hosts, sizeof *counts);
  MPI_Info *infos = calloc((size_t)hosts, sizeof *infos);
  int sum = 0, rc = MPI_ERR_NO_MEM;
  if (commands && argvs && counts && infos) {
    for (int h = 0; h < hosts; h++) {
      commands[h] = (char *)request->command;
      argvs[h] = request->argv;
      counts[h] = request->host_workers[h];
      sum += counts[h];
      MPI_Info_create(&infos[h]);
      MPI_Info_set(infos[h], "host", request->host_names[h]);
      if (request->map_by) MPI_Info_set(infos[h], "map_by", request->map_by);
    }
    rc = sum == n ? MPI_Comm_spawn_multiple(hosts, commands, argvs, counts, infos, 0, MPI_COMM_SELF,
                                            intercomm, codes)
                  : MPI_ERR_ARG;
    for (int h = 0; h < hosts; h++) MPI_Info_free(&infos[h]);
  }
  free(commands), free(argvs), free(counts), free(infos);
  return rc;
}

int cm_pool_grow(cm_pool *pool, const cm_spawn_request *request, double *spawn_seconds, char *err,
                 size_t errlen) {
  *spawn_seconds = 0;
  const int n = request->workers;
  if (n < 1) {
    snprintf(err, errlen, "cannot spawn %d workers", n);
    return -1;
  }
  if (pool->size + n > pool->workers_cap) {
    int cap = 2 * (pool->size + n);
    worker_state *grown = realloc(pool->workers, (size_t)cap * sizeof *grown);
    if (!grown) {
      snprintf(err, errlen, "out of memory for a pool of %d workers", pool->size + n);
      return -1;
    }
    pool->workers = grown;
    pool->workers_cap = cap;
  }
  if (pool->ngroups == pool->groups_cap) {
    int cap = 2 * pool->groups_cap + 4;
    group_state *grown = realloc(pool->groups, (size_t)cap * sizeof *grown);
    if (!grown) {
      snprintf(err, errlen, "out of memory for %d spawn groups", cap);
      return -1;
    }
    pool->groups = grown;
    pool->groups_cap = cap;
  }
  int *codes = calloc((size_t)n, sizeof *codes);
  if (!codes) {
    snprintf(err, errlen, "out of memory");
    return -1;
  }
  MPI_Info info = MPI_INFO_NULL;
  if (request->map_by || request->host) {
    MPI_Info_create(&info);
    if (request->map_by) MPI_Info_set(info, "map_by", request->map_by);
    if (request->host) MPI_Info_set(info, "host", request->host);
  }
  char what[96];
  snprintf(what, sizeof what, "MPI_Comm_spawn of %d workers", n);
  MPI_Comm intercomm = MPI_COMM_NULL;
  double start = MPI_Wtime();
  cm_watchdog_arm(request->spawn_timeout, what);
  int lock = -1;
  if (request->spawn_lock) {
    lock = open(request->spawn_lock, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
    if (lock >= 0) flock(lock, LOCK_EX); /* the watchdog bounds this wait too */
  }
  if (request->lock_wait_seconds) *request->lock_wait_seconds = MPI_Wtime() - start;
  int rc = MPI_SUCCESS;
  if (request->hosts > 0)
    rc = spawn_on_hosts(request, n, &intercomm, codes);
  else
    rc = MPI_Comm_spawn(request->command, request->argv, n, info, 0, MPI_COMM_SELF, &intercomm,
                        codes);
  if (lock >= 0) close(lock); /* releases the lock */
  cm_watchdog_disarm();
  *spawn_seconds = MPI_Wtime() - start;
  if (info != MPI_INFO_NULL) MPI_Info_free(&info);
  int failed = rc != MPI_SUCCESS;
  for (int i = 0; i < n && !failed; i++) failed = codes[i] != MPI_SUCCESS;
  free(codes);
  if (failed) {
    snprintf(err, errlen, "MPI_Comm_spawn of %d x %s failed (error %d)", n, request->command, rc);
    return -1;
  }
  MPI_Comm_set_errhandler(intercomm, MPI_ERRORS_RETURN);
  int group = pool->ngroups++;
  pool->groups[group] = (group_state){intercomm, n, start, start};
  int id = 0;
  for (int rank = 0, host = 0, on_host = 0; rank < n; rank++) {
    while (id_taken(pool, id)) id++;
    worker_state *w = &pool->workers[pool->size++];
    *w = (worker_state){.state = WORKER_IDLE, .group = group, .rank = rank, .id = id};
    if (request->hosts > 0 && host < request->hosts) {
      snprintf(w->host, sizeof w->host, "%s", request->host_names[host]);
      if (++on_host == request->host_workers[host]) host++, on_host = 0;
    } else if (request->host) {
      snprintf(w->host, sizeof w->host, "%s", request->host);
    }
  }
  return 0;
}

/* Host names equal, or equal up to the first '.' (a node's short name and its FQDN). */
static int same_host(const char *a, const char *b) {
  size_t la = strcspn(a, "."), lb = strcspn(b, ".");
  return strcmp(a, b) == 0 || (la == lb && la > 0 && strncmp(a, b, la) == 0);
}

int cm_pool_alive_on(const cm_pool *pool, const char *host) {
  int alive = 0;
  for (int i = 0; i < pool->size; i++)
    alive += pool->workers[i].state != WORKER_ABANDONED && same_host(pool->workers[i].host, host);
  return alive;
}

int cm_pool_size(const cm_pool *pool) {
  return pool->size;
}

int cm_pool_alive(const cm_pool *pool) {
  int alive = 0;
  for (int w = 0; w < pool->size; w++) alive += pool->workers[w].state != WORKER_ABANDONED;
  return alive;
}

int cm_pool_serving(const cm_pool *pool) {
  int serving = 0;
  for (int w = 0; w < pool->size; w++)
    serving += pool->workers[w].serving && pool->workers[w].state != WORKER_ABANDONED;
  return serving;
}

int cm_pool_groups(const cm_pool *pool) {
  return pool->ngroups;
}

void cm_pool_group_info(const cm_pool *pool, int group, cm_group_info *out) {
  const group_state *g = &pool->groups[group];
  *out = (cm_group_info){.size = g->size, .spawned_at = g->spawned_at, .last_used = g->last_used};
  for (int w = 0; w < pool->size; w++)
    if (pool->workers[w].group == group) out->alive += pool->workers[w].state != WORKER_ABANDONED;
}

int cm_pool_retire(cm_pool *pool, int group, double timeout, cm_retired *out, char *err,
                   size_t errlen) {
  group_state *g = &pool->groups[group];
  int rc = 0, alive = 0;
  int64_t rss_sum = 0;
  for (int w = 0; w < pool->size; w++) {
    const worker_state *worker = &pool->workers[w];
    if (worker->group != group) continue;
    rss_sum += worker->peak_rss;
    if (worker->state == WORKER_ABANDONED) continue;
    MPI_Request stop = MPI_REQUEST_NULL;
    if (MPI_Isend(NULL, 0, MPI_BYTE, worker->rank, CM_TAG_STOP, g->intercomm, &stop) ==
            MPI_SUCCESS &&
        cm_wait_until(&stop, NULL, MPI_Wtime() + timeout) == 0)
      alive++;
    else /* dead since its last task: no disconnect can include it */
      drop_request(&stop);
  }
  if (alive == g->size) {
    /* Disconnect waits for every worker; a stall here is the spawn-exit hang's cousin. */
    cm_watchdog_arm(timeout, "disconnecting from the workers");
    rc = MPI_Comm_disconnect(&g->intercomm) == MPI_SUCCESS ? 0 : -1;
    cm_watchdog_disarm();
    if (rc != 0) snprintf(err, errlen, "MPI_Comm_disconnect from the workers failed");
  }
  /* With abandoned workers a disconnect could wait forever: leave the intercommunicator; the
   * stalled processes end with the job. */
  double lifetime = MPI_Wtime() - g->spawned_at;
  if (out)
    *out = (cm_retired){.workers = g->size,
                        .alive = alive,
                        .lifetime = lifetime,
                        .worker_seconds = g->size * lifetime,
                        .rss_byte_seconds = (double)rss_sum * lifetime};
  int kept = 0;
  for (int w = 0; w < pool->size; w++) {
    worker_state worker = pool->workers[w];
    if (worker.group == group) continue;
    if (worker.group > group) worker.group--;
    pool->workers[kept++] = worker;
  }
  pool->size = kept;
  memmove(&pool->groups[group], &pool->groups[group + 1],
          (size_t)(pool->ngroups - group - 1) * sizeof *pool->groups);
  pool->ngroups--;
  return rc;
}

static int wait_all_bounded(MPI_Request *requests, int n, double deadline) {
  for (int i = 0; i < n; i++)
    if (requests[i] != MPI_REQUEST_NULL && cm_wait_until(&requests[i], NULL, deadline) != 0)
      return -1;
  return 0;
}

int cm_pool_send_weights(cm_pool *pool, const float *weights, size_t count, int64_t version,
                         int workers, double timeout, char *err, size_t errlen) {
  cm_weights_header header = {version, (int64_t)count};
  if (count > (size_t)2147483647) {
    snprintf(err, errlen, "weights of %zu floats exceed one MPI message", count);
    return -1;
  }
  /* Two sends per chosen worker: requests[2k], requests[2k + 1] go to worker owner[k]. */
  MPI_Request *requests = malloc((2 * (size_t)pool->size + 1) * sizeof *requests);
  int *owner = malloc(((size_t)pool->size + 1) * sizeof *owner);
  char *lost = calloc((size_t)pool->size + 1, 1); /* its sends failed at once */
  if (!requests || !owner || !lost) {
    free(requests), free(owner), free(lost);
    snprintf(err, errlen, "out of memory");
    return -1;
  }
  int n = 0, chosen = 0;
  for (int w = 0; w < pool->size; w++) {
    worker_state *worker = &pool->workers[w];
    worker->serving = worker->state != WORKER_ABANDONED && (workers <= 0 || chosen < workers);
    if (!worker->serving) continue;
    owner[chosen++] = w;
    MPI_Comm intercomm = pool->groups[worker->group].intercomm;
    requests[n] = requests[n + 1] = MPI_REQUEST_NULL;
    if (MPI_Isend(&header, (int)sizeof header, MPI_BYTE, worker->rank, CM_TAG_WEIGHTS_HEADER,
                  intercomm, &requests[n]) != MPI_SUCCESS ||
        MPI_Isend(weights, (int)count, MPI_FLOAT, worker->rank, CM_TAG_WEIGHTS, intercomm,
                  &requests[n + 1]) != MPI_SUCCESS)
      lost[chosen - 1] = 1;
    n += 2;
  }
  /* A worker that does not take its weights in time (dead, or stalled) is abandoned like one
   * that does not answer a task; the others serve. */
  double deadline = MPI_Wtime() + timeout;
  for (int k = 0; k < chosen; k++) {
    if (!lost[k] && wait_all_bounded(&requests[2 * k], 2, deadline) == 0) continue;
    drop_request(&requests[2 * k]);
    drop_request(&requests[2 * k + 1]);
    abandon(&pool->workers[owner[k]], "did not take the weights within %.1f s", timeout);
  }
  free(requests), free(owner), free(lost);
  return 0;
}

static int ensure_buffers(cm_pool *pool, size_t result_len, int max_indices, char *err,
                          size_t errlen) {
  int window = 2 * cm_pool_serving(pool);
  if (pool->slots == NULL || pool->slot_len != result_len || pool->window != window) {
    free(pool->slots);
    pool->slots = malloc((size_t)window * (result_len ? result_len : 1) * sizeof(float));
    pool->window = window;
    pool->slot_len = result_len;
  }
  size_t need = sizeof(cm_task) + (size_t)max_indices * sizeof(int64_t);
  if (pool->task_buffer_len < need) {
    free(pool->task_buffer);
    pool->task_buffer = malloc(need);
    pool->task_buffer_len = pool->task_buffer ? need : 0;
  }
  if (!pool->slots || !pool->task_buffer) {
    snprintf(err, errlen, "out of memory for %d result slots of %zu floats", window, result_len);
    return -1;
  }
  return 0;
}

static void record(cm_pool_run_request *run, worker_state *w, int status, double end,
                   double send_seconds) {
  if (status != -1 && w->reply.peak_rss_bytes > w->peak_rss) w->peak_rss = w->reply.peak_rss_bytes;
  if (run->records_used >= run->records_cap) return;
  cm_task_record *r = &run->records[run->records_used++];
  *r = (cm_task_record){.round = run->tasks[w->task].round,
                        .task = w->task,
                        .worker = w->id,
                        .attempt = w->attempt,
                        .status = status,
                        .start = w->dispatched,
                        .end = end,
                        .send = send_seconds};
  if (status != -1) {
    r->startup = w->reply.startup;
    r->fetch = w->reply.fetch;
    r->forward_backward = w->reply.forward_backward;
    r->peak_rss_bytes = w->reply.peak_rss_bytes;
    if (w->reply.host[0]) snprintf(w->host, sizeof w->host, "%.63s", w->reply.host);
    snprintf(r->placement, sizeof r->placement, "%.191s", w->reply.placement);
  }
  snprintf(r->host, sizeof r->host, "%s", w->host[0] ? w->host : "?");
}

static uint64_t mix64(uint64_t x) { /* splitmix64's finalizer */
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

int cm_inject_decision(const cm_pool_run_request *request, int round, int task, int attempt) {
  if (attempt >= request->max_retries) return CM_INJECT_NONE; /* the last try always runs */
  if (request->inject_fail_rate <= 0 && request->inject_stall_rate <= 0) return CM_INJECT_NONE;
  uint64_t h = mix64(request->inject_seed);
  h = mix64(h ^ (uint64_t)(uint32_t)round);
  h = mix64(h ^ (uint64_t)(uint32_t)request->inject_peer);
  h = mix64(h ^ (uint64_t)(uint32_t)task);
  h = mix64(h ^ (uint64_t)(uint32_t)attempt);
  double u = (double)(h >> 11) * 0x1.0p-53; /* uniform in [0, 1) */
  if (u < request->inject_fail_rate) return CM_INJECT_FAIL;
  if (u < request->inject_fail_rate + request->inject_stall_rate) return CM_INJECT_STALL;
  return CM_INJECT_NONE;
}

static void dispatch(cm_pool *pool, cm_pool_run_request *run, const int64_t *offsets, int worker,
                     int task, int attempt) {
  worker_state *w = &pool->workers[worker];
  cm_task header = run->tasks[task];
  header.attempt = attempt;
  header.inject_failure = cm_inject_decision(run, header.round, task, attempt);
  memcpy(pool->task_buffer, &header, sizeof header);
  memcpy(pool->task_buffer + sizeof header, run->indices + offsets[task],
         (size_t)header.count * sizeof(int64_t));
  int bytes = (int)(sizeof header + (size_t)header.count * sizeof(int64_t));
  w->state = WORKER_BUSY;
  w->task = task;
  w->attempt = attempt;
  w->dispatched = MPI_Wtime();
  MPI_Comm intercomm = pool->groups[w->group].intercomm;
  MPI_Request sent = MPI_REQUEST_NULL;
  w->reply_request = MPI_REQUEST_NULL;
  /* A dead worker (its node's processes killed) never takes it, or the send fails at once: the
   * worker stays busy, undelivered, and the answer loop retries the task elsewhere. */
  w->undelivered = MPI_Isend(pool->task_buffer, bytes, MPI_BYTE, w->rank, CM_TAG_TASK, intercomm,
                             &sent) != MPI_SUCCESS ||
                   cm_wait_until(&sent, NULL, w->dispatched + run->task_timeout) != 0 ||
                   MPI_Irecv(&w->reply, (int)sizeof w->reply, MPI_BYTE, w->rank, CM_TAG_REPLY,
                             intercomm, &w->reply_request) != MPI_SUCCESS;
  if (w->undelivered) drop_request(&sent);
}

/* Refills a pool whose every serving worker was lost (run->replenish), at most max_retries
 * times per run. 0 when it has serving workers again; else why says why not (or is empty). */
static int replenish(cm_pool *pool, cm_pool_run_request *run, char *why, size_t size) {
  why[0] = '\0';
  if (!run->replenish || run->replenished >= run->max_retries) return -1;
  run->replenished++;
  return run->replenish(run->replenish_context, why, size) == 0 && cm_pool_serving(pool) > 0 ? 0
                                                                                             : -1;
}

int cm_pool_run(cm_pool *pool, cm_pool_run_request *run, char *err, size_t errlen) {
  const int n = run->ntasks;
  int max_indices = 0;
  int64_t *offsets = malloc(((size_t)n + 1) * sizeof *offsets);
  int *attempts = calloc((size_t)n, sizeof *attempts);    /* attempts started per task */
  char *filled = calloc((size_t)n, 1);                    /* result parked in its slot */
  char *queued = calloc((size_t)n, 1);                    /* waiting for a worker */
  int *failed_on = malloc((size_t)n * sizeof *failed_on); /* worker of the last failed attempt */
  int rc = 0;
  if (!offsets || !attempts || !filled || !queued || !failed_on) {
    snprintf(err, errlen, "out of memory");
    rc = -1;
    goto done;
  }
  offsets[0] = 0;
  for (int i = 0; i < n; i++) {
    offsets[i + 1] = offsets[i] + run->tasks[i].count;
    if (run->tasks[i].count > max_indices) max_indices = run->tasks[i].count;
    queued[i] = 1;
    failed_on[i] = -1;
  }
  char why[200];
  if (cm_pool_serving(pool) == 0 && replenish(pool, run, why, sizeof why) != 0) {
    /* every chosen worker was lost taking the weights, or they were never sent */
    snprintf(err, errlen, "no live worker has the weights (cm_pool_send_weights first)%s%s",
             why[0] ? "; replacing the lost ones failed: " : "", why);
    rc = -1;
    goto done;
  }
  if (ensure_buffers(pool, run->result_len, max_indices, err, errlen) != 0) {
    rc = -1;
    goto done;
  }
  memset(run->sum, 0, run->result_len * sizeof(float));
  run->records_used = 0;

  int next_to_sum = 0;
  long backoff = 1000;
  while (next_to_sum < n) {
    int progress = 0;
    /* Hand queued tasks (lowest index first) to idle workers while their slot is free. */
    for (int worker = 0; worker < pool->size; worker++) {
      if (!pool->workers[worker].serving || pool->workers[worker].state != WORKER_IDLE) continue;
      /* A retry goes to another worker while there is one alive: the failed one may be sick. */
      int task = -1, alive = cm_pool_serving(pool);
      for (int i = next_to_sum; i < n && i < next_to_sum + pool->window; i++)
        if (queued[i] && (failed_on[i] != worker || alive == 1)) {
          task = i;
          break;
        }
      if (task < 0) continue;
      queued[task] = 0;
      dispatch(pool, run, offsets, worker, task, attempts[task]++);
      progress = 1;
    }
    /* Collect answers. */
    double now = MPI_Wtime();
    for (int worker = 0; worker < pool->size; worker++) {
      worker_state *w = &pool->workers[worker];
      if (!w->serving || w->state != WORKER_BUSY) continue;
      int answered = 0, broken = 0;
      if (!w->undelivered)
        broken = MPI_Test(&w->reply_request, &answered, MPI_STATUS_IGNORE) != MPI_SUCCESS;
      if (w->undelivered || broken || !answered) {
        if (!w->undelivered && !broken && now - w->dispatched <= run->task_timeout) continue;
        /* Abandon the worker: it may be stalled or dead. Its task goes to another one. */
        drop_request(&w->reply_request);
        record(run, w, -1, now, 0);
        if (w->undelivered)
          abandon(w, "did not take task %d within %.1f s", w->task, run->task_timeout);
        else if (broken)
          abandon(w, "was lost during task %d", w->task);
        else
          abandon(w, "did not answer task %d within %.1f s", w->task, run->task_timeout);
      } else if (w->reply.status == CM_REPLY_OK) {
        int task = w->task;
        float *slot = pool->slots + (size_t)(task % pool->window) * pool->slot_len;
        MPI_Request data_request = MPI_REQUEST_NULL;
        double receive_start = MPI_Wtime();
        if (MPI_Irecv(slot, (int)run->result_len, MPI_FLOAT, w->rank, CM_TAG_RESULT,
                      pool->groups[w->group].intercomm, &data_request) != MPI_SUCCESS ||
            cm_wait_until(&data_request, NULL, receive_start + run->task_timeout) != 0) {
          drop_request(&data_request);
          record(run, w, -1, MPI_Wtime(), 0);
          w->state = WORKER_ABANDONED;
        } else {
          double end = MPI_Wtime();
          record(run, w, CM_REPLY_OK, end, end - receive_start);
          filled[task] = 1;
          w->state = WORKER_IDLE;
          progress = 1;
          continue;
        }
      } else {
        record(run, w, CM_REPLY_FAILED, now, 0);
        w->state = WORKER_IDLE;
      }
      /* The attempt failed: queue the task again, or give up. */
      progress = 1;
      if (attempts[w->task] > run->max_retries) {
        snprintf(err, errlen, "task %d of round %d failed %d times (last: %s)", w->task,
                 run->tasks[w->task].round, attempts[w->task],
                 w->state == WORKER_ABANDONED ? "worker timed out" : w->reply.message);
        rc = -1;
        goto done;
      }
      queued[w->task] = 1;
      failed_on[w->task] = worker;
    }
    if (cm_pool_serving(pool) == 0) {
      if (replenish(pool, run, why, sizeof why) == 0) continue; /* queued tasks: fresh workers */
      snprintf(err, errlen, "all serving workers were abandoned; %d of %d tasks done%s%s",
               next_to_sum, n, why[0] ? "; replacing them failed: " : "", why);
      rc = -1;
      goto done;
    }
    /* Fold parked results into the sum, strictly in task order. */
    while (next_to_sum < n && filled[next_to_sum]) {
      const float *slot = pool->slots + (size_t)(next_to_sum % pool->window) * pool->slot_len;
      for (size_t i = 0; i < run->result_len; i++) run->sum[i] += slot[i];
      next_to_sum++;
      progress = 1;
    }
    if (progress) {
      backoff = 1000;
    } else {
      sleep_briefly(backoff);
      if (backoff < 100000) backoff *= 2;
    }
  }
  double finished = MPI_Wtime();
  for (int w = 0; w < pool->size; w++)
    if (pool->workers[w].serving) pool->groups[pool->workers[w].group].last_used = finished;
done:
  free(offsets);
  free(attempts);
  free(filled);
  free(queued);
  free(failed_on);
  return rc;
}

int cm_pool_close(cm_pool *pool, double timeout, cm_retired *out, char *err, size_t errlen) {
  if (out) *out = (cm_retired){0};
  if (!pool) return 0;
  int rc = 0;
  while (pool->ngroups > 0) {
    cm_retired group;
    char why[256];
    if (cm_pool_retire(pool, pool->ngroups - 1, timeout, &group, why, sizeof why) != 0 && rc == 0) {
      snprintf(err, errlen, "%s", why);
      rc = -1;
    }
    if (out) {
      out->workers += group.workers;
      out->alive += group.alive;
      if (group.lifetime > out->lifetime) out->lifetime = group.lifetime;
      out->worker_seconds += group.worker_seconds;
      out->rss_byte_seconds += group.rss_byte_seconds;
    }
  }
  free(pool->slots);
  free(pool->task_buffer);
  free(pool->workers);
  free(pool->groups);
  free(pool);
  return rc;
}
