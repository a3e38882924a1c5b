/* Model "vgg11": torchvision.models.vgg11(num_classes=10) (configuration "A", no batch norm)
 * on 3x32x32 inputs, the largest model of the paper's set (128,807,306 parameters, dominated by
 * the first classifier layer).
 *   features    conv3x3(3,64)-ReLU-M  conv(64,128)-ReLU-M  conv(128,256)-ReLU conv(256,256)-ReLU-M
 *               conv(256,512)-ReLU conv(512,512)-ReLU-M  conv(512,512)-ReLU conv(512,512)-ReLU-M
 *               (all convs padding 1, M = MaxPool2d(2,2)); 32x32 -> (B,512,1,1)
 *   avgpool     AdaptiveAvgPool2d((7,7)): on a 1x1 map it replicates each value 49 times
 *   classifier  Linear(25088,4096)-ReLU-Dropout(0.5)-Linear(4096,4096)-ReLU-Dropout(0.5)-
 *               Linear(4096,10)
 * state_dict names: features.{0,3,6,8,11,13,16,18}.{weight,bias},
 *                   classifier.{0,3,6}.{weight,bias}   (the Sequential indices of torchvision)
 * Init (torchvision's VGG._initialize_weights, from one kn_rng stream in state_dict order):
 * conv weights kaiming_normal_(mode="fan_out", relu), i.e. N(0, 2 / (OC*3*3)); linear weights
 * N(0, 0.01^2); all biases 0.
 * Dropout: off in train_step unless m->dropout_seed != 0; the mask seed of each dropout layer is
 * derived from m->dropout_seed and the layer index, so callers wanting fresh masks every step
 * change m->dropout_seed per step (all peers/workers computing one batch must use the same).
 * ReLUs run in place on the conv/linear outputs (like torchvision's inplace=True): backward only
 * needs the ReLU output. All activations come from one arena sized in init.
 * Pool + classifier.0 fusion: at 32x32 input the features end at (B,512,1,1), so the adaptive
 * average pool does nothing but replicate each channel value 49 times, and Linear(25088,4096) on
 * the replicated vector equals a Linear(512,4096) whose weight is the sum of each input
 * feature's 49 weight columns (kn_linear_repeated_*: exact algebra, only the float summation
 * order differs). That runs 1/49 of the classifier's largest gemm and never builds the
 * (B,25088) pooled matrix; the weight gradient is the 512-wide one broadcast to the 49 copies.
 * The parameters and gradients keep torchvision's full (4096,25088) layout. Init checks the
 * geometry that makes this valid (1x1 feature map). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/layers.h"
#include "kernels/model.h"

enum { NUM_CONV = 8, NUM_STAGES = 13, CLASSES = 10, HIDDEN = 4096, POOLED = 7 };
enum { FEATURES = 512, FLAT = FEATURES * POOLED * POOLED };
/* Configuration "A": output channels of each stage, 0 for a max pool. */
static const int stage_channels[NUM_STAGES] = {64,  0,   128, 0,   256, 256, 0,
                                               512, 512, 0,   512, 512, 0};

typedef struct {
  int is_conv;
  int conv_index;     /* 0..7 for convs */
  kn_conv2d conv;     /* convs */
  kn_pool2d pool;     /* pools */
  int channels, h, w; /* output geometry */
  float *out;         /* conv: ReLU(conv(x)) in place; pool: pooled values */
  int32_t *argmax;    /* pools */
  float *dout;        /* gradient of out */
  float *dpre;        /* convs: gradient of the conv output before the ReLU */
} vgg_stage;

typedef struct {
  vgg_stage stages[NUM_STAGES];
  kn_arena arena;
  float *workspace;
  float *folded;          /* classifier.0's weight summed over the 49 repeats: (4096,512) */
  float *dfolded;         /* its gradient (backward scratch) */
  float *h0, *mask0, *d0; /* classifier.0 output (ReLU in place), dropout mask, dropped */
  float *h1, *mask1, *d1; /* classifier.3 */
  float *logits, *probs;
  float *grad_start;
  size_t grad_floats;
  float *dd0, *dh0, *dpre0, *dd1, *dh1, *dpre1, *dlogits;
  int store_fc0; /* backward writes classifier.0's weight gradient instead of adding to it */
} vgg_state;

/* Parameter tensor indices: 2 per conv, then the classifier. */
enum { FC0_W = 2 * NUM_CONV, FC0_B, FC3_W, FC3_B, FC6_W, FC6_B, NUM_TENSORS };

/* Fills p[0..n) with N(0, std^2): Marsaglia's polar method, two samples per accepted pair and
 * no trigonometry (VGG11 draws 128M of them at init). */
static void fill_normal(kn_rng *rng, float *p, size_t n, double std) {
  for (size_t i = 0; i < n;) {
    double u = 2.0 * kn_rng_uniform(rng) - 1.0, v = 2.0 * kn_rng_uniform(rng) - 1.0;
    double s = u * u + v * v;
    if (s >= 1.0 || s == 0.0) continue;
    double f = std * sqrt(-2.0 * log(s) / s);
    p[i++] = (float)(u * f);
    if (i < n) p[i++] = (float)(v * f);
  }
}

static void vgg_layout(vgg_state *s, int max_batch) {
  kn_arena *a = &s->arena;
  const size_t B = (size_t)max_batch;
  size_t ws = 0;
  for (int k = 0; k < NUM_STAGES; k++)
    if (s->stages[k].is_conv) {
      size_t need = kn_conv2d_workspace_floats(&s->stages[k].conv, max_batch);
      if (need > ws) ws = need;
    }
  s->workspace = kn_arena_take(a, ws);
  for (int k = 0; k < NUM_STAGES; k++) {
    vgg_stage *st = &s->stages[k];
    size_t n = B * st->channels * st->h * st->w;
    st->out = kn_arena_take(a, n);
    st->argmax = st->is_conv ? NULL : kn_arena_take_int32(a, n);
  }
  s->folded = kn_arena_take(a, (size_t)HIDDEN * FEATURES);
  s->dfolded = kn_arena_take(a, (size_t)HIDDEN * FEATURES);
  s->h0 = kn_arena_take(a, B * HIDDEN), s->mask0 = kn_arena_take(a, B * HIDDEN);
  s->d0 = kn_arena_take(a, B * HIDDEN);
  s->h1 = kn_arena_take(a, B * HIDDEN), s->mask1 = kn_arena_take(a, B * HIDDEN);
  s->d1 = kn_arena_take(a, B * HIDDEN);
  s->logits = kn_arena_take(a, B * CLASSES), s->probs = kn_arena_take(a, B * CLASSES);
  size_t grad_begin = a->used;
  for (int k = 0; k < NUM_STAGES; k++) {
    vgg_stage *st = &s->stages[k];
    size_t n = B * st->channels * st->h * st->w;
    st->dout = kn_arena_take(a, n);
    st->dpre = st->is_conv ? kn_arena_take(a, n) : NULL;
  }
  s->dd0 = kn_arena_take(a, B * HIDDEN), s->dh0 = kn_arena_take(a, B * HIDDEN);
  s->dpre0 = kn_arena_take(a, B * HIDDEN);
  s->dd1 = kn_arena_take(a, B * HIDDEN), s->dh1 = kn_arena_take(a, B * HIDDEN);
  s->dpre1 = kn_arena_take(a, B * HIDDEN);
  s->dlogits = kn_arena_take(a, B * CLASSES);
  s->grad_floats = a->used - grad_begin;
  s->grad_start = a->base ? a->base + grad_begin : NULL;
}

static int vgg_init(kn_model *m, int max_batch, uint64_t seed, char *err, size_t errlen) {
  vgg_state *s = calloc(1, sizeof *s);
  if (!s) goto oom;
  m->state = s;
  int c = 3, h = 32, w = 32, conv = 0;
  for (int k = 0; k < NUM_STAGES; k++) {
    vgg_stage *st = &s->stages[k];
    char name[64];
    if (stage_channels[k]) {
      st->is_conv = 1;
      st->conv_index = conv++;
      if (kn_conv2d_init(&st->conv, c, stage_channels[k], 3, 1, 1, 1, h, w)) goto geometry;
      c = stage_channels[k];
      /* torchvision's Sequential index of this conv: conv, ReLU (and pool) each take one. */
      int seq = 0;
      for (int j = 0; j < k; j++) seq += stage_channels[j] ? 2 : 1;
      int64_t wshape[4] = {c, st->conv.in_channels, 3, 3}, bshape[1] = {c};
      snprintf(name, sizeof name, "features.%d.weight", seq);
      if (kn_model_add_param(m, name, 4, wshape) < 0) goto declare;
      snprintf(name, sizeof name, "features.%d.bias", seq);
      if (kn_model_add_param(m, name, 1, bshape) < 0) goto declare;
    } else {
      if (kn_pool2d_init(&st->pool, c, h, w, 2, 2, 0, 0)) goto geometry;
      h = st->pool.out_h, w = st->pool.out_w;
    }
    st->channels = c, st->h = h, st->w = w;
  }
  if (c != FEATURES || h != 1 || w != 1) goto geometry; /* the pool only replicates */
  static const struct {
    const char *name;
    int64_t out, in;
  } fc[3] = {{"classifier.0", HIDDEN, FLAT},
             {"classifier.3", HIDDEN, HIDDEN},
             {"classifier.6", CLASSES, HIDDEN}};
  for (int i = 0; i < 3; i++) {
    char name[64];
    int64_t wshape[2] = {fc[i].out, fc[i].in}, bshape[1] = {fc[i].out};
    snprintf(name, sizeof name, "%s.weight", fc[i].name);
    if (kn_model_add_param(m, name, 2, wshape) < 0) goto declare;
    snprintf(name, sizeof name, "%s.bias", fc[i].name);
    if (kn_model_add_param(m, name, 1, bshape) < 0) goto declare;
  }
  if (kn_model_allocate_blocks(m) != 0) {
    snprintf(err, errlen, "vgg11: out of memory for %zu parameters", m->num_params);
    return -1;
  }
  kn_rng rng;
  kn_rng_seed(&rng, seed);
  for (int i = 0; i < NUM_TENSORS; i++) {
    const kn_tensor_info *t = &m->param_tensors[i];
    float *p = kn_model_param(m, i);
    if (t->rank == 1) continue; /* biases stay 0 (calloc) */
    fill_normal(&rng, p, t->count, t->rank == 4 ? sqrt(2.0 / (double)(t->shape[0] * 9)) : 0.01);
  }
  vgg_layout(s, max_batch);
  if (kn_arena_allocate(&s->arena) != 0) goto oom;
  vgg_layout(s, max_batch);
  return 0;
geometry:
  snprintf(err, errlen, "vgg11: inconsistent layer geometry");
  return -1;
declare:
  snprintf(err, errlen, "vgg11: cannot declare parameter tensors");
  return -1;
oom:
  snprintf(err, errlen, "vgg11: out of memory for activations of batch %d", max_batch);
  return -1;
}

static uint64_t layer_dropout_seed(const kn_model *m, uint64_t layer) {
  if (m->dropout_seed == 0) return 0;
  uint64_t state = m->dropout_seed ^ (layer * 0x9E3779B97F4A7C15ull);
  uint64_t seed = kn_splitmix64(&state);
  return seed ? seed : 1;
}

static void vgg_forward(kn_model *m, const float *x, int B, int training) {
  vgg_state *s = m->state;
  const float *inp = x;
  for (int k = 0; k < NUM_STAGES; k++) {
    vgg_stage *st = &s->stages[k];
    long n = (long)B * st->channels * st->h * st->w;
    if (st->is_conv) {
      kn_conv2d_forward(&st->conv, st->out, inp, kn_model_param(m, 2 * st->conv_index),
                        kn_model_param(m, 2 * st->conv_index + 1), B, s->workspace);
      kn_relu_forward(st->out, st->out, n);
    } else {
      kn_maxpool2d_forward(&st->pool, st->out, st->argmax, inp, B);
    }
    inp = st->out;
  }
  const uint64_t seed0 = training ? layer_dropout_seed(m, 2) : 0,
                 seed1 = training ? layer_dropout_seed(m, 5) : 0;
  /* avgpool + flatten + classifier.0, fused (see the top of the file) */
  kn_linear_repeated_forward(s->h0, s->folded, inp, kn_model_param(m, FC0_W),
                             kn_model_param(m, FC0_B), B, FEATURES, POOLED * POOLED, HIDDEN);
  kn_relu_forward(s->h0, s->h0, (long)B * HIDDEN);
  kn_dropout_forward(s->d0, s->mask0, s->h0, (long)B * HIDDEN, 0.5f, seed0);
  kn_linear_forward(s->h1, s->d0, kn_model_param(m, FC3_W), kn_model_param(m, FC3_B), B, HIDDEN,
                    HIDDEN);
  kn_relu_forward(s->h1, s->h1, (long)B * HIDDEN);
  kn_dropout_forward(s->d1, s->mask1, s->h1, (long)B * HIDDEN, 0.5f, seed1);
  kn_linear_forward(s->logits, s->d1, kn_model_param(m, FC6_W), kn_model_param(m, FC6_B), B, HIDDEN,
                    CLASSES);
}

static float vgg_train_step(kn_model *m, const float *x, const int32_t *y, int B, float *logits) {
  vgg_state *s = m->state;
  if (B < 1 || B > m->max_batch) return NAN; /* caller bug: batch outside 1..max_batch */
  vgg_forward(m, x, B, 1);
  float loss = kn_cross_entropy_forward(s->probs, s->logits, y, B, CLASSES);
  if (logits) memcpy(logits, s->logits, (size_t)B * CLASSES * sizeof(float));

  memset(s->grad_start, 0, s->grad_floats * sizeof(float));
  const long nh = (long)B * HIDDEN;
  kn_cross_entropy_backward(s->dlogits, s->probs, y, B, CLASSES);
  kn_linear_backward(s->dd1, kn_model_grad(m, FC6_W), kn_model_grad(m, FC6_B), s->dlogits, s->d1,
                     kn_model_param(m, FC6_W), B, HIDDEN, CLASSES);
  kn_dropout_backward(s->dh1, s->dd1, s->mask1, nh);
  kn_relu_backward(s->dpre1, s->dh1, s->h1, nh);
  kn_linear_backward(s->dd0, kn_model_grad(m, FC3_W), kn_model_grad(m, FC3_B), s->dpre1, s->d0,
                     kn_model_param(m, FC3_W), B, HIDDEN, HIDDEN);
  kn_dropout_backward(s->dh0, s->dd0, s->mask0, nh);
  kn_relu_backward(s->dpre0, s->dh0, s->h0, nh);
  (s->store_fc0 ? kn_linear_repeated_backward_store : kn_linear_repeated_backward)(
      s->stages[NUM_STAGES - 1].dout, kn_model_grad(m, FC0_W), kn_model_grad(m, FC0_B), s->dpre0,
      s->stages[NUM_STAGES - 1].out, s->folded, B, FEATURES, POOLED * POOLED, HIDDEN, s->dfolded);
  for (int k = NUM_STAGES - 1; k >= 0; k--) {
    vgg_stage *st = &s->stages[k];
    const float *inp = k ? s->stages[k - 1].out : x;
    float *dinp = k ? s->stages[k - 1].dout : NULL;
    if (st->is_conv) {
      kn_relu_backward(st->dpre, st->dout, st->out, (long)B * st->channels * st->h * st->w);
      kn_conv2d_backward(&st->conv, dinp, kn_model_grad(m, 2 * st->conv_index),
                         kn_model_grad(m, 2 * st->conv_index + 1), st->dpre, inp,
                         kn_model_param(m, 2 * st->conv_index), B, s->workspace);
    } else {
      kn_maxpool2d_backward(&st->pool, dinp, st->dout, st->argmax, B);
    }
  }
  return loss;
}

/* kn_model_loss_and_grad's step: zeroes every gradient but classifier.0's weight (411 of the
 * 515 MB), which backward then writes instead of adding to. The two passes over it (memset,
 * then the broadcast adding the 512-wide gradient into the 49 columns) took 48.7 ms, the
 * storing broadcast alone 20.9 ms (isolated, this VM): ~28 ms, ~5 % of an AVX-512 step. */
static float vgg_train_step_fresh(kn_model *m, const float *x, const int32_t *y, int B) {
  vgg_state *s = m->state;
  float *fc0 = kn_model_grad(m, FC0_W);
  const size_t before = (size_t)(fc0 - m->grads), count = m->param_tensors[FC0_W].count;
  memset(m->grads, 0, before * sizeof(float));
  memset(fc0 + count, 0, (m->num_params - before - count) * sizeof(float));
  s->store_fc0 = 1;
  const float loss = vgg_train_step(m, x, y, B, NULL);
  s->store_fc0 = 0;
  return loss;
}

static void vgg_infer(kn_model *m, const float *x, int B, float *logits) {
  vgg_forward(m, x, B, 0);
  memcpy(logits, ((vgg_state *)m->state)->logits, (size_t)B * CLASSES * sizeof(float));
}

static void vgg_destroy(kn_model *m) {
  vgg_state *s = m->state;
  if (!s) return;
  kn_arena_free(&s->arena);
  free(s);
  m->state = NULL;
}

const kn_model_kind kn_model_vgg11 = {
    .name = "vgg11",
    .summary = "torchvision VGG11 (8 conv3x3 + 3 linear, 128.8M parameters), 3x32x32, 10 classes",
    .channels = 3,
    .height = 32,
    .width = 32,
    .classes = CLASSES,
    .init = vgg_init,
    .train_step = vgg_train_step,
    .train_step_fresh = vgg_train_step_fresh,
    .infer = vgg_infer,
    .destroy = vgg_destroy,
};
