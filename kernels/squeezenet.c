/* Model "squeezenet1_1": torchvision.models.squeezenet1_1(num_classes=10) on 3x32x32 inputs
 * (727,626 parameters), the paper's small convolutional model.
 *   features.0   Conv2d(3,64,3,stride 2) - ReLU                      -> (B,64,15,15)
 *   features.2   MaxPool2d(3,2,ceil_mode=True)                        -> (B,64,7,7)
 *   features.3,4 Fire(64,16,64,64), Fire(128,16,64,64)
 *   features.5   MaxPool2d(3,2,ceil)                                   -> 3x3
 *   features.6,7 Fire(128,32,128,128), Fire(256,32,128,128)
 *   features.8   MaxPool2d(3,2,ceil)                                   -> 1x1
 *   features.9..12 Fire(256,48,192,192), Fire(384,48,192,192), Fire(384,64,256,256),
 *                Fire(512,64,256,256)                                 -> (B,512,1,1)
 *   classifier   Dropout(0.5) - Conv2d(512,10,1) (classifier.1) - ReLU - AdaptiveAvgPool2d(1)
 * Fire(C,S,E1,E3): squeeze = ReLU(Conv1x1(C,S)); out = cat(ReLU(Conv1x1(S,E1)),
 *                  ReLU(Conv3x3(S,E3,pad 1))) on channels.
 * state_dict names: features.0.{weight,bias}, features.N.{squeeze,expand1x1,expand3x3}.{weight,
 * bias}, classifier.1.{weight,bias}.
 * Init (torchvision): kaiming_uniform_ (bound sqrt(6 / fan_in)) for every conv except the
 * final one, N(0, 0.01^2) for classifier.1.weight, biases 0; one kn_rng stream in state_dict
 * order. Dropout: off unless m->dropout_seed != 0 (mask seed derived from it; vary it per step
 * for fresh masks). ReLUs run in place; all activations come from one arena.
 * Layout: the features run on CNHW tensors (channel-major, the B samples' planes of a channel
 * side by side; kn_conv2d_cnhw_*): the convolutions' gemms read and write the activations in
 * place, the 1x1 ones need no im2col, and a fire module's two expand convs write their halves of
 * the concatenation in place (the channel concat of CNHW tensors is two adjacent blocks). Max
 * pooling works plane by plane and does not care about the order of the planes. The input is
 * swapped to CNHW on entry and the 512 final features back to NCHW for the classifier, whose
 * dropout mask therefore has the same element order as in NCHW (1x1 planes: a few kB). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/layers.h"
#include "kernels/model.h"

enum { CLASSES = 10, NUM_STAGES = 12, FINAL_CHANNELS = 512 };
enum { STAGE_CONV, STAGE_POOL, STAGE_FIRE };

typedef struct {
  int type, seq;              /* seq: torchvision's features index */
  kn_conv2d conv;             /* STAGE_CONV, or the squeeze conv of a fire */
  kn_conv2d expand1, expand3; /* STAGE_FIRE */
  kn_pool2d pool;             /* STAGE_POOL */
  int param;                  /* index of the first parameter tensor */
  int channels, h, w;         /* output geometry */
  float *out, *dout;          /* the stage's output (CNHW; fire: expand1 then expand3 channels)
                                 and its gradient (turned into the pre-ReLU one in place) */
  int32_t *argmax;            /* pools */
  float *sq, *dsq;            /* fire: squeeze output (ReLU in place) and its gradient */
} sq_stage;

typedef struct {
  sq_stage stages[NUM_STAGES];
  kn_conv2d final_conv;
  int final_param, final_h, final_w;
  kn_arena arena;
  float *workspace;
  float *input;    /* x swapped to CNHW */
  float *features; /* the last stage's output swapped back to NCHW */
  float *dropped, *mask, *cls, *logits, *probs;
  float *grad_start; /* the gradients backward accumulates into, zeroed each step */
  size_t grad_floats;
  float *dfeatures, *ddropped, *dcls, *dclspre, *dlogits;
} sq_state;

static size_t max_size(size_t a, size_t b) {
  return a > b ? a : b;
}

static void sq_layout(sq_state *s, int max_batch) {
  kn_arena *a = &s->arena;
  const size_t B = (size_t)max_batch;
  size_t ws = kn_conv2d_workspace_floats(&s->final_conv, max_batch);
  for (int k = 0; k < NUM_STAGES; k++) {
    sq_stage *st = &s->stages[k];
    if (st->type == STAGE_POOL) continue;
    ws = max_size(ws, kn_conv2d_cnhw_workspace_floats(&st->conv, max_batch));
    if (st->type == STAGE_FIRE) {
      ws = max_size(ws, kn_conv2d_cnhw_workspace_floats(&st->expand1, max_batch));
      ws = max_size(ws, kn_conv2d_cnhw_workspace_floats(&st->expand3, max_batch));
    }
  }
  s->workspace = kn_arena_take(a, ws);
  s->input = kn_arena_take(
      a, B * s->stages[0].conv.in_channels * s->stages[0].conv.in_h * s->stages[0].conv.in_w);
  for (int k = 0; k < NUM_STAGES; k++) {
    sq_stage *st = &s->stages[k];
    size_t hw = (size_t)st->h * st->w;
    st->out = kn_arena_take(a, B * st->channels * hw);
    if (st->type == STAGE_POOL) st->argmax = kn_arena_take_int32(a, B * st->channels * hw);
    if (st->type == STAGE_FIRE) st->sq = kn_arena_take(a, B * st->conv.out_channels * hw);
  }
  const size_t fhw = (size_t)s->final_h * s->final_w;
  s->features = kn_arena_take(a, B * FINAL_CHANNELS * fhw);
  s->dropped = kn_arena_take(a, B * FINAL_CHANNELS * fhw);
  s->mask = kn_arena_take(a, B * FINAL_CHANNELS * fhw);
  s->cls = kn_arena_take(a, B * CLASSES * fhw);
  s->logits = kn_arena_take(a, B * CLASSES), s->probs = kn_arena_take(a, B * CLASSES);
  size_t grad_begin = a->used;
  for (int k = 0; k < NUM_STAGES; k++) {
    sq_stage *st = &s->stages[k];
    size_t hw = (size_t)st->h * st->w, n = B * st->channels * hw;
    st->dout = kn_arena_take(a, n);
    if (st->type == STAGE_FIRE) st->dsq = kn_arena_take(a, B * st->conv.out_channels * hw);
  }
  s->dfeatures = kn_arena_take(a, B * FINAL_CHANNELS * fhw);
  s->ddropped = kn_arena_take(a, B * FINAL_CHANNELS * fhw);
  s->dcls = kn_arena_take(a, B * CLASSES * fhw), s->dclspre = kn_arena_take(a, B * CLASSES * fhw);
  s->dlogits = kn_arena_take(a, B * CLASSES);
  s->grad_floats = a->used - grad_begin;
  s->grad_start = a->base ? a->base + grad_begin : NULL;
}

static int add_conv_params(kn_model *m, const char *prefix, const kn_conv2d *conv) {
  char name[96];
  int64_t w[4] = {conv->out_channels, conv->in_channels / conv->groups, conv->kernel_h,
                  conv->kernel_w};
  int64_t b[1] = {conv->out_channels};
  snprintf(name, sizeof name, "%s.weight", prefix);
  int first = kn_model_add_param(m, name, 4, w);
  snprintf(name, sizeof name, "%s.bias", prefix);
  if (first < 0 || kn_model_add_param(m, name, 1, b) < 0) return -1;
  return first;
}

static int sq_init(kn_model *m, int max_batch, uint64_t seed, char *err, size_t errlen) {
  /* The features Sequential: S squeeze, E expand channels per fire; 0 for pools. */
  static const struct {
    int type, squeeze, expand;
  } cfg[NUM_STAGES] = {
      {STAGE_CONV, 0, 64},   {STAGE_POOL, 0, 0},    {STAGE_FIRE, 16, 64},  {STAGE_FIRE, 16, 64},
      {STAGE_POOL, 0, 0},    {STAGE_FIRE, 32, 128}, {STAGE_FIRE, 32, 128}, {STAGE_POOL, 0, 0},
      {STAGE_FIRE, 48, 192}, {STAGE_FIRE, 48, 192}, {STAGE_FIRE, 64, 256}, {STAGE_FIRE, 64, 256},
  };
  sq_state *s = calloc(1, sizeof *s);
  if (!s) goto oom;
  m->state = s;
  /* features.1 is the first ReLU: the Sequential index skips it, so stage k >= 1 is index k+1. */
  int c = 3, h = 32, w = 32;
  for (int k = 0; k < NUM_STAGES; k++) {
    sq_stage *st = &s->stages[k];
    st->type = cfg[k].type;
    st->seq = k == 0 ? 0 : k + 1;
    char prefix[64];
    if (st->type == STAGE_CONV) {
      if (kn_conv2d_init(&st->conv, c, cfg[k].expand, 3, 2, 0, 1, h, w)) goto geometry;
      snprintf(prefix, sizeof prefix, "features.%d", st->seq);
      if ((st->param = add_conv_params(m, prefix, &st->conv)) < 0) goto declare;
      c = cfg[k].expand, h = st->conv.out_h, w = st->conv.out_w;
    } else if (st->type == STAGE_POOL) {
      if (kn_pool2d_init(&st->pool, c, h, w, 3, 2, 0, 1)) goto geometry;
      h = st->pool.out_h, w = st->pool.out_w;
    } else {
      int S = cfg[k].squeeze, E = cfg[k].expand;
      if (kn_conv2d_init(&st->conv, c, S, 1, 1, 0, 1, h, w) ||
          kn_conv2d_init(&st->expand1, S, E, 1, 1, 0, 1, h, w) ||
          kn_conv2d_init(&st->expand3, S, E, 3, 1, 1, 1, h, w))
        goto geometry;
      snprintf(prefix, sizeof prefix, "features.%d.squeeze", st->seq);
      if ((st->param = add_conv_params(m, prefix, &st->conv)) < 0) goto declare;
      snprintf(prefix, sizeof prefix, "features.%d.expand1x1", st->seq);
      if (add_conv_params(m, prefix, &st->expand1) < 0) goto declare;
      snprintf(prefix, sizeof prefix, "features.%d.expand3x3", st->seq);
      if (add_conv_params(m, prefix, &st->expand3) < 0) goto declare;
      c = 2 * E;
    }
    st->channels = c, st->h = h, st->w = w;
  }
  if (c != FINAL_CHANNELS) goto geometry;
  s->final_h = h, s->final_w = w;
  if (kn_conv2d_init(&s->final_conv, FINAL_CHANNELS, CLASSES, 1, 1, 0, 1, h, w)) goto geometry;
  if ((s->final_param = add_conv_params(m, "classifier.1", &s->final_conv)) < 0) goto declare;
  if (kn_model_allocate_blocks(m) != 0) {
    snprintf(err, errlen, "squeezenet1_1: out of memory for %zu parameters", m->num_params);
    return -1;
  }
  kn_rng rng;
  kn_rng_seed(&rng, seed);
  for (int i = 0; i < m->num_param_tensors; i++) {
    const kn_tensor_info *t = &m->param_tensors[i];
    if (t->rank == 1) continue; /* biases 0 */
    float *p = kn_model_param(m, i);
    if (i == s->final_param) {
      for (size_t j = 0; j < t->count; j++) {
        double u1 = 1.0 - (double)kn_rng_uniform(&rng), u2 = (double)kn_rng_uniform(&rng);
        p[j] = (float)(0.01 * sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2));
      }
    } else {
      long fan_in = (long)(t->count / (size_t)t->shape[0]);
      kn_rng_fill_symmetric(&rng, p, (long)t->count, (float)sqrt(6.0 / (double)fan_in));
    }
  }
  sq_layout(s, max_batch);
  if (kn_arena_allocate(&s->arena) != 0) goto oom;
  sq_layout(s, max_batch);
  return 0;
geometry:
  snprintf(err, errlen, "squeezenet1_1: inconsistent layer geometry");
  return -1;
declare:
  snprintf(err, errlen, "squeezenet1_1: cannot declare parameter tensors");
  return -1;
oom:
  snprintf(err, errlen, "squeezenet1_1: out of memory for activations of batch %d", max_batch);
  return -1;
}

static void sq_forward(kn_model *m, const float *x, int B, int training) {
  sq_state *s = m->state;
  const kn_conv2d *first = &s->stages[0].conv;
  kn_swap_outer_planes(s->input, x, B, first->in_channels, (long)first->in_h * first->in_w);
  const float *inp = s->input;
  for (int k = 0; k < NUM_STAGES; k++) {
    sq_stage *st = &s->stages[k];
    const long hw = (long)st->h * st->w;
    /* convolutions without bias, then bias + ReLU in one pass per output */
    if (st->type == STAGE_CONV) {
      kn_conv2d_cnhw_forward(&st->conv, st->out, inp, kn_model_param(m, st->param), NULL, B,
                             s->workspace);
      kn_bias_relu_forward(st->out, kn_model_param(m, st->param + 1), st->channels, B * hw);
    } else if (st->type == STAGE_POOL) {
      kn_maxpool2d_forward(&st->pool, st->out, st->argmax, inp, B);
    } else {
      const int S = st->conv.out_channels, E1 = st->expand1.out_channels;
      const int E3 = st->expand3.out_channels;
      float *e3 = st->out + (long)E1 * B * hw; /* the concatenation's second half */
      kn_conv2d_cnhw_forward(&st->conv, st->sq, inp, kn_model_param(m, st->param), NULL, B,
                             s->workspace);
      kn_bias_relu_forward(st->sq, kn_model_param(m, st->param + 1), S, B * hw);
      kn_conv2d_cnhw_forward(&st->expand1, st->out, st->sq, kn_model_param(m, st->param + 2), NULL,
                             B, s->workspace);
      kn_bias_relu_forward(st->out, kn_model_param(m, st->param + 3), E1, B * hw);
      kn_conv2d_cnhw_forward(&st->expand3, e3, st->sq, kn_model_param(m, st->param + 4), NULL, B,
                             s->workspace);
      kn_bias_relu_forward(e3, kn_model_param(m, st->param + 5), E3, B * hw);
    }
    inp = st->out;
  }
  const long fhw = (long)s->final_h * s->final_w;
  kn_swap_outer_planes(s->features, inp, FINAL_CHANNELS, B, fhw);
  uint64_t seed = 0;
  if (training && m->dropout_seed) {
    uint64_t state = m->dropout_seed;
    seed = kn_splitmix64(&state) | 1;
  }
  kn_dropout_forward(s->dropped, s->mask, s->features, B * FINAL_CHANNELS * fhw, 0.5f, seed);
  kn_conv2d_forward(&s->final_conv, s->cls, s->dropped, kn_model_param(m, s->final_param),
                    kn_model_param(m, s->final_param + 1), B, s->workspace);
  kn_relu_forward(s->cls, s->cls, B * CLASSES * fhw);
  kn_adaptive_avgpool2d_forward(s->logits, s->cls, B, CLASSES, s->final_h, s->final_w, 1, 1);
}

static float sq_train_step(kn_model *m, const float *x, const int32_t *y, int B, float *logits) {
  sq_state *s = m->state;
  if (B < 1 || B > m->max_batch) return NAN; /* caller bug: batch outside 1..max_batch */
  sq_forward(m, x, B, 1);
  float loss = kn_cross_entropy_forward(s->probs, s->logits, y, B, CLASSES);
  if (logits) memcpy(logits, s->logits, (size_t)B * CLASSES * sizeof(float));

  memset(s->grad_start, 0, s->grad_floats * sizeof(float));
  const long fhw = (long)s->final_h * s->final_w;
  kn_cross_entropy_backward(s->dlogits, s->probs, y, B, CLASSES);
  kn_adaptive_avgpool2d_backward(s->dcls, s->dlogits, B, CLASSES, s->final_h, s->final_w, 1, 1);
  kn_relu_backward(s->dclspre, s->dcls, s->cls, B * CLASSES * fhw);
  kn_conv2d_backward(&s->final_conv, s->ddropped, kn_model_grad(m, s->final_param),
                     kn_model_grad(m, s->final_param + 1), s->dclspre, s->dropped,
                     kn_model_param(m, s->final_param), B, s->workspace);
  kn_dropout_backward(s->dfeatures, s->ddropped, s->mask, B * FINAL_CHANNELS * fhw);
  kn_swap_outer_planes(s->stages[NUM_STAGES - 1].dout, s->dfeatures, B, FINAL_CHANNELS, fhw);
  for (int k = NUM_STAGES - 1; k >= 0; k--) {
    sq_stage *st = &s->stages[k];
    const float *inp = k ? s->stages[k - 1].out : s->input;
    float *dinp = k ? s->stages[k - 1].dout : NULL;
    const long hw = (long)st->h * st->w;
    if (st->type == STAGE_CONV) {
      kn_relu_backward_store(st->dout, st->dout, st->out, B * st->channels * hw);
      kn_conv2d_cnhw_backward(&st->conv, dinp, kn_model_grad(m, st->param),
                              kn_model_grad(m, st->param + 1), st->dout, inp,
                              kn_model_param(m, st->param), B, s->workspace);
    } else if (st->type == STAGE_POOL) {
      kn_maxpool2d_backward(&st->pool, dinp, st->dout, st->argmax, B);
    } else {
      const long n_sq = B * st->conv.out_channels * hw, n_e1 = B * st->expand1.out_channels * hw;
      kn_relu_backward_store(st->dout, st->dout, st->out, B * st->channels * hw);
      kn_conv2d_cnhw_backward(&st->expand1, st->dsq, kn_model_grad(m, st->param + 2),
                              kn_model_grad(m, st->param + 3), st->dout, st->sq,
                              kn_model_param(m, st->param + 2), B, s->workspace);
      kn_conv2d_cnhw_backward(&st->expand3, st->dsq, kn_model_grad(m, st->param + 4),
                              kn_model_grad(m, st->param + 5), st->dout + n_e1, st->sq,
                              kn_model_param(m, st->param + 4), B, s->workspace);
      kn_relu_backward_store(st->dsq, st->dsq, st->sq, n_sq);
      kn_conv2d_cnhw_backward(&st->conv, dinp, kn_model_grad(m, st->param),
                              kn_model_grad(m, st->param + 1), st->dsq, inp,
                              kn_model_param(m, st->param), B, s->workspace);
    }
  }
  return loss;
}

static void sq_infer(kn_model *m, const float *x, int B, float *logits) {
  sq_forward(m, x, B, 0);
  memcpy(logits, ((sq_state *)m->state)->logits, (size_t)B * CLASSES * sizeof(float));
}

static void sq_destroy(kn_model *m) {
  sq_state *s = m->state;
  if (!s) return;
  kn_arena_free(&s->arena);
  free(s);
  m->state = NULL;
}

const kn_model_kind kn_model_squeezenet1_1 = {
    .name = "squeezenet1_1",
    .summary = "torchvision SqueezeNet 1.1 (conv + 8 fire modules, 727,626 parameters), 3x32x32",
    .channels = 3,
    .height = 32,
    .width = 32,
    .classes = CLASSES,
    .cnhw = 1,
    .init = sq_init,
    .train_step = sq_train_step,
    .infer = sq_infer,
    .destroy = sq_destroy,
};
