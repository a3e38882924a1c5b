/* Graceful stop on SIGTERM / SIGINT (a Slurm time limit, Ctrl-C, mpirun forwarding either).
 *
 * Why it exists: a run killed mid-round leaves a results file that is hard to trust; a run that
 * finishes the round it is in, writes it, marks the file complete=0 with an `interrupted`
 * attribute and exits non-zero is easy to trust. The handler only records
 * the signal (async-signal-safe); the round loop polls it between rounds, and all peers agree
 * through one small allreduce, so no peer leaves a collective its partners are still in.
 * The handler is one-shot: a second SIGTERM / SIGINT gets the default action (kill now).
 *
 * Deliver the signal to the peers, not only to mpirun: a signalled mpirun forwards it after
 * odls_base_sigkill_timeout (1 s default) and SIGKILLs that long after, and meanwhile serves no
 * MPI_Comm_spawn, so a cold-mode round waiting for its workers cannot finish (measured). */
#ifndef MAYFLY_BENCH_SIGNALS_H
#define MAYFLY_BENCH_SIGNALS_H

#include <mpi.h>

/* Installs the recording handler for SIGTERM and SIGINT. Call after MPI_Init (Open MPI sets
 * up its own handlers there). 0, or -1 if sigaction failed. */
int mf_signals_install(void);

/* Collective over comm: the stop signal any member received (the largest number when several
 * differ, so every member gets the same answer), 0 if none. One MPI_Allreduce of one int. */
int mf_signals_agree(MPI_Comm comm);

/* "SIGTERM", "SIGINT", or "signal N". */
const char *mf_signal_name(int signo);

#endif
