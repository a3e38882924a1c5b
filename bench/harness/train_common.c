/* Pieces of a training round that the peer (baseline) and the worker must do identically, so
 * that every mode produces the same model: the layout of a task's result vector, and how a
 * dataset source is named to a worker. Also the phase names of /timing. */
#include <stdio.h>
#include <string.h>

#include "bench/harness/train.h"

const char *const mf_phase_names[MF_PHASE_COUNT] = {"spawn",   "spawn_wait", "dispatch",
                                                    "compute", "exchange",   "update",
                                                    "eval",    "teardown",   "round"};

void mf_result_vector(const kn_model *m, float loss, float *out) {
  memcpy(out, m->grads, m->num_params * sizeof(float));
  if (m->num_buffers) memcpy(out + m->num_params, m->batch_stats, m->num_buffers * sizeof(float));
  out[m->num_params + m->num_buffers] = loss;
}

void mf_source_spec(const ds_source *src, char *out, size_t size) {
  switch (src->kind) {
    case DS_KIND_IDX:
      snprintf(out, size, "idx:%s", src->dir);
      break;
    case DS_KIND_CIFAR10:
      snprintf(out, size, "cifar10:%s", src->dir);
      break;
    case DS_KIND_SYNTHETIC:
      snprintf(out, size, "synthetic:%lld:%lld:%llu", (long long)src->synthetic_train,
               (long long)src->synthetic_test, (unsigned long long)src->synthetic_seed);
      break;
  }
}
