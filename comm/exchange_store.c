/* Exchange algorithm "store": the pattern of the study's follow-up (SPIRT), where serverless
 * peers cannot talk to each other directly and exchange gradients through a shared store.
 *
 * Here the store is an MPI RMA window: every peer publishes a copy of its vector into its part
 * of the window (MPI_Win_allocate), a barrier stands in for the queue message "my gradient is
 * in the store", and every peer then reads every other peer's vector with MPI_Rget and
 * averages; a second barrier says "done reading" before anyone may publish again. Like SPIRT's
 * store, the window outlives one exchange: it is created on first use, cached on the
 * communicator (grown when a longer vector comes) and freed with the communicator or at the
 * start of MPI_Finalize. Creating it per call would cost a collective allocation of shared
 * memory plus first-touch page faults every round (milliseconds here). Reads go chunk by chunk with
 * a few chunks in flight, so the memory beyond the published copy is bounded whatever the peer
 * count and length. Every peer adds the contributions of ranks 0, 1, ..., p-1 in that order, so all
 * peers compute the same bits independently. Each peer reads (p-1) whole vectors: the store pattern
 * pays p/2 times the traffic of a ring for not needing peer-to-peer connections. */
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

/* Fixed-length inner loops let GCC 12 vectorize them at -O2. */
enum { LANES = 16 };

static void add_into(float *restrict sum, const float *restrict x, size_t n) {
  size_t i = 0;
  for (; i + LANES <= n; i += LANES)
    for (int k = 0; k < LANES; k++) sum[i + k] = sum[i + k] + x[i + k];
  for (; i < n; i++) sum[i] = sum[i] + x[i];
}

static void divide_into(float *restrict out, const float *restrict sum, size_t n, float divisor) {
  size_t i = 0;
  for (; i + LANES <= n; i += LANES)
    for (int k = 0; k < LANES; k++) out[i + k] = sum[i + k] / divisor;
  for (; i < n; i++) out[i] = sum[i] / divisor;
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
  int rc = MPI_Rget(buffers + (size_t)slot * STORE_CHUNK, (int)n, MPI_FLOAT, peer, (MPI_Aint)first,
                    (int)n, MPI_FLOAT, win, &requests[slot]);
  return rc == MPI_SUCCESS ? rc : store_fail(rc, "MPI_Rget", err, errlen);
}

/* One cached store per communicator. All live stores are also on a list, so a callback on
 * MPI_COMM_SELF can free them at the start of MPI_Finalize, while MPI is still fully working
 * (MPI-3.1 section 8.7.1); every peer frees them in the order it created them. */
typedef struct store {
  MPI_Win win;
  float *base;
  size_t capacity; /* floats */
  struct store *next;
} store;

static store *live_stores;
static int store_keyval = MPI_KEYVAL_INVALID, finalize_keyval = MPI_KEYVAL_INVALID;

static void store_release_window(store *s) {
  if (s->win != MPI_WIN_NULL) MPI_Win_free(&s->win);
  s->win = MPI_WIN_NULL;
  s->base = NULL;
  s->capacity = 0;
}

static int free_store(MPI_Comm comm, int keyval, void *value, void *extra) {
  (void)comm, (void)keyval, (void)extra;
  store *s = value;
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized) store_release_window(s);
  for (store **link = &live_stores; *link; link = &(*link)->next)
    if (*link == s) {
      *link = s->next;
      break;
    }
  free(s);
  return MPI_SUCCESS;
}

static int free_all_stores(MPI_Comm comm, int keyval, void *value, void *extra) {
  (void)comm, (void)keyval, (void)value, (void)extra;
  for (store *s = live_stores; s; s = s->next) store_release_window(s);
  return MPI_SUCCESS;
}

/* The store of comm with room for count floats per peer (collective when it must be created
 * or grown: every peer passes the same count). */
static int store_get(MPI_Comm comm, size_t count, store **out, char *err, size_t errlen) {
  int rc;
  if (store_keyval == MPI_KEYVAL_INVALID) {
    rc = MPI_Comm_create_keyval(MPI_COMM_NULL_COPY_FN, free_store, &store_keyval, NULL);
    if (rc != MPI_SUCCESS) return store_fail(rc, "MPI_Comm_create_keyval", err, errlen);
    rc = MPI_Comm_create_keyval(MPI_COMM_NULL_COPY_FN, free_all_stores, &finalize_keyval, NULL);
    if (rc != MPI_SUCCESS) return store_fail(rc, "MPI_Comm_create_keyval", err, errlen);
    rc = MPI_Comm_set_attr(MPI_COMM_SELF, finalize_keyval, NULL);
    if (rc != MPI_SUCCESS) return store_fail(rc, "MPI_Comm_set_attr", err, errlen);
  }
  store *s = NULL;
  int found = 0;
  rc = MPI_Comm_get_attr(comm, store_keyval, &s, &found);
  if (rc != MPI_SUCCESS) return store_fail(rc, "MPI_Comm_get_attr", err, errlen);
  if (!found) {
    s = calloc(1, sizeof *s);
    if (!s) {
      snprintf(err, errlen, "store: out of memory");
      return MPI_ERR_NO_MEM;
    }
    s->win = MPI_WIN_NULL;
    rc = MPI_Comm_set_attr(comm, store_keyval, s);
    if (rc != MPI_SUCCESS) {
      free(s);
      return store_fail(rc, "MPI_Comm_set_attr", err, errlen);
    }
    s->next = live_stores;
    live_stores = s;
  }
  if (s->capacity < count) {
    store_release_window(s);
    rc = MPI_Win_allocate((MPI_Aint)(count * sizeof(float)), (int)sizeof(float), MPI_INFO_NULL,
                          comm, &s->base, &s->win);
    if (rc != MPI_SUCCESS) {
      s->win = MPI_WIN_NULL;
      return store_fail(rc, "MPI_Win_allocate", err, errlen);
    }
    s->capacity = count;
  }
  *out = s;
  return MPI_SUCCESS;
}

static int store_allreduce_mean(float *data, size_t count, MPI_Comm comm, char *err,
                                size_t errlen) {
  int peers, rank;
  MPI_Comm_size(comm, &peers);
  MPI_Comm_rank(comm, &rank);
  if (count == 0 || peers == 1) return MPI_SUCCESS;

  store *st = NULL;
  int rc = store_get(comm, count, &st, err, errlen);
  if (rc != MPI_SUCCESS) return rc;
  MPI_Win win = st->win;
  float *buffers = malloc(sizeof(float) * STORE_CHUNK * (STORE_DEPTH + 1));
  if (!buffers) {
    snprintf(err, errlen, "store: out of memory for the read buffers");
    return MPI_ERR_NO_MEM;
  }
  float *sum = buffers + (size_t)STORE_CHUNK * STORE_DEPTH;
  MPI_Request requests[STORE_DEPTH];
  for (int k = 0; k < STORE_DEPTH; k++) requests[k] = MPI_REQUEST_NULL;

  /* Publish, then tell everyone (the barrier is the queue). */
  rc = MPI_Win_lock_all(MPI_MODE_NOCHECK, win);
  if (rc != MPI_SUCCESS) {
    free(buffers);
    return store_fail(rc, "MPI_Win_lock_all", err, errlen);
  }
  memcpy(st->base, data, count * sizeof(float));
  MPI_Win_sync(win);
  rc = MPI_Barrier(comm);
  if (rc != MPI_SUCCESS) store_fail(rc, "MPI_Barrier", err, errlen);

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
        add_into(sum, contribution, n);
      if (peer != rank) {
        rc = post_read(win, &order, buffers, requests, slot, err, errlen);
        slot = (slot + 1) % STORE_DEPTH;
      }
    }
    /* The others read our published copy, not data, so data may change now. */
    if (rc == MPI_SUCCESS) divide_into(data + first, sum, n, divisor);
  }
  for (int k = 0; k < STORE_DEPTH; k++)
    if (requests[k] != MPI_REQUEST_NULL) MPI_Wait(&requests[k], MPI_STATUS_IGNORE);
  int unlock_rc = MPI_Win_unlock_all(win);
  if (rc == MPI_SUCCESS && unlock_rc != MPI_SUCCESS)
    rc = store_fail(unlock_rc, "MPI_Win_unlock_all", err, errlen);
  /* "Done reading": nobody may publish the next vector while another peer still reads. */
  int barrier_rc = MPI_Barrier(comm);
  if (rc == MPI_SUCCESS && barrier_rc != MPI_SUCCESS)
    rc = store_fail(barrier_rc, "MPI_Barrier", err, errlen);
  free(buffers);
  return rc;
}

const cm_exchange_algorithm cm_exchange_store = {
    .name = "store",
    .summary = "SPIRT-style store: publish to an RMA window, barrier, every peer reads and sums",
    .allreduce_mean = store_allreduce_mean,
};
