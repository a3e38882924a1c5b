/* Exchange algorithm "rabenseifner": Rabenseifner's allreduce, a reduce-scatter by recursive
 * halving followed by an allgather by recursive doubling (Thakur, Rabenseifner and Gropp 2005).
 * Like the ring it moves only 2(p-1)/p of the vector per peer, but in 2 log2(p) steps instead of
 * 2(p-1), which makes it the usual choice for medium and large messages on many peers.
 *
 * The vector is cut into one block per member of the power-of-two group. In the halving phase,
 * partners at distance q/2, q/4, ..., 1 split the range of blocks they are both responsible for:
 * the lower partner keeps and sums the lower half, the higher one the upper half, always with
 * the lower group's partial sum as the first operand. Group member i ends with the complete sum
 * of block i, computed by it alone; it divides the block by the peer count and the doubling
 * phase copies the finished blocks to everyone, so all peers hold the same bits. Extra ranks of
 * non-powers of two are folded in and out as in recursive doubling (comm/exchange_step.c). */
#include "comm/exchange.h"
#include "comm/exchange_step.h"

#include <stdio.h>

/* Segment size and depth as the ring's (comm/exchange_ring.c). */
enum { HALVING_SEGMENT = 1 << 17, HALVING_DEPTH = 4 };

static int rabenseifner_allreduce_mean(float *data, size_t count, MPI_Comm comm, char *err,
                                       size_t errlen) {
  cm_folded_group g;
  int rc = cm_folded_begin(&g, "rabenseifner", data, count, HALVING_SEGMENT, HALVING_DEPTH, comm,
                           err, errlen);
  if (g.idle) return rc;
  const cm_fold fold = g.fold;
  if (rc == MPI_SUCCESS && fold.rank >= 0) {
    const size_t blocks = (size_t)fold.size;
#define RANGE_OFFSET(first) cm_block_offset(count, blocks, (first))
#define RANGE_COUNT(first, n) (RANGE_OFFSET((first) + (n)) - RANGE_OFFSET(first))
    size_t first = 0, n = blocks; /* the blocks this peer is still responsible for */
    for (int distance = fold.size / 2; distance >= 1 && rc == MPI_SUCCESS; distance /= 2) {
      int partner_group_rank = fold.rank ^ distance;
      int partner = cm_fold_peer(&fold, partner_group_rank);
      size_t half = n / 2, keep_first, give_first;
      cm_step_combine order;
      if (fold.rank < partner_group_rank) {
        keep_first = first, give_first = first + half;
        order = CM_STEP_ADD_LOCAL_FIRST;
      } else {
        keep_first = first + half, give_first = first;
        order = CM_STEP_ADD_INCOMING_FIRST;
      }
      rc = cm_step_exchange(data, RANGE_OFFSET(give_first), RANGE_COUNT(give_first, half), partner,
                            RANGE_OFFSET(keep_first), RANGE_COUNT(keep_first, half), partner, order,
                            g.scratch.segment, &g.scratch, g.comm, err, errlen);
      first = keep_first, n = half;
    }
    if (rc == MPI_SUCCESS)
      cm_step_divide(data + RANGE_OFFSET(first), RANGE_COUNT(first, 1), g.peers);
    /* Doubling: at distance d this peer holds the d finished blocks of its aligned range and
     * swaps them for the partner's d blocks. */
    for (int distance = 1; distance < fold.size && rc == MPI_SUCCESS; distance *= 2) {
      int partner_group_rank = fold.rank ^ distance;
      int partner = cm_fold_peer(&fold, partner_group_rank);
      size_t mine = (size_t)(fold.rank & ~(distance - 1));
      size_t theirs = (size_t)(partner_group_rank & ~(distance - 1));
      rc = cm_step_exchange(data, RANGE_OFFSET(mine), RANGE_COUNT(mine, (size_t)distance), partner,
                            RANGE_OFFSET(theirs), RANGE_COUNT(theirs, (size_t)distance), partner,
                            CM_STEP_COPY, CM_STEP_COPY_MESSAGE, &g.scratch, g.comm, err, errlen);
    }
#undef RANGE_OFFSET
#undef RANGE_COUNT
  }
  return cm_folded_end(&g, rc, data, count, err, errlen);
}

const cm_exchange_algorithm cm_exchange_rabenseifner = {
    .name = "rabenseifner",
    .summary = "recursive-halving reduce-scatter + recursive-doubling allgather",
    .allreduce_mean = rabenseifner_allreduce_mean,
};
