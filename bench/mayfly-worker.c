/* mayfly-worker: the "serverless function". Spawned by a peer of mayfly-train with
 * MPI_Comm_spawn; receives the model weights, then tasks ("gradient of minibatch i at model
 * version v"); reads each minibatch straight from the dataset files (as a function reads from
 * object storage), runs forward+backward and returns the result vector. Ends on STOP, or by
 * itself when its peer stays silent past the idle timeout. Not meant to be run by hand. */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench/harness/binding.h"
#include "bench/harness/launch_check.h"
#include "bench/harness/options.h"
#include "bench/harness/train.h"
#include "bench/harness/util.h"
#include "comm/worker_link.h"

typedef struct {
  const char *model;
  const char *dataset;
  int batch;
  int threads;
  double idle_timeout;
  double stall_seconds;
  const char *bind_cpus;
  const char *stage_source;
} worker_config;

#define FIELD(name) offsetof(worker_config, name)
static const mf_option worker_options[] = {
    {"model", 0, MF_OPT_STRING, FIELD(model), "NAME", "mlp", "network", 0, 0, NULL, NULL, NULL},
    {"dataset", 0, MF_OPT_STRING, FIELD(dataset), "SPEC", "fashion-mnist",
     "where to read minibatches from", 0, 0, NULL, NULL, NULL},
    {"batch", 0, MF_OPT_INT, FIELD(batch), "N", "64", "samples per minibatch", 1, 65536, NULL, NULL,
     NULL},
    {"threads", 0, MF_OPT_INT, FIELD(threads), "T", "1", "threads of this worker", 1, 1024, NULL,
     NULL, NULL},
    {"idle-timeout", 0, MF_OPT_DOUBLE, FIELD(idle_timeout), "S", "600",
     "exit when the peer sends nothing for this long", 0.001, 1e7, NULL, NULL, NULL},
    {"stall-seconds", 0, MF_OPT_DOUBLE, FIELD(stall_seconds), "S", "0",
     "fault injection: how long a task marked to stall sleeps before failing (the peer sets it "
     "past its task timeout)",
     0, 1e7, NULL, NULL, NULL},
    {"bind-cpus", 0, MF_OPT_STRING, FIELD(bind_cpus), "PLAN@DIR", "none",
     "cores per worker slot from the peer's placement plan (bench/harness/binding.h): 'none', "
     "or a ';' list of core ranges ('1', '2-3') and '-' (unbound); @DIR: where to take a slot "
     "and report the cpus this worker got",
     0, 0, NULL, NULL, NULL},
    {"stage-source", 0, MF_OPT_STRING, FIELD(stage_source), "SPEC", "none",
     "the compressed dataset --dataset was staged from: a worker on a node without the staged "
     "copy (a private /tmp) stages it there first, once per node (a lock), or fails its tasks "
     "naming the node and path",
     0, 0, NULL, NULL, NULL},
};
static const mf_program worker_program = {
    .name = "mayfly-worker",
    .summary = "Gradient worker spawned by mayfly-train peers (MPI_Comm_spawn); not run by hand.",
    .usage = "[OPTIONS]",
    .options = worker_options,
    .count = MF_OPTION_COUNT(worker_options),
};

static double monotonic_seconds(void) {
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  return (double)now.tv_sec + 1e-9 * (double)now.tv_nsec;
}

static char host_name[64] = "?";

/* Fills a reply's record of where the worker runs. */
static void describe_worker(cm_reply *reply) {
  snprintf(reply->host, sizeof reply->host, "%s", host_name);
  snprintf(reply->placement, sizeof reply->placement, "%.190s", mf_binding_worker_line());
}

/* A worker whose data cannot be read on its node answers every task with the reason, so the
 * peer retries elsewhere and, failing that, stops with the node and path in its error line. */
static int refuse_tasks(const worker_config *config, const kn_model_kind *kind,
                        cm_worker_link *link, const char *why) {
  fprintf(stderr, "mayfly-worker: error: %s\n", why);
  char err[256];
  kn_model *model = kn_model_create(kind, config->batch, 1, err, sizeof err);
  const int have_model = model != NULL;
  const size_t count = model ? model->num_params + model->num_buffers : 0;
  kn_model_free(model);
  float *weights = malloc((count ? count : 1) * sizeof(float)); /* received, never used */
  int64_t *indices = malloc((size_t)config->batch * sizeof(int64_t));
  int code = 1;
  while (have_model && weights && indices) {
    cm_task task;
    cm_event event = cm_worker_wait(link, weights, count, &task, indices, config->batch,
                                    config->idle_timeout, err, sizeof err);
    if (event != CM_EVENT_TASK) break;
    cm_reply reply = {
        .round = task.round, .task = task.task, .attempt = task.attempt, .status = CM_REPLY_FAILED};
    describe_worker(&reply);
    snprintf(reply.message, sizeof reply.message, "%.250s", why);
    if (cm_worker_reply(link, &reply, NULL, 0) != 0) break;
  }
  free(weights);
  free(indices);
  return code;
}

/* The staged copy on this node: made here from --stage-source when missing or partial (ds_stage
 * locks the directory, so one worker of the node does it and the others reuse it). */
static int stage_here(const worker_config *config, const ds_source *staged, char *err,
                      size_t errlen) {
  if (strcmp(config->stage_source, "none") == 0) return 0;
  ds_source original, result;
  char why[DS_ERROR_MAX];
  if (ds_source_parse(config->stage_source, &original, why, sizeof why) != 0 ||
      ds_stage(&original, staged->dir, &result, why, sizeof why) != 0) {
    snprintf(err, errlen, "node %s: staging %.80s into %.80s failed: %.200s", host_name,
             config->stage_source, staged->dir, why);
    return -1;
  }
  return 0;
}

static int serve(const worker_config *config, cm_worker_link *link, double entered) {
  char err[DS_ERROR_MAX], why[DS_ERROR_MAX + 80];
  ds_source source;
  const kn_model_kind *kind = kn_model_find(config->model);
  if (!kind) {
    fprintf(stderr, "mayfly-worker: error: --model: '%s' is not a model\n", config->model);
    return 2;
  }
  if (ds_source_parse(config->dataset, &source, err, sizeof err) != 0) {
    fprintf(stderr, "mayfly-worker: error: %s\n", err);
    return 2;
  }
  ds_set geometry;
  if (stage_here(config, &source, why, sizeof why) != 0)
    return refuse_tasks(config, kind, link, why);
  if (ds_probe(&source, DS_TRAIN, &geometry, err, sizeof err) != 0) {
    snprintf(why, sizeof why, "node %s: %s", host_name, err);
    return refuse_tasks(config, kind, link, why);
  }
  kn_set_threads(config->threads);
  kn_model *model = kn_model_create(kind, config->batch, 1, err, sizeof err);
  if (!model) {
    fprintf(stderr, "mayfly-worker: error: %s\n", err);
    return 1;
  }
  const int batch = config->batch;
  const size_t sample_bytes = (size_t)geometry.channels * geometry.height * geometry.width;
  const size_t weights_len = model->num_params + model->num_buffers;
  const size_t result_len = weights_len + 1;
  float *weights = malloc((weights_len ? weights_len : 1) * sizeof(float));
  float *result = malloc(result_len * sizeof(float));
  uint8_t *pixels = malloc((size_t)batch * sample_bytes);
  uint8_t *labels = malloc((size_t)batch);
  float *input =
      malloc((size_t)batch * kind->channels * kind->height * kind->width * sizeof(float));
  int32_t *targets = malloc((size_t)batch * sizeof(int32_t));
  int64_t *indices = malloc((size_t)batch * sizeof(int64_t));
  int code = 0;
  if (!weights || !result || !pixels || !labels || !input || !targets || !indices) {
    fprintf(stderr, "mayfly-worker: error: out of memory\n");
    code = 1;
  }
  /* The worker's handle on its data, kept across tasks like a warm function's. */
  ds_reader *reader = NULL;
  if (code == 0 && ds_reader_open(&source, DS_TRAIN, &reader, err, sizeof err) != 0) {
    snprintf(why, sizeof why, "node %s: %s", host_name, err);
    code = refuse_tasks(config, kind, link, why);
  }
  int64_t loaded_version = -1;
  int first_task = 1;
  double ready = monotonic_seconds();
  while (code == 0) {
    cm_task task;
    cm_event event = cm_worker_wait(link, weights, weights_len, &task, indices, batch,
                                    config->idle_timeout, err, sizeof err);
    if (event == CM_EVENT_STOP) break;
    if (event == CM_EVENT_IDLE_TIMEOUT) {
      fprintf(stderr, "mayfly-worker: note: no message from the peer for %.0f s; exiting\n",
              config->idle_timeout);
      break;
    }
    if (event == CM_EVENT_ERROR) {
      fprintf(stderr, "mayfly-worker: error: %s\n", err);
      code = 1;
      break;
    }
    cm_reply reply = {.round = task.round, .task = task.task, .attempt = task.attempt};
    describe_worker(&reply);
    if (first_task) reply.startup = ready - entered;
    first_task = 0;
    if (link->weights_version != loaded_version) {
      memcpy(model->params, weights, model->num_params * sizeof(float));
      if (model->num_buffers)
        memcpy(model->buffers, weights + model->num_params, model->num_buffers * sizeof(float));
      loaded_version = link->weights_version;
    }
    double start = MPI_Wtime();
    if (loaded_version < 0) {
      reply.status = CM_REPLY_FAILED;
      snprintf(reply.message, sizeof reply.message, "task before any weights");
    } else if (task.inject_failure == CM_INJECT_STALL) {
      /* A hung function: the peer abandons this worker after its task timeout. */
      struct timespec pause = {
          (time_t)config->stall_seconds,
          (long)(1e9 * (config->stall_seconds - (time_t)config->stall_seconds))};
      nanosleep(&pause, NULL);
      reply.status = CM_REPLY_FAILED;
      snprintf(reply.message, sizeof reply.message, "injected stall of %.1f s",
               config->stall_seconds);
    } else if (task.inject_failure) {
      reply.status = CM_REPLY_FAILED;
      snprintf(reply.message, sizeof reply.message, "injected failure");
    } else if (task.count != batch) {
      reply.status = CM_REPLY_FAILED;
      snprintf(reply.message, sizeof reply.message, "task of %d samples, batch is %d", task.count,
               batch);
    } else if (ds_reader_fetch(reader, indices, batch, pixels, labels, err, sizeof err) != 0) {
      reply.status = CM_REPLY_FAILED;
      snprintf(reply.message, sizeof reply.message, "node %.60s: %.180s", host_name, err);
    }
    if (reply.status == CM_REPLY_OK) {
      ds_to_input(pixels, labels, batch, geometry.channels, geometry.height, geometry.width,
                  kind->channels, kind->height, kind->width, input, targets);
      double fetched = MPI_Wtime();
      float loss = kn_model_loss_and_grad(model, input, targets, batch);
      mf_result_vector(model, loss, result);
      reply.fetch = fetched - start;
      reply.forward_backward = MPI_Wtime() - fetched;
    }
    reply.peak_rss_bytes = mf_peak_rss_bytes();
    if (cm_worker_reply(link, &reply, result, result_len) != 0) {
      fprintf(stderr, "mayfly-worker: error: sending the result of task %d failed\n", task.task);
      code = 1;
    }
  }
  ds_reader_close(reader);
  free(weights);
  free(result);
  free(pixels);
  free(labels);
  free(input);
  free(targets);
  free(indices);
  kn_model_free(model);
  return code;
}

int main(int argc, char **argv) {
  double entered = monotonic_seconds();
  mf_launch_prepare(); /* the same PMIx store as the peer that spawned us (launch_check.h) */
  MPI_Init(&argc, &argv);
  worker_config config = {0};
  int status = mf_options_parse(&worker_program, argc, argv, &config, 0);
  int code = status == MF_OPTIONS_EXIT ? 0 : status == MF_OPTIONS_USAGE_ERROR ? 2 : 0;
  cm_worker_link link;
  char err[256];
  if (status == MF_OPTIONS_OK) {
    /* Bound before any work, so the model, the data and every OpenBLAS thread start on the
     * worker's own cores (the rank in the spawn group is only a fallback slot). Placement is
     * not worth a failed task: a plan it cannot follow leaves the worker unbound. */
    int group_rank = 0;
    MPI_Comm_rank(MPI_COMM_WORLD, &group_rank);
    gethostname(host_name, sizeof host_name);
    host_name[sizeof host_name - 1] = '\0';
    if (mf_binding_worker_apply(config.bind_cpus, group_rank, err, sizeof err) != 0)
      fprintf(stderr, "%s: warning: %s; running unbound\n", worker_program.name, err);
    if (cm_worker_attach(&link, err, sizeof err) != 0) {
      mf_error(worker_program.name, "%s", err);
      code = 1;
    } else {
      code = serve(&config, &link, entered);
      mf_binding_worker_release(); /* the peer's next pool may reuse this slot */
      cm_worker_detach(&link);
    }
  }
  MPI_Finalize();
  return code;
}
