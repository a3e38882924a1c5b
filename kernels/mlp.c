/* Model "mlp": the smallest real network of the suite, a 3-layer perceptron for 28x28 images.
 *   x (B,1,28,28) viewed as (B,784)
 *   fc1 Linear(784,256) - ReLU - fc2 Linear(256,128) - ReLU - fc3 Linear(128,10) -> logits (B,10)
 * state_dict names: fc1.weight (256,784) fc1.bias (256) fc2.weight (128,256) fc2.bias (128)
 *                   fc3.weight (10,128) fc3.bias (10)     (235,146 parameters)
 * Equivalent PyTorch: nn.Sequential-free module with attributes fc1, fc2, fc3 and F.relu between.
 * Parameters are initialised in state_dict order from one kn_rng stream seeded with the seed. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/layers.h"
#include "kernels/model.h"

enum { IN = 784, H1 = 256, H2 = 128, OUT = 10 };
enum { FC1_W, FC1_B, FC2_W, FC2_B, FC3_W, FC3_B, NUM_TENSORS };

typedef struct {
  float *activations; /* one block: forward activations, then their gradients */
  float *h1, *a1, *h2, *a2, *logits, *probs;
  float *grad_block; /* start of the gradient part, zeroed once per step */
  size_t grad_floats;
  float *dh1, *da1, *dh2, *da2, *dlogits;
} mlp_state;

static int mlp_init(kn_model *m, int max_batch, uint64_t seed, char *err, size_t errlen) {
  static const struct {
    const char *name;
    int rank;
    int64_t shape[2];
  } tensors[NUM_TENSORS] = {
      {"fc1.weight", 2, {H1, IN}}, {"fc1.bias", 1, {H1}},        {"fc2.weight", 2, {H2, H1}},
      {"fc2.bias", 1, {H2}},       {"fc3.weight", 2, {OUT, H2}}, {"fc3.bias", 1, {OUT}},
  };
  for (int i = 0; i < NUM_TENSORS; i++)
    if (kn_model_add_param(m, tensors[i].name, tensors[i].rank, tensors[i].shape) != i) {
      snprintf(err, errlen, "mlp: cannot declare %s", tensors[i].name);
      return -1;
    }
  if (kn_model_allocate_blocks(m) != 0) {
    snprintf(err, errlen, "mlp: out of memory for %zu parameters", m->num_params);
    return -1;
  }
  kn_rng rng;
  kn_rng_seed(&rng, seed);
  static const int fan_in[NUM_TENSORS] = {IN, IN, H1, H1, H2, H2};
  for (int i = 0; i < NUM_TENSORS; i++)
    kn_init_fan_in_uniform(&rng, kn_model_param(m, i), (long)m->param_tensors[i].count, fan_in[i]);

  mlp_state *s = calloc(1, sizeof *s);
  if (!s) goto oom;
  m->state = s;
  size_t B = (size_t)max_batch;
  size_t forward_floats = B * (H1 + H1 + H2 + H2 + OUT + OUT);
  s->grad_floats = B * (H1 + H1 + H2 + H2 + OUT);
  s->activations = malloc((forward_floats + s->grad_floats) * sizeof(float));
  if (!s->activations) goto oom;
  float *p = s->activations;
  s->h1 = p, p += B * H1;
  s->a1 = p, p += B * H1;
  s->h2 = p, p += B * H2;
  s->a2 = p, p += B * H2;
  s->logits = p, p += B * OUT;
  s->probs = p, p += B * OUT;
  s->grad_block = p;
  s->dh1 = p, p += B * H1;
  s->da1 = p, p += B * H1;
  s->dh2 = p, p += B * H2;
  s->da2 = p, p += B * H2;
  s->dlogits = p;
  return 0;
oom:
  snprintf(err, errlen, "mlp: out of memory for activations of batch %d", max_batch);
  return -1;
}

static void mlp_forward(kn_model *m, const float *x, int B) {
  mlp_state *s = m->state;
  kn_linear_forward(s->h1, x, kn_model_param(m, FC1_W), kn_model_param(m, FC1_B), B, IN, H1);
  kn_relu_forward(s->a1, s->h1, (long)B * H1);
  kn_linear_forward(s->h2, s->a1, kn_model_param(m, FC2_W), kn_model_param(m, FC2_B), B, H1, H2);
  kn_relu_forward(s->a2, s->h2, (long)B * H2);
  kn_linear_forward(s->logits, s->a2, kn_model_param(m, FC3_W), kn_model_param(m, FC3_B), B, H2,
                    OUT);
}

static float mlp_train_step(kn_model *m, const float *x, const int32_t *y, int B, float *logits) {
  mlp_state *s = m->state;
  if (B < 1 || B > m->max_batch) return NAN; /* caller bug: batch outside 1..max_batch */
  mlp_forward(m, x, B);
  float loss = kn_cross_entropy_forward(s->probs, s->logits, y, B, OUT);
  if (logits) memcpy(logits, s->logits, (size_t)B * OUT * sizeof(float));

  memset(s->grad_block, 0, s->grad_floats * sizeof(float));
  kn_cross_entropy_backward(s->dlogits, s->probs, y, B, OUT);
  kn_linear_backward(s->da2, kn_model_grad(m, FC3_W), kn_model_grad(m, FC3_B), s->dlogits, s->a2,
                     kn_model_param(m, FC3_W), B, H2, OUT);
  kn_relu_backward(s->dh2, s->da2, s->a2, (long)B * H2);
  kn_linear_backward(s->da1, kn_model_grad(m, FC2_W), kn_model_grad(m, FC2_B), s->dh2, s->a1,
                     kn_model_param(m, FC2_W), B, H1, H2);
  kn_relu_backward(s->dh1, s->da1, s->a1, (long)B * H1);
  kn_linear_backward(NULL, kn_model_grad(m, FC1_W), kn_model_grad(m, FC1_B), s->dh1, x,
                     kn_model_param(m, FC1_W), B, IN, H1);
  return loss;
}

static void mlp_infer(kn_model *m, const float *x, int B, float *logits) {
  mlp_forward(m, x, B);
  memcpy(logits, ((mlp_state *)m->state)->logits, (size_t)B * OUT * sizeof(float));
}

static void mlp_destroy(kn_model *m) {
  mlp_state *s = m->state;
  if (!s) return;
  free(s->activations);
  free(s);
  m->state = NULL;
}

const kn_model_kind kn_model_mlp = {
    .name = "mlp",
    .summary = "3-layer perceptron 784-256-128-10 with ReLU (1x28x28 input)",
    .channels = 1,
    .height = 28,
    .width = 28,
    .classes = OUT,
    .init = mlp_init,
    .train_step = mlp_train_step,
    .infer = mlp_infer,
    .destroy = mlp_destroy,
};
