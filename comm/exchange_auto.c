/* Exchange "auto": picks, per message, the algorithm that measured fastest on this kind of
 * machine for that message size, so the default exchange of mayfly-train is the
 * fastest correct one instead of MPI_Allreduce (1.4 s per VGG11 exchange against 0.10 s with the
 * ring, results/exchange.md).
 *
 * The rule is a fixed crossover table, never a timing taken at run time: every peer must pick
 * the same algorithm (the algorithms are collective, and the bits of the result depend on the
 * algorithm), so it is decided from values all peers share, the vector's byte count and the
 * communicator size. Every algorithm it can pick is exact and bit-identical on all peers (see
 * comm/exchange.h), so auto is too.
 *
 * The table: results/exchange.md, section "Crossovers for auto", read from that file's
 * measurements on the project's 2-core VM (Open MPI 4.1.4, pml ob1; 2, 3 and 4 peers, 4 B to
 * 64 MiB, medians of interleaved runs, and the study's model sizes on 2 peers). Up to 2 KiB
 * recursive doubling (one exchange step) is as fast as MPI_Allreduce; from 4 KiB to 512 KiB
 * `store` (one memcpy per read from a shared window) is 1.6-4x faster than MPI; above that the
 * ring is the best or within 1.5x of it up to 16 MiB and at the study's model sizes (VGG11,
 * 515 MB: ring 0.10 s, Rabenseifner 0.10 s, store 0.13 s, MPI 1.41 s). At 32-64 MiB, a size no
 * model of the suite has, store beat the ring by 1.1-2.6x; the crossover back between 64 MiB
 * and 515 MB was not measured, so the ring keeps everything above 512 KiB. MPI_Allreduce
 * falls off a cliff at 32 MiB here. One table serves every peer count: on 3 and 4 peers
 * (oversubscribed, so scheduler time slices dominate small messages) the fastest algorithm
 * between 4 KiB and 512 KiB changes between store, Rabenseifner and recursive doubling from
 * size to size, within 1.1-1.4x of each other, and store is never more than 1.4x off the best. */
#include "comm/exchange.h"

#include <stdint.h>
#include <stdio.h>

extern const cm_exchange_algorithm cm_exchange_ring;
extern const cm_exchange_algorithm cm_exchange_recursive_doubling;
extern const cm_exchange_algorithm cm_exchange_store;

typedef struct {
  size_t max_bytes; /* this algorithm up to and including max_bytes */
  const cm_exchange_algorithm *algorithm;
} crossover;

static const crossover crossovers[] = {
    {2048, &cm_exchange_recursive_doubling},
    {512 * 1024, &cm_exchange_store},
    {SIZE_MAX, &cm_exchange_ring},
};

const cm_exchange_algorithm *cm_exchange_auto(size_t bytes, int peers) {
  (void)peers; /* measured: the same crossovers for 2, 3 and 4 peers (see above) */
  int i = 0;
  while (bytes > crossovers[i].max_bytes) i++;
  return crossovers[i].algorithm;
}

static int auto_allreduce_mean(float *data, size_t count, MPI_Comm comm, char *err, size_t errlen) {
  int peers = 0;
  int rc = MPI_Comm_size(comm, &peers);
  if (rc != MPI_SUCCESS) {
    snprintf(err, errlen, "auto: MPI_Comm_size failed (error %d)", rc);
    return rc;
  }
  return cm_exchange_auto(count * sizeof(float), peers)
      ->allreduce_mean(data, count, comm, err, errlen);
}

const cm_exchange_algorithm cm_exchange_auto_algorithm = {
    .name = "auto",
    .summary = "per message: the algorithm measured fastest for its size and peer count",
    .allreduce_mean = auto_allreduce_mean,
};
