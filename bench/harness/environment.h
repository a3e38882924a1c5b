/* Captures where a run happened into the results file's /environment group: MPI library,
 * hostnames and rank bindings of every peer (and, after mf_binding_setup, the planned and actual
 * placement of peers and workers), Slurm job, OpenBLAS build and threads, compiler,
 * and the hwloc topology as XML. Collective over the peers' communicator: every rank calls it,
 * rank 0 writes (file is only valid there). */
#ifndef MAYFLY_BENCH_ENVIRONMENT_H
#define MAYFLY_BENCH_ENVIRONMENT_H

#include <hdf5.h>
#include <mpi.h>
#include <stddef.h>

int mf_environment_record(hid_t file, MPI_Comm comm, char *err, size_t errlen);

/* The workers' side of the placement record (bench/harness/binding.h), at the end of a run, when
 * every worker has reported the cpus it got: dataset worker_bindings [peers, slots]. Collective
 * over comm; nothing is written when the binding module was not set up or no peer had workers. */
int mf_environment_record_workers(hid_t file, MPI_Comm comm, char *err, size_t errlen);

/* count MF_BIND_TEXT strings of every peer (counts may differ; shorter rows are padded with
 * "") as dataset name [peers, most] of /environment. Collective; nothing when no peer has one. */
int mf_environment_record_lines(hid_t file, MPI_Comm comm, const char *name, const char *lines,
                                int count, char *err, size_t errlen);

/* One line naming the MPI library (for headers). */
void mf_mpi_library(char *out, size_t size);

/* This process's binding as "host:cpuset" (hwloc), for headers. */
void mf_binding(char *out, size_t size);

#endif
