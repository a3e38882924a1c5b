/* Exchange algorithm "recursive-doubling": log2(p) steps in which partners at distance 1, 2,
 * 4, ... swap their whole vectors and both add them (Thakur, Rabenseifner and Gropp 2005).
 * Latency-optimal (log2 p messages per peer), but every step moves the whole vector, so it is
 * the choice for small messages, not for large ones.
 *
 * Both partners of a step compute the same sums the same way (the lower group's partial sum is
 * always the first operand), so after every step the whole group holds identical bits; the
 * division by the peer count is then the same on every peer. Peer counts that are not powers of
 * two fold their extra ranks into the power-of-two group first and receive the result at the
 * end (comm/exchange_step.c). Vectors longer than INT_MAX floats need no special case: the step
 * sends bounded segments. */
#include "comm/exchange.h"
#include "comm/exchange_step.h"

#include <stdio.h>

/* Segment size and depth as the ring's (comm/exchange_ring.c). */
enum { DOUBLING_SEGMENT = 1 << 17, DOUBLING_DEPTH = 4 };

static int recursive_doubling_allreduce_mean(float *data, size_t count, MPI_Comm comm, char *err,
                                             size_t errlen) {
  cm_folded_group g;
  int rc = cm_folded_begin(&g, "recursive-doubling", data, count, DOUBLING_SEGMENT, DOUBLING_DEPTH,
                           comm, err, errlen);
  if (g.idle) return rc;
  const cm_fold fold = g.fold;
  if (rc == MPI_SUCCESS && fold.rank >= 0) {
    for (int distance = 1; distance < fold.size && rc == MPI_SUCCESS; distance *= 2) {
      int partner_group_rank = fold.rank ^ distance;
      int partner = cm_fold_peer(&fold, partner_group_rank);
      cm_step_combine order =
          partner_group_rank < fold.rank ? CM_STEP_ADD_INCOMING_FIRST : CM_STEP_ADD_LOCAL_FIRST;
      rc = cm_step_exchange(data, 0, count, partner, 0, count, partner, order, g.scratch.segment,
                            &g.scratch, g.comm, err, errlen);
    }
    if (rc == MPI_SUCCESS) cm_step_divide(data, count, g.peers);
  }
  return cm_folded_end(&g, rc, data, count, err, errlen);
}

const cm_exchange_algorithm cm_exchange_recursive_doubling = {
    .name = "recursive-doubling",
    .summary = "recursive doubling, whole vector per step (latency-optimal, small messages)",
    .allreduce_mean = recursive_doubling_allreduce_mean,
};
