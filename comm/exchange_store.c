/* Exchange algorithm "store": the pattern of the study's follow-up (SPIRT), where serverless
 * peers cannot talk to each other directly and exchange gradients through a shared store.
 *
 * Here the store is an MPI RMA window: every peer publishes a copy of its vector into its part
 * of the window (MPI_Win_allocate), a barrier stands in for the queue message "my gradient is
 * in the store", and every peer then reads every other peer's vector with MPI_Rget and
 * averages. Reads go chunk by chunk with a few chunks in flight, so the memory beyond the
 * published copy is bounded whatever the peer count and length. Every peer adds the
 * contributions of ranks 0, 1, ..., p-1 in that order, so all peers compute the same bits
 * independently. Each peer reads (p-1) whole vectors: the store pattern pays p/2 times the
 * traffic of a ring for not needing peer-to-peer connections. */
#include "comm/exchange.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Floats per MPI_Rget and reads in flight. */
enum { STORE_CHUNK = 1 << 16, STORE_DEPTH = 4 };

static int store_fail(int rc, const char *call, char *err, size_t errlen) {
  char text[MPI_MAX_ERROR_STRING];
  int len = 0;
  if (MPI_Error_string(rc, text, &len) != MPI_SUCCESS) snprintf(text, sizeof text, "?");
  snprintf(err, errlen, "store: %s failed: %s (error %d)", call, text, rc);
  return rc;
}

/* The reads, in the order they are consumed: for every chunk, every other peer in rank order. */
typedef struct {
  size_t count, chunks;
  int peers, rank;
  size_t next_chunk;
  int next_peer;
} read_order;

static int read_order_next(read_order *o, size_t *chunk, int *peer) {
  while (o->next_chunk < o->chunks) {
    if (o->next_peer >= o->peers) {
      o->next_peer = 0;
      o->next_chunk++;
      continue;
    }
    if (o->next_peer == o->rank) {
      o->next_peer++;
      continue;
    }
    *chunk = o->next_chunk;
    *peer = o->next_peer++;
    return 1;
  }
  return 0;
}

static int post_read(MPI_Win win, read_order *order, float *buffers, MPI_Request *requests,
                     int slot, char *err, size_t errlen) {
  size_t chunk;
  int peer;
  if (!read_order_next(order, &chunk, &peer)) return MPI_SUCCESS;
  size_t first = chunk * STORE_CHUNK;
  size_t n = order->count - first < STORE_CHUNK ? order->count - first : STORE_CHUNK;
  int rc = MPI_Rget(buffers + (size_t)slot * STORE_CHUNK, (int)n, MPI_FLOAT, peer,
                    (MPI_Aint)first, (int)n, MPI_FLOAT, win, &requests[slot]);
  return rc == MPI_SUCCESS ? rc : store_fail(rc, "MPI_Rget", err, errlen);
}

static int store_allreduce_mean(float *data, size_t count, MPI_Comm comm, char *err,
                                size_t errlen) {
  int peers, rank;
  MPI_Comm_size(comm, &peers);
  MPI_Comm_rank(comm, &rank);
  if (count == 0 || peers == 1) return MPI_SUCCESS;

  float *published = NULL;
  MPI_Win win;
  int rc = MPI_Win_allocate((MPI_Aint)(count * sizeof(float)), (int)sizeof(float), MPI_INFO_NULL,
                            comm, &published, &win);
  if (rc != MPI_SUCCESS) return store_fail(rc, "MPI_Win_allocate", err, errlen);
  float *buffers = malloc(sizeof(float) * STORE_CHUNK * (STORE_DEPTH + 1));
  if (!buffers) {
    MPI_Win_free(&win);
    snprintf(err, errlen, "store: out of memory for the read buffers");
    return MPI_ERR_NO_MEM;
  }
  float *sum = buffers + (size_t)STORE_CHUNK * STORE_DEPTH;
  MPI_Request requests[STORE_DEPTH];
  for (int k = 0; k < STORE_DEPTH; k++) requests[k] = MPI_REQUEST_NULL;

  /* Publish, then tell everyone (the barrier is the queue). */
  rc = MPI_Win_lock_all(MPI_MODE_NOCHECK, win);
  if (rc != MPI_SUCCESS) {
    store_fail(rc, "MPI_Win_lock_all", err, errlen);
    goto done_unlocked;
  }
  memcpy(published, data, count * sizeof(float));
  MPI_Win_sync(win);
  rc = MPI_Barrier(comm);
  if (rc != MPI_SUCCESS) {
    store_fail(rc, "MPI_Barrier", err, errlen);
    goto done;
  }

  const size_t chunks = count / STORE_CHUNK + (count % STORE_CHUNK != 0);
  read_order order = {.count = count, .chunks = chunks, .peers = peers, .rank = rank};
  for (int slot = 0; slot < STORE_DEPTH && rc == MPI_SUCCESS; slot++)
    rc = post_read(win, &order, buffers, requests, slot, err, errlen);
  int slot = 0;
  const float divisor = (float)peers;
  for (size_t chunk = 0; chunk < chunks && rc == MPI_SUCCESS; chunk++) {
    const size_t first = chunk * STORE_CHUNK;
    const size_t n = count - first < STORE_CHUNK ? count - first : STORE_CHUNK;
    for (int peer = 0; peer < peers && rc == MPI_SUCCESS; peer++) {
      const float *contribution = data + first;
      if (peer != rank) {
        rc = MPI_Wait(&requests[slot], MPI_STATUS_IGNORE);
        if (rc != MPI_SUCCESS) {
          store_fail(rc, "MPI_Wait (read)", err, errlen);
          break;
        }
        contribution = buffers + (size_t)slot * STORE_CHUNK;
      }
      if (peer == 0)
        memcpy(sum, contribution, n * sizeof(float));
      else
        for (size_t i = 0; i < n; i++) sum[i] = sum[i] + contribution[i];
      if (peer != rank) {
        rc = post_read(win, &order, buffers, requests, slot, err, errlen);
        slot = (slot + 1) % STORE_DEPTH;
      }
    }
    /* Our own published copy is what the others read, so data itself may change now. */
    if (rc == MPI_SUCCESS)
      for (size_t i = 0; i < n; i++) data[first + i] = sum[i] / divisor;
  }

done:
  /* Nobody may leave while reads are in flight: MPI_Win_free below is collective and only
   * returns once every peer has finished its accesses. */
  for (int k = 0; k < STORE_DEPTH; k++)
    if (requests[k] != MPI_REQUEST_NULL) MPI_Wait(&requests[k], MPI_STATUS_IGNORE);
  MPI_Win_unlock_all(win);
done_unlocked:
  free(buffers);
  int free_rc = MPI_Win_free(&win);
  if (rc == MPI_SUCCESS && free_rc != MPI_SUCCESS)
    rc = store_fail(free_rc, "MPI_Win_free", err, errlen);
  return rc;
}

const cm_exchange_algorithm cm_exchange_store = {
    .name = "store",
    .summary = "SPIRT-style store: publish to an RMA window, barrier, every peer reads and sums",
    .allreduce_mean = store_allreduce_mean,
};
