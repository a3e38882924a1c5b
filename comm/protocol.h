/* The peer <-> worker protocol: what travels over the intercommunicator between a peer and the
 * workers it spawned. Shared by the peer side (worker_pool.c) and the worker side
 * (worker_link.c) so the two cannot disagree about a message's layout.
 *
 * A peer sends WEIGHTS (float[n], the model version in the tag's companion header), then TASK
 * messages (a cm_task header followed by its sample indices), one per worker at a time; a worker
 * answers each task with a REPLY header and, when the task succeeded, a RESULT (float[n]: the
 * task's gradient vector). STOP ends a worker. comm/ knows flat vectors and task descriptors,
 * not models. */
#ifndef MAYFLY_COMM_PROTOCOL_H
#define MAYFLY_COMM_PROTOCOL_H

#include <stdint.h>

enum {
  CM_TAG_WEIGHTS_HEADER = 101,
  CM_TAG_WEIGHTS = 102,
  CM_TAG_TASK = 103,
  CM_TAG_STOP = 104,
  CM_TAG_REPLY = 105,
  CM_TAG_RESULT = 106,
};

/* "Compute the gradient of minibatch `minibatch` at model version `version`." */
typedef struct {
  int32_t round;
  int32_t task;    /* index within the round: fixes the summation order */
  int32_t attempt; /* 0 first try, then retries */
  int32_t count;   /* sample indices that follow the header */
  int64_t minibatch;
  int64_t version;
  int32_t inject_failure; /* fault injection: CM_INJECT_FAIL or CM_INJECT_STALL, else 0 */
  int32_t reserved;
} cm_task;

/* FAIL: the worker answers CM_REPLY_FAILED at once. STALL: the worker sleeps for its stall
 * time (longer than the peer's task timeout, so the peer abandons it) before failing. */
enum { CM_INJECT_NONE = 0, CM_INJECT_FAIL = 1, CM_INJECT_STALL = 2 };

enum { CM_REPLY_OK = 0, CM_REPLY_FAILED = 1 };

/* A worker's answer; RESULT follows when status == CM_REPLY_OK. Times in seconds. */
typedef struct {
  int32_t round;
  int32_t task;
  int32_t attempt;
  int32_t status;
  double startup;          /* process start to ready (first task of a worker only, else 0) */
  double fetch;            /* reading the minibatch from the dataset file */
  double forward_backward; /* the training step */
  int64_t peak_rss_bytes;  /* of the worker process so far */
  char host[64];           /* the worker's host name (gethostname) */
  char placement[192];     /* where the worker runs as it describes itself (host, cpus) */
  char message[256];       /* why it failed, when it did */
} cm_reply;

typedef struct {
  int64_t version;
  int64_t count; /* floats in the WEIGHTS message */
} cm_weights_header;

#endif
