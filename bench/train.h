/* mayfly-train's shared state: the resolved configuration, the peer's data and model, the
 * per-round buffers and timings, and the execution-mode interface (baseline, cold, ...).
 *
 * Why one context: every mode runs the same round (tasks -> averaged gradient -> exchange ->
 * update) and differs only in who computes the tasks. A mode is one file filling an mf_mode
 * (the nccl-tests shape) plus one line in mode_registry.c; it reads the context and fills
 * `result_sum`, the phase times and the task records of the round. */
#ifndef MAYFLY_BENCH_TRAIN_H
#define MAYFLY_BENCH_TRAIN_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>

#include "comm/worker_pool.h"
#include "datasets/datasets.h"
#include "kernels/model.h"
#include "kernels/sgd.h"

typedef struct {
  const char *mode;
  const char *model;
  const char *dataset;
  int batch;
  int tasks;   /* minibatches per peer per round; 0 = all ("--tasks all") */
  int workers; /* 0 = auto: from the task count and the free slots (MPI_UNIVERSE_SIZE) */
  int rounds;
  int epochs; /* > 0: overrides rounds */
  double lr, momentum, weight_decay;
  int seed;
  int peer_threads, worker_threads;
  int eval_every;
  int warmup;
  const char *exchange;
  const char *output;
  int force;
  double spawn_timeout, task_timeout;
  int max_retries;
  const char *stage_dir;
  const char *spawn_lock; /* "none" or a lock file path */
  double keep_alive;      /* warm: seconds a pool may sit idle between rounds and survive */
  double inject_failures; /* probability that a task attempt fails (fault injection) */
  double inject_stalls;   /* probability that a task attempt stalls past --task-timeout */
  int failure_seed;
  const char *prices; /* price table for /cost */
  int worker_memory;  /* MB a worker is billed for (function size) */
} mf_train_config;

/* What the serverless modes consumed, per peer: the input of the cost model (bench/cost.h).
 * A worker lives from its pool's spawn call to the end of its pool's close. */
typedef struct {
  double worker_seconds;        /* sum over workers of their lifetimes */
  double measured_byte_seconds; /* sum over workers of peak RSS x lifetime */
  int64_t invocations;          /* task attempts dispatched (failed and timed out included) */
  int64_t pools;                /* spawn calls = cold starts */
  int64_t workers_spawned;
} mf_worker_usage;

/* Peer-side phases, one /timing/<name> dataset each. */
typedef enum {
  MF_PHASE_SPAWN,
  MF_PHASE_SPAWN_WAIT, /* part of spawn: waiting for this node's spawn lock */
  MF_PHASE_DISPATCH,
  MF_PHASE_COMPUTE,
  MF_PHASE_EXCHANGE,
  MF_PHASE_UPDATE,
  MF_PHASE_EVAL,
  MF_PHASE_TEARDOWN,
  MF_PHASE_ROUND,
  MF_PHASE_COUNT
} mf_phase;
extern const char *const mf_phase_names[MF_PHASE_COUNT];
#define MF_PHASE_BIT(p) (1u << (p))
/* Phases every mode records. */
#define MF_PHASES_COMMON                                              \
  (MF_PHASE_BIT(MF_PHASE_COMPUTE) | MF_PHASE_BIT(MF_PHASE_EXCHANGE) | \
   MF_PHASE_BIT(MF_PHASE_UPDATE) | MF_PHASE_BIT(MF_PHASE_EVAL) | MF_PHASE_BIT(MF_PHASE_ROUND))

typedef struct mf_train mf_train;

typedef struct {
  const char *name;
  const char *summary;
  unsigned phases; /* MF_PHASE_BIT()s this mode records */
  int (*setup)(mf_train *t, char *err, size_t errlen);
  /* Computes the round's tasks: t->result_sum = sum over tasks (in task order) of each task's
   * result vector; fills t->phase[] and t->records. */
  int (*compute)(mf_train *t, int round, char *err, size_t errlen);
  void (*teardown)(mf_train *t);
} mf_mode;

extern const mf_mode *const mf_modes[]; /* NULL-terminated */
const mf_mode *mf_mode_find(const char *name);

struct mf_train {
  mf_train_config config;
  const char *program; /* for error lines */
  int rank, peers;
  ds_source source; /* as given */
  ds_source staged; /* what workers read (plain files) */
  ds_set train_set, test_set;
  ds_partition partition;
  int64_t minibatches; /* per peer */
  int tasks_per_round;
  int rounds;
  const kn_model_kind *kind;
  kn_model *model;
  kn_sgd optimizer;
  size_t result_len; /* params + buffers (batch statistics) + 1 (loss) */
  float *result_sum;
  int64_t *task_indices; /* [tasks_per_round * batch] this round's sample indices */
  cm_task *tasks;        /* [tasks_per_round] */
  /* baseline scratch: one minibatch in pixels and model input */
  uint8_t *pixels, *labels;
  float *input;
  int32_t *targets;
  float *task_result;
  double phase[MF_PHASE_COUNT];
  cm_task_record *records;
  int records_cap, records_used;
  const mf_mode *mode;
  void *mode_state;
  char worker_command[PATH_MAX];
  double start_time;
  mf_worker_usage usage;      /* filled by the serverless modes */
  char prices_path[PATH_MAX]; /* the resolved --prices table (bench/cost.h) */
};

/* The pool engine shared by the serverless modes (mode_cold.c): one pool of spawned workers
 * per peer, accounted in t->usage. A round copies the weights, retires the pool first when
 * retire_before (its time goes to the teardown phase, outside compute), spawns one when there
 * is none (a cold start: the spawn phase is > 0 exactly in cold rounds), sends the weights,
 * runs the tasks, and retires the pool after when retire_after. */
int mf_engine_setup(mf_train *t, char *err, size_t errlen);
int mf_engine_round(mf_train *t, int round, int retire_before, int retire_after, char *err,
                    size_t errlen);
/* Seconds since the pool last finished tasks; -1 when there is no pool. */
double mf_engine_idle_seconds(const mf_train *t);
/* 1 when the pool lost workers (abandoned after a timeout). */
int mf_engine_degraded(const mf_train *t);
void mf_engine_teardown(mf_train *t);
/* Workers per pool: min(--workers, tasks), or for --workers auto min(tasks, free slots per
 * peer), free slots = MPI_UNIVERSE_SIZE - peers, at least 1. */
int mf_pool_workers(const mf_train *t);

/* Fills task_result with one task's result vector from the model after a training step:
 * [grads | batch statistics | loss]. Shared by baseline and worker so both build it alike. */
void mf_result_vector(const kn_model *m, float loss, float *out);

/* "idx:DIR", "cifar10:DIR" or "synthetic:N:M:SEED" for a source (what workers are told). */
void mf_source_spec(const ds_source *src, char *out, size_t size);

#endif
