/* Captures where a run happened into the results file's /environment group: MPI library,
 * hostnames and rank bindings of every peer, Slurm job, OpenBLAS build and threads, compiler,
 * and the hwloc topology as XML. Collective over the peers' communicator: every rank calls it,
 * rank 0 writes (file is only valid there). */
#ifndef MAYFLY_BENCH_ENVIRONMENT_H
#define MAYFLY_BENCH_ENVIRONMENT_H

#include <hdf5.h>
#include <mpi.h>
#include <stddef.h>

int mf_environment_record(hid_t file, MPI_Comm comm, char *err, size_t errlen);

/* One line naming the MPI library (for headers). */
void mf_mpi_library(char *out, size_t size);

/* This process's binding as "host:cpuset" (hwloc), for headers. */
void mf_binding(char *out, size_t size);

#endif
