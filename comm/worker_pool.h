/* The peer's side of serverless execution: spawn a pool of workers with MPI_Comm_spawn, give
 * them the model weights, hand out tasks, gather their gradient vectors, retire them.
 *
 * Why a pool object: cold mode spawns one per round and closes it after; warm mode keeps one
 * across rounds. Either way the peer needs the same guarantees: gradients summed in task order
 * whatever worker finished first (so every mode yields the same model), every wait bounded
 * (a stalled spawn or worker becomes a clear error, never a hang), and failed tasks retried on
 * another worker. comm/ knows flat float vectors and task descriptors, not models. */
#ifndef MAYFLY_COMM_WORKER_POOL_H
#define MAYFLY_COMM_WORKER_POOL_H

#include <mpi.h>
#include <stddef.h>
#include <stdint.h>

#include "comm/protocol.h"

typedef struct cm_pool cm_pool;

typedef struct {
  const char *command;  /* worker executable */
  char **argv;          /* its arguments, NULL-terminated (MPI_Comm_spawn's argv) */
  int workers;          /* how many to start */
  const char *map_by;   /* optional spawn info key "map_by" (e.g. ":OVERSUBSCRIBE"), or NULL */
  const char *host;     /* optional spawn info key "host", or NULL */
  double spawn_timeout; /* seconds the spawn may take before the watchdog aborts the process */
  /* Optional: a lock file (flock) held around MPI_Comm_spawn, so that the peers of one node
   * spawn one after another (to study spawn contention; serialising does not prevent Open MPI
   * 4.1.4's spawn stall, results/spawn_hang.md). NULL: no lock. */
  const char *spawn_lock;
  double *lock_wait_seconds; /* optional out: time spent waiting for the lock */
} cm_spawn_request;

/* One task execution (a retried task has one record per attempt). Times are the peer's
 * MPI_Wtime() for start/end; durations in seconds. */
typedef struct {
  int32_t round, task, worker, attempt;
  int32_t status; /* CM_REPLY_OK, CM_REPLY_FAILED, or -1: timed out */
  double start, end;
  double startup, fetch, forward_backward, send;
  int64_t peak_rss_bytes;
} cm_task_record;

/* One round's work for the pool. */
typedef struct {
  const cm_task *tasks;   /* ntasks descriptors, tasks[i].task == i */
  const int64_t *indices; /* the tasks' sample indices, concatenated (tasks[i].count each) */
  int ntasks;
  size_t result_len;       /* floats in every task's result vector */
  float *sum;              /* out: sum of the results in task order (result_len floats) */
  cm_task_record *records; /* out: one per attempt */
  int records_cap;
  int records_used;    /* out */
  double task_timeout; /* seconds one attempt may take before its worker is abandoned */
  int max_retries;     /* attempts after the first, per task */
  /* Fault injection: each attempt below max_retries is marked to fail (probability
   * fail_rate) or to stall past the task timeout (stall_rate), decided by a hash of
   * (inject_seed, round, inject_peer, task, attempt), so a run can always finish and the same
   * seed marks the same attempts whatever the timing. Both 0: no injection. */
  double inject_fail_rate, inject_stall_rate;
  uint64_t inject_seed;
  int inject_peer;
} cm_pool_run_request;

/* The injection decision for one attempt: 0 none, CM_INJECT_FAIL or CM_INJECT_STALL. */
int cm_inject_decision(const cm_pool_run_request *request, int round, int task, int attempt);

/* Spawns the workers (bounded by a watchdog). *spawn_seconds receives the time from asking for
 * workers to having them: the lock wait (if any) plus the MPI_Comm_spawn call. */
int cm_pool_spawn(const cm_spawn_request *request, cm_pool **out, double *spawn_seconds, char *err,
                  size_t errlen);
int cm_pool_size(const cm_pool *pool);
int cm_pool_alive(const cm_pool *pool); /* workers not abandoned */

/* Sends the weights (version `version`) to every live worker; bounded by timeout. */
int cm_pool_send_weights(cm_pool *pool, const float *weights, size_t count, int64_t version,
                         double timeout, char *err, size_t errlen);

/* Runs the tasks on the pool; 0, or -1 with a message when a task cannot be completed. */
int cm_pool_run(cm_pool *pool, cm_pool_run_request *request, char *err, size_t errlen);

/* Stops the workers and disconnects (bounded by timeout); frees the pool. */
int cm_pool_close(cm_pool *pool, double timeout, char *err, size_t errlen);

/* Wait for a request with a deadline, polling with a short back-off so a waiting process does
 * not steal the CPU its workers need. 0 when complete, -1 at the deadline (request still
 * pending). */
int cm_wait_until(MPI_Request *request, MPI_Status *status, double deadline);

/* Watchdog for calls that cannot be made non-blocking (MPI_Comm_spawn, disconnect): if not
 * disarmed within `seconds`, prints "mayfly: error: <what> did not complete within N s" and
 * terminates the process with exit code 70 (mpirun then ends the job). */
void cm_watchdog_arm(double seconds, const char *what);
void cm_watchdog_disarm(void);

#endif
