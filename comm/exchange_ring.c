/* Exchange algorithm "ring": the bandwidth-optimal ring allreduce (reduce-scatter, then
 * allgather) that Baidu's allreduce and Horovod made the standard for data-parallel training.
 *
 * The vector is cut into one block per peer. Reduce-scatter: in p-1 steps every peer sends a
 * block to its right neighbour and adds the block arriving from its left neighbour into its
 * own; afterwards peer r holds the complete sum of block r+1, computed along the ring in one
 * fixed order by that one peer. It divides that block by the peer count, and the allgather
 * (p-1 more steps, plain copies) hands the finished block on, so every peer ends with the same
 * bits. Each peer sends and receives 2(p-1)/p of the vector: the lower bound for an allreduce.
 * Within a reduce-scatter step the block travels in segments and the addition of one segment
 * overlaps the transfer of the next (comm/exchange_step.c). Blocks may be empty (fewer floats
 * than peers); the steps then simply send nothing. */
#include "comm/exchange.h"
#include "comm/exchange_step.h"

#include <stdio.h>

/* Floats per message in the reduce-scatter (512 KiB: one L2 of the development machine's
 * cores), and segments in flight. Chosen by interleaved runs of 8 Ki..512 Ki floats x depth
 * 2, 4, 8 at 1, 8 and 64 MiB on 2 peers (results/exchange.md): below 64 Ki floats the per-
 * message cost shows (3.3 vs 4.9 GB/s busbw at 8 Ki vs 128 Ki floats, 8 MiB vector). */
enum { RING_SEGMENT = 1 << 17, RING_DEPTH = 4 };

static int ring_allreduce_mean(float *data, size_t count, MPI_Comm comm, char *err, size_t errlen) {
  int peers, rank;
  MPI_Comm_size(comm, &peers);
  MPI_Comm_rank(comm, &rank);
  if (count == 0 || peers == 1) return MPI_SUCCESS;
  MPI_Comm ring;
  int rc = cm_step_private_comm(comm, &ring, err, errlen);
  if (rc != MPI_SUCCESS) return rc;

  const size_t p = (size_t)peers, r = (size_t)rank;
  const int right = (rank + 1) % peers, left = (rank + peers - 1) % peers;
  cm_step_scratch scratch;
  if (cm_step_scratch_init(&scratch, RING_SEGMENT, RING_DEPTH, cm_block_count(count, p, 0))) {
    snprintf(err, errlen, "ring: out of memory for the receive segments");
    return MPI_ERR_NO_MEM;
  }
  for (size_t step = 0; step + 1 < p && rc == MPI_SUCCESS; step++) {
    size_t send_block = (r + p - step) % p, recv_block = (r + 2 * p - step - 1) % p;
    rc = cm_step_exchange(
        data, cm_block_offset(count, p, send_block), cm_block_count(count, p, send_block), right,
        cm_block_offset(count, p, recv_block), cm_block_count(count, p, recv_block), left,
        CM_STEP_ADD_INCOMING_FIRST, scratch.segment, &scratch, ring, err, errlen);
  }
  if (rc == MPI_SUCCESS) {
    size_t own = (r + 1) % p;
    cm_step_divide(data + cm_block_offset(count, p, own), cm_block_count(count, p, own), peers);
  }
  for (size_t step = 0; step + 1 < p && rc == MPI_SUCCESS; step++) {
    size_t send_block = (r + 1 + p - step) % p, recv_block = (r + p - step) % p;
    rc = cm_step_exchange(
        data, cm_block_offset(count, p, send_block), cm_block_count(count, p, send_block), right,
        cm_block_offset(count, p, recv_block), cm_block_count(count, p, recv_block), left,
        CM_STEP_COPY, CM_STEP_COPY_MESSAGE, &scratch, ring, err, errlen);
  }
  cm_step_scratch_free(&scratch);
  return rc;
}

const cm_exchange_algorithm cm_exchange_ring = {
    .name = "ring",
    .summary = "ring reduce-scatter + allgather, segmented and pipelined (bandwidth-optimal)",
    .allreduce_mean = ring_allreduce_mean,
};
