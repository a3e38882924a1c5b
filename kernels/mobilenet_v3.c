/* Model "mobilenet_v3_small": torchvision.models.mobilenet_v3_small(num_classes=10) on 3x32x32
 * inputs (1,528,106 parameters), the paper's batch-norm model.
 *   features.0      Conv3x3(3,16,s2) - BN - Hardswish                          -> 16x16
 *   features.1..11  inverted residual blocks (table below): [expand 1x1 - BN - act]
 *                   depthwise kxk (stride s) - BN - act, [squeeze-excitation], project 1x1 - BN,
 *                   + input when stride 1 and in == out
 *   features.12     Conv1x1(96,576) - BN - Hardswish                           -> (B,576,1,1)
 *   avgpool         AdaptiveAvgPool2d(1)
 *   classifier      Linear(576,1024) - Hardswish - Dropout(0.2) - Linear(1024,10)
 * Squeeze-excitation(C, S): scale = hardsigmoid(fc2(relu(fc1(avgpool(x))))), out = x * scale,
 * fc1/fc2 are 1x1 convs with bias on a 1x1 map (= linear layers on the same weight memory),
 * S = _make_divisible(C / 4, 8).
 * Batch norm: eps 0.001, momentum 0.01 (kind.bn_momentum), training mode uses batch statistics
 * and writes them to m->batch_stats; running_mean / running_var are the buffers.
 * state_dict names: features.0.{0.weight, 1.weight, 1.bias}, features.N.block.M.{0.weight,
 * 1.weight, 1.bias} for conv-BN units, features.N.block.M.{fc1,fc2}.{weight,bias} for SE,
 * classifier.{0,3}.{weight,bias}; buffers X.1.running_mean / X.1.running_var.
 * Init (torchvision): conv weights kaiming_normal_(mode="fan_out"), N(0, 2 / (OC*k*k)); SE
 * biases 0; BN weight 1, bias 0, running mean 0, var 1; linear weights N(0, 0.01^2), bias 0.
 * Dropout: off unless m->dropout_seed != 0 (mask seed derived from it; vary it per step).
 * All activations come from one arena; a training step allocates nothing. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/layers.h"
#include "kernels/model.h"

enum { CLASSES = 10, LAST_CHANNELS = 576, HIDDEN = 1024, MAX_UNITS = 64, NUM_BLOCKS = 11 };
enum { U_CBA, U_SE, U_ADD };
enum { ACT_NONE, ACT_RELU, ACT_HARDSWISH };
static const float BN_EPS = 0.001f;

typedef struct {
  int type, act;
  kn_conv2d conv;
  int param;  /* CBA: conv weight, BN weight, BN bias; SE: fc1 w, b, fc2 w, b */
  int buffer; /* CBA: running_mean; running_var is the next buffer tensor */
  int skip;   /* ADD: unit whose output is the block's input */
  int channels, h, w, squeeze;
  float *c, *n, *out, *mean, *invstd; /* CBA: conv output, BN output, activation (or n) */
  float *dc, *dn, *dout;
  float *pooled, *f1, *f2, *scale, *dpooled, *df1, *dr1, *df2, *dscale; /* SE */
} mb_unit;

typedef struct {
  mb_unit units[MAX_UNITS];
  int num_units, head_param;
  kn_arena arena;
  float *workspace;
  float *pooled, *h, *hs, *dropped, *mask, *logits, *probs;
  float *grad_start;
  size_t grad_floats;
  float *dpooled, *dh, *dhs, *ddropped, *dlogits;
} mb_state;

static void mb_layout(mb_state *s, int max_batch) {
  kn_arena *a = &s->arena;
  const size_t B = (size_t)max_batch;
  size_t ws = 0;
  for (int k = 0; k < s->num_units; k++)
    if (s->units[k].type == U_CBA) {
      size_t need = kn_conv2d_workspace_floats(&s->units[k].conv, max_batch);
      if (need > ws) ws = need;
    }
  s->workspace = kn_arena_take(a, ws);
  for (int k = 0; k < s->num_units; k++) {
    mb_unit *u = &s->units[k];
    size_t n = B * u->channels * u->h * u->w;
    if (u->type == U_CBA) {
      u->c = kn_arena_take(a, n), u->n = kn_arena_take(a, n);
      u->out = u->act == ACT_NONE ? u->n : kn_arena_take(a, n);
      u->mean = kn_arena_take(a, u->channels), u->invstd = kn_arena_take(a, u->channels);
    } else {
      u->out = kn_arena_take(a, n);
    }
    if (u->type == U_SE) {
      u->pooled = kn_arena_take(a, B * u->channels), u->f1 = kn_arena_take(a, B * u->squeeze);
      u->f2 = kn_arena_take(a, B * u->channels), u->scale = kn_arena_take(a, B * u->channels);
    }
  }
  s->pooled = kn_arena_take(a, B * LAST_CHANNELS);
  s->h = kn_arena_take(a, B * HIDDEN), s->hs = kn_arena_take(a, B * HIDDEN);
  s->dropped = kn_arena_take(a, B * HIDDEN), s->mask = kn_arena_take(a, B * HIDDEN);
  s->logits = kn_arena_take(a, B * CLASSES), s->probs = kn_arena_take(a, B * CLASSES);
  size_t grad_begin = a->used;
  for (int k = 0; k < s->num_units; k++) {
    mb_unit *u = &s->units[k];
    size_t n = B * u->channels * u->h * u->w;
    if (u->type == U_CBA) {
      u->dc = kn_arena_take(a, n), u->dn = kn_arena_take(a, n);
      u->dout = u->act == ACT_NONE ? u->dn : kn_arena_take(a, n);
    } else {
      u->dout = kn_arena_take(a, n);
    }
    if (u->type == U_SE) {
      u->dpooled = kn_arena_take(a, B * u->channels), u->df1 = kn_arena_take(a, B * u->squeeze);
      u->dr1 = kn_arena_take(a, B * u->squeeze), u->df2 = kn_arena_take(a, B * u->channels);
      u->dscale = kn_arena_take(a, B * u->channels);
    }
  }
  s->dpooled = kn_arena_take(a, B * LAST_CHANNELS);
  s->dh = kn_arena_take(a, B * HIDDEN), s->dhs = kn_arena_take(a, B * HIDDEN);
  s->ddropped = kn_arena_take(a, B * HIDDEN), s->dlogits = kn_arena_take(a, B * CLASSES);
  s->grad_floats = a->used - grad_begin;
  s->grad_start = a->base ? a->base + grad_begin : NULL;
}

/* Appends a conv-BN-activation unit named prefix.{0,1}; returns 0 or -1. */
static int add_cba(kn_model *m, mb_state *s, const char *prefix, int C, int OC, int k, int stride,
                   int groups, int act, int *h, int *w) {
  if (s->num_units == MAX_UNITS) return -1;
  mb_unit *u = &s->units[s->num_units++];
  u->type = U_CBA, u->act = act;
  if (kn_conv2d_init(&u->conv, C, OC, k, stride, (k - 1) / 2, groups, *h, *w)) return -1;
  *h = u->conv.out_h, *w = u->conv.out_w;
  u->channels = OC, u->h = *h, u->w = *w;
  char name[96];
  int64_t wshape[4] = {OC, C / groups, k, k}, cshape[1] = {OC};
  snprintf(name, sizeof name, "%s.0.weight", prefix);
  u->param = kn_model_add_param(m, name, 4, wshape);
  snprintf(name, sizeof name, "%s.1.weight", prefix);
  int ok = u->param >= 0 && kn_model_add_param(m, name, 1, cshape) >= 0;
  snprintf(name, sizeof name, "%s.1.bias", prefix);
  ok = ok && kn_model_add_param(m, name, 1, cshape) >= 0;
  snprintf(name, sizeof name, "%s.1.running_mean", prefix);
  u->buffer = ok ? kn_model_add_buffer(m, name, 1, cshape) : -1;
  snprintf(name, sizeof name, "%s.1.running_var", prefix);
  return u->buffer >= 0 && kn_model_add_buffer(m, name, 1, cshape) >= 0 ? 0 : -1;
}

static int add_se(kn_model *m, mb_state *s, const char *prefix, int C, int h, int w) {
  if (s->num_units == MAX_UNITS) return -1;
  mb_unit *u = &s->units[s->num_units++];
  u->type = U_SE, u->channels = C, u->h = h, u->w = w;
  int S = (C / 4 + 4) / 8 * 8; /* torchvision's _make_divisible(C / 4, 8) */
  if (S < 8) S = 8;
  if (S < 0.9 * (C / 4)) S += 8;
  u->squeeze = S;
  char name[96];
  int64_t w1[4] = {S, C, 1, 1}, b1[1] = {S}, w2[4] = {C, S, 1, 1}, b2[1] = {C};
  snprintf(name, sizeof name, "%s.fc1.weight", prefix);
  u->param = kn_model_add_param(m, name, 4, w1);
  snprintf(name, sizeof name, "%s.fc1.bias", prefix);
  int ok = u->param >= 0 && kn_model_add_param(m, name, 1, b1) >= 0;
  snprintf(name, sizeof name, "%s.fc2.weight", prefix);
  ok = ok && kn_model_add_param(m, name, 4, w2) >= 0;
  snprintf(name, sizeof name, "%s.fc2.bias", prefix);
  return ok && kn_model_add_param(m, name, 1, b2) >= 0 ? 0 : -1;
}

static float normal_sample(kn_rng *rng, double std) {
  double u1 = 1.0 - (double)kn_rng_uniform(rng), u2 = (double)kn_rng_uniform(rng);
  return (float)(std * sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2));
}

static int mb_init(kn_model *m, int max_batch, uint64_t seed, char *err, size_t errlen) {
  /* torchvision's inverted residual settings for "small": in, kernel, expanded, out, SE,
   * hardswish, stride. */
  static const struct {
    int in, kernel, expanded, out, se, hs, stride;
  } blocks[NUM_BLOCKS] = {
      {16, 3, 16, 16, 1, 0, 2},  {16, 3, 72, 24, 0, 0, 2},  {24, 3, 88, 24, 0, 0, 1},
      {24, 5, 96, 40, 1, 1, 2},  {40, 5, 240, 40, 1, 1, 1}, {40, 5, 240, 40, 1, 1, 1},
      {40, 5, 120, 48, 1, 1, 1}, {48, 5, 144, 48, 1, 1, 1}, {48, 5, 288, 96, 1, 1, 2},
      {96, 5, 576, 96, 1, 1, 1}, {96, 5, 576, 96, 1, 1, 1},
  };
  mb_state *s = calloc(1, sizeof *s);
  if (!s) goto oom;
  m->state = s;
  int h = 32, w = 32;
  char prefix[64];
  if (add_cba(m, s, "features.0", 3, 16, 3, 2, 1, ACT_HARDSWISH, &h, &w)) goto declare;
  for (int b = 0; b < NUM_BLOCKS; b++) {
    const int act = blocks[b].hs ? ACT_HARDSWISH : ACT_RELU;
    const int input_unit = s->num_units - 1;
    int j = 0;
    if (blocks[b].expanded != blocks[b].in) {
      snprintf(prefix, sizeof prefix, "features.%d.block.%d", b + 1, j++);
      if (add_cba(m, s, prefix, blocks[b].in, blocks[b].expanded, 1, 1, 1, act, &h, &w))
        goto declare;
    }
    snprintf(prefix, sizeof prefix, "features.%d.block.%d", b + 1, j++);
    if (add_cba(m, s, prefix, blocks[b].expanded, blocks[b].expanded, blocks[b].kernel,
                blocks[b].stride, blocks[b].expanded, act, &h, &w))
      goto declare;
    if (blocks[b].se) {
      snprintf(prefix, sizeof prefix, "features.%d.block.%d", b + 1, j++);
      if (add_se(m, s, prefix, blocks[b].expanded, h, w)) goto declare;
    }
    snprintf(prefix, sizeof prefix, "features.%d.block.%d", b + 1, j++);
    if (add_cba(m, s, prefix, blocks[b].expanded, blocks[b].out, 1, 1, 1, ACT_NONE, &h, &w))
      goto declare;
    if (blocks[b].stride == 1 && blocks[b].in == blocks[b].out) {
      if (s->num_units == MAX_UNITS) goto declare;
      mb_unit *u = &s->units[s->num_units++];
      u->type = U_ADD, u->skip = input_unit, u->channels = blocks[b].out, u->h = h, u->w = w;
    }
  }
  if (add_cba(m, s, "features.12", 96, LAST_CHANNELS, 1, 1, 1, ACT_HARDSWISH, &h, &w)) goto declare;
  int64_t w0[2] = {HIDDEN, LAST_CHANNELS}, b0[1] = {HIDDEN}, w3[2] = {CLASSES, HIDDEN};
  int64_t b3[1] = {CLASSES};
  s->head_param = kn_model_add_param(m, "classifier.0.weight", 2, w0);
  if (s->head_param < 0 || kn_model_add_param(m, "classifier.0.bias", 1, b0) < 0 ||
      kn_model_add_param(m, "classifier.3.weight", 2, w3) < 0 ||
      kn_model_add_param(m, "classifier.3.bias", 1, b3) < 0)
    goto declare;
  if (kn_model_allocate_blocks(m) != 0) {
    snprintf(err, errlen, "mobilenet_v3_small: out of memory for %zu parameters", m->num_params);
    return -1;
  }
  kn_rng rng;
  kn_rng_seed(&rng, seed);
  for (int i = 0; i < m->num_param_tensors; i++) {
    const kn_tensor_info *t = &m->param_tensors[i];
    float *p = kn_model_param(m, i);
    if (t->rank == 4) { /* kaiming_normal_(fan_out): fan_out = OC * KH * KW */
      double std = sqrt(2.0 / (double)(t->shape[0] * t->shape[2] * t->shape[3]));
      for (size_t j = 0; j < t->count; j++) p[j] = normal_sample(&rng, std);
    } else if (t->rank == 2) {
      for (size_t j = 0; j < t->count; j++) p[j] = normal_sample(&rng, 0.01);
    }
  }
  for (int k = 0; k < s->num_units; k++) { /* BN weights 1 (biases stay 0), running_var 1 */
    const mb_unit *u = &s->units[k];
    if (u->type != U_CBA) continue;
    float *bn_weight = kn_model_param(m, u->param + 1), *var = kn_model_buffer(m, u->buffer + 1);
    for (int c = 0; c < u->channels; c++) bn_weight[c] = 1.0f, var[c] = 1.0f;
  }
  mb_layout(s, max_batch);
  if (kn_arena_allocate(&s->arena) != 0) goto oom;
  mb_layout(s, max_batch);
  return 0;
declare:
  snprintf(err, errlen, "mobilenet_v3_small: cannot declare layers (geometry or tensors)");
  return -1;
oom:
  snprintf(err, errlen, "mobilenet_v3_small: out of memory for activations of batch %d", max_batch);
  return -1;
}

static void mb_forward(kn_model *m, const float *x, int B, int training) {
  mb_state *s = m->state;
  const float *inp = x;
  for (int k = 0; k < s->num_units; k++) {
    mb_unit *u = &s->units[k];
    const int C = u->channels, HW = u->h * u->w;
    const long n = (long)B * C * HW;
    if (u->type == U_CBA) {
      kn_conv2d_forward(&u->conv, u->c, inp, kn_model_param(m, u->param), NULL, B, s->workspace);
      const float *bw = kn_model_param(m, u->param + 1), *bb = kn_model_param(m, u->param + 2);
      if (training)
        kn_batchnorm_forward_train(u->n, u->mean, u->invstd, kn_model_batch_stat(m, u->buffer),
                                   kn_model_batch_stat(m, u->buffer + 1), u->c, bw, bb, B, C, HW,
                                   BN_EPS);
      else
        kn_batchnorm_forward_eval(u->n, u->c, bw, bb, kn_model_buffer(m, u->buffer),
                                  kn_model_buffer(m, u->buffer + 1), B, C, HW, BN_EPS);
      if (u->act == ACT_RELU) kn_relu_forward(u->out, u->n, n);
      if (u->act == ACT_HARDSWISH) kn_hardswish_forward(u->out, u->n, n);
    } else if (u->type == U_SE) {
      const int S = u->squeeze;
      kn_adaptive_avgpool2d_forward(u->pooled, inp, B, C, u->h, u->w, 1, 1);
      kn_linear_forward(u->f1, u->pooled, kn_model_param(m, u->param),
                        kn_model_param(m, u->param + 1), B, C, S);
      kn_relu_forward(u->f1, u->f1, (long)B * S);
      kn_linear_forward(u->f2, u->f1, kn_model_param(m, u->param + 2),
                        kn_model_param(m, u->param + 3), B, S, C);
      kn_hardsigmoid_forward(u->scale, u->f2, (long)B * C);
      kn_channel_scale_forward(u->out, inp, u->scale, B, C, HW);
    } else {
      kn_add_forward(u->out, s->units[u->skip].out, inp, n);
    }
    inp = u->out;
  }
  const mb_unit *last = &s->units[s->num_units - 1];
  kn_adaptive_avgpool2d_forward(s->pooled, inp, B, LAST_CHANNELS, last->h, last->w, 1, 1);
  const int hp = s->head_param;
  kn_linear_forward(s->h, s->pooled, kn_model_param(m, hp), kn_model_param(m, hp + 1), B,
                    LAST_CHANNELS, HIDDEN);
  kn_hardswish_forward(s->hs, s->h, (long)B * HIDDEN);
  uint64_t seed = 0;
  if (training && m->dropout_seed) {
    uint64_t state = m->dropout_seed;
    seed = kn_splitmix64(&state) | 1;
  }
  kn_dropout_forward(s->dropped, s->mask, s->hs, (long)B * HIDDEN, 0.2f, seed);
  kn_linear_forward(s->logits, s->dropped, kn_model_param(m, hp + 2), kn_model_param(m, hp + 3), B,
                    HIDDEN, CLASSES);
}

static float mb_train_step(kn_model *m, const float *x, const int32_t *y, int B, float *logits) {
  mb_state *s = m->state;
  if (B < 1 || B > m->max_batch) return NAN; /* caller bug: batch outside 1..max_batch */
  mb_forward(m, x, B, 1);
  float loss = kn_cross_entropy_forward(s->probs, s->logits, y, B, CLASSES);
  if (logits) memcpy(logits, s->logits, (size_t)B * CLASSES * sizeof(float));

  memset(s->grad_start, 0, s->grad_floats * sizeof(float));
  const int hp = s->head_param;
  kn_cross_entropy_backward(s->dlogits, s->probs, y, B, CLASSES);
  kn_linear_backward(s->ddropped, kn_model_grad(m, hp + 2), kn_model_grad(m, hp + 3), s->dlogits,
                     s->dropped, kn_model_param(m, hp + 2), B, HIDDEN, CLASSES);
  kn_dropout_backward(s->dhs, s->ddropped, s->mask, (long)B * HIDDEN);
  kn_hardswish_backward(s->dh, s->dhs, s->h, (long)B * HIDDEN);
  kn_linear_backward(s->dpooled, kn_model_grad(m, hp), kn_model_grad(m, hp + 1), s->dh, s->pooled,
                     kn_model_param(m, hp), B, LAST_CHANNELS, HIDDEN);
  mb_unit *last = &s->units[s->num_units - 1];
  kn_adaptive_avgpool2d_backward(last->dout, s->dpooled, B, LAST_CHANNELS, last->h, last->w, 1, 1);
  for (int k = s->num_units - 1; k >= 0; k--) {
    mb_unit *u = &s->units[k];
    const float *inp = k ? s->units[k - 1].out : x;
    float *dinp = k ? s->units[k - 1].dout : NULL;
    const int C = u->channels, HW = u->h * u->w;
    const long n = (long)B * C * HW;
    if (u->type == U_CBA) {
      if (u->act == ACT_RELU) kn_relu_backward(u->dn, u->dout, u->out, n);
      if (u->act == ACT_HARDSWISH) kn_hardswish_backward(u->dn, u->dout, u->n, n);
      kn_batchnorm_backward(u->dc, kn_model_grad(m, u->param + 1), kn_model_grad(m, u->param + 2),
                            u->dn, u->c, u->mean, u->invstd, kn_model_param(m, u->param + 1), B, C,
                            HW);
      kn_conv2d_backward(&u->conv, dinp, kn_model_grad(m, u->param), NULL, u->dc, inp,
                         kn_model_param(m, u->param), B, s->workspace);
    } else if (u->type == U_SE) {
      const int S = u->squeeze;
      kn_channel_scale_backward(dinp, u->dscale, u->dout, inp, u->scale, B, C, HW);
      kn_hardsigmoid_backward(u->df2, u->dscale, u->f2, (long)B * C);
      kn_linear_backward(u->dr1, kn_model_grad(m, u->param + 2), kn_model_grad(m, u->param + 3),
                         u->df2, u->f1, kn_model_param(m, u->param + 2), B, S, C);
      kn_relu_backward(u->df1, u->dr1, u->f1, (long)B * S);
      kn_linear_backward(u->dpooled, kn_model_grad(m, u->param), kn_model_grad(m, u->param + 1),
                         u->df1, u->pooled, kn_model_param(m, u->param), B, C, S);
      kn_adaptive_avgpool2d_backward(dinp, u->dpooled, B, C, u->h, u->w, 1, 1);
    } else {
      kn_add_backward(s->units[u->skip].dout, dinp, u->dout, n);
    }
  }
  return loss;
}

static void mb_infer(kn_model *m, const float *x, int B, float *logits) {
  mb_forward(m, x, B, 0);
  memcpy(logits, ((mb_state *)m->state)->logits, (size_t)B * CLASSES * sizeof(float));
}

static void mb_destroy(kn_model *m) {
  mb_state *s = m->state;
  if (!s) return;
  kn_arena_free(&s->arena);
  free(s);
  m->state = NULL;
}

const kn_model_kind kn_model_mobilenet_v3_small = {
    .name = "mobilenet_v3_small",
    .summary = "torchvision MobileNetV3-small (BN, SE, hardswish; 1,528,106 parameters), 3x32x32",
    .channels = 3,
    .height = 32,
    .width = 32,
    .classes = CLASSES,
    .bn_momentum = 0.01f,
    .init = mb_init,
    .train_step = mb_train_step,
    .infer = mb_infer,
    .destroy = mb_destroy,
};
