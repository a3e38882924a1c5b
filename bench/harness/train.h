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

/* --workers: how many workers a peer's pool should have, decided every round (mode_cold.c). */
#define MF_WORKERS_SCHEDULE_MAX 64
typedef struct {
  int length; /* 0: auto; 1: fixed sizes[0]; > 1: sizes[round % length] (a per-round schedule) */
  int sizes[MF_WORKERS_SCHEDULE_MAX];
} mf_workers_policy;

typedef struct {
  const char *mode;
  const char *model;
  const char *dataset;
  int batch;
  int tasks;                 /* minibatches per peer per round; 0 = all ("--tasks all") */
  mf_workers_policy workers; /* --workers: fixed, a per-round schedule, or auto */
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
  const char *spawn_lock;  /* "none" or a lock file path */
  const char *spawn_turns; /* "auto", "on" or "off": peers spawn one after another (mode_cold.c) */
  double keep_alive;       /* warm: seconds a pool may sit idle between rounds and survive */
  double inject_failures;  /* probability that a task attempt fails (fault injection) */
  double inject_stalls;    /* probability that a task attempt stalls past --task-timeout */
  int failure_seed;
  const char *prices; /* price table for /cost */
  int worker_memory;  /* MB a worker is billed for (function size) */
  const char
      *bind; /* "cores" or "none": placement of peers and workers (bench/harness/binding.h) */
  const char
      *placement; /* "local", "remote" or "any": workers' nodes (bench/harness/placement.h) */
  int allow_unsafe_spawn; /* run serverless modes where bench/harness/launch_check.h refuses them */
  /* Checkpoint and resume (bench/harness/resume.h) */
  int checkpoint_every;      /* rounds between checkpoints, 0: no round trigger */
  double checkpoint_seconds; /* wall seconds between checkpoints, 0: no time trigger */
  int resume;                /* continue --output from its last checkpoint */
  int resume_any_revision;   /* --resume may run another git revision than the checkpoint's */
} mf_train_config;

/* What the serverless modes consumed, per peer: the input of the cost model (bench/harness/cost.h).
 * A worker lives from its spawn group's spawn call to the end of that group's retirement. */
typedef struct {
  double worker_seconds;        /* sum over workers of their lifetimes */
  double measured_byte_seconds; /* sum over workers of peak RSS x lifetime */
  int64_t invocations;          /* task attempts dispatched (failed and timed out included) */
  int64_t pools;                /* spawn calls = cold starts */
  int64_t workers_spawned;
} mf_worker_usage;

/* The columns of /pool, one int32 [rounds, peers] dataset each (results/SCHEMA.md). */
typedef enum {
  MF_POOL_TARGET,         /* workers the policy wants this round */
  MF_POOL_WORKERS_BEFORE, /* live workers in the pool when the round began */
  MF_POOL_SPAWNED,        /* workers started this round (one spawn group) */
  MF_POOL_RETIRED,        /* live workers retired this round, before or after the tasks */
  MF_POOL_FREE_SLOTS,     /* free slots per peer from the sources (-1: no source) */
  MF_POOL_FIELDS
} mf_pool_field;
extern const char *const mf_pool_field_names[MF_POOL_FIELDS];

/* Peer-side phases, one /timing/<name> dataset each. */
typedef enum {
  MF_PHASE_SPAWN,
  MF_PHASE_SPAWN_WAIT, /* part of spawn: waiting for the spawn lock or the spawn turn */
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
#define MF_PLACEMENTS_MAX 32

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
  size_t result_len;                /* params + buffers (batch statistics) + 1 (loss) */
  const char *exchange_selected;    /* the algorithm that runs: --exchange, or auto's choice */
  const char *spawn_turns_selected; /* "on" or "off": --spawn-turns, or auto's choice */
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
  mf_worker_usage usage; /* filled by the serverless modes */
  /* The serverless modes' pool decisions of the current round, gathered on rank 0 at the
   * round's start (NULL on other ranks and in modes without a pool): [MF_POOL_FIELDS][peers],
   * fields in mf_pool_field order. The results writer turns them into /pool. */
  int32_t *pool_record;
  char pool_policy[80];       /* mf_workers_policy_describe */
  char pool_sources[512];     /* rank 0's free-slot sources, for /pool's attribute */
  char prices_path[PATH_MAX]; /* the resolved --prices table (bench/harness/cost.h) */
  /* Where this peer's workers ran, as they described themselves ("HOST:cpus=LIST:status"),
   * distinct lines with how many workers had each (/environment/worker_placements). */
  char placements[MF_PLACEMENTS_MAX][192];
  int placement_workers[MF_PLACEMENTS_MAX];
  int placements_used;
};

/* The pool engine shared by the serverless modes (mode_cold.c): one pool of spawned workers
 * per peer, made of spawn groups, accounted in t->usage. A round decides the pool's size (the
 * --workers policy), retires groups idle longer than keep_alive (< 0: never) and surplus
 * groups (their time goes to the teardown phase, outside compute), spawns the missing workers
 * as a new group (a cold start: the spawn phase is > 0 exactly in the rounds that grew), sends
 * the weights to the round's workers, runs the tasks, and retires the whole pool after when
 * retire_after. Every decision is gathered into t->pool_record for /pool. */
int mf_engine_setup(mf_train *t, char *err, size_t errlen);
int mf_engine_round(mf_train *t, int round, double keep_alive, int retire_after, char *err,
                    size_t errlen);
void mf_engine_teardown(mf_train *t);

/* The sizing policy, split out so it can be checked without MPI. A source of free slots is -1
 * when unavailable. */
typedef struct {
  int universe;   /* MPI_UNIVERSE_SIZE */
  int slurm;      /* the Slurm allocation's slots (mf_slurm_slots) */
  int node_cores; /* hwloc: cores of this peer's node */
  int peers;      /* in MPI_COMM_WORLD */
  int node_peers; /* peers on this peer's node */
  int allocation; /* this peer's share of the allocation's nodes (bench/harness/placement.h), -1 */
} mf_slot_sources;
/* Free worker slots per peer: the smallest of (universe - peers) / peers,
 * (slurm - peers) / peers, (node_cores - node_peers) / node_peers and the allocation share
 * over the available sources, never below 0; -1 when no source is available. */
int mf_free_slots(const mf_slot_sources *sources);
/* The pool size of one round: fixed N or the schedule's entry, capped at tasks; auto:
 * min(tasks, free_slots), at least 1. */
int mf_pool_target(const mf_workers_policy *policy, int round, int tasks, int free_slots);
/* Slots of a Slurm allocation from its environment values (NULL when unset): SLURM_NTASKS,
 * else SLURM_NPROCS, else SLURM_JOB_CPUS_PER_NODE ("72(x2),36": 72 on each of 2 nodes, then
 * 36: the node count is part of the format). -1 when none is set or parseable. */
int mf_slurm_slots(const char *ntasks, const char *nprocs, const char *cpus_per_node);
/* "auto", "fixed N" or "schedule A,B,C" (the /pool policy attribute). */
void mf_workers_policy_describe(const mf_workers_policy *policy, char *out, size_t size);

/* Fills task_result with one task's result vector from the model after a training step:
 * [grads | batch statistics | loss]. Shared by baseline and worker so both build it alike. */
void mf_result_vector(const kn_model *m, float loss, float *out);

/* "idx:DIR", "cifar10:DIR" or "synthetic:N:M:SEED" for a source (what workers are told). */
void mf_source_spec(const ds_source *src, char *out, size_t size);

#endif
