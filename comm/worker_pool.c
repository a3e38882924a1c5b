/* The peer side of the peer <-> worker protocol (see worker_pool.h for why it is shaped so).
 *
 * Scheduling: tasks go to idle workers in task order; a worker gets its next task as soon as it
 * answers. Results may arrive out of order, so they are parked in a small window of slots
 * (2 x workers) and folded into the sum strictly in task order: the summation is the same as the
 * baseline's, whatever the timing. A task is only dispatched while its slot is free, which bounds
 * the peer's memory to window x result_len floats. */
#include "comm/worker_pool.h"

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
  int task; /* task index while busy */
  int attempt;
  double dispatched; /* MPI_Wtime at dispatch */
  MPI_Request reply_request;
  cm_reply reply;
} worker_state;

struct cm_pool {
  MPI_Comm intercomm;
  int size;
  worker_state *workers;
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
    MPI_Test(request, &done, status ? status : MPI_STATUS_IGNORE);
    if (done) return 0;
    if (MPI_Wtime() >= deadline) return -1;
    sleep_briefly(backoff);
    if (backoff < 200000) backoff *= 2;
  }
}

int cm_pool_spawn(const cm_spawn_request *request, cm_pool **out, double *spawn_seconds, char *err,
                  size_t errlen) {
  *out = NULL;
  if (request->workers < 1) {
    snprintf(err, errlen, "cannot spawn %d workers", request->workers);
    return -1;
  }
  cm_pool *pool = calloc(1, sizeof *pool);
  if (!pool || !(pool->workers = calloc((size_t)request->workers, sizeof *pool->workers))) {
    free(pool);
    snprintf(err, errlen, "out of memory for a pool of %d workers", request->workers);
    return -1;
  }
  MPI_Info info = MPI_INFO_NULL;
  if (request->map_by || request->host) {
    MPI_Info_create(&info);
    if (request->map_by) MPI_Info_set(info, "map_by", request->map_by);
    if (request->host) MPI_Info_set(info, "host", request->host);
  }
  int *codes = calloc((size_t)request->workers, sizeof *codes);
  char what[96];
  snprintf(what, sizeof what, "MPI_Comm_spawn of %d workers", request->workers);
  double start = MPI_Wtime();
  cm_watchdog_arm(request->spawn_timeout, what);
  int lock = -1;
  if (request->spawn_lock) {
    lock = open(request->spawn_lock, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
    if (lock >= 0) flock(lock, LOCK_EX); /* the watchdog bounds this wait too */
  }
  if (request->lock_wait_seconds) *request->lock_wait_seconds = MPI_Wtime() - start;
  int rc = MPI_Comm_spawn(request->command, request->argv, request->workers, info, 0, MPI_COMM_SELF,
                          &pool->intercomm, codes);
  if (lock >= 0) close(lock); /* releases the lock */
  cm_watchdog_disarm();
  *spawn_seconds = MPI_Wtime() - start;
  if (info != MPI_INFO_NULL) MPI_Info_free(&info);
  int failed = rc != MPI_SUCCESS;
  for (int i = 0; i < request->workers && !failed; i++) failed = codes[i] != MPI_SUCCESS;
  free(codes);
  if (failed) {
    snprintf(err, errlen, "MPI_Comm_spawn of %d x %s failed (error %d)", request->workers,
             request->command, rc);
    free(pool->workers);
    free(pool);
    return -1;
  }
  MPI_Comm_set_errhandler(pool->intercomm, MPI_ERRORS_RETURN);
  pool->size = request->workers;
  *out = pool;
  return 0;
}

int cm_pool_size(const cm_pool *pool) {
  return pool->size;
}

int cm_pool_alive(const cm_pool *pool) {
  int alive = 0;
  for (int w = 0; w < pool->size; w++) alive += pool->workers[w].state != WORKER_ABANDONED;
  return alive;
}

static int wait_all_bounded(MPI_Request *requests, int n, double deadline) {
  for (int i = 0; i < n; i++)
    if (requests[i] != MPI_REQUEST_NULL && cm_wait_until(&requests[i], NULL, deadline) != 0)
      return -1;
  return 0;
}

int cm_pool_send_weights(cm_pool *pool, const float *weights, size_t count, int64_t version,
                         double timeout, char *err, size_t errlen) {
  cm_weights_header header = {version, (int64_t)count};
  if (count > (size_t)2147483647) {
    snprintf(err, errlen, "weights of %zu floats exceed one MPI message", count);
    return -1;
  }
  MPI_Request *requests = malloc(2 * (size_t)pool->size * sizeof *requests);
  if (!requests) {
    snprintf(err, errlen, "out of memory");
    return -1;
  }
  int n = 0;
  for (int w = 0; w < pool->size; w++) {
    if (pool->workers[w].state == WORKER_ABANDONED) continue;
    MPI_Isend(&header, (int)sizeof header, MPI_BYTE, w, CM_TAG_WEIGHTS_HEADER, pool->intercomm,
              &requests[n++]);
    MPI_Isend(weights, (int)count, MPI_FLOAT, w, CM_TAG_WEIGHTS, pool->intercomm, &requests[n++]);
  }
  int rc = wait_all_bounded(requests, n, MPI_Wtime() + timeout);
  free(requests);
  if (rc != 0)
    snprintf(err, errlen, "sending the weights to the workers took over %.0f s", timeout);
  return rc;
}

static int ensure_buffers(cm_pool *pool, size_t result_len, int max_indices, char *err,
                          size_t errlen) {
  int window = 2 * pool->size;
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

static void record(cm_pool_run_request *run, const worker_state *w, int worker, int status,
                   double end, double send_seconds) {
  if (run->records_used >= run->records_cap) return;
  cm_task_record *r = &run->records[run->records_used++];
  *r = (cm_task_record){.round = run->tasks[w->task].round,
                        .task = w->task,
                        .worker = worker,
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
  }
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

static int dispatch(cm_pool *pool, cm_pool_run_request *run, const int64_t *offsets, int worker,
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
  if (MPI_Send(pool->task_buffer, bytes, MPI_BYTE, worker, CM_TAG_TASK, pool->intercomm) !=
      MPI_SUCCESS)
    return -1;
  return MPI_Irecv(&w->reply, (int)sizeof w->reply, MPI_BYTE, worker, CM_TAG_REPLY, pool->intercomm,
                   &w->reply_request) == MPI_SUCCESS
             ? 0
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
      if (pool->workers[worker].state != WORKER_IDLE) continue;
      /* A retry goes to another worker while there is one alive: the failed one may be sick. */
      int task = -1, alive = cm_pool_alive(pool);
      for (int i = next_to_sum; i < n && i < next_to_sum + pool->window; i++)
        if (queued[i] && (failed_on[i] != worker || alive == 1)) {
          task = i;
          break;
        }
      if (task < 0) continue;
      queued[task] = 0;
      if (dispatch(pool, run, offsets, worker, task, attempts[task]++) != 0) {
        snprintf(err, errlen, "sending task %d to worker %d failed", task, worker);
        rc = -1;
        goto done;
      }
      progress = 1;
    }
    /* Collect answers. */
    double now = MPI_Wtime();
    for (int worker = 0; worker < pool->size; worker++) {
      worker_state *w = &pool->workers[worker];
      if (w->state != WORKER_BUSY) continue;
      int answered = 0;
      MPI_Test(&w->reply_request, &answered, MPI_STATUS_IGNORE);
      if (!answered) {
        if (now - w->dispatched <= run->task_timeout) continue;
        /* Abandon the worker: it may be stalled or dead. Its task goes to another one. */
        MPI_Cancel(&w->reply_request);
        MPI_Request_free(&w->reply_request);
        record(run, w, worker, -1, now, 0);
        w->state = WORKER_ABANDONED;
        fprintf(stderr,
                "mayfly: warning: worker %d did not answer task %d within %.1f s; "
                "abandoned it\n",
                worker, w->task, run->task_timeout);
      } else if (w->reply.status == CM_REPLY_OK) {
        int task = w->task;
        float *slot = pool->slots + (size_t)(task % pool->window) * pool->slot_len;
        MPI_Request data_request;
        double receive_start = MPI_Wtime();
        MPI_Irecv(slot, (int)run->result_len, MPI_FLOAT, worker, CM_TAG_RESULT, pool->intercomm,
                  &data_request);
        if (cm_wait_until(&data_request, NULL, receive_start + run->task_timeout) != 0) {
          MPI_Cancel(&data_request);
          MPI_Request_free(&data_request);
          record(run, w, worker, -1, MPI_Wtime(), 0);
          w->state = WORKER_ABANDONED;
        } else {
          double end = MPI_Wtime();
          record(run, w, worker, CM_REPLY_OK, end, end - receive_start);
          filled[task] = 1;
          w->state = WORKER_IDLE;
          progress = 1;
          continue;
        }
      } else {
        record(run, w, worker, CM_REPLY_FAILED, now, 0);
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
    if (cm_pool_alive(pool) == 0) {
      snprintf(err, errlen, "all %d workers were abandoned; %d of %d tasks done", pool->size,
               next_to_sum, n);
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
done:
  free(offsets);
  free(attempts);
  free(filled);
  free(queued);
  free(failed_on);
  return rc;
}

int cm_pool_close(cm_pool *pool, double timeout, char *err, size_t errlen) {
  if (!pool) return 0;
  int rc = 0;
  int abandoned = pool->size - cm_pool_alive(pool);
  for (int w = 0; w < pool->size; w++)
    if (pool->workers[w].state != WORKER_ABANDONED)
      MPI_Send(NULL, 0, MPI_BYTE, w, CM_TAG_STOP, pool->intercomm);
  if (abandoned == 0) {
    /* Disconnect waits for every worker; a stall here is the spawn-exit hang's cousin. */
    cm_watchdog_arm(timeout, "disconnecting from the workers");
    rc = MPI_Comm_disconnect(&pool->intercomm) == MPI_SUCCESS ? 0 : -1;
    cm_watchdog_disarm();
    if (rc != 0) snprintf(err, errlen, "MPI_Comm_disconnect from the workers failed");
  }
  /* With abandoned workers a disconnect could wait forever: leave the intercommunicator; the
   * stalled processes end with the job. */
  free(pool->slots);
  free(pool->task_buffer);
  free(pool->workers);
  free(pool);
  return rc;
}
