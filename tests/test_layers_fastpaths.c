/* Unit tests for the speed paths of the layer library that tests/test_layers.c's small shapes do
 * not reach: the channels-last depthwise convolution (taken from 8 channels on, so its vector
 * blocks and scalar tail both run), im2col/col2im through zero-bordered planes on VGG-like 4x4
 * and 2x2 maps (short rows) with batched gemms (incl. outer taps that miss a small plane
 * entirely), the CNHW convolutions against the NCHW ones, the repeated-feature Linear with as
 * many repeats as VGG11's pool (49, so its vectorised fold and broadcast run), and max pooling
 * with every window inside the plane (SqueezeNet's 3x3 stride 2, VGG's 2x2; argmax, ties, NaN).
 * Every forward and backward is compared with a naive reference in double, backward gradients
 * are pre-filled with 0.5 (backward must accumulate), a few coordinates are also checked
 * against central finite differences of L = sum(out * r), and workspaces get a canary. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/layers.h"
#include "kernels/rng.h"
#include "tests/check.h"
#include "tests/layer_check.h"

/* Largest |got - PREFILL - want| relative to max(1, |want|). */
static double grad_error(const float *got, const double *want, long n) {
  double worst = 0.0;
  for (long i = 0; i < n; i++)
    worst = fmax(worst, fabs(got[i] - PREFILL - want[i]) / fmax(1.0, fabs(want[i])));
  return worst;
}

/* ---- conv2d ---------------------------------------------------------------------------------- */

typedef struct {
  kn_conv2d conv;
  int B;
  float *inp, *weight, *bias, *out, *workspace;
} conv_case;

static void conv_forward(conv_case *c) {
  kn_conv2d_forward(&c->conv, c->out, c->inp, c->weight, c->bias, c->B, c->workspace);
}

/* L(x) = sum(out * r) with x[i] moved by +-eps: the central difference of one coordinate. */
static double conv_numeric(conv_case *c, float *x, long i, const float *r, long n_out) {
  const float eps = 1e-2f, saved = x[i];
  x[i] = saved + eps;
  conv_forward(c);
  double plus = dot(c->out, r, n_out);
  x[i] = saved - eps;
  conv_forward(c);
  double minus = dot(c->out, r, n_out);
  x[i] = saved;
  return (plus - minus) / (2.0 * eps);
}

static void test_conv_case(const char *name, int B, int C, int OC, int kernel, int stride,
                           int padding, int groups, int H, int W, int with_bias) {
  conv_case c = {.B = B};
  CHECK_MSG(kn_conv2d_init(&c.conv, C, OC, kernel, stride, padding, groups, H, W) == 0, "%s", name);
  const int OH = c.conv.out_h, OW = c.conv.out_w, Cg = C / groups, OCg = OC / groups;
  const long n_in = (long)B * C * H * W, n_out = (long)B * OC * OH * OW;
  const long n_w = (long)OC * Cg * kernel * kernel;
  const size_t ws = kn_conv2d_workspace_floats(&c.conv, B);
  c.inp = random_array(n_in, 1.0f);
  c.weight = random_array(n_w, 0.5f);
  c.bias = with_bias ? random_array(OC, 0.5f) : NULL;
  c.out = malloc((size_t)n_out * sizeof(float));
  c.workspace = workspace_with_canary(ws);
  float *r = random_array(n_out, 1.0f);
  double *ref_out = calloc((size_t)n_out, sizeof(double));
  double *ref_din = calloc((size_t)n_in, sizeof(double)), *ref_dw = calloc((size_t)n_w, 8);
  double *ref_db = calloc((size_t)OC, sizeof(double));
  for (int b = 0; b < B; b++)
    for (int o = 0; o < OC; o++)
      for (int oh = 0; oh < OH; oh++)
        for (int ow = 0; ow < OW; ow++) {
          const long oi = (((long)b * OC + o) * OH + oh) * OW + ow;
          const int g = o / OCg;
          double s = c.bias ? c.bias[o] : 0.0;
          ref_db[o] += r[oi];
          for (int ci = 0; ci < Cg; ci++)
            for (int kh = 0; kh < kernel; kh++)
              for (int kw = 0; kw < kernel; kw++) {
                const int ih = oh * stride - padding + kh, iw = ow * stride - padding + kw;
                if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
                const long wi = ((long)(o * Cg + ci) * kernel + kh) * kernel + kw;
                const long ii = (((long)b * C + g * Cg + ci) * H + ih) * W + iw;
                s += (double)c.weight[wi] * c.inp[ii];
                ref_dw[wi] += (double)r[oi] * c.inp[ii];
                ref_din[ii] += (double)r[oi] * c.weight[wi];
              }
          ref_out[oi] = s;
        }
  conv_forward(&c);
  double err = 0.0;
  for (long i = 0; i < n_out; i++)
    err = fmax(err, fabs(c.out[i] - ref_out[i]) / fmax(1.0, fabs(ref_out[i])));
  CHECK_MSG(err < 1e-5, "%s forward: relative error %g", name, err);

  float *dinp = filled_array(n_in, PREFILL), *dw = filled_array(n_w, PREFILL);
  float *db = filled_array(OC, PREFILL);
  kn_conv2d_backward(&c.conv, dinp, dw, c.bias ? db : NULL, r, c.inp, c.weight, B, c.workspace);
  CHECK_MSG(canary_intact(c.workspace, ws), "%s: workspace overrun (%zu floats declared)", name,
            ws);
  CHECK_MSG(grad_error(dinp, ref_din, n_in) < 1e-5, "%s dinp: relative error %g", name,
            grad_error(dinp, ref_din, n_in));
  CHECK_MSG(grad_error(dw, ref_dw, n_w) < 1e-5, "%s dweight: relative error %g", name,
            grad_error(dw, ref_dw, n_w));
  if (c.bias)
    CHECK_MSG(grad_error(db, ref_db, OC) < 1e-5, "%s dbias: relative error %g", name,
              grad_error(db, ref_db, OC));
  /* finite differences on a few coordinates of the input and the weight */
  for (int k = 0; k < 6; k++) {
    const long ii = (long)((k + 0.5) * n_in / 6), wi = (long)((k + 0.5) * n_w / 6);
    const double num_in = conv_numeric(&c, c.inp, ii, r, n_out);
    const double num_w = conv_numeric(&c, c.weight, wi, r, n_out);
    CHECK_MSG(fabs(num_in - (dinp[ii] - PREFILL)) < 1e-2 * fmax(1.0, fabs(num_in)),
              "%s dinp[%ld]: analytic %g numeric %g", name, ii, dinp[ii] - PREFILL, num_in);
    CHECK_MSG(fabs(num_w - (dw[wi] - PREFILL)) < 1e-2 * fmax(1.0, fabs(num_w)),
              "%s dweight[%ld]: analytic %g numeric %g", name, wi, dw[wi] - PREFILL, num_w);
  }
  /* without dinp: the same weight gradient, bit for bit (the algorithm depends on shapes only) */
  float *dw2 = filled_array(n_w, PREFILL);
  kn_conv2d_backward(&c.conv, NULL, dw2, NULL, r, c.inp, c.weight, B, c.workspace);
  CHECK_MSG(memcmp(dw, dw2, (size_t)n_w * sizeof(float)) == 0, "%s: dweight without dinp", name);
  /* a smaller batch than the workspace was sized for */
  if (B > 1) {
    c.B = B - 1;
    conv_forward(&c);
    err = 0.0;
    for (long i = 0; i < n_out / B * (B - 1); i++)
      err = fmax(err, fabs(c.out[i] - ref_out[i]) / fmax(1.0, fabs(ref_out[i])));
    CHECK_MSG(err < 1e-5, "%s forward at batch %d: relative error %g", name, B - 1, err);
  }
  free(dw2), free(dinp), free(dw), free(db), free(r);
  free(ref_out), free(ref_din), free(ref_dw), free(ref_db);
  free(c.inp), free(c.weight), free(c.bias), free(c.out), free(c.workspace);
}

static void test_conv(void) {
  /* channels-last depthwise: 20 channels = two vector blocks + a tail of 4 */
  test_conv_case("dw 3x3 s2 8x8", 3, 20, 20, 3, 2, 1, 20, 8, 8, 1);
  test_conv_case("dw 3x3 s1 5x7", 2, 20, 20, 3, 1, 1, 20, 5, 7, 0);
  test_conv_case("dw 5x5 s2 4x4", 3, 16, 16, 5, 2, 2, 16, 4, 4, 0);
  test_conv_case("dw 5x5 s1 2x2", 3, 24, 24, 5, 1, 2, 24, 2, 2, 1);
  test_conv_case("dw 5x5 s1 1x1", 4, 12, 12, 5, 1, 2, 12, 1, 1, 1);
  /* padded im2col/col2im: VGG's 3x3 p1 on 4x4 and 2x2 (batched), 3x3 p1 on 16x16 (long rows),
   * stride 2 without and with padding, 5x5 p2 */
  test_conv_case("3x3 p1 4x4", 5, 6, 8, 3, 1, 1, 1, 4, 4, 1);
  test_conv_case("3x3 p1 2x2", 5, 6, 8, 3, 1, 1, 1, 2, 2, 1);
  test_conv_case("3x3 p1 17x16", 2, 3, 4, 3, 1, 1, 1, 17, 16, 1);
  test_conv_case("3x3 s2 p0 9x9", 3, 3, 4, 3, 2, 0, 1, 9, 9, 0);
  test_conv_case("3x3 s2 p1 24x24", 2, 2, 3, 3, 2, 1, 1, 48, 48, 1);
  test_conv_case("5x5 p2 6x6", 3, 2, 4, 5, 1, 2, 1, 6, 6, 1);
  /* outer taps that miss a 2x3 / 1x5 plane entirely (rows, columns) */
  test_conv_case("5x5 p2 2x3", 3, 3, 4, 5, 1, 2, 1, 2, 3, 1);
  test_conv_case("3x3 p1 1x5", 2, 3, 4, 3, 1, 1, 1, 1, 5, 1);
  test_conv_case("3x3 p1 groups 2 3x3", 3, 4, 6, 3, 1, 1, 2, 3, 3, 1);
}

/* ---- conv2d on CNHW tensors, against the NCHW convolution checked above ---------------------- */

/* (B, C, plane) -> a new (C, B, plane) array (kn_swap_outer_planes: tests/test_layers.c) */
static float *swap_batch_channels(const float *x, int B, int C, long plane) {
  float *y = malloc((size_t)B * C * plane * sizeof(float));
  kn_swap_outer_planes(y, x, B, C, plane);
  return y;
}

static double relative_error(const float *got, const float *want, long n) {
  double worst = 0.0;
  for (long i = 0; i < n; i++)
    worst = fmax(worst, fabs(got[i] - want[i]) / fmax(1.0, fabs(want[i])));
  return worst;
}

/* Both sides are float: the sums over up to B*OH*OW = 8112 terms differ by rounding only. */
#define CNHW_TOLERANCE 1e-4

static void test_conv_cnhw_case(const char *name, int B, int C, int OC, int kernel, int stride,
                                int padding, int groups, int H, int W) {
  kn_conv2d conv;
  CHECK_MSG(kn_conv2d_init(&conv, C, OC, kernel, stride, padding, groups, H, W) == 0, "%s", name);
  const long in_plane = (long)H * W, plane = (long)conv.out_h * conv.out_w;
  const long n_in = B * C * in_plane, n_out = B * OC * plane;
  const long n_w = (long)OC * (C / groups) * kernel * kernel;
  const size_t ws = kn_conv2d_cnhw_workspace_floats(&conv, B);
  const size_t ws_nchw = kn_conv2d_workspace_floats(&conv, B);
  float *inp = random_array(n_in, 1.0f), *weight = random_array(n_w, 0.5f);
  float *bias = random_array(OC, 0.5f), *r = random_array(n_out, 1.0f);
  float *out = malloc((size_t)n_out * sizeof(float)), *out_t = malloc((size_t)n_out * 4);
  float *workspace = workspace_with_canary(ws > ws_nchw ? ws : ws_nchw);
  float *dinp = filled_array(n_in, PREFILL), *dw = filled_array(n_w, PREFILL);
  float *db = filled_array(OC, PREFILL);
  kn_conv2d_forward(&conv, out, inp, weight, bias, B, workspace);
  kn_conv2d_backward(&conv, dinp, dw, db, r, inp, weight, B, workspace);

  reset_canary(workspace, ws); /* the NCHW calls may use more */
  float *inp_t = swap_batch_channels(inp, B, C, in_plane),
        *r_t = swap_batch_channels(r, B, OC, plane);
  float *dinp_t = filled_array(n_in, PREFILL), *dw_t = filled_array(n_w, PREFILL);
  float *db_t = filled_array(OC, PREFILL);
  kn_conv2d_cnhw_forward(&conv, out_t, inp_t, weight, bias, B, workspace);
  kn_conv2d_cnhw_backward(&conv, dinp_t, dw_t, db_t, r_t, inp_t, weight, B, workspace);
  CHECK_MSG(canary_intact(workspace, ws), "%s cnhw: workspace overrun (%zu floats declared)", name,
            ws);
  float *out_back = swap_batch_channels(out_t, OC, B, plane);
  float *dinp_back = swap_batch_channels(dinp_t, C, B, in_plane);
  CHECK_MSG(relative_error(out_back, out, n_out) < CNHW_TOLERANCE, "%s cnhw forward: %g", name,
            relative_error(out_back, out, n_out));
  CHECK_MSG(relative_error(dinp_back, dinp, n_in) < CNHW_TOLERANCE, "%s cnhw dinp: %g", name,
            relative_error(dinp_back, dinp, n_in));
  CHECK_MSG(relative_error(dw_t, dw, n_w) < CNHW_TOLERANCE, "%s cnhw dweight: %g", name,
            relative_error(dw_t, dw, n_w));
  CHECK_MSG(relative_error(db_t, db, OC) < CNHW_TOLERANCE, "%s cnhw dbias: %g", name,
            relative_error(db_t, db, OC));
  /* without bias and dinp: the same weight gradient, bit for bit */
  float *dw2 = filled_array(n_w, PREFILL);
  kn_conv2d_cnhw_forward(&conv, out_t, inp_t, weight, NULL, B, workspace);
  kn_conv2d_cnhw_backward(&conv, NULL, dw2, NULL, r_t, inp_t, weight, B, workspace);
  CHECK_MSG(memcmp(dw2, dw_t, (size_t)n_w * sizeof(float)) == 0, "%s cnhw: dweight without dinp",
            name);
  kn_conv2d_forward(&conv, out, inp, weight, NULL, B, workspace);
  free(out_back);
  out_back = swap_batch_channels(out_t, OC, B, plane);
  CHECK_MSG(relative_error(out_back, out, n_out) < CNHW_TOLERANCE,
            "%s cnhw forward without bias: %g", name, relative_error(out_back, out, n_out));
  free(inp), free(weight), free(bias), free(r), free(out), free(out_t), free(workspace);
  free(dinp), free(dw), free(db), free(inp_t), free(r_t), free(dinp_t), free(dw_t), free(db_t);
  free(out_back), free(dinp_back), free(dw2);
}

static void test_conv_cnhw(void) {
  /* SqueezeNet's geometries: first conv, squeeze/expand 1x1, expand 3x3 p1 on 7x7 / 3x3 / 1x1 */
  test_conv_cnhw_case("cnhw 3x3 s2 p0 15x15", 3, 3, 8, 3, 2, 0, 1, 15, 15);
  test_conv_cnhw_case("cnhw 1x1 7x7", 4, 6, 5, 1, 1, 0, 1, 7, 7);
  test_conv_cnhw_case("cnhw 3x3 p1 7x7", 3, 5, 6, 3, 1, 1, 1, 7, 7);
  test_conv_cnhw_case("cnhw 3x3 p1 3x3", 2, 5, 6, 3, 1, 1, 1, 3, 3);
  test_conv_cnhw_case("cnhw 5x5 p2 2x3", 3, 3, 4, 5, 1, 2, 1, 2, 3);
  test_conv_cnhw_case("cnhw 3x3 p1 1x1", 5, 7, 4, 3, 1, 1, 1, 1, 1);
  test_conv_cnhw_case("cnhw 1x1 1x1", 5, 7, 4, 1, 1, 0, 1, 1, 1);
  /* groups: im2col per group, and the 1x1 planes copied as col rows */
  test_conv_cnhw_case("cnhw 3x3 p1 groups 2", 3, 4, 6, 3, 1, 1, 2, 4, 5);
  test_conv_cnhw_case("cnhw 1x1 groups 2", 3, 4, 6, 1, 1, 0, 2, 3, 3);
  /* chunks of samples: 3x3 planes give 57-sample chunks, so B = 60 runs one of 57 and one of 3 */
  test_conv_cnhw_case("cnhw 3x3 p1 3x3 chunked", 60, 3, 4, 3, 1, 1, 1, 3, 3);
}

/* ---- linear on repeated features, VGG11's 49 repeats ---------------------------------------- */

static void test_linear_repeated_49(void) {
  enum { B = 3, C = 5, R = 49, OC = 7 };
  float *inp = random_array(B * C, 1.0f), *weight = random_array(OC * C * R, 0.2f);
  float *bias = random_array(OC, 1.0f), *out = malloc(B * OC * sizeof(float));
  float *folded = malloc(OC * C * sizeof(float)), *workspace = malloc(OC * C * sizeof(float));
  float *r = random_array(B * OC, 1.0f);
  /* reference: the plain Linear on the replicated input, in double */
  double ref_out[B * OC], ref_din[B * C] = {0}, *ref_dw = calloc(OC * C * R, sizeof(double));
  double ref_db[OC] = {0};
  for (int b = 0; b < B; b++)
    for (int o = 0; o < OC; o++) {
      double s = bias[o];
      for (int k = 0; k < C * R; k++) {
        s += (double)weight[o * C * R + k] * inp[b * C + k / R];
        ref_dw[o * C * R + k] += (double)r[b * OC + o] * inp[b * C + k / R];
        ref_din[b * C + k / R] += (double)r[b * OC + o] * weight[o * C * R + k];
      }
      ref_out[b * OC + o] = s;
      ref_db[o] += r[b * OC + o];
    }
  kn_linear_repeated_forward(out, folded, inp, weight, bias, B, C, R, OC);
  double err = 0.0;
  for (int i = 0; i < B * OC; i++)
    err = fmax(err, fabs(out[i] - ref_out[i]) / fmax(1.0, fabs(ref_out[i])));
  CHECK_MSG(err < 1e-5, "linear repeated 49 forward: relative error %g", err);
  float *dinp = filled_array(B * C, PREFILL), *dw = filled_array(OC * C * R, PREFILL);
  float *db = filled_array(OC, PREFILL);
  kn_linear_repeated_backward(dinp, dw, db, r, inp, folded, B, C, R, OC, workspace);
  CHECK_MSG(grad_error(dinp, ref_din, B * C) < 1e-5, "linear repeated 49 dinp: %g",
            grad_error(dinp, ref_din, B * C));
  CHECK_MSG(grad_error(dw, ref_dw, OC * C * R) < 1e-5, "linear repeated 49 dweight: %g",
            grad_error(dw, ref_dw, OC * C * R));
  CHECK_MSG(grad_error(db, ref_db, OC) < 1e-5, "linear repeated 49 dbias: %g",
            grad_error(db, ref_db, OC));
  /* finite differences on a few input and weight coordinates */
  for (int k = 0; k < 4; k++) {
    float *xs[2] = {inp, weight}, *gs[2] = {dinp, dw};
    const long idx[2] = {(long)k * 4, (long)k * 500 + 17};
    for (int t = 0; t < 2; t++) {
      const float eps = 1e-2f, saved = xs[t][idx[t]];
      xs[t][idx[t]] = saved + eps;
      kn_linear_repeated_forward(out, folded, inp, weight, bias, B, C, R, OC);
      const double plus = dot(out, r, B * OC);
      xs[t][idx[t]] = saved - eps;
      kn_linear_repeated_forward(out, folded, inp, weight, bias, B, C, R, OC);
      const double minus = dot(out, r, B * OC);
      xs[t][idx[t]] = saved;
      const double numeric = (plus - minus) / (2.0 * eps), analytic = gs[t][idx[t]] - PREFILL;
      CHECK_MSG(fabs(numeric - analytic) < 1e-2 * fmax(1.0, fabs(numeric)),
                "linear repeated 49 %s[%ld]: analytic %g numeric %g", t ? "dweight" : "dinp",
                idx[t], analytic, numeric);
    }
  }
  free(inp), free(weight), free(bias), free(out), free(folded), free(workspace), free(r);
  free(ref_dw), free(dinp), free(dw), free(db);
}

/* ---- max pool 3x3 stride 2, ceil_mode, on a 7x7 plane (SqueezeNet) ------------------------- */

static void test_maxpool_3x3_whole(void) {
  kn_pool2d pool;
  CHECK(kn_pool2d_init(&pool, 2, 7, 7, 3, 2, 0, 1) == 0 && pool.out_h == 3 && pool.out_w == 3);
  float *inp = random_array(2 * 49, 1.0f), out[18];
  int32_t arg[18];
  kn_maxpool2d_forward(&pool, out, arg, inp, 1);
  int ok = 1;
  for (int c = 0; c < 2; c++)
    for (int oh = 0; oh < 3; oh++)
      for (int ow = 0; ow < 3; ow++) {
        int best = 2 * oh * 7 + 2 * ow;
        for (int kh = 0; kh < 3; kh++)
          for (int kw = 0; kw < 3; kw++) {
            const int at = (2 * oh + kh) * 7 + 2 * ow + kw;
            if (inp[c * 49 + at] > inp[c * 49 + best]) best = at;
          }
        ok &= out[c * 9 + oh * 3 + ow] == inp[c * 49 + best] && arg[c * 9 + oh * 3 + ow] == best;
      }
  CHECK_MSG(ok, "maxpool 3x3 whole windows: values or argmax differ from the reference");
  /* ties go to the first maximum in row-major window order, NaN wins (PyTorch's rules) */
  for (int i = 0; i < 49; i++) inp[i] = 1.0f;
  inp[2 * 7 + 3] = NAN; /* (2,3): in the windows of outputs (0,1) and (1,1) */
  kn_maxpool2d_forward(&pool, out, arg, inp, 1);
  CHECK(out[0] == 1.0f && arg[0] == 0 && arg[2] == 4 && arg[3] == 14);
  CHECK(isnan(out[1]) && arg[1] == 17 && isnan(out[4]) && arg[4] == 17);
  float dinp[2 * 49] = {0}, dout[18];
  for (int i = 0; i < 18; i++) dout[i] = 1.0f;
  kn_maxpool2d_backward(&pool, dinp, dout, arg, 1);
  CHECK(dinp[17] == 2.0f && dinp[0] == 1.0f && dinp[4] == 1.0f);
  free(inp);
}

/* ---- max pool, every window inside the plane: the 4-lane path against a scalar scan ------- */

/* PyTorch's rule, one window at a time: the first maximum in row-major order, the last NaN. */
static int maxpool_matches_scan(const kn_pool2d *pool, const float *inp, const float *out,
                                const int32_t *arg, int B) {
  const int H = pool->in_h, W = pool->in_w, OH = pool->out_h, OW = pool->out_w;
  for (long p = 0; p < (long)B * pool->channels; p++)
    for (int oh = 0; oh < OH; oh++)
      for (int ow = 0; ow < OW; ow++) {
        const float *in = inp + p * H * W;
        int best = oh * pool->stride_h * W + ow * pool->stride_w;
        for (int kh = 0; kh < pool->kernel_h; kh++)
          for (int kw = 0; kw < pool->kernel_w; kw++) {
            const int at = (oh * pool->stride_h + kh) * W + ow * pool->stride_w + kw;
            if (in[at] > in[best] || isnan(in[at])) best = at;
          }
        const long o = (p * OH + oh) * OW + ow;
        const int same = isnan(in[best]) ? isnan(out[o]) : out[o] == in[best];
        if (!same || arg[o] != best) return 0;
      }
  return 1;
}

static void test_maxpool_inside_shapes(void) {
  /* C, H, W, kernel, stride, ceil_mode, B: SqueezeNet's three pools, VGG/CNN's 2x2, an
   * overlapping stride-1 window; B * C * OH * OW is not a multiple of 4 in some (scalar tail) */
  const int shapes[][7] = {{3, 15, 15, 3, 2, 1, 3}, {5, 7, 7, 3, 2, 1, 2}, {7, 3, 3, 3, 2, 1, 3},
                           {3, 8, 8, 2, 2, 0, 3},   {2, 5, 5, 2, 2, 0, 1}, {3, 6, 5, 3, 1, 0, 1}};
  for (size_t k = 0; k < sizeof shapes / sizeof shapes[0]; k++) {
    const int *g = shapes[k], B = g[6];
    kn_pool2d pool;
    CHECK(kn_pool2d_init(&pool, g[0], g[1], g[2], g[3], g[4], 0, g[5]) == 0);
    const long n_in = (long)B * g[0] * g[1] * g[2],
               n_out = (long)B * g[0] * pool.out_h * pool.out_w;
    float *inp = random_array(n_in, 1.0f), *out = filled_array(n_out, 0.0f);
    int32_t *arg = calloc((size_t)n_out, sizeof *arg);
    for (long i = 0; i < n_in; i++) { /* ReLU-like ties at 0, repeated values, a few NaNs */
      if (inp[i] < 0.0f) inp[i] = 0.0f;
      if (i % 5 == 2) inp[i] = 0.5f;
      if (i % 37 == 11) inp[i] = NAN;
    }
    kn_maxpool2d_forward(&pool, out, arg, inp, B);
    CHECK_MSG(maxpool_matches_scan(&pool, inp, out, arg, B),
              "maxpool %dx%d k%d s%d on B=%d x C=%d: values or argmax differ from the scan", g[1],
              g[2], g[3], g[4], B, g[0]);
    free(inp), free(out), free(arg);
  }
}

int main(void) {
  kn_rng_seed(&rng, 4242);
  test_conv();
  test_conv_cnhw();
  test_linear_repeated_49();
  test_maxpool_3x3_whole();
  test_maxpool_inside_shapes();
  return check_summary("test_layers_fastpaths");
}
