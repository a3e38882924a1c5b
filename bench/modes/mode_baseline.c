/* Mode "baseline": the conventional P2P peer computes its K minibatch gradients itself, one
 * after another, with its own fixed thread budget (the study's instance-based peers). The
 * result vectors are summed in task order, exactly as the serverless pool sums its workers'. */
#include <mpi.h>
#include <stdio.h>
#include <string.h>

#include "bench/harness/train.h"
#include "bench/harness/util.h"

static int baseline_setup(mf_train *t, char *err, size_t errlen) {
  (void)t;
  (void)err;
  (void)errlen;
  return 0;
}

static int baseline_compute(mf_train *t, int round, char *err, size_t errlen) {
  (void)err;
  (void)errlen;
  const int batch = t->config.batch;
  const ds_set *set = &t->train_set;
  const size_t sample_bytes = (size_t)set->channels * set->height * set->width;
  const kn_model_kind *kind = t->kind;
  double start = MPI_Wtime();
  memset(t->result_sum, 0, t->result_len * sizeof(float));
  for (int task = 0; task < t->tasks_per_round; task++) {
    double task_start = MPI_Wtime();
    const int64_t *indices = t->task_indices + (size_t)task * batch;
    for (int i = 0; i < batch; i++) {
      memcpy(t->pixels + (size_t)i * sample_bytes, set->pixels + (size_t)indices[i] * sample_bytes,
             sample_bytes);
      t->labels[i] = set->labels[indices[i]];
    }
    ds_to_input(t->pixels, t->labels, batch, set->channels, set->height, set->width, kind->channels,
                kind->height, kind->width, t->input, t->targets);
    double fetched = MPI_Wtime();
    float loss = kn_model_loss_and_grad(t->model, t->input, t->targets, batch);
    mf_result_vector(t->model, loss, t->task_result);
    for (size_t i = 0; i < t->result_len; i++) t->result_sum[i] += t->task_result[i];
    double end = MPI_Wtime();
    if (t->records_used < t->records_cap)
      t->records[t->records_used++] = (cm_task_record){.round = round,
                                                       .task = task,
                                                       .worker = -1,
                                                       .attempt = 0,
                                                       .status = CM_REPLY_OK,
                                                       .start = task_start,
                                                       .end = end,
                                                       .fetch = fetched - task_start,
                                                       .forward_backward = end - fetched};
  }
  t->phase[MF_PHASE_COMPUTE] = MPI_Wtime() - start;
  /* Read /proc once per round, outside the timed region: the peak only grows. */
  const int64_t peak_rss = mf_peak_rss_bytes();
  for (int i = 0; i < t->records_used; i++) t->records[i].peak_rss_bytes = peak_rss;
  return 0;
}

static void baseline_teardown(mf_train *t) {
  (void)t;
}

const mf_mode mf_mode_baseline = {
    .name = "baseline",
    .summary = "the peer computes its minibatch gradients itself, one after another",
    .phases = MF_PHASES_COMMON,
    .setup = baseline_setup,
    .compute = baseline_compute,
    .teardown = baseline_teardown,
};
