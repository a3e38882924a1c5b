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

/* NULL-terminated table of algorithms, "auto" (comm/exchange_auto.c) last. */
extern const cm_exchange_algorithm *const cm_exchange_algorithms[];

const cm_exchange_algorithm *cm_exchange_find(const char *name);

/* The algorithm "auto" runs for one vector of `bytes` bytes over `peers` peers: the fastest
 * measured (crossover table in comm/exchange_auto.c, measurements in results/exchange.md).
 * Never "auto" itself; the same answer on every peer, since it depends on nothing else. */
const cm_exchange_algorithm *cm_exchange_auto(size_t bytes, int peers);

/* The algorithm that actually runs when `algorithm` exchanges `bytes` over `peers` peers:
 * cm_exchange_auto's choice for "auto", `algorithm` itself otherwise. */
const cm_exchange_algorithm *cm_exchange_resolve(const cm_exchange_algorithm *algorithm,
                                                 size_t bytes, int peers);

#endif
