/* The model interface every network in mayfly implements, and the model table.
 *
 * Why: the rest of the suite (peers, workers, mayfly-grad, mayfly-kernels) must handle any model
 * through one small face. A model keeps all trainable parameters in one contiguous float block
 * (and the gradients in another of the same layout), so "the gradient" is a flat vector that
 * workers send and peers allreduce. Batch-norm running statistics live in a separate block of
 * buffers. A training step never changes the buffers itself: it writes the batch statistics it
 * saw into `batch_stats` (same layout as `buffers`) and the caller folds averaged statistics in
 * with kn_model_update_buffers(); that keeps peers, workers and baseline bit-identical.
 * Adding a model is one new file plus one entry in kernels/model_registry.c. No MPI here. */
#ifndef MAYFLY_KERNELS_MODEL_H
#define MAYFLY_KERNELS_MODEL_H

#include <stddef.h>
#include <stdint.h>

#define KN_MAX_RANK 4

/* One named tensor inside the parameter or buffer block (PyTorch state_dict naming). */
typedef struct {
  char name[96]; /* e.g. "features.0.weight", "classifier.1.bias", "features.1.running_mean" */
  int rank;
  int64_t shape[KN_MAX_RANK];
  size_t offset; /* in floats, from the start of the block */
  size_t count;  /* number of floats */
} kn_tensor_info;

typedef struct kn_model kn_model;

/* A model kind: its table entry. */
typedef struct {
  const char *name;            /* "mlp", "cnn", "squeezenet1_1", ... */
  const char *summary;         /* one line for --help */
  int channels, height, width; /* input geometry the model expects (C, H, W) */
  int classes;
  /* PyTorch BatchNorm momentum for kn_model_update_buffers (torchvision's MobileNetV3: 0.01);
   * 0 means PyTorch's default 0.1. Models without batch norm leave it 0. */
  float bn_momentum;
  /* 1 when the model's convolutions run on CNHW tensors (kn_conv2d_cnhw_*), so that benchmarks
   * time its layers the same way; 0 for NCHW. */
  int cnhw;
  /* Allocate activations for up to max_batch samples, parameters initialised from seed
   * (PyTorch default init scheme). Returns 0, or -1 with a message in err. */
  int (*init)(kn_model *m, int max_batch, uint64_t seed, char *err, size_t errlen);
  /* Training step on x [B,C,H,W], labels y [B] (0..classes-1): forward in training mode
   * (batch statistics, dropout off unless m->dropout_seed != 0), loss = mean cross-entropy,
   * backward. Gradients are ACCUMULATED (+=) into m->grads; callers zero them first.
   * Writes the batch statistics into m->batch_stats. Returns the loss. Optionally writes
   * logits [B,classes] when logits != NULL. */
  float (*train_step)(kn_model *m, const float *x, const int32_t *y, int batch, float *logits);
  /* Optional: the same step on gradients that need not be zeroed first: every gradient value is
   * written, none added (a model with a huge gradient tensor skips zeroing it).
   * kn_model_loss_and_grad uses it when present; the result equals zero_grad + train_step. */
  float (*train_step_fresh)(kn_model *m, const float *x, const int32_t *y, int batch);
  /* Inference (eval mode: running statistics, no dropout): logits [B,classes]. */
  void (*infer)(kn_model *m, const float *x, int batch, float *logits);
  void (*destroy)(kn_model *m); /* frees what init allocated beyond the blocks below */
} kn_model_kind;

struct kn_model {
  const kn_model_kind *kind;
  int max_batch;
  size_t num_params; /* floats in params and grads */
  float *params;
  float *grads;
  size_t num_buffers; /* floats in buffers and batch_stats (0 for models without BN) */
  float *buffers;
  float *batch_stats;
  int num_param_tensors;
  kn_tensor_info *param_tensors;
  int num_buffer_tensors;
  kn_tensor_info *buffer_tensors;
  uint64_t dropout_seed; /* 0: dropout disabled */
  void *state;           /* the model's own activations and scratch */
};

/* The table of models, NULL-terminated. */
extern const kn_model_kind *const kn_model_kinds[];

const kn_model_kind *kn_model_find(const char *name);

/* Creates a model; NULL with a message in err on failure (unknown sizes, out of memory). */
kn_model *kn_model_create(const kn_model_kind *kind, int max_batch, uint64_t seed, char *err,
                          size_t errlen);
void kn_model_free(kn_model *m);

void kn_model_zero_grad(kn_model *m);

/* Zeroes the gradients, runs one training step, returns the loss: the gradient of the mean loss
 * of this batch is then in m->grads. */
float kn_model_loss_and_grad(kn_model *m, const float *x, const int32_t *y, int batch);

/* running = (1 - momentum) * running + momentum * stats, for every buffer (PyTorch's rule). */
void kn_model_update_buffers(kn_model *m, const float *stats, float momentum);

/* Counts correct predictions of x [B,...] against y in eval mode. */
int kn_model_count_correct(kn_model *m, const float *x, const int32_t *y, int batch,
                           float *logits_scratch);

/* Helpers for model implementations: declare tensors, then allocate the blocks once. */
int kn_model_add_param(kn_model *m, const char *name, int rank, const int64_t *shape);
int kn_model_add_buffer(kn_model *m, const char *name, int rank, const int64_t *shape);
int kn_model_allocate_blocks(kn_model *m); /* after all add_* calls; 0 or -1 */
float *kn_model_param(kn_model *m, int index);
float *kn_model_grad(kn_model *m, int index);
/* The same for buffer tensors: running statistics, and the batch statistics a training step
 * writes at the same offsets. */
float *kn_model_buffer(kn_model *m, int index);
float *kn_model_batch_stat(kn_model *m, int index);

/* Sets the number of threads OpenBLAS (and any threaded kernel) may use in this process. */
void kn_set_threads(int threads);
int kn_get_threads(void);

#endif
