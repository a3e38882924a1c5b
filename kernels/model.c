/* The generic half of the model interface (model.h): the model table lookup, creation and
 * destruction, the contiguous parameter / gradient / buffer blocks and their tensor directory,
 * and the few operations every caller needs (zero, loss-and-gradient, running statistics,
 * accuracy, threads). Model files only declare tensors and implement the kind's functions. */
#include "kernels/model.h"

#include <cblas.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const kn_model_kind *kn_model_find(const char *name) {
  if (!name) return NULL;
  for (int i = 0; kn_model_kinds[i]; i++)
    if (strcmp(kn_model_kinds[i]->name, name) == 0) return kn_model_kinds[i];
  return NULL;
}

static void set_error(char *err, size_t errlen, const char *fmt, ...) {
  if (!err || errlen == 0) return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, errlen, fmt, ap);
  va_end(ap);
}

kn_model *kn_model_create(const kn_model_kind *kind, int max_batch, uint64_t seed, char *err,
                          size_t errlen) {
  if (!kind) {
    set_error(err, errlen, "no model kind given");
    return NULL;
  }
  if (max_batch < 1) {
    set_error(err, errlen, "model %s: max_batch must be >= 1 (got %d)", kind->name, max_batch);
    return NULL;
  }
  kn_model *m = calloc(1, sizeof *m);
  if (!m) {
    set_error(err, errlen, "model %s: out of memory", kind->name);
    return NULL;
  }
  m->kind = kind;
  m->max_batch = max_batch;
  if (err && errlen) err[0] = '\0';
  if (kind->init(m, max_batch, seed, err, errlen) != 0) {
    if (err && errlen && err[0] == '\0')
      set_error(err, errlen, "model %s: initialisation failed", kind->name);
    kn_model_free(m);
    return NULL;
  }
  if (!m->params || !m->grads) {
    set_error(err, errlen, "model %s: init did not allocate the parameter blocks", kind->name);
    kn_model_free(m);
    return NULL;
  }
  return m;
}

void kn_model_free(kn_model *m) {
  if (!m) return;
  /* destroy only frees what init allocated itself; it must cope with a half-built model. */
  if (m->kind && m->kind->destroy) m->kind->destroy(m);
  free(m->params);
  free(m->grads);
  free(m->buffers);
  free(m->batch_stats);
  free(m->param_tensors);
  free(m->buffer_tensors);
  free(m);
}

void kn_model_zero_grad(kn_model *m) {
  memset(m->grads, 0, m->num_params * sizeof(float));
}

float kn_model_loss_and_grad(kn_model *m, const float *x, const int32_t *y, int batch) {
  if (m->kind->train_step_fresh) return m->kind->train_step_fresh(m, x, y, batch);
  kn_model_zero_grad(m);
  return m->kind->train_step(m, x, y, batch, NULL);
}

void kn_model_update_buffers(kn_model *m, const float *stats, float momentum) {
  float keep = 1.0f - momentum;
  for (size_t i = 0; i < m->num_buffers; i++)
    m->buffers[i] = keep * m->buffers[i] + momentum * stats[i];
}

int kn_model_count_correct(kn_model *m, const float *x, const int32_t *y, int batch,
                           float *logits_scratch) {
  int classes = m->kind->classes;
  size_t sample = (size_t)m->kind->channels * m->kind->height * m->kind->width;
  int chunk_max = batch < m->max_batch ? batch : m->max_batch;
  float *logits = logits_scratch;
  if (!logits) logits = malloc((size_t)chunk_max * classes * sizeof(float));
  if (!logits) return -1;
  int correct = 0;
  for (int start = 0; start < batch; start += chunk_max) {
    int n = batch - start < chunk_max ? batch - start : chunk_max;
    m->kind->infer(m, x + (size_t)start * sample, n, logits);
    for (int b = 0; b < n; b++) {
      const float *row = logits + (size_t)b * classes;
      int best = 0;
      for (int c = 1; c < classes; c++)
        if (row[c] > row[best]) best = c;
      correct += best == y[start + b];
    }
  }
  if (!logits_scratch) free(logits);
  return correct;
}

/* Appends one tensor to a directory, growing it geometrically. */
static int add_tensor(kn_tensor_info **list, int *count, size_t *total, const char *name, int rank,
                      const int64_t *shape) {
  if (rank < 1 || rank > KN_MAX_RANK || strlen(name) >= sizeof((*list)->name)) return -1;
  int n = *count;
  if ((n & (n - 1)) == 0) { /* n is 0 or a power of two: grow to the next power */
    kn_tensor_info *grown = realloc(*list, (size_t)(n ? 2 * n : 8) * sizeof **list);
    if (!grown) return -1;
    *list = grown;
  }
  kn_tensor_info *t = &(*list)[n];
  memset(t, 0, sizeof *t);
  snprintf(t->name, sizeof t->name, "%s", name);
  t->rank = rank;
  t->count = 1;
  for (int i = 0; i < rank; i++) {
    if (shape[i] < 1) return -1;
    t->shape[i] = shape[i];
    t->count *= (size_t)shape[i];
  }
  t->offset = *total;
  *total += t->count;
  *count = n + 1;
  return n;
}

int kn_model_add_param(kn_model *m, const char *name, int rank, const int64_t *shape) {
  if (m->params) return -1; /* blocks are already allocated */
  return add_tensor(&m->param_tensors, &m->num_param_tensors, &m->num_params, name, rank, shape);
}

int kn_model_add_buffer(kn_model *m, const char *name, int rank, const int64_t *shape) {
  if (m->buffers) return -1;
  return add_tensor(&m->buffer_tensors, &m->num_buffer_tensors, &m->num_buffers, name, rank, shape);
}

int kn_model_allocate_blocks(kn_model *m) {
  if (m->params || m->num_params == 0) return -1;
  m->params = calloc(m->num_params, sizeof(float));
  m->grads = calloc(m->num_params, sizeof(float));
  if (!m->params || !m->grads) return -1;
  if (m->num_buffers) {
    m->buffers = calloc(m->num_buffers, sizeof(float));
    m->batch_stats = calloc(m->num_buffers, sizeof(float));
    if (!m->buffers || !m->batch_stats) return -1;
  }
  return 0;
}

float *kn_model_param(kn_model *m, int index) {
  return m->params + m->param_tensors[index].offset;
}

float *kn_model_grad(kn_model *m, int index) {
  return m->grads + m->param_tensors[index].offset;
}

float *kn_model_buffer(kn_model *m, int index) {
  return m->buffers + m->buffer_tensors[index].offset;
}

float *kn_model_batch_stat(kn_model *m, int index) {
  return m->batch_stats + m->buffer_tensors[index].offset;
}

void kn_set_threads(int threads) {
  openblas_set_num_threads(threads < 1 ? 1 : threads);
}

int kn_get_threads(void) {
  return openblas_get_num_threads();
}
