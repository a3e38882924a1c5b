/* Unit tests for the layer library (kernels/layers.h): every forward against an independent
 * naive reference computed in double, every backward against central finite differences of the
 * scalar objective L = sum(out * r) for a fixed random r, so dL/dout = r. Gradient arrays are
 * pre-filled with 0.5 before backward, which checks that backward ACCUMULATES. Each layer runs
 * in several geometries that reach every code path (conv2d: depthwise, per-sample gemm, batched
 * gemm with a remainder chunk, pointwise, groups, strides). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/layers.h"
#include "kernels/rng.h"
#include "tests/check.h"
#include "tests/layer_check.h"

/* What gradcheck perturbs: x[0..n) whose analytic gradient (pre-filled, then accumulated into
 * by backward) is grad. */
typedef struct {
  const char *name;
  float *x;
  const float *grad;
  long n;
} target;

typedef void (*forward_fn)(void *ctx);

/* Compares grad - PREFILL with central differences on up to 48 coordinates per target. */
static void gradcheck(const char *layer, forward_fn forward, void *ctx, const float *out,
                      long out_n, const float *r, const target *targets, int ntargets, float eps,
                      double abs_floor) {
  for (int t = 0; t < ntargets; t++) {
    const target *tg = &targets[t];
    long picks = tg->n < 48 ? tg->n : 48;
    int bad = 0;
    for (long k = 0; k < picks; k++) {
      long i = tg->n <= 48 ? k : (long)((k + 0.5) * (double)tg->n / picks);
      float saved = tg->x[i];
      tg->x[i] = saved + eps;
      forward(ctx);
      double plus = dot(out, r, out_n);
      tg->x[i] = saved - eps;
      forward(ctx);
      double minus = dot(out, r, out_n);
      tg->x[i] = saved;
      double numeric = (plus - minus) / (2.0 * eps), analytic = tg->grad[i] - PREFILL;
      double tol = 1e-2 * fmax(fabs(numeric), fabs(analytic)) + abs_floor;
      if (fabs(numeric - analytic) > tol && bad++ < 3)
        fprintf(stderr, "%s %s[%ld]: analytic %.7g numeric %.7g\n", layer, tg->name, i, analytic,
                numeric);
    }
    CHECK_MSG(bad == 0, "%s: %d bad %s gradient coordinates", layer, bad, tg->name);
    forward(ctx); /* leave out consistent with the unperturbed inputs */
  }
}

/* ---- conv2d --------------------------------------------------------------------------------- */

typedef struct {
  kn_conv2d conv;
  int B;
  float *inp, *weight, *bias, *out, *workspace;
} conv_case;

static void conv_forward(void *ctx) {
  conv_case *c = ctx;
  kn_conv2d_forward(&c->conv, c->out, c->inp, c->weight, c->bias, c->B, c->workspace);
}

static void test_conv2d_case(int B, int C, int OC, int kernel, int stride, int padding, int groups,
                             int H, int W, int with_bias) {
  char name[160];
  snprintf(name, sizeof name, "conv2d B%d C%d OC%d k%d s%d p%d g%d %dx%d%s", B, C, OC, kernel,
           stride, padding, groups, H, W, with_bias ? "" : " nobias");
  conv_case c = {.B = B};
  CHECK_MSG(kn_conv2d_init(&c.conv, C, OC, kernel, stride, padding, groups, H, W) == 0, "%s", name);
  const int OH = c.conv.out_h, OW = c.conv.out_w, Cg = C / groups, OCg = OC / groups;
  CHECK(OH == (H + 2 * padding - kernel) / stride + 1 &&
        OW == (W + 2 * padding - kernel) / stride + 1);
  const long n_in = (long)B * C * H * W, n_out = (long)B * OC * OH * OW;
  const long n_w = (long)OC * Cg * kernel * kernel;
  size_t ws = kn_conv2d_workspace_floats(&c.conv, B);
  c.inp = random_array(n_in, 1.0f);
  c.weight = random_array(n_w, 0.5f);
  c.bias = with_bias ? random_array(OC, 0.5f) : NULL;
  c.out = malloc((size_t)n_out * sizeof(float));
  c.workspace = workspace_with_canary(ws);
  float *r = random_array(n_out, 1.0f);

  conv_forward(&c);
  double max_err = 0.0;
  for (int b = 0; b < B; b++)
    for (int o = 0; o < OC; o++)
      for (int oh = 0; oh < OH; oh++)
        for (int ow = 0; ow < OW; ow++) {
          double s = c.bias ? c.bias[o] : 0.0;
          int g = o / OCg;
          for (int ci = 0; ci < Cg; ci++)
            for (int kh = 0; kh < kernel; kh++)
              for (int kw = 0; kw < kernel; kw++) {
                int ih = oh * stride - padding + kh, iw = ow * stride - padding + kw;
                if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
                s += (double)c.weight[((o * Cg + ci) * kernel + kh) * kernel + kw] *
                     c.inp[(((long)b * C + g * Cg + ci) * H + ih) * W + iw];
              }
          max_err = fmax(max_err, fabs(s - c.out[(((long)b * OC + o) * OH + oh) * OW + ow]));
        }
  CHECK_MSG(max_err < 1e-4, "%s forward: max error %g", name, max_err);

  float *dinp = filled_array(n_in, PREFILL), *dw = filled_array(n_w, PREFILL);
  float *db = filled_array(OC, PREFILL);
  kn_conv2d_backward(&c.conv, dinp, dw, c.bias ? db : NULL, r, c.inp, c.weight, B, c.workspace);
  CHECK_MSG(canary_intact(c.workspace, ws), "%s: workspace overrun (%zu floats declared)", name,
            ws);
  target targets[3] = {
      {"dinp", c.inp, dinp, n_in}, {"dweight", c.weight, dw, n_w}, {"dbias", c.bias, db, OC}};
  gradcheck(name, conv_forward, &c, c.out, n_out, r, targets, c.bias ? 3 : 2, 1e-2f, 2e-3);

  /* dinp == NULL gives the same parameter gradients */
  float *dw2 = filled_array(n_w, PREFILL);
  kn_conv2d_backward(&c.conv, NULL, dw2, NULL, r, c.inp, c.weight, B, c.workspace);
  CHECK_MSG(memcmp(dw, dw2, (size_t)n_w * sizeof(float)) == 0, "%s: dweight without dinp", name);
  free(dw2);
  free(dinp), free(dw), free(db), free(r);
  free(c.inp), free(c.weight), free(c.bias), free(c.out), free(c.workspace);
}

static void test_conv2d(void) {
  /* batched gemm (small planes), padding */
  test_conv2d_case(2, 3, 4, 3, 1, 1, 1, 5, 5, 1);
  /* batched with a remainder chunk: 16x16 planes take 2 samples per gemm, B = 3 */
  test_conv2d_case(3, 2, 3, 3, 1, 1, 1, 16, 16, 1);
  /* one sample per gemm (24x24 = 576 columns), with and without bias */
  test_conv2d_case(2, 2, 3, 3, 1, 1, 1, 24, 24, 1);
  test_conv2d_case(2, 2, 3, 3, 1, 1, 1, 24, 24, 0);
  /* CNN's 5x5, padding 2 */
  test_conv2d_case(2, 2, 4, 5, 1, 2, 1, 8, 8, 1);
  /* stride 2 on odd, non-square planes; stride 2 per-sample path (48x48 -> 24x24) */
  test_conv2d_case(2, 3, 4, 3, 2, 1, 1, 7, 6, 1);
  test_conv2d_case(1, 2, 2, 3, 2, 1, 1, 48, 48, 1);
  /* stride 2 without padding (VGG-like pooling-free downsampling, SqueezeNet's first conv) */
  test_conv2d_case(2, 3, 4, 3, 2, 0, 1, 9, 9, 1);
  /* groups 2 */
  test_conv2d_case(2, 4, 6, 3, 1, 1, 2, 5, 5, 1);
  test_conv2d_case(1, 4, 6, 3, 1, 1, 2, 24, 24, 1);
  /* depthwise, multiplier 1 and 2, 3x3 stride 2 and 5x5 stride 1 (MobileNetV3) */
  test_conv2d_case(2, 4, 4, 3, 2, 1, 4, 7, 7, 1);
  test_conv2d_case(2, 3, 6, 3, 1, 1, 3, 5, 5, 1);
  test_conv2d_case(2, 4, 4, 5, 1, 2, 4, 6, 6, 0);
  test_conv2d_case(2, 4, 4, 5, 2, 2, 4, 9, 9, 1);
  /* pointwise 1x1: batched and direct (input used as the col matrix), and 1x1 stride 2 */
  test_conv2d_case(3, 5, 3, 1, 1, 0, 1, 4, 4, 1);
  test_conv2d_case(2, 5, 3, 1, 1, 0, 1, 24, 24, 1);
  test_conv2d_case(2, 5, 3, 1, 2, 0, 1, 5, 5, 1);
  /* 1x1 maps (deep layers of 32x32 networks): the single-tap path, with the weight itself (1x1
   * kernel), a gathered tap slice (3x3, 5x5), without bias, and with no tap at all (padding >=
   * kernel: only the bias reaches the output) */
  test_conv2d_case(4, 6, 5, 3, 1, 1, 1, 1, 1, 1);
  test_conv2d_case(3, 6, 5, 1, 1, 0, 1, 1, 1, 1);
  test_conv2d_case(3, 4, 7, 5, 1, 2, 1, 1, 1, 0);
  test_conv2d_case(2, 3, 4, 1, 3, 1, 1, 1, 1, 1);
  /* one input channel, groups 1 (CNN's conv1): a gemm, not the depthwise loops */
  test_conv2d_case(2, 1, 4, 5, 1, 2, 1, 28, 28, 1);
  /* depthwise on 2x2 and 1x1 maps (MobileNetV3's last blocks at 32x32 input) */
  test_conv2d_case(3, 5, 5, 5, 1, 2, 5, 2, 2, 1);
  test_conv2d_case(3, 5, 5, 5, 1, 2, 5, 1, 1, 1);
  /* invalid geometries */
  kn_conv2d conv;
  CHECK(kn_conv2d_init(&conv, 3, 4, 3, 1, 1, 2, 5, 5) == -1); /* 3 % 2 */
  CHECK(kn_conv2d_init(&conv, 2, 2, 7, 1, 0, 1, 5, 5) == -1); /* kernel larger than input */
  CHECK(kn_conv2d_init(&conv, 2, 2, 3, 0, 0, 1, 5, 5) == -1);
}

/* ---- batchnorm ------------------------------------------------------------------------------ */

typedef struct {
  int B, C, HW;
  float *inp, *weight, *bias, *out, *mean, *invstd, *stat_mean, *stat_var;
} bn_case;

static void bn_forward(void *ctx) {
  bn_case *c = ctx;
  kn_batchnorm_forward_train(c->out, c->mean, c->invstd, c->stat_mean, c->stat_var, c->inp,
                             c->weight, c->bias, c->B, c->C, c->HW, 1e-5f);
}

static void test_batchnorm_case(int B, int C, int HW) {
  char name[64];
  snprintf(name, sizeof name, "batchnorm B%d C%d HW%d", B, C, HW);
  bn_case c = {.B = B, .C = C, .HW = HW};
  const long n = (long)B * C * HW;
  c.inp = random_array(n, 2.0f);
  for (long i = 0; i < n; i++) c.inp[i] += 0.7f; /* non-zero mean */
  c.weight = random_array(C, 1.0f);
  c.bias = random_array(C, 1.0f);
  c.out = malloc((size_t)n * sizeof(float));
  c.mean = malloc((size_t)C * sizeof(float));
  c.invstd = malloc((size_t)C * sizeof(float));
  c.stat_mean = malloc((size_t)C * sizeof(float));
  c.stat_var = malloc((size_t)C * sizeof(float));
  float *r = random_array(n, 1.0f);
  bn_forward(&c);
  const long N = (long)B * HW;
  for (int ch = 0; ch < C; ch++) {
    double sum = 0.0, sq = 0.0;
    for (int b = 0; b < B; b++)
      for (int i = 0; i < HW; i++) sum += c.inp[((long)b * C + ch) * HW + i];
    double mu = sum / N;
    for (int b = 0; b < B; b++)
      for (int i = 0; i < HW; i++) {
        double d = c.inp[((long)b * C + ch) * HW + i] - mu;
        sq += d * d;
      }
    double var = sq / N, is = 1.0 / sqrt(var + 1e-5);
    CHECK_NEAR(c.mean[ch], mu, 1e-6);
    CHECK_NEAR(c.invstd[ch], is, 1e-5 * is);
    CHECK_NEAR(c.stat_mean[ch], mu, 1e-6);
    CHECK_NEAR(c.stat_var[ch], sq / (N - 1), 1e-5 * (sq / (N - 1))); /* unbiased */
    double max_err = 0.0;
    for (int b = 0; b < B; b++)
      for (int i = 0; i < HW; i++) {
        long k = ((long)b * C + ch) * HW + i;
        double y = (c.inp[k] - mu) * is * c.weight[ch] + c.bias[ch];
        max_err = fmax(max_err, fabs(y - c.out[k]));
      }
    CHECK_MSG(max_err < 1e-5, "%s channel %d: max error %g", name, ch, max_err);
  }
  float *dinp = filled_array(n, PREFILL), *dw = filled_array(C, PREFILL);
  float *db = filled_array(C, PREFILL);
  kn_batchnorm_backward(dinp, dw, db, r, c.inp, c.mean, c.invstd, c.weight, B, C, HW);
  target targets[3] = {
      {"dinp", c.inp, dinp, n}, {"dweight", c.weight, dw, C}, {"dbias", c.bias, db, C}};
  gradcheck(name, bn_forward, &c, c.out, n, r, targets, 3, 1e-2f, 1e-3);

  /* eval mode: the running statistics replace the batch's */
  float *running_mean = random_array(C, 1.0f), *running_var = random_array(C, 1.0f);
  for (int ch = 0; ch < C; ch++) running_var[ch] += 1.5f;
  kn_batchnorm_forward_eval(c.out, c.inp, c.weight, c.bias, running_mean, running_var, B, C, HW,
                            1e-3f);
  double max_err = 0.0;
  for (long k = 0; k < n; k++) {
    int ch = (int)((k / HW) % C);
    double y =
        (c.inp[k] - running_mean[ch]) / sqrt(running_var[ch] + 1e-3) * c.weight[ch] + c.bias[ch];
    max_err = fmax(max_err, fabs(y - c.out[k]));
  }
  CHECK_MSG(max_err < 1e-5, "%s eval: max error %g", name, max_err);
  free(running_mean), free(running_var);
  free(dinp), free(dw), free(db), free(r);
  free(c.inp), free(c.weight), free(c.bias), free(c.out), free(c.mean), free(c.invstd);
  free(c.stat_mean), free(c.stat_var);
}

static void test_batchnorm(void) {
  test_batchnorm_case(4, 3, 9);
  test_batchnorm_case(8, 5, 1); /* after global pooling: N = B */
  test_batchnorm_case(2, 2, 64);
  test_batchnorm_case(2, 300, 3); /* more channels than one chunk of 256 */
}

/* ---- elementwise activations ---------------------------------------------------------------- */

typedef struct {
  void (*fwd)(float *, const float *, long);
  float *inp, *out;
  long n;
} unary_case;

static void unary_forward(void *ctx) {
  unary_case *c = ctx;
  c->fwd(c->out, c->inp, c->n);
}

static void test_activation(const char *name, void (*fwd)(float *, const float *, long),
                            void (*bwd)(float *, const float *, const float *, long),
                            int backward_takes_output, const float *kinks, int nkinks) {
  enum { N = 120 };
  unary_case c = {.fwd = fwd, .n = N};
  c.inp = random_array(N, 5.0f);
  for (int i = 0; i < N; i++) /* keep 2 eps away from the points without a derivative */
    for (int k = 0; k < nkinks; k++)
      if (fabsf(c.inp[i] - kinks[k]) < 0.03f) c.inp[i] = kinks[k] + 0.05f;
  c.out = malloc(N * sizeof(float));
  float *r = random_array(N, 1.0f), *dinp = filled_array(N, PREFILL);
  fwd(c.out, c.inp, N);
  bwd(dinp, r, backward_takes_output ? c.out : c.inp, N);
  target t = {"dinp", c.inp, dinp, N};
  gradcheck(name, unary_forward, &c, c.out, N, r, &t, 1, 1e-2f, 1e-4);
  free(c.inp), free(c.out), free(r), free(dinp);
}

static void test_activations(void) {
  static const float relu_kinks[1] = {0.0f}, hard_kinks[2] = {-3.0f, 3.0f};
  test_activation("relu", kn_relu_forward, kn_relu_backward, 1, relu_kinks, 1);
  { /* the storing ReLU gradient: what the accumulating one adds to zeros, also in place */
    enum { N = 21 };
    float *inp = random_array(N, 1.0f), *g = random_array(N, 1.0f), *added = filled_array(N, 0.0f);
    float *stored = filled_array(N, PREFILL);
    kn_relu_forward(inp, inp, N);
    kn_relu_backward(added, g, inp, N);
    kn_relu_backward_store(stored, g, inp, N);
    CHECK(memcmp(stored, added, N * sizeof(float)) == 0);
    kn_relu_backward_store(g, g, inp, N);
    CHECK(memcmp(g, added, N * sizeof(float)) == 0);
    free(inp), free(g), free(added), free(stored);
  }
  { /* bias + ReLU per row: 3 rows of 11 (a vector block and a tail each) */
    enum { C = 3, N = 11 };
    float *x = random_array(C * N, 1.0f), *bias = random_array(C, 1.0f), want[C * N];
    for (int i = 0; i < C * N; i++) want[i] = fmaxf(x[i] + bias[i / N], 0.0f);
    kn_bias_relu_forward(x, bias, C, N);
    CHECK(memcmp(x, want, sizeof want) == 0);
    free(x), free(bias);
  }
  test_activation("hardswish", kn_hardswish_forward, kn_hardswish_backward, 0, hard_kinks, 2);
  test_activation("hardsigmoid", kn_hardsigmoid_forward, kn_hardsigmoid_backward, 0, hard_kinks, 2);
  /* values and PyTorch's conventions at the boundaries */
  float x[7] = {-4.0f, -3.0f, -1.5f, 0.0f, 1.5f, 3.0f, 4.0f}, y[7], d[7], one[7];
  for (int i = 0; i < 7; i++) one[i] = 1.0f;
  kn_hardswish_forward(y, x, 7);
  CHECK(y[0] == 0.0f && y[1] == 0.0f && y[3] == 0.0f && y[5] == 3.0f && y[6] == 4.0f);
  CHECK_NEAR(y[2], -0.375, 1e-7);
  CHECK_NEAR(y[4], 1.125, 1e-7);
  memset(d, 0, sizeof d);
  kn_hardswish_backward(d, one, x, 7);
  CHECK(d[0] == 0.0f && d[1] == -0.5f && d[3] == 0.5f && d[5] == 1.0f && d[6] == 1.0f);
  kn_hardsigmoid_forward(y, x, 7);
  CHECK(y[0] == 0.0f && y[1] == 0.0f && y[3] == 0.5f && y[5] == 1.0f && y[6] == 1.0f);
  memset(d, 0, sizeof d);
  kn_hardsigmoid_backward(d, one, x, 7);
  CHECK(d[1] == 0.0f && d[5] == 0.0f && d[2] == 1.0f / 6.0f);
}

/* ---- pooling -------------------------------------------------------------------------------- */

typedef struct {
  kn_pool2d pool;
  int B, max, adaptive_h, adaptive_w;
  float *inp, *out;
  int32_t *argmax;
} pool_case;

static void pool_forward(void *ctx) {
  pool_case *c = ctx;
  if (c->adaptive_h)
    kn_adaptive_avgpool2d_forward(c->out, c->inp, c->B, c->pool.channels, c->pool.in_h,
                                  c->pool.in_w, c->adaptive_h, c->adaptive_w);
  else if (c->max)
    kn_maxpool2d_forward(&c->pool, c->out, c->argmax, c->inp, c->B);
  else
    kn_avgpool2d_forward(&c->pool, c->out, c->inp, c->B);
}

/* PyTorch's expected output size, written independently of pool.c. */
static int expected_pool_size(int in, int k, int s, int p, int ceil_mode) {
  double span = (double)(in + 2 * p - k) / s;
  int out = (int)(ceil_mode ? ceil(span) : floor(span)) + 1;
  if (ceil_mode && (out - 1) * s >= in + p) out--;
  return out;
}

static void test_pool_case(int max, int B, int C, int H, int W, int k, int s, int p, int ceil_mode,
                           int adaptive_h, int adaptive_w) {
  char name[128];
  snprintf(name, sizeof name, "%s B%d C%d %dx%d k%d s%d p%d%s -> %dx%d",
           adaptive_h ? "adaptive avgpool"
           : max      ? "maxpool"
                      : "avgpool",
           B, C, H, W, k, s, p, ceil_mode ? " ceil" : "", adaptive_h, adaptive_w);
  pool_case c = {.B = B, .max = max, .adaptive_h = adaptive_h, .adaptive_w = adaptive_w};
  if (adaptive_h) {
    c.pool.channels = C, c.pool.in_h = H, c.pool.in_w = W;
    c.pool.out_h = adaptive_h, c.pool.out_w = adaptive_w;
  } else {
    CHECK(kn_pool2d_init(&c.pool, C, H, W, k, s, p, ceil_mode) == 0);
    CHECK_MSG(c.pool.out_h == expected_pool_size(H, k, s, p, ceil_mode) &&
                  c.pool.out_w == expected_pool_size(W, k, s, p, ceil_mode),
              "%s: output %dx%d", name, c.pool.out_h, c.pool.out_w);
  }
  const int OH = c.pool.out_h, OW = c.pool.out_w;
  const long n_in = (long)B * C * H * W, n_out = (long)B * C * OH * OW;
  /* distinct values at least 0.05 apart, shuffled: no ties, no argmax change under eps */
  c.inp = malloc((size_t)n_in * sizeof(float));
  for (long i = 0; i < n_in; i++) c.inp[i] = 0.05f * (float)(i - n_in / 2);
  for (long i = n_in - 1; i > 0; i--) {
    long j = (long)(kn_rng_next(&rng) % (uint64_t)(i + 1));
    float t = c.inp[i];
    c.inp[i] = c.inp[j], c.inp[j] = t;
  }
  c.out = malloc((size_t)n_out * sizeof(float));
  c.argmax = malloc((size_t)n_out * sizeof(int32_t));
  float *r = random_array(n_out, 1.0f), *dinp = filled_array(n_in, PREFILL);
  pool_forward(&c);

  /* naive reference */
  double max_err = 0.0;
  for (long plane = 0; plane < (long)B * C; plane++)
    for (int oh = 0; oh < OH; oh++)
      for (int ow = 0; ow < OW; ow++) {
        int h0, h1, w0, w1;
        double divisor;
        if (adaptive_h) {
          h0 = (int)floor((double)oh * H / OH), h1 = (int)ceil((double)(oh + 1) * H / OH);
          w0 = (int)floor((double)ow * W / OW), w1 = (int)ceil((double)(ow + 1) * W / OW);
          divisor = (h1 - h0) * (w1 - w0);
        } else {
          h0 = oh * s - p, w0 = ow * s - p;
          h1 = h0 + k < H + p ? h0 + k : H + p;
          w1 = w0 + k < W + p ? w0 + k : W + p;
          divisor = (h1 - h0) * (w1 - w0); /* count_include_pad */
          h0 = h0 < 0 ? 0 : h0, w0 = w0 < 0 ? 0 : w0;
          h1 = h1 > H ? H : h1, w1 = w1 > W ? W : w1;
        }
        double best = -INFINITY, sum = 0.0;
        for (int h = h0; h < h1; h++)
          for (int w = w0; w < w1; w++) {
            double v = c.inp[(plane * H + h) * W + w];
            best = fmax(best, v);
            sum += v;
          }
        double expect = max ? best : sum / divisor;
        max_err = fmax(max_err, fabs(expect - c.out[(plane * OH + oh) * OW + ow]));
      }
  CHECK_MSG(max_err < 1e-5, "%s forward: max error %g", name, max_err);

  if (adaptive_h)
    kn_adaptive_avgpool2d_backward(dinp, r, B, C, H, W, OH, OW);
  else if (max)
    kn_maxpool2d_backward(&c.pool, dinp, r, c.argmax, B);
  else
    kn_avgpool2d_backward(&c.pool, dinp, r, B);
  target t = {"dinp", c.inp, dinp, n_in};
  gradcheck(name, pool_forward, &c, c.out, n_out, r, &t, 1, 1e-2f, 1e-4);
  free(c.inp), free(c.out), free(c.argmax), free(r), free(dinp);
}

static void test_pooling(void) {
  test_pool_case(1, 2, 3, 8, 8, 2, 2, 0, 0, 0, 0);    /* CNN / VGG MaxPool2d(2) */
  test_pool_case(1, 2, 3, 15, 15, 3, 2, 0, 1, 0, 0);  /* SqueezeNet MaxPool2d(3, 2, ceil) */
  test_pool_case(1, 2, 2, 6, 6, 3, 2, 0, 1, 0, 0);    /* ceil: last window hangs over the edge */
  test_pool_case(1, 2, 2, 7, 5, 3, 2, 1, 0, 0, 0);    /* padding */
  test_pool_case(1, 1, 2, 5, 5, 2, 2, 1, 1, 0, 0);    /* ceil + padding: a window is dropped */
  test_pool_case(1, 1, 2, 20, 19, 17, 3, 0, 1, 0, 0); /* wider than the row path's 16 taps */
  test_pool_case(0, 2, 3, 8, 8, 2, 2, 0, 0, 0, 0);
  test_pool_case(0, 2, 2, 7, 5, 3, 2, 1, 0, 0, 0); /* count_include_pad divisor */
  test_pool_case(0, 1, 2, 6, 6, 3, 2, 1, 1, 0, 0); /* ceil window beyond the padding */
  test_pool_case(0, 2, 3, 5, 5, 0, 0, 0, 0, 1, 1); /* global average pooling */
  test_pool_case(0, 2, 2, 5, 7, 0, 0, 0, 0, 3, 3); /* overlapping adaptive windows */
  test_pool_case(0, 2, 2, 1, 1, 0, 0, 0, 0, 7, 7); /* VGG: 1x1 replicated to 7x7 */
  kn_pool2d pool;
  CHECK(kn_pool2d_init(&pool, 1, 5, 5, 2, 2, 2, 0) == -1); /* padding > kernel / 2 */
  /* ties go to the first maximum in window order, as in PyTorch */
  float flat[4] = {1.0f, 1.0f, 1.0f, 1.0f}, o;
  int32_t arg;
  CHECK(kn_pool2d_init(&pool, 1, 2, 2, 2, 2, 0, 0) == 0);
  kn_maxpool2d_forward(&pool, &o, &arg, flat, 1);
  CHECK(o == 1.0f && arg == 0);
  float flat9[25], o4[9];
  int32_t arg4[9];
  for (int i = 0; i < 25; i++) flat9[i] = 2.0f;
  CHECK(kn_pool2d_init(&pool, 1, 5, 5, 3, 2, 1, 0) == 0); /* the row path, padded windows */
  kn_maxpool2d_forward(&pool, o4, arg4, flat9, 1);
  CHECK(pool.out_h == 3 && o4[0] == 2.0f && arg4[0] == 0 && arg4[1] == 1 && arg4[2] == 3);
  flat9[7] = NAN; /* (1,2): in the windows of outputs (0,1) and (1,1); NaN wins as in PyTorch */
  flat9[8] = 5.0f;
  kn_maxpool2d_forward(&pool, o4, arg4, flat9, 1);
  CHECK(isnan(o4[1]) && arg4[1] == 7 && isnan(o4[4]) && arg4[4] == 7);
  CHECK(o4[2] == 5.0f && arg4[2] == 8 && o4[0] == 2.0f);
  static const int32_t torch_indices[9] = {0, 7, 8, 5, 7, 8, 15, 16, 18}; /* F.max_pool2d */
  CHECK(memcmp(arg4, torch_indices, sizeof torch_indices) == 0);
}

/* ---- dropout -------------------------------------------------------------------------------- */

static void test_dropout(void) {
  enum { N = 20000 };
  float *inp = random_array(N, 1.0f), *out = malloc(N * sizeof(float));
  float *mask = malloc(N * sizeof(float)), *mask2 = malloc(N * sizeof(float));
  float *dinp = filled_array(N, PREFILL), *r = random_array(N, 1.0f);
  kn_dropout_forward(out, mask, inp, N, 0.25f, 99);
  long dropped = 0;
  int consistent = 1;
  for (long i = 0; i < N; i++) {
    dropped += mask[i] == 0.0f;
    consistent &= (mask[i] == 0.0f || mask[i] == 1.0f / 0.75f) && out[i] == inp[i] * mask[i];
  }
  CHECK(consistent);
  CHECK_NEAR((double)dropped / N, 0.25, 0.015);
  /* same seed, same mask; another seed, another mask */
  kn_dropout_forward(out, mask2, inp, N, 0.25f, 99);
  CHECK(memcmp(mask, mask2, N * sizeof(float)) == 0);
  kn_dropout_forward(out, mask2, inp, N, 0.25f, 100);
  CHECK(memcmp(mask, mask2, N * sizeof(float)) != 0);
  kn_dropout_forward(out, mask, inp, N, 0.25f, 99);
  kn_dropout_backward(dinp, r, mask, N);
  int grad_ok = 1;
  for (long i = 0; i < N; i++) grad_ok &= dinp[i] == PREFILL + r[i] * mask[i];
  CHECK(grad_ok);
  /* disabled: identity */
  kn_dropout_forward(out, mask, inp, N, 0.5f, 0);
  CHECK(memcmp(out, inp, N * sizeof(float)) == 0);
  int ones = 1;
  for (long i = 0; i < N; i++) ones &= mask[i] == 1.0f;
  CHECK(ones);
  free(inp), free(out), free(mask), free(mask2), free(dinp), free(r);
}

/* ---- concat, channel scale, add ------------------------------------------------------------- */

typedef struct {
  int B, C, HW, Ca;
  float *a, *b, *scale, *out;
} ops_case;

static void concat_forward(void *ctx) {
  ops_case *c = ctx;
  kn_concat_channels_forward(c->out, c->a, c->Ca, c->b, c->C - c->Ca, c->B, c->HW);
}

static void scale_forward(void *ctx) {
  ops_case *c = ctx;
  kn_channel_scale_forward(c->out, c->a, c->scale, c->B, c->C, c->HW);
}

static void add_forward(void *ctx) {
  ops_case *c = ctx;
  kn_add_forward(c->out, c->a, c->b, (long)c->B * c->C * c->HW);
}

static void test_tensor_ops(void) {
  enum { B = 3, Ca = 2, Cb = 3, C = Ca + Cb, HW = 4 };
  ops_case c = {.B = B, .C = C, .HW = HW, .Ca = Ca};
  c.a = random_array(B * C * HW, 1.0f); /* big enough for every use below */
  c.b = random_array(B * C * HW, 1.0f);
  c.scale = random_array(B * C, 1.0f);
  c.out = malloc(B * C * HW * sizeof(float));
  float *r = random_array(B * C * HW, 1.0f);

  concat_forward(&c);
  CHECK(c.out[0] == c.a[0] && c.out[Ca * HW] == c.b[0]);
  CHECK(c.out[C * HW + 1] == c.a[Ca * HW + 1] &&
        c.out[2 * C * HW + Ca * HW + 5] == c.b[2 * Cb * HW + 5]);
  float *da = filled_array(B * C * HW, PREFILL), *db = filled_array(B * C * HW, PREFILL);
  kn_concat_channels_backward(da, db, r, Ca, Cb, B, HW);
  target concat_targets[2] = {{"da", c.a, da, B * Ca * HW}, {"db", c.b, db, B * Cb * HW}};
  gradcheck("concat", concat_forward, &c, c.out, B * C * HW, r, concat_targets, 2, 1e-2f, 1e-4);

  float *dinp = filled_array(B * C * HW, PREFILL), *dscale = filled_array(B * C, PREFILL);
  scale_forward(&c);
  CHECK(c.out[HW * 4 + 1] == c.a[HW * 4 + 1] * c.scale[4]);
  kn_channel_scale_backward(dinp, dscale, r, c.a, c.scale, B, C, HW);
  target scale_targets[2] = {{"dinp", c.a, dinp, B * C * HW}, {"dscale", c.scale, dscale, B * C}};
  gradcheck("channel scale", scale_forward, &c, c.out, B * C * HW, r, scale_targets, 2, 1e-2f,
            1e-4);

  for (int i = 0; i < B * C * HW; i++) da[i] = db[i] = PREFILL;
  add_forward(&c);
  CHECK(c.out[7] == c.a[7] + c.b[7]);
  kn_add_backward(da, db, r, B * C * HW);
  target add_targets[2] = {{"da", c.a, da, B * C * HW}, {"db", c.b, db, B * C * HW}};
  gradcheck("add", add_forward, &c, c.out, B * C * HW, r, add_targets, 2, 1e-2f, 1e-4);
  /* (B, C, HW) <-> (C, B, HW): element (b, c, i) moves to (c, b, i), and back */
  float *swapped = malloc(B * C * HW * sizeof(float)), *back = malloc(B * C * HW * sizeof(float));
  kn_swap_outer_planes(swapped, c.a, B, C, HW);
  CHECK(swapped[(2 * B + 1) * HW + 3] == c.a[(1 * C + 2) * HW + 3]);
  kn_swap_outer_planes(back, swapped, C, B, HW);
  CHECK(memcmp(back, c.a, B * C * HW * sizeof(float)) == 0);
  free(c.a), free(c.b), free(c.scale), free(c.out), free(r), free(da), free(db), free(dinp);
  free(dscale), free(swapped), free(back);
}

/* ---- linear on repeated features ------------------------------------------------------------ */

typedef struct {
  int B, C, R, OC;
  float *inp, *weight, *bias, *out, *folded;
} repeated_case;

static void repeated_forward(void *ctx) {
  repeated_case *c = ctx;
  kn_linear_repeated_forward(c->out, c->folded, c->inp, c->weight, c->bias, c->B, c->C, c->R,
                             c->OC);
}

static void test_linear_repeated(void) {
  enum { B = 3, C = 4, R = 5, OC = 6 };
  repeated_case c = {.B = B, .C = C, .R = R, .OC = OC};
  c.inp = random_array(B * C, 1.0f);
  c.weight = random_array(OC * C * R, 1.0f);
  c.bias = random_array(OC, 1.0f);
  c.out = malloc(B * OC * sizeof(float));
  c.folded = malloc(OC * C * sizeof(float));
  float *r = random_array(B * OC, 1.0f), *workspace = malloc(OC * C * sizeof(float));
  /* reference: replicate the input and run the plain Linear */
  float *replicated = malloc(B * C * R * sizeof(float)), *expect = malloc(B * OC * sizeof(float));
  for (int b = 0; b < B; b++)
    for (int k = 0; k < C * R; k++) replicated[b * C * R + k] = c.inp[b * C + k / R];
  kn_linear_forward(expect, replicated, c.weight, c.bias, B, C * R, OC);
  repeated_forward(&c);
  double max_err = 0.0;
  for (int i = 0; i < B * OC; i++) max_err = fmax(max_err, fabs(expect[i] - c.out[i]));
  CHECK_MSG(max_err < 1e-5, "linear repeated forward: max error %g", max_err);
  float *dinp = filled_array(B * C, PREFILL), *dw = filled_array(OC * C * R, PREFILL);
  float *db = filled_array(OC, PREFILL);
  kn_linear_repeated_backward(dinp, dw, db, r, c.inp, c.folded, B, C, R, OC, workspace);
  target targets[3] = {{"dinp", c.inp, dinp, B * C},
                       {"dweight", c.weight, dw, OC * C * R},
                       {"dbias", c.bias, db, OC}};
  gradcheck("linear repeated", repeated_forward, &c, c.out, B * OC, r, targets, 3, 1e-2f, 1e-4);
  free(c.inp), free(c.weight), free(c.bias), free(c.out), free(c.folded), free(r), free(workspace);
  free(replicated), free(expect), free(dinp), free(dw), free(db);
}

static void test_arena(void) {
  kn_arena arena = {0};
  float *a = kn_arena_take(&arena, 3);
  int32_t *b = kn_arena_take_int32(&arena, 20);
  CHECK(a == NULL && b == NULL && arena.used == 16 + 32);
  CHECK(kn_arena_allocate(&arena) == 0);
  a = kn_arena_take(&arena, 3);
  b = kn_arena_take_int32(&arena, 20);
  CHECK(a == arena.base && (float *)(void *)b == arena.base + 16);
  CHECK(((uintptr_t)b & 63) == 0 && a[2] == 0.0f && b[19] == 0);
  CHECK(kn_arena_take(&arena, 1) == NULL); /* beyond what was measured */
  kn_arena_free(&arena);
  CHECK(arena.base == NULL);
}

int main(void) {
  kn_rng_seed(&rng, 2024);
  test_conv2d();
  test_batchnorm();
  test_activations();
  test_pooling();
  test_dropout();
  test_tensor_ops();
  test_linear_repeated();
  test_arena();
  return check_summary("test_layers");
}
