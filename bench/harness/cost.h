/* The cost model: what a mayfly-train run would cost, from what it consumed (worker lifetimes,
 * invocations, peer wall time) and a price table (results/prices/, format in README.md there).
 *
 * Why a model and not a bill: the study's question is whether offloading gradients to functions
 * pays off, so each run records its own consumption and prices it with a named, versioned
 * table; any run can be re-priced with another table. Two kinds of table:
 *   cloud       functions billed per GB-second of configured memory and per request, an
 *               orchestrator per state transition, peers on hourly instances;
 *   core-hour   an on-premise cluster: every core held (peers and workers) costs the same. */
#ifndef MAYFLY_BENCH_COST_H
#define MAYFLY_BENCH_COST_H

#include <hdf5.h>
#include <stddef.h>
#include <stdint.h>

#include "bench/harness/train.h"

#define MF_PRICES_MAX_INSTANCES 32

typedef enum { MF_PRICES_CLOUD, MF_PRICES_CORE_HOUR } mf_prices_kind;

typedef struct {
  char name[64];
  char currency[16];
  mf_prices_kind kind;
  double function_gb_second; /* cloud: per GB-second of configured function memory */
  double function_request;   /* cloud: per invocation */
  double transition;         /* cloud: per orchestration state transition */
  double core_hour;          /* core-hour: per core-hour */
  struct {
    char name[32];
    double hourly;
  } instances[MF_PRICES_MAX_INSTANCES];
  int instance_count;
  int peer_instance; /* cloud: index into instances[] of the type a peer runs on */
} mf_prices;

/* What a run consumed, summed over peers. */
typedef struct {
  int peers, peer_threads, worker_threads;
  double worker_memory_mb; /* billed function size */
  double wall_seconds;     /* the run's training time (the peers hold their cores this long) */
  mf_worker_usage usage;
} mf_cost_input;

typedef struct {
  int64_t invocations, transitions;
  double worker_gb_seconds;   /* billed size x worker lifetime */
  double measured_gb_seconds; /* peak RSS x worker lifetime */
  double core_seconds;        /* peers' and workers' cores x time held */
  double peer_instance_hours;
  double usd_serverless; /* functions + orchestration (cloud); workers' core-hours (core-hour) */
  double usd_instances;  /* the peers' instances (cloud); peers' core-hours (core-hour) */
  double usd_total;
  double ratio; /* usd_serverless / usd_instances: serverless spend per unit of peer spend */
} mf_cost;

/* Reads a price table; 0, or -1 with "FILE:LINE: what is wrong" in err. */
int mf_prices_load(const char *path, mf_prices *prices, char *err, size_t errlen);

/* --prices value -> file: a value naming an existing file is used as is; otherwise NAME is
 * looked up as PROGRAM_DIR/../results/prices/NAME.txt, then results/prices/NAME.txt under the
 * current directory. 0, or -1 with a message listing where it looked. */
int mf_prices_resolve(const char *value, const char *program_dir, char *path, size_t size,
                      char *err, size_t errlen);

void mf_cost_compute(const mf_prices *prices, const mf_cost_input *in, mf_cost *out);

/* /cost group with one attribute per field, plus the table's name, file and currency. */
int mf_cost_write(hid_t file, const mf_prices *prices, const char *prices_path,
                  const mf_cost *cost);

/* mayfly-train's two hooks. prepare: resolves and checks --prices at setup (a bad table is an
 * error before any training). record (collective over MPI_COMM_WORLD): sums every peer's
 * t->usage, prices the run on rank 0, writes /cost into `file` (rank 0; others pass -1) and
 * prints a '# cost:' line. Both return 0, or -1 (record: agreed by all peers). */
int mf_cost_prepare(mf_train *t, char *err, size_t errlen);
int mf_cost_record(const mf_train *t, hid_t file, double train_seconds);

#endif
