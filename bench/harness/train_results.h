/* mayfly-train's HDF5 results file (results/SCHEMA.md is the contract). Written by the peer of
 * rank 0 only, incrementally: every round's rows are flushed, so a run that dies leaves a
 * readable file with complete=0 and every finished round; complete=1 is written last. */
#ifndef MAYFLY_BENCH_TRAIN_RESULTS_H
#define MAYFLY_BENCH_TRAIN_RESULTS_H

#include <hdf5.h>
#include <stddef.h>
#include <stdint.h>

#include "bench/harness/options.h"
#include "bench/harness/placement.h"
#include "bench/harness/train.h"

/* 2: /timing/tasks has a host column, /pool/host_slots, /environment/worker_placements and the
 * placement attribute. Readers accept 1 and 2 where they need nothing of version 2. */
#define MF_SCHEMA_VERSION 2

/* One row of /timing/tasks. */
typedef struct {
  int32_t round, peer, task, worker;
  int32_t retries;   /* attempt number of this execution (0: first try) */
  int32_t status;    /* 0 ok, 1 failed, -1 timed out */
  double start, end; /* seconds since the run's start, on the peer's clock */
  double startup, fetch, forward_backward, send;
  int64_t peak_rss_bytes;
  char
      host[MF_HOST_NAME]; /* the node the task ran on (the worker's report; baseline: the peer's) */
} mf_task_row;

typedef struct mf_train_results mf_train_results;

/* Creates the file (refusing to replace a complete result unless force). */
int mf_train_results_create(mf_train_results **out, const char *path, int force, char *err,
                            size_t errlen);
hid_t mf_train_results_file(const mf_train_results *r);
/* Root attributes, /config (every resolved option plus derived values), and the datasets that
 * grow by round. With a pool mode (t->pool_record set) also /pool; t must outlive r. */
int mf_train_results_header(mf_train_results *r, const mf_program *program, const void *config,
                            const char *command_line, const mf_train *t);
/* One round: phases [MF_PHASE_COUNT][peers] (only phases in mask are written), mean loss, and
 * the round's pool decisions (the header's t->pool_record) when there is a /pool. */
int mf_train_results_round(mf_train_results *r, int round, const double *phases, int peers,
                           unsigned mask, double loss);
int mf_train_results_tasks(mf_train_results *r, const mf_task_row *rows, size_t n);
int mf_train_results_eval(mf_train_results *r, int round, double accuracy);
/* The final model: /model/parameters and /model/buffers (flat float32, the model's blocks). */
int mf_train_results_model(mf_train_results *r, const kn_model *model);
/* --resume (bench/harness/resume.h): reopens an existing results file for writing and cuts every
 * per-round dataset, the task rows and the evaluations back to the first rounds_kept rounds
 * (the rounds after the checkpoint are redone); the writer then continues at rounds_kept.
 * On failure *out may still be set (close it with complete 0). */
int mf_train_results_reopen(mf_train_results **out, const char *path, const mf_train *t,
                            int rounds_kept, char *err, size_t errlen);
/* Writes complete (and the end time), flushes, closes, frees. */
int mf_train_results_close(mf_train_results *r, int complete, const char *note);

#endif
