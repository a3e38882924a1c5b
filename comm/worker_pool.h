/* The peer's side of serverless execution: spawn workers with MPI_Comm_spawn, give them the
 * model weights, hand out tasks, gather their gradient vectors, retire them.
 *
 * Why a pool object: cold mode fills one per round and empties it after; warm mode keeps one
 * across rounds and grows or shrinks it between rounds. Either way the peer needs the same
 * guarantees: gradients summed in task order whatever worker finished first (so every mode and
 * every pool size yields the same model), every wait bounded (a stalled spawn or worker becomes
 * a clear error, never a hang), and failed tasks retried on another worker.
 *
 * Why groups: one MPI_Comm_spawn gives one intercommunicator, and a worker can only leave by
 * disconnecting it, which is collective over all of its workers. So the pool is a list of spawn
 * groups; it grows by spawning a new group and shrinks by retiring whole groups. Workers carry
 * small ids (the lowest free ones when they join, like file descriptors) that stay fixed while
 * they live. comm/ knows flat float vectors and task descriptors, not models. */
#ifndef MAYFLY_COMM_WORKER_POOL_H
#define MAYFLY_COMM_WORKER_POOL_H

#include <mpi.h>
#include <stddef.h>
#include <stdint.h>

#include "comm/protocol.h"

typedef struct cm_pool cm_pool;

typedef struct {
  const char *command; /* worker executable */
  char **argv;         /* its arguments, NULL-terminated (MPI_Comm_spawn's argv) */
  int workers;         /* how many to start */
  const char *map_by;  /* optional spawn info key "map_by" (e.g. ":OVERSUBSCRIBE"), or NULL */
  const char *host;    /* optional spawn info key "host", or NULL */
  /* Optional: workers on named hosts, host_workers[i] of them on host_names[i] (one
   * MPI_Comm_spawn_multiple, an app context with its own info "host" each; the group's ranks
   * follow this order). hosts > 0 replaces `host`; the counts sum to `workers`. */
  int hosts;
  const char *const *host_names;
  const int *host_workers;
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
  int32_t round, task;
  int32_t worker; /* the worker's id in the pool */
  int32_t attempt;
  int32_t status; /* CM_REPLY_OK, CM_REPLY_FAILED, or -1: timed out */
  double start, end;
  double startup, fetch, forward_backward, send;
  int64_t peak_rss_bytes;
  char host[64];       /* where the worker runs: its own report, else where it was spawned */
  char placement[192]; /* the worker's own description (cm_reply.placement), "" if no reply */
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
  /* Optional: called when every serving worker is lost (each abandoned after its task or its
   * weights timed out: dead, as when its node's processes were killed, or stalled), to put fresh
   * workers holding the current weights into the pool (cm_pool_grow, cm_pool_send_weights).
   * The run then goes on with them, keeping the results it has and each task's attempt count.
   * At most max_retries times per run; NULL: the run fails. Returns 0 on success. */
  int (*replenish)(void *context, char *err, size_t errlen);
  void *replenish_context;
  int replenished; /* out: how many times replenish was called */
} cm_pool_run_request;

/* The injection decision for one attempt: 0 none, CM_INJECT_FAIL or CM_INJECT_STALL. */
int cm_inject_decision(const cm_pool_run_request *request, int round, int task, int attempt);

/* An empty pool. */
int cm_pool_create(cm_pool **out, char *err, size_t errlen);

/* Spawns request->workers workers as a new group (one MPI_Comm_spawn, bounded by a watchdog)
 * appended after the pool's other groups. *spawn_seconds receives the time from asking for
 * workers to having them: the lock wait (if any) plus the MPI_Comm_spawn call. */
int cm_pool_grow(cm_pool *pool, const cm_spawn_request *request, double *spawn_seconds, char *err,
                 size_t errlen);

int cm_pool_size(const cm_pool *pool);  /* workers in every group, abandoned ones included */
int cm_pool_alive(const cm_pool *pool); /* workers not abandoned */
/* Workers not abandoned that run on host (as spawned, or as they reported). */
int cm_pool_alive_on(const cm_pool *pool, const char *host);
int cm_pool_groups(const cm_pool *pool);

typedef struct {
  int size, alive;   /* workers spawned in the group; those not abandoned */
  double spawned_at; /* MPI_Wtime when the spawn was asked for (lock wait included) */
  double last_used;  /* MPI_Wtime when one of its workers last served a run (spawned_at if never) */
} cm_group_info;
void cm_pool_group_info(const cm_pool *pool, int group, cm_group_info *out);

/* What retiring a group leaves for the accounts: a worker lives from its group's spawn request
 * to the end of its retirement. */
typedef struct {
  int workers;             /* spawned in the group */
  int alive;               /* of them, not abandoned: the ones that were stopped */
  double lifetime;         /* seconds (cm_pool_close: the longest group's) */
  double worker_seconds;   /* workers x lifetime (cm_pool_close: summed over the groups) */
  double rss_byte_seconds; /* sum over the workers of their highest reported RSS x lifetime */
} cm_retired;

/* Stops the group's workers and disconnects from them (bounded by timeout, a watchdog), then
 * drops the group; later groups move up by one. A group with an abandoned worker is left
 * without disconnecting (that could wait forever); its processes end with the job. `out` may
 * be NULL. */
int cm_pool_retire(cm_pool *pool, int group, double timeout, cm_retired *out, char *err,
                   size_t errlen);

/* Sends the weights (version `version`) to the first `workers` live workers in pool order (0:
 * every live worker); those then serve the next cm_pool_run, the others stay idle (and keep
 * their older weights). Bounded by timeout: a worker that has not taken them by then is
 * abandoned (with a warning on stderr), and when none did, cm_pool_run replaces them
 * (replenish) or fails. */
int cm_pool_send_weights(cm_pool *pool, const float *weights, size_t count, int64_t version,
                         int workers, double timeout, char *err, size_t errlen);
/* Workers chosen by the last cm_pool_send_weights that are still alive. */
int cm_pool_serving(const cm_pool *pool);

/* Runs the tasks on the serving workers; 0, or -1 with a message when a task cannot be
 * completed. Records carry the workers' ids. */
int cm_pool_run(cm_pool *pool, cm_pool_run_request *request, char *err, size_t errlen);

/* Retires every group (as cm_pool_retire; `out` sums them, may be NULL) and frees the pool. */
int cm_pool_close(cm_pool *pool, double timeout, cm_retired *out, char *err, size_t errlen);

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
