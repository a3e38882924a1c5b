/* Building blocks shared by the point-to-point exchange algorithms (ring, recursive doubling,
 * Rabenseifner): one pipelined "step" of sends and receives, the balanced block partition, the
 * private communicator and the final division. Private to comm/exchange_*.c.
 *
 * Why: every one of these algorithms is a sequence of steps "send a range of my vector to one
 * peer, receive a range from another peer and either store it or add it into my vector". Doing
 * that well (segments, non-blocking, the reduction of one segment overlapping the transfer of
 * the next, MPI's int counts for vectors longer than INT_MAX) is the same code everywhere, so it
 * lives here once and the algorithm files read as the textbook descriptions. */
#ifndef MAYFLY_COMM_EXCHANGE_STEP_H
#define MAYFLY_COMM_EXCHANGE_STEP_H

#include <mpi.h>
#include <stddef.h>

/* What a step does with the floats it receives. The two ADD modes fix the operand order of every
 * addition, so that a sum is computed the same way whichever peer computes it. */
typedef enum {
  CM_STEP_COPY,               /* data[range] = incoming */
  CM_STEP_ADD_INCOMING_FIRST, /* data[range] = incoming + data[range] */
  CM_STEP_ADD_LOCAL_FIRST,    /* data[range] = data[range] + incoming */
} cm_step_combine;

/* Largest message a COPY step sends: MPI counts are int. */
#define CM_STEP_COPY_MESSAGE ((size_t)1 << 28)
#define CM_STEP_MAX_DEPTH 8

/* Receive buffers for the ADD modes: `depth` buffers of `segment` floats each, so at most
 * `depth` segments are in flight per direction and memory stays bounded for any length. */
typedef struct {
  float *buffers;
  size_t segment;
  int depth;
} cm_step_scratch;

/* Allocates scratch for segments of min(segment, longest) floats (at least 1); 0 or -1. */
int cm_step_scratch_init(cm_step_scratch *s, size_t segment, int depth, size_t longest);
void cm_step_scratch_free(cm_step_scratch *s);

/* One step: sends data[send_offset, +send_count) to peer `to` and receives recv_count floats
 * from peer `from`, combined into data[recv_offset, +recv_count). Messages are `message` floats
 * (the last one shorter); sender and receiver must use the same `message` for the same step.
 * For the ADD modes message must be <= scratch->segment. The two ranges may be the same (both
 * peers exchange and add their whole vectors): a segment is only overwritten after its send
 * completed. Returns when every send and receive of the step has completed. MPI_SUCCESS or an
 * MPI error code with a message in err. */
int cm_step_exchange(float *data, size_t send_offset, size_t send_count, int to, size_t recv_offset,
                     size_t recv_count, int from, cm_step_combine combine, size_t message,
                     const cm_step_scratch *scratch, MPI_Comm comm, char *err, size_t errlen);

/* Block i of `count` floats split into `blocks` blocks whose lengths differ by at most one. */
static inline size_t cm_block_offset(size_t count, size_t blocks, size_t i) {
  size_t base = count / blocks, extra = count % blocks;
  return i * base + (i < extra ? i : extra);
}
static inline size_t cm_block_count(size_t count, size_t blocks, size_t i) {
  return count / blocks + (i < count % blocks ? 1 : 0);
}

/* Power-of-two groups for peer counts that are not powers of two (the standard fold used by
 * MPICH's recursive doubling and Rabenseifner): with q the largest power of two <= peers and
 * extra = peers - q, each even rank below 2*extra sends its whole vector to the odd rank above
 * it, which adds it (even rank's floats first) and stands for both in the group of q. */
typedef struct {
  int size;  /* q */
  int extra; /* peers - q */
  int rank;  /* this peer's rank in the group, -1 if it was folded away */
} cm_fold;

cm_fold cm_fold_plan(int rank, int peers);
/* The communicator rank of group member `group_rank`. */
static inline int cm_fold_peer(const cm_fold *fold, int group_rank) {
  return group_rank < fold->extra ? 2 * group_rank + 1 : group_rank + fold->extra;
}
/* Before the group's work: the folded-away ranks hand their vectors over. */
int cm_fold_in(float *data, size_t count, int rank, const cm_fold *fold,
               const cm_step_scratch *scratch, MPI_Comm comm, char *err, size_t errlen);
/* After it: the folded-away ranks receive the finished vector. */
int cm_fold_out(float *data, size_t count, int rank, const cm_fold *fold,
                const cm_step_scratch *scratch, MPI_Comm comm, char *err, size_t errlen);

/* A duplicate of comm, created on first use and cached on comm (attribute caching), so the
 * algorithms' point-to-point messages can never match the application's own messages. */
int cm_step_private_comm(MPI_Comm comm, MPI_Comm *out, char *err, size_t errlen);

/* The frame of a power-of-two algorithm (recursive doubling, Rabenseifner): the private
 * communicator, receive scratch of `segment` floats x `depth`, the fold plan, and the folded-away
 * ranks' vectors handed in. After cm_folded_begin returns MPI_SUCCESS, members of the group
 * (fold.rank >= 0) run the algorithm's steps on `comm`; cm_folded_end then hands the result to the
 * folded-away ranks (when rc is still MPI_SUCCESS) and frees the scratch; it returns the final rc.
 * `idle` is set when there is nothing to do (no floats, or one peer): skip both calls' work and
 * return MPI_SUCCESS. `name` prefixes the out-of-memory message. */
typedef struct {
  MPI_Comm comm;
  cm_step_scratch scratch;
  cm_fold fold;
  int rank, peers;
  int idle;
} cm_folded_group;

int cm_folded_begin(cm_folded_group *g, const char *name, float *data, size_t count, size_t segment,
                    int depth, MPI_Comm comm, char *err, size_t errlen);
int cm_folded_end(cm_folded_group *g, int rc, float *data, size_t count, char *err, size_t errlen);

/* data[i] /= (float)peers: the mean every algorithm ends with. */
void cm_step_divide(float *data, size_t count, int peers);

#endif
