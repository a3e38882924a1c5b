/* Checkpoint and resume of mayfly-train (issue 14): a killed, timed-out or preempted run
 * continues where it stopped and ends with the same model, bit for bit, as a run that was
 * never interrupted.
 *
 * What the mathematics needs, and nothing else, is in the checkpoint OUTPUT.ckpt beside the
 * results file: the parameters and batch-norm buffers (as a state_dict,
 * bench/harness/checkpoint.h), the SGD momentum and step count, the number of finished rounds, each
 * peer's worker usage (the cost model's input) and the training seconds so far. Every random
 * decision of a round is a pure function of seeds and the round (data order: the partition from
 * --seed and the minibatch cursor (round * tasks) mod minibatches; fault injection: a hash of
 * --failure-seed, round, peer, task and attempt; dropout: off in mayfly-train), so the round is the
 * whole RNG state; the seeds and the cursor are stored anyway and checked on resume. The pool's
 * state does not enter the mathematics (results are summed in task order): a resumed warm run
 * starts with an empty pool, recorded in /pool like any cold start.
 *
 * Crash safety: the checkpoint is written to OUTPUT.ckpt.tmp, fsync'ed, renamed over
 * OUTPUT.ckpt and the directory fsync'ed, so a kill at any moment leaves the previous
 * checkpoint whole; a CRC-32 over the state it holds catches a file damaged afterwards.
 * Only rank 0 writes (all replicas are identical); on resume rank 0 reads, checks, and
 * broadcasts. The results file records every checkpoint (/checkpoint/writes) and every resume
 * (/checkpoint/resumes); results/SCHEMA.md has the layout. */
#ifndef MAYFLY_BENCH_RESUME_H
#define MAYFLY_BENCH_RESUME_H

#include <hdf5.h>
#include <limits.h>
#include <stddef.h>

#include "bench/harness/train.h"

/* mayfly-train's exit code when a stop signal ended the run after a checkpoint was written:
 * "not finished, resumable" (EX_TEMPFAIL), what a job script requeues with --resume. */
#define MF_EXIT_RESUMABLE 75

typedef struct {
  char path[PATH_MAX]; /* OUTPUT.ckpt */
  char tmp[PATH_MAX];  /* OUTPUT.ckpt.tmp */
  char run_id[96];     /* names the run; a checkpoint of another run is refused */
  double last_time;    /* MPI_Wtime of the last checkpoint (or of the start) */
  int writes;          /* checkpoints this process wrote (the test hook counts them) */
  /* What --resume restored (rank 0 reads it, every peer gets it). */
  int resumed_round; /* rounds finished at the checkpoint, 0 for a fresh run */
  double elapsed;    /* training seconds before the checkpoint */
  int discarded;     /* rank 0: rounds of the results file after the checkpoint */
} mf_checkpointer;

/* Rank 0, before the results file is created. Without --resume: refuses to start over a file
 * that has a checkpoint (unless --force). With --resume: every check on the results file and
 * its checkpoint (complete, options, run, checksum, revision), then loads the state into
 * t->model and t->optimizer; nothing is written. 0, or -1 with one line in err. */
int mf_resume_prepare(mf_train *t, mf_checkpointer *c, double *usage, char *err, size_t errlen);

/* Collective: rank 0's restored state (round, model, momentum, usage: [peers][5] on rank 0)
 * to every peer; sets t->usage and c->resumed_round / c->elapsed. */
void mf_resume_share(mf_train *t, mf_checkpointer *c, const double *usage);

/* Rank 0, with the results file open: a fresh run gets its /checkpoint group (and a stale
 * checkpoint is removed); a resumed one a /checkpoint/resumes row. round_phases (rank 0's
 * [rounds][MF_PHASE_COUNT] table for the summary) is refilled from /timing. */
int mf_resume_record(hid_t results, const mf_train *t, mf_checkpointer *c, double *round_phases,
                     char *err, size_t errlen);

/* Collective, after rounds_done finished rounds: writes a checkpoint when --checkpoint-every
 * or --checkpoint-seconds says so, or when `stopping` (a stop signal ends the run and time
 * checkpoints are on). 1 written, 0 not due, -1 failed (a warning has been printed; the
 * previous checkpoint is intact). */
int mf_checkpoint_maybe(mf_train *t, mf_checkpointer *c, hid_t results, int rounds_done,
                        int stopping);

/* Test hook: MAYFLY_TEST_HOLD_AFTER_ROUND=N makes rank 0 wait after round N (its rows and any
 * checkpoint written) for a signal, so a test can kill -9 the job at a chosen round, or send
 * SIGTERM (the run then goes on to its graceful stop after the next round). */
void mf_checkpoint_test_hold(const mf_train *t, int rounds_done);

/* Rank 0, after a complete run: the checkpoint has served and is removed. */
void mf_checkpoint_remove(const mf_checkpointer *c);

#endif
