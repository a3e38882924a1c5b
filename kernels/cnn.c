/* Model "cnn": the classic two-convolution Fashion-MNIST baseline.
 *   x (B,1,28,28)
 *   conv1 Conv2d(1,32,5,padding=2) - ReLU - MaxPool2d(2)   -> (B,32,14,14)
 *   conv2 Conv2d(32,64,5,padding=2) - ReLU - MaxPool2d(2)  -> (B,64,7,7)
 *   flatten (B,3136) - fc1 Linear(3136,128) - ReLU - fc2 Linear(128,10) -> logits (B,10)
 * state_dict names (PyTorch module with attributes conv1, conv2, fc1, fc2):
 *   conv1.weight (32,1,5,5) conv1.bias (32) conv2.weight (64,32,5,5) conv2.bias (64)
 *   fc1.weight (128,3136) fc1.bias (128) fc2.weight (10,128) fc2.bias (10)   (454,922 floats)
 * Parameters are initialised in that order from one kn_rng stream (PyTorch's default scheme).
 * All activations, their gradients and the convolution workspace come from one arena sized for
 * max_batch in init; a training step allocates nothing.
 * Layout: the convolutions run on CNHW tensors (kn_conv2d_cnhw_*: the gemms read and write the
 * activations in place instead of copying them per sample; 1-channel x is already CNHW); the
 * pooled (64,B,7,7) features are swapped to (B,64,7,7), i.e. PyTorch's flatten order, for fc1.
 * ReLUs run in place and their gradients are stored in place. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/layers.h"
#include "kernels/model.h"

enum { C1 = 32, C2 = 64, HIDDEN = 128, CLASSES = 10, FLAT = C2 * 7 * 7 };
enum { CONV1_W, CONV1_B, CONV2_W, CONV2_B, FC1_W, FC1_B, FC2_W, FC2_B, NUM_TENSORS };

typedef struct {
  kn_conv2d conv1, conv2;
  kn_pool2d pool1, pool2;
  kn_arena arena;
  float *workspace;
  /* forward: c1, p1, c2, p2 CNHW (ReLU in place on c1, c2), flat = p2 as (B,3136) */
  float *c1, *p1, *c2, *p2, *flat, *f1, *a1, *logits, *probs;
  int32_t *arg1, *arg2;
  /* gradients of the activations: one contiguous run, zeroed once per step */
  float *grad_start;
  size_t grad_floats;
  float *dc1, *dp1, *dc2, *dp2, *dflat, *df1, *da1, *dlogits;
} cnn_state;

/* Takes every array from the arena, in the same order on the measuring and the real pass. */
static void cnn_layout(cnn_state *s, int max_batch) {
  kn_arena *a = &s->arena;
  const size_t B = (size_t)max_batch;
  const size_t n1 = B * C1 * 28 * 28, np1 = B * C1 * 14 * 14, n2 = B * C2 * 14 * 14;
  const size_t np2 = B * FLAT;
  size_t ws1 = kn_conv2d_cnhw_workspace_floats(&s->conv1, max_batch);
  size_t ws2 = kn_conv2d_cnhw_workspace_floats(&s->conv2, max_batch);
  s->workspace = kn_arena_take(a, ws1 > ws2 ? ws1 : ws2);
  s->c1 = kn_arena_take(a, n1), s->p1 = kn_arena_take(a, np1);
  s->arg1 = kn_arena_take_int32(a, np1);
  s->c2 = kn_arena_take(a, n2), s->p2 = kn_arena_take(a, np2);
  s->arg2 = kn_arena_take_int32(a, np2);
  s->flat = kn_arena_take(a, np2);
  s->f1 = kn_arena_take(a, B * HIDDEN), s->a1 = kn_arena_take(a, B * HIDDEN);
  s->logits = kn_arena_take(a, B * CLASSES), s->probs = kn_arena_take(a, B * CLASSES);
  size_t grad_begin = a->used;
  s->dc1 = kn_arena_take(a, n1), s->dp1 = kn_arena_take(a, np1);
  s->dc2 = kn_arena_take(a, n2), s->dp2 = kn_arena_take(a, np2), s->dflat = kn_arena_take(a, np2);
  s->df1 = kn_arena_take(a, B * HIDDEN), s->da1 = kn_arena_take(a, B * HIDDEN);
  s->dlogits = kn_arena_take(a, B * CLASSES);
  s->grad_floats = a->used - grad_begin;
  s->grad_start = a->base ? a->base + grad_begin : NULL;
}

static int cnn_init(kn_model *m, int max_batch, uint64_t seed, char *err, size_t errlen) {
  static const struct {
    const char *name;
    int rank;
    int64_t shape[4];
    int fan_in;
  } tensors[NUM_TENSORS] = {
      {"conv1.weight", 4, {C1, 1, 5, 5}, 25},       {"conv1.bias", 1, {C1}, 25},
      {"conv2.weight", 4, {C2, C1, 5, 5}, C1 * 25}, {"conv2.bias", 1, {C2}, C1 * 25},
      {"fc1.weight", 2, {HIDDEN, FLAT}, FLAT},      {"fc1.bias", 1, {HIDDEN}, FLAT},
      {"fc2.weight", 2, {CLASSES, HIDDEN}, HIDDEN}, {"fc2.bias", 1, {CLASSES}, HIDDEN},
  };
  for (int i = 0; i < NUM_TENSORS; i++)
    if (kn_model_add_param(m, tensors[i].name, tensors[i].rank, tensors[i].shape) != i) {
      snprintf(err, errlen, "cnn: cannot declare %s", tensors[i].name);
      return -1;
    }
  if (kn_model_allocate_blocks(m) != 0) {
    snprintf(err, errlen, "cnn: out of memory for %zu parameters", m->num_params);
    return -1;
  }
  kn_rng rng;
  kn_rng_seed(&rng, seed);
  for (int i = 0; i < NUM_TENSORS; i++)
    kn_init_fan_in_uniform(&rng, kn_model_param(m, i), (long)m->param_tensors[i].count,
                           tensors[i].fan_in);

  cnn_state *s = calloc(1, sizeof *s);
  if (!s) goto oom;
  m->state = s;
  if (kn_conv2d_init(&s->conv1, 1, C1, 5, 1, 2, 1, 28, 28) ||
      kn_pool2d_init(&s->pool1, C1, 28, 28, 2, 2, 0, 0) ||
      kn_conv2d_init(&s->conv2, C1, C2, 5, 1, 2, 1, 14, 14) ||
      kn_pool2d_init(&s->pool2, C2, 14, 14, 2, 2, 0, 0)) {
    snprintf(err, errlen, "cnn: inconsistent layer geometry");
    return -1;
  }
  cnn_layout(s, max_batch);
  if (kn_arena_allocate(&s->arena) != 0) goto oom;
  cnn_layout(s, max_batch);
  return 0;
oom:
  snprintf(err, errlen, "cnn: out of memory for activations of batch %d", max_batch);
  return -1;
}

static void cnn_forward(kn_model *m, const float *x, int B) {
  cnn_state *s = m->state;
  /* x (B,1,28,28) is also the (1,B,28,28) CNHW tensor */
  kn_conv2d_cnhw_forward(&s->conv1, s->c1, x, kn_model_param(m, CONV1_W), NULL, B, s->workspace);
  kn_bias_relu_forward(s->c1, kn_model_param(m, CONV1_B), C1, (long)B * 28 * 28);
  kn_maxpool2d_forward(&s->pool1, s->p1, s->arg1, s->c1, B);
  kn_conv2d_cnhw_forward(&s->conv2, s->c2, s->p1, kn_model_param(m, CONV2_W), NULL, B,
                         s->workspace);
  kn_bias_relu_forward(s->c2, kn_model_param(m, CONV2_B), C2, (long)B * 14 * 14);
  kn_maxpool2d_forward(&s->pool2, s->p2, s->arg2, s->c2, B);
  kn_swap_outer_planes(s->flat, s->p2, C2, B, 7 * 7); /* (B,64,7,7) = torch.flatten order */
  kn_linear_forward(s->f1, s->flat, kn_model_param(m, FC1_W), kn_model_param(m, FC1_B), B, FLAT,
                    HIDDEN);
  kn_relu_forward(s->a1, s->f1, (long)B * HIDDEN);
  kn_linear_forward(s->logits, s->a1, kn_model_param(m, FC2_W), kn_model_param(m, FC2_B), B, HIDDEN,
                    CLASSES);
}

static float cnn_train_step(kn_model *m, const float *x, const int32_t *y, int B, float *logits) {
  cnn_state *s = m->state;
  if (B < 1 || B > m->max_batch) return NAN; /* caller bug: batch outside 1..max_batch */
  cnn_forward(m, x, B);
  float loss = kn_cross_entropy_forward(s->probs, s->logits, y, B, CLASSES);
  if (logits) memcpy(logits, s->logits, (size_t)B * CLASSES * sizeof(float));

  memset(s->grad_start, 0, s->grad_floats * sizeof(float));
  kn_cross_entropy_backward(s->dlogits, s->probs, y, B, CLASSES);
  kn_linear_backward(s->da1, kn_model_grad(m, FC2_W), kn_model_grad(m, FC2_B), s->dlogits, s->a1,
                     kn_model_param(m, FC2_W), B, HIDDEN, CLASSES);
  kn_relu_backward(s->df1, s->da1, s->a1, (long)B * HIDDEN);
  kn_linear_backward(s->dflat, kn_model_grad(m, FC1_W), kn_model_grad(m, FC1_B), s->df1, s->flat,
                     kn_model_param(m, FC1_W), B, FLAT, HIDDEN);
  kn_swap_outer_planes(s->dp2, s->dflat, B, C2, 7 * 7);
  kn_maxpool2d_backward(&s->pool2, s->dc2, s->dp2, s->arg2, B);
  kn_relu_backward_store(s->dc2, s->dc2, s->c2, (long)B * C2 * 14 * 14);
  kn_conv2d_cnhw_backward(&s->conv2, s->dp1, kn_model_grad(m, CONV2_W), kn_model_grad(m, CONV2_B),
                          s->dc2, s->p1, kn_model_param(m, CONV2_W), B, s->workspace);
  kn_maxpool2d_backward(&s->pool1, s->dc1, s->dp1, s->arg1, B);
  kn_relu_backward_store(s->dc1, s->dc1, s->c1, (long)B * C1 * 28 * 28);
  kn_conv2d_cnhw_backward(&s->conv1, NULL, kn_model_grad(m, CONV1_W), kn_model_grad(m, CONV1_B),
                          s->dc1, x, kn_model_param(m, CONV1_W), B, s->workspace);
  return loss;
}

static void cnn_infer(kn_model *m, const float *x, int B, float *logits) {
  cnn_forward(m, x, B);
  memcpy(logits, ((cnn_state *)m->state)->logits, (size_t)B * CLASSES * sizeof(float));
}

static void cnn_destroy(kn_model *m) {
  cnn_state *s = m->state;
  if (!s) return;
  kn_arena_free(&s->arena);
  free(s);
  m->state = NULL;
}

const kn_model_kind kn_model_cnn = {
    .name = "cnn",
    .summary = "2x (conv5x5-ReLU-maxpool) + 2 linear layers, Fashion-MNIST baseline (1x28x28)",
    .channels = 1,
    .height = 28,
    .width = 28,
    .classes = CLASSES,
    .cnhw = 1,
    .init = cnn_init,
    .train_step = cnn_train_step,
    .infer = cnn_infer,
    .destroy = cnn_destroy,
};
