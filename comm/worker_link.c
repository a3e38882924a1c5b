/* The worker side of the protocol (see worker_link.h). Waiting is a probe loop with a short
 * back-off rather than a blocking receive: a blocking receive in Open MPI spins a core, and on
 * an oversubscribed node that core is what the other workers need. */
#include "comm/worker_link.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int cm_worker_attach(cm_worker_link *link, char *err, size_t errlen) {
  memset(link, 0, sizeof *link);
  MPI_Comm_get_parent(&link->parent);
  if (link->parent == MPI_COMM_NULL) {
    snprintf(err, errlen,
             "not started by a mayfly peer (no parent communicator); workers are "
             "spawned by mayfly-train, not run by hand");
    return -1;
  }
  MPI_Comm_set_errhandler(link->parent, MPI_ERRORS_RETURN);
  MPI_Comm_rank(link->parent, &link->rank);
  MPI_Comm_size(link->parent, &link->size);
  link->weights_version = -1;
  return 0;
}

cm_event cm_worker_wait(cm_worker_link *link, float *weights, size_t count, cm_task *task,
                        int64_t *indices, int cap, double idle_timeout, char *err, size_t errlen) {
  double deadline = MPI_Wtime() + idle_timeout;
  long backoff = 1000;
  for (;;) {
    int ready = 0;
    MPI_Status status;
    MPI_Iprobe(0, MPI_ANY_TAG, link->parent, &ready, &status);
    if (!ready) {
      if (MPI_Wtime() > deadline) return CM_EVENT_IDLE_TIMEOUT;
      struct timespec pause = {0, backoff};
      nanosleep(&pause, NULL);
      if (backoff < 100000) backoff *= 2;
      continue;
    }
    backoff = 1000;
    int bytes = 0;
    MPI_Get_count(&status, MPI_BYTE, &bytes);
    switch (status.MPI_TAG) {
      case CM_TAG_STOP:
        MPI_Recv(NULL, 0, MPI_BYTE, 0, CM_TAG_STOP, link->parent, MPI_STATUS_IGNORE);
        return CM_EVENT_STOP;
      case CM_TAG_WEIGHTS_HEADER: {
        cm_weights_header header;
        MPI_Recv(&header, (int)sizeof header, MPI_BYTE, 0, CM_TAG_WEIGHTS_HEADER, link->parent,
                 MPI_STATUS_IGNORE);
        if (header.count != (int64_t)count) {
          snprintf(err, errlen, "peer sent %lld weights, this worker's model has %zu",
                   (long long)header.count, count);
          return CM_EVENT_ERROR;
        }
        if (MPI_Recv(weights, (int)count, MPI_FLOAT, 0, CM_TAG_WEIGHTS, link->parent,
                     MPI_STATUS_IGNORE) != MPI_SUCCESS) {
          snprintf(err, errlen, "receiving the weights failed");
          return CM_EVENT_ERROR;
        }
        link->weights_version = header.version;
        deadline = MPI_Wtime() + idle_timeout;
        break;
      }
      case CM_TAG_TASK: {
        size_t most = sizeof(cm_task) + (size_t)cap * sizeof(int64_t);
        if (bytes < (int)sizeof(cm_task) || (size_t)bytes > most) {
          snprintf(err, errlen, "task message of %d bytes does not fit (at most %zu)", bytes, most);
          return CM_EVENT_ERROR;
        }
        if (link->staging_len < most) { /* header and indices come as one message */
          free(link->staging);
          link->staging = malloc(most);
          link->staging_len = link->staging ? most : 0;
          if (!link->staging) {
            snprintf(err, errlen, "out of memory");
            return CM_EVENT_ERROR;
          }
        }
        char *staging = link->staging;
        MPI_Recv(staging, bytes, MPI_BYTE, 0, CM_TAG_TASK, link->parent, MPI_STATUS_IGNORE);
        memcpy(task, staging, sizeof *task);
        if (task->count < 0 || (size_t)bytes != sizeof(cm_task) + (size_t)task->count * 8) {
          snprintf(err, errlen, "task message with %d indices has %d bytes", task->count, bytes);
          return CM_EVENT_ERROR;
        }
        memcpy(indices, staging + sizeof(cm_task), (size_t)task->count * sizeof(int64_t));
        return CM_EVENT_TASK;
      }
      default:
        snprintf(err, errlen, "unexpected message tag %d from the peer", status.MPI_TAG);
        return CM_EVENT_ERROR;
    }
  }
}

int cm_worker_reply(cm_worker_link *link, const cm_reply *reply, const float *result,
                    size_t count) {
  if (MPI_Send(reply, (int)sizeof *reply, MPI_BYTE, 0, CM_TAG_REPLY, link->parent) != MPI_SUCCESS)
    return -1;
  if (reply->status != CM_REPLY_OK) return 0;
  return MPI_Send(result, (int)count, MPI_FLOAT, 0, CM_TAG_RESULT, link->parent) == MPI_SUCCESS
             ? 0
             : -1;
}

void cm_worker_detach(cm_worker_link *link) {
  if (link->parent != MPI_COMM_NULL) MPI_Comm_disconnect(&link->parent);
  free(link->staging);
  link->staging = NULL;
  link->staging_len = 0;
}
