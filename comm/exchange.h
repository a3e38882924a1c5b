/* Peer gradient exchange: the algorithms peers use to turn every peer's flat gradient vector
 * into the average over all peers (allreduce-mean), behind one interface.
 *
 * Why: the study exchanged gradients through a queue; classic HPC uses tree and ring
 * allreduces; mayfly lets users compare them on the same training job. An algorithm is one file
 * plus one entry in comm/exchange_registry.c. Every algorithm must be deterministic: all peers
 * end with bit-identical vectors, for any peer count and any length (0 included). comm/ knows
 * flat float vectors, never models. */
#ifndef MAYFLY_COMM_EXCHANGE_H
#define MAYFLY_COMM_EXCHANGE_H

#include <mpi.h>
#include <stddef.h>

typedef struct {
  const char *name;    /* "mpi", "ring", ... (the --exchange value) */
  const char *summary; /* one line for --help */
  /* In place: data[i] = (sum over peers of data[i]) / peers. Returns MPI_SUCCESS or an MPI
   * error code; on error err holds a message. */
  int (*allreduce_mean)(float *data, size_t count, MPI_Comm comm, char *err, size_t errlen);
} cm_exchange_algorithm;

/* NULL-terminated table of algorithms. */
extern const cm_exchange_algorithm *const cm_exchange_algorithms[];

const cm_exchange_algorithm *cm_exchange_find(const char *name);

#endif
