/* mayfly-exchange's message sizes: the -m range (powers of two, rounded up to whole floats) or
 * the --counts list, plus with --models the gradient sizes of the model zoo, so the table also
 * answers "what does exchanging this model's gradient cost". */
#include <stdio.h>
#include <stdlib.h>

#include <mpi.h>

#include "bench/exchange/exchange.h"
#include "kernels/model.h"

/* The study's models, for when the model table does not have them (yet). Parameter counts of
 * the CIFAR-10 / Fashion-MNIST variants with 10 classes, as torchvision builds them. */
static const struct {
  const char *name;
  uint64_t params;
} study_models[] = {
    {"mlp", 235146},
    {"squeezenet1_1", 727626},
    {"mobilenet_v3_small", 1528106},
    {"vgg11", 128807306},
};

static int by_count(const void *a, const void *b) {
  uint64_t x = ((const ex_message_size *)a)->count, y = ((const ex_message_size *)b)->count;
  return (x > y) - (x < y);
}

/* Rank 0 creates every model of the table once (batch 1) to read its parameter count; the
 * sizes come back smallest first. */
static int model_sizes(ex_message_size *out, int capacity) {
  int n = 0;
  for (int i = 0; kn_model_kinds[i] && n < capacity; i++) {
    char err[256];
    kn_model *m = kn_model_create(kn_model_kinds[i], 1, 1, err, sizeof err);
    if (!m) {
      fprintf(stderr, "%s: warning: model %s: %s\n", EX_PROGRAM, kn_model_kinds[i]->name, err);
      continue;
    }
    out[n].count = m->num_params;
    snprintf(out[n].label, EX_LABEL_LENGTH, "%s", kn_model_kinds[i]->name);
    n++;
    kn_model_free(m);
  }
  for (size_t s = 0; s < sizeof study_models / sizeof study_models[0] && n < capacity; s++) {
    if (kn_model_find(study_models[s].name)) continue;
    out[n].count = study_models[s].params;
    snprintf(out[n].label, EX_LABEL_LENGTH, "%s(builtin)", study_models[s].name);
    n++;
  }
  qsort(out, (size_t)n, sizeof out[0], by_count);
  return n;
}

int ex_build_sizes(const ex_config *c, int rank, ex_message_size *out, int capacity) {
  int n = 0;
  if (c->counts.n > 0) {
    for (int i = 0; i < c->counts.n && n < capacity; i++, n++) {
      out[n].count = c->counts.counts[i];
      out[n].label[0] = '\0';
    }
  } else {
    uint64_t bytes = c->range.min;
    while (bytes <= c->range.max && n < capacity) {
      uint64_t count = (bytes + sizeof(float) - 1) / sizeof(float);
      if (n == 0 || out[n - 1].count != count) {
        out[n].count = count;
        out[n].label[0] = '\0';
        n++;
      }
      bytes = bytes == 0 ? 1 : bytes * 2;
    }
  }
  if (c->models) {
    ex_message_size models[32];
    int m = rank == 0 ? model_sizes(models, 32) : 0;
    MPI_Bcast(&m, 1, MPI_INT, 0, MPI_COMM_WORLD);
    MPI_Bcast(models, (int)(m * sizeof models[0]), MPI_BYTE, 0, MPI_COMM_WORLD);
    for (int i = 0; i < m && n < capacity; i++) out[n++] = models[i];
  }
  return n;
}
