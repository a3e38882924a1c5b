/* Exchange algorithm "mpi": the MPI library's own MPI_Allreduce (sum), then a division by the
 * peer count. The reference every other algorithm is measured against. */
#include "comm/exchange.h"

#include <stdio.h>

static int mpi_allreduce_mean(float *data, size_t count, MPI_Comm comm, char *err, size_t errlen) {
  int peers;
  MPI_Comm_size(comm, &peers);
  const size_t chunk = (size_t)1 << 30; /* MPI counts are int */
  for (size_t done = 0; done < count; done += chunk) {
    int n = (int)(count - done < chunk ? count - done : chunk);
    int rc = MPI_Allreduce(MPI_IN_PLACE, data + done, n, MPI_FLOAT, MPI_SUM, comm);
    if (rc != MPI_SUCCESS) {
      snprintf(err, errlen, "MPI_Allreduce failed (error %d)", rc);
      return rc;
    }
  }
  for (size_t i = 0; i < count; i++) data[i] /= (float)peers;
  return MPI_SUCCESS;
}

const cm_exchange_algorithm cm_exchange_mpi = {
    .name = "mpi",
    .summary = "MPI_Allreduce of the MPI library, then divide by the peer count",
    .allreduce_mean = mpi_allreduce_mean,
};
