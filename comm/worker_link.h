/* The worker's side of the peer <-> worker protocol: attach to the spawning peer, wait for
 * weights and tasks, answer each task. A worker never waits forever: a peer that goes silent
 * for longer than the idle timeout ends the worker (the keep-alive of a cloud function). */
#ifndef MAYFLY_COMM_WORKER_LINK_H
#define MAYFLY_COMM_WORKER_LINK_H

#include <mpi.h>
#include <stddef.h>
#include <stdint.h>

#include "comm/protocol.h"

typedef struct {
  MPI_Comm parent;
  int rank; /* this worker's index in the pool */
  int size;
  int64_t weights_version; /* -1 until weights arrived */
  char *staging;           /* receive buffer for task messages */
  size_t staging_len;
} cm_worker_link;

typedef enum { CM_EVENT_TASK, CM_EVENT_STOP, CM_EVENT_IDLE_TIMEOUT, CM_EVENT_ERROR } cm_event;

/* 0, or -1 when this process was not spawned by a peer. */
int cm_worker_attach(cm_worker_link *link, char *err, size_t errlen);

/* Waits for the next task. WEIGHTS messages received meanwhile are stored into
 * weights[0..count) (the count must match). Indices go to indices[0..cap). */
cm_event cm_worker_wait(cm_worker_link *link, float *weights, size_t count, cm_task *task,
                        int64_t *indices, int cap, double idle_timeout, char *err, size_t errlen);

/* Sends the reply header and, when reply->status == CM_REPLY_OK, the result vector. */
int cm_worker_reply(cm_worker_link *link, const cm_reply *reply, const float *result, size_t count);

/* Disconnects from the peer (after STOP) and frees the link's buffers. */
void cm_worker_detach(cm_worker_link *link);

#endif
