/* The pipelined send/receive step shared by the point-to-point exchange algorithms (see
 * comm/exchange_step.h for the contract).
 *
 * How a step overlaps work: up to `depth` receives and `depth` sends are in flight. Segments
 * are handled in order; while segment i is added into the vector, segments i+1..i+depth-1 are
 * already travelling. Sends never wait for anything but the receiver's matching receive, and
 * every wait is for the oldest request of a direction, so a ring or a pairwise exchange cannot
 * deadlock: segment i of a step depends only on segments < i of the same step elsewhere. */
#include "comm/exchange_step.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { STEP_TAG = 4711 };

int cm_step_scratch_init(cm_step_scratch *s, size_t segment, int depth, size_t longest) {
  if (depth < 1) depth = 1;
  if (depth > CM_STEP_MAX_DEPTH) depth = CM_STEP_MAX_DEPTH;
  if (segment > longest) segment = longest;
  if (segment == 0) segment = 1;
  s->segment = segment;
  s->depth = depth;
  s->buffers = malloc(segment * (size_t)depth * sizeof(float));
  return s->buffers ? 0 : -1;
}

void cm_step_scratch_free(cm_step_scratch *s) {
  free(s->buffers);
  s->buffers = NULL;
}

/* Fixed-length inner loops let the compiler vectorize at -O2 (GCC 12's cheap cost model only
 * vectorizes loops without a scalar remainder). */
enum { LANES = 16 };

static void add_incoming_first(float *restrict data, const float *restrict in, size_t n) {
  size_t i = 0;
  for (; i + LANES <= n; i += LANES)
    for (int k = 0; k < LANES; k++) data[i + k] = in[i + k] + data[i + k];
  for (; i < n; i++) data[i] = in[i] + data[i];
}

static void add_local_first(float *restrict data, const float *restrict in, size_t n) {
  size_t i = 0;
  for (; i + LANES <= n; i += LANES)
    for (int k = 0; k < LANES; k++) data[i + k] = data[i + k] + in[i + k];
  for (; i < n; i++) data[i] = data[i] + in[i];
}

void cm_step_divide(float *data, size_t count, int peers) {
  const float divisor = (float)peers;
  size_t i = 0;
  for (; i + LANES <= count; i += LANES)
    for (int k = 0; k < LANES; k++) data[i + k] = data[i + k] / divisor;
  for (; i < count; i++) data[i] = data[i] / divisor;
}

static size_t div_round_up(size_t a, size_t b) {
  return a / b + (a % b != 0);
}

static int step_fail(int rc, const char *call, char *err, size_t errlen) {
  char text[MPI_MAX_ERROR_STRING];
  int len = 0;
  if (MPI_Error_string(rc, text, &len) != MPI_SUCCESS) snprintf(text, sizeof text, "?");
  snprintf(err, errlen, "%s failed: %s (error %d)", call, text, rc);
  return rc;
}

int cm_step_exchange(float *data, size_t send_offset, size_t send_count, int to, size_t recv_offset,
                     size_t recv_count, int from, cm_step_combine combine, size_t message,
                     const cm_step_scratch *scratch, MPI_Comm comm, char *err, size_t errlen) {
  if (send_count == 0 && recv_count == 0) return MPI_SUCCESS;
  const int adds = combine != CM_STEP_COPY;
  if (message == 0 || message > (size_t)1 << 30 || (adds && message > scratch->segment)) {
    snprintf(err, errlen, "exchange step: message of %zu floats does not fit", message);
    return MPI_ERR_COUNT;
  }
  /* Same range on both sides (recursive doubling): a segment may be overwritten only once its
   * own send has completed. */
  const int same_range = send_count > 0 && recv_count > 0 && send_offset == recv_offset;
  const size_t sends = div_round_up(send_count, message);
  const size_t recvs = div_round_up(recv_count, message);
  const int depth = adds ? scratch->depth : 2;
  MPI_Request send_req[CM_STEP_MAX_DEPTH], recv_req[CM_STEP_MAX_DEPTH];
  for (int k = 0; k < CM_STEP_MAX_DEPTH; k++) send_req[k] = recv_req[k] = MPI_REQUEST_NULL;

#define SEGMENT_LENGTH(total, i) ((total) - (i)*message < message ? (total) - (i)*message : message)

  int rc;
  size_t posted_recvs = 0, posted_sends = 0;
  for (; posted_recvs < recvs && posted_recvs < (size_t)depth; posted_recvs++) {
    size_t i = posted_recvs;
    float *buffer =
        adds ? scratch->buffers + (i % depth) * scratch->segment : data + recv_offset + i * message;
    rc = MPI_Irecv(buffer, (int)SEGMENT_LENGTH(recv_count, i), MPI_FLOAT, from, STEP_TAG, comm,
                   &recv_req[i % depth]);
    if (rc != MPI_SUCCESS) return step_fail(rc, "MPI_Irecv", err, errlen);
  }
  for (; posted_sends < sends && posted_sends < (size_t)depth; posted_sends++) {
    size_t i = posted_sends;
    rc = MPI_Isend(data + send_offset + i * message, (int)SEGMENT_LENGTH(send_count, i), MPI_FLOAT,
                   to, STEP_TAG, comm, &send_req[i % depth]);
    if (rc != MPI_SUCCESS) return step_fail(rc, "MPI_Isend", err, errlen);
  }

  const size_t rounds = sends > recvs ? sends : recvs;
  for (size_t i = 0; i < rounds; i++) {
    const int slot = (int)(i % depth);
    if (i < recvs) {
      rc = MPI_Wait(&recv_req[slot], MPI_STATUS_IGNORE);
      if (rc != MPI_SUCCESS) return step_fail(rc, "MPI_Wait (receive)", err, errlen);
      if (same_range && i < sends) {
        rc = MPI_Wait(&send_req[slot], MPI_STATUS_IGNORE);
        if (rc != MPI_SUCCESS) return step_fail(rc, "MPI_Wait (send)", err, errlen);
      }
      if (adds) {
        float *target = data + recv_offset + i * message;
        const float *incoming = scratch->buffers + (size_t)slot * scratch->segment;
        size_t n = SEGMENT_LENGTH(recv_count, i);
        if (combine == CM_STEP_ADD_INCOMING_FIRST)
          add_incoming_first(target, incoming, n);
        else
          add_local_first(target, incoming, n);
      }
      if (posted_recvs < recvs) {
        size_t next = posted_recvs++;
        float *buffer = adds ? scratch->buffers + (size_t)slot * scratch->segment
                             : data + recv_offset + next * message;
        rc = MPI_Irecv(buffer, (int)SEGMENT_LENGTH(recv_count, next), MPI_FLOAT, from, STEP_TAG,
                       comm, &recv_req[slot]);
        if (rc != MPI_SUCCESS) return step_fail(rc, "MPI_Irecv", err, errlen);
      }
    }
    if (i < sends) {
      rc = MPI_Wait(&send_req[slot], MPI_STATUS_IGNORE);
      if (rc != MPI_SUCCESS) return step_fail(rc, "MPI_Wait (send)", err, errlen);
      if (posted_sends < sends) {
        size_t next = posted_sends++;
        rc = MPI_Isend(data + send_offset + next * message, (int)SEGMENT_LENGTH(send_count, next),
                       MPI_FLOAT, to, STEP_TAG, comm, &send_req[slot]);
        if (rc != MPI_SUCCESS) return step_fail(rc, "MPI_Isend", err, errlen);
      }
    }
  }
#undef SEGMENT_LENGTH
  return MPI_SUCCESS;
}

cm_fold cm_fold_plan(int rank, int peers) {
  cm_fold fold = {.size = 1};
  while (fold.size * 2 <= peers) fold.size *= 2;
  fold.extra = peers - fold.size;
  if (rank < 2 * fold.extra)
    fold.rank = rank % 2 ? rank / 2 : -1;
  else
    fold.rank = rank - fold.extra;
  return fold;
}

int cm_fold_in(float *data, size_t count, int rank, const cm_fold *fold,
               const cm_step_scratch *scratch, MPI_Comm comm, char *err, size_t errlen) {
  if (rank >= 2 * fold->extra) return MPI_SUCCESS;
  if (fold->rank < 0)
    return cm_step_exchange(data, 0, count, rank + 1, 0, 0, MPI_PROC_NULL,
                            CM_STEP_ADD_INCOMING_FIRST, scratch->segment, scratch, comm, err,
                            errlen);
  return cm_step_exchange(data, 0, 0, MPI_PROC_NULL, 0, count, rank - 1, CM_STEP_ADD_INCOMING_FIRST,
                          scratch->segment, scratch, comm, err, errlen);
}

int cm_fold_out(float *data, size_t count, int rank, const cm_fold *fold,
                const cm_step_scratch *scratch, MPI_Comm comm, char *err, size_t errlen) {
  if (rank >= 2 * fold->extra) return MPI_SUCCESS;
  if (fold->rank < 0)
    return cm_step_exchange(data, 0, 0, MPI_PROC_NULL, 0, count, rank + 1, CM_STEP_COPY,
                            CM_STEP_COPY_MESSAGE, scratch, comm, err, errlen);
  return cm_step_exchange(data, 0, count, rank - 1, 0, 0, MPI_PROC_NULL, CM_STEP_COPY,
                          CM_STEP_COPY_MESSAGE, scratch, comm, err, errlen);
}

/* The cached duplicate is freed with the communicator it belongs to. During MPI_Finalize
 * (attributes of predefined communicators) freeing is neither needed nor allowed. */
static int free_private_comm(MPI_Comm comm, int keyval, void *value, void *extra) {
  (void)comm, (void)keyval, (void)extra;
  MPI_Comm *dup = value;
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized && *dup != MPI_COMM_NULL) MPI_Comm_free(dup);
  free(dup);
  return MPI_SUCCESS;
}

static int private_comm_keyval = MPI_KEYVAL_INVALID;

int cm_step_private_comm(MPI_Comm comm, MPI_Comm *out, char *err, size_t errlen) {
  int rc;
  if (private_comm_keyval == MPI_KEYVAL_INVALID) {
    rc = MPI_Comm_create_keyval(MPI_COMM_NULL_COPY_FN, free_private_comm, &private_comm_keyval,
                                NULL);
    if (rc != MPI_SUCCESS) return step_fail(rc, "MPI_Comm_create_keyval", err, errlen);
  }
  void *value = NULL;
  int found = 0;
  rc = MPI_Comm_get_attr(comm, private_comm_keyval, &value, &found);
  if (rc != MPI_SUCCESS) return step_fail(rc, "MPI_Comm_get_attr", err, errlen);
  if (found) {
    *out = *(MPI_Comm *)value;
    return MPI_SUCCESS;
  }
  MPI_Comm *dup = malloc(sizeof *dup);
  if (!dup) {
    snprintf(err, errlen, "out of memory");
    return MPI_ERR_NO_MEM;
  }
  rc = MPI_Comm_dup(comm, dup);
  if (rc != MPI_SUCCESS) {
    free(dup);
    return step_fail(rc, "MPI_Comm_dup", err, errlen);
  }
  rc = MPI_Comm_set_attr(comm, private_comm_keyval, dup);
  if (rc != MPI_SUCCESS) {
    MPI_Comm_free(dup);
    free(dup);
    return step_fail(rc, "MPI_Comm_set_attr", err, errlen);
  }
  *out = *dup;
  return MPI_SUCCESS;
}

int cm_folded_begin(cm_folded_group *g, const char *name, float *data, size_t count, size_t segment,
                    int depth, MPI_Comm comm, char *err, size_t errlen) {
  MPI_Comm_size(comm, &g->peers);
  MPI_Comm_rank(comm, &g->rank);
  g->idle = count == 0 || g->peers == 1;
  g->scratch.buffers = NULL;
  if (g->idle) return MPI_SUCCESS;
  int rc = cm_step_private_comm(comm, &g->comm, err, errlen);
  if (rc != MPI_SUCCESS) return rc;
  if (cm_step_scratch_init(&g->scratch, segment, depth, count)) {
    snprintf(err, errlen, "%s: out of memory for the receive segments", name);
    return MPI_ERR_NO_MEM;
  }
  g->fold = cm_fold_plan(g->rank, g->peers);
  return cm_fold_in(data, count, g->rank, &g->fold, &g->scratch, g->comm, err, errlen);
}

int cm_folded_end(cm_folded_group *g, int rc, float *data, size_t count, char *err, size_t errlen) {
  if (g->idle) return rc;
  if (rc == MPI_SUCCESS)
    rc = cm_fold_out(data, count, g->rank, &g->fold, &g->scratch, g->comm, err, errlen);
  cm_step_scratch_free(&g->scratch);
  return rc;
}
