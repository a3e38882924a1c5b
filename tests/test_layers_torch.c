/* Layer tests against PyTorch 1.13: each layer runs on inputs built from closed-form waves
 * (x[i] = 2 sin(0.37 i + 0.1), parameters 0.5 sin(0.11 i + 0.3), dout sin(0.3 i + 1.1), the
 * same floats in C and Python since both use the same libm), and its output and gradients are
 * compared with PyTorch's through three checksums per array: the sum, the sum weighted with
 * cos(0.7 i) (catches permutations) and the sum of absolute values. This pins down what finite
 * differences cannot: PyTorch's conventions (weight layout with groups, ceil_mode output sizes,
 * count_include_pad divisors, the unbiased variance in BatchNorm's running statistics and the
 * momentum update, Hardswish/Hardsigmoid at +-3, eps). The generator is at the end of the file:
 *   sed -n '/^GENERATOR$/,/^END GENERATOR$/p' tests/test_layers_torch.c | sed '1d;$d' \
 *     | /usr/bin/python3 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/layers.h"
#include "kernels/model.h"
#include "tests/check.h"

typedef struct {
  long n;
  double sum, weighted, abs_sum;
} golden_sums;

typedef struct {
  const char *name;
  golden_sums out;
  golden_sums grads[5];
} golden_layer;

static const golden_layer golden_layers[] = {
    {"conv2d B2 C4 OC6 k3 s2 p1 g2 7x7",
     {192, 51.4304766059, 13.5720881397, 234.577217132},
     {{392, 7.70650093886, -0.66346864512, 394.926773487},
      {108, -4.39312446117, -35.9986507518, 899.109067559},
      {6, 3.34265768528, 0.278295181908, 10.2391728163}}},
    {"conv2d B2 C4 OC8 k5 s2 p2 g4 9x9",
     {400, 128.586925477, -25.2123173113, 392.461022735},
     {{648, -0.236148234457, -0.207185968987, 453.433897126},
      {200, -3.65045598149, -1.52066212932, 172.435875922},
      {8, 1.94182360172, 2.26597589624, 5.76239144802}}},
    {"conv2d B3 C3 OC5 k3 s1 p1 g1 6x6",
     {540, 131.429703452, -1.60643742146, 830.991488822},
     {{324, -3.36900966152, 1.56334974696, 69.280516458},
      {135, 184.732256413, -338.171072338, 2339.4733609},
      {5, -1.11855840683, 1.71797627157, 9.84982728958}}},
    {"conv2d B2 C5 OC4 k1 s1 p0 g1 24x24",
     {4608, 1029.91360363, 16.6981696226, 8894.17463371},
     {{5760, -3.34199656943, 1.03297252434, 379.33386302},
      {20, 1.26188278198, 134.646166654, 187.091924667},
      {4, 0.279201507568, 6.61851867239, 28.9295101166}}},
    {"conv2d B4 C6 OC5 k3 s1 p1 g1 1x1",
     {20, 4.27970127761, -0.0478900380888, 20.7965872437},
     {{24, -0.0823244266212, 7.99856747054, 18.4330964722},
      {270, 66.7015491128, -65.9285779693, 67.3421511054},
      {5, -0.682933717966, 0.140681968827, 0.682933717966}}},
    {"conv2d B3 C5 OC5 k5 s1 p2 g5 2x2",
     {60, 24.3395616598, 4.78232793952, 88.2188960277},
     {{60, 7.30282044597, -7.2510041547, 49.705839185},
      {125, 48.5083730817, 2.39317783046, 111.833251894},
      {5, -1.38276672363, 22.5968091663, 36.2264232635}}},
    {"batchnorm B3 C4 5x5 eps1e-05 momentum0.1",
     {300, 66.7557924927, -0.130728429658, 76.0857994778},
     {{300, 3.92319634557e-08, 0.849530208512, 23.3979968707},
      {4, 18.1668567657, -7.84678105162, 118.005979538},
      {4, 5.25137233734, 6.44067863672, 11.3195080757},
      {4, 0.0113838720135, 0.0148670843962, 0.0607156497426},
      {4, 4.39566028118, 1.56819091712, 4.39566028118}}},
    {"batchnorm eval B3 C4 5x5 eps1e-05 momentum0.1",
     {300, 67.4436695178, -0.532739248961, 92.6905845094},
     {}},
    {"batchnorm B4 C3 1x1 eps0.001 momentum0.01",
     {12, 2.38201943412, -0.796884429342, 2.99158911034},
     {{12, 4.842877388e-08, 0.174009016625, 0.652186026797},
      {3, 6.74330484867, 3.85826726941, 6.74330484867},
      {3, 2.48718047142, 2.11626245982, 2.48718047142},
      {3, 0.0182963362895, 0.0130649511626, 0.0182963362895},
      {3, 3.0269343853, 1.94648063643, 3.0269343853}}},
    {"batchnorm eval B4 C3 1x1 eps0.001 momentum0.01",
     {12, 3.75527901202, -0.747981608206, 4.19406176358},
     {}},
    {"maxpool B2 C2 8x8 k3 s2 p0 ceil1",
     {64, 106.111943185, 0.895294093358, 106.111943185},
     {{256, 1.05265019834, -6.0794105388, 38.765448913}}},
    {"avgpool B2 C2 8x8 k3 s2 p0 ceil1",
     {64, -1.71920165792, -0.605970356672, 20.6961676925},
     {{256, 1.05265052803, -2.00537836647, 37.0029632952}}},
    {"maxpool B2 C3 15x15 k3 s2 p0 ceil1",
     {294, 374.090680966, -16.932108465, 418.947842058},
     {{1350, 0.688451774418, 0.56373049614, 167.769580774}}},
    {"avgpool B2 C3 15x15 k3 s2 p0 ceil1",
     {294, 4.4117112048, -22.9113366463, 292.955068041},
     {{1350, 0.688451605369, -0.00874741635672, 133.249951224}}},
    {"maxpool B1 C2 5x5 k2 s2 p1 ceil1",
     {18, 16.905081585, -5.83823433854, 22.6986549646},
     {{50, -1.39216698706, -3.02693152646, 11.9483173937}}},
    {"avgpool B1 C2 5x5 k2 s2 p1 ceil1",
     {18, 0.121411051601, 0.551936802153, 10.0399974845},
     {{50, -1.46397516876, -0.565076528111, 7.55765327066}}},
    {"maxpool B2 C2 7x5 k3 s2 p1 ceil0",
     {48, 71.2376938313, 2.30655490225, 74.3762887567},
     {{140, 5.08001321554, -6.84981796502, 30.7773816288}}},
    {"avgpool B2 C2 7x5 k3 s2 p1 ceil0",
     {48, -1.44864183385, 0.325293898859, 13.4614584846},
     {{140, 3.70965254074, -0.161833735694, 18.3081948333}}},
    {"adaptive avgpool B2 C2 5x7 -> 3x3",
     {36, -6.90090312064, 2.65012295713, 11.2504460961},
     {{140, -0.345250804909, 0.00301891359155, 23.5794225605}}},
    {"adaptive avgpool B2 C3 1x1 -> 7x7",
     {294, 407.86582312, -2.51930185827, 407.86582312},
     {{6, 0.688450992107, 3.33030082792, 21.1876203418}}},
    {"adaptive avgpool B2 C3 4x4 -> 1x1",
     {6, 0.555691521615, -0.170011355091, 0.555691521615},
     {{96, 5.03882586956, -0.00217175263636, 5.03882586956}}},
    {"hardswish",
     {33, 28.0416667461, -4.57820779066, 34.000000149},
     {{33, 2.30352605693, 1.90732040692, 11.863724893}}},
    {"hardsigmoid",
     {33, 16.5000000037, -0.855073376491, 16.5000000037},
     {{33, 0.126570884138, -0.197152821294, 2.34998499975}}},
    {"cross_entropy",
     {1, 1.28052186966, 1.28052186966, 1.28052186966},
     {{15, 9.31322574615e-10, 0.518252723641, 1.3900008807}}},
};

static float *wave(long n, double a, double b, double scale) {
  float *x = malloc((size_t)(n > 0 ? n : 1) * sizeof(float));
  for (long i = 0; i < n; i++) x[i] = (float)(scale * sin(a * (double)i + b));
  return x;
}
static float *input_wave(long n) {
  return wave(n, 0.37, 0.1, 2.0);
}
static float *param_wave(long n) {
  return wave(n, 0.11, 0.3, 0.5);
}
static float *dout_wave(long n) {
  return wave(n, 0.3, 1.1, 1.0);
}
static float *zeros(long n) {
  return calloc((size_t)(n > 0 ? n : 1), sizeof(float));
}

static const golden_layer *find_golden(const char *name) {
  for (size_t i = 0; i < sizeof golden_layers / sizeof *golden_layers; i++)
    if (strcmp(golden_layers[i].name, name) == 0) return &golden_layers[i];
  CHECK_MSG(0, "no golden values for \"%s\"", name);
  return NULL;
}

static void check_sums(const char *name, const char *what, const float *x, long n,
                       const golden_sums *g) {
  CHECK_MSG(n == g->n, "%s %s: %ld values, PyTorch %ld", name, what, n, g->n);
  if (n != g->n) return;
  double sum = 0.0, weighted = 0.0, abs_sum = 0.0;
  for (long i = 0; i < n; i++) {
    sum += x[i];
    weighted += x[i] * cos(0.7 * (double)i);
    abs_sum += fabs(x[i]);
  }
  double tol = 2e-5 * g->abs_sum + 1e-6;
  CHECK_MSG(fabs(sum - g->sum) <= tol && fabs(weighted - g->weighted) <= tol &&
                fabs(abs_sum - g->abs_sum) <= tol,
            "%s %s: sums %.9g %.9g %.9g, PyTorch %.9g %.9g %.9g", name, what, sum, weighted,
            abs_sum, g->sum, g->weighted, g->abs_sum);
}

static void conv_case(int B, int C, int OC, int k, int s, int p, int g, int H, int W) {
  char name[96];
  snprintf(name, sizeof name, "conv2d B%d C%d OC%d k%d s%d p%d g%d %dx%d", B, C, OC, k, s, p, g, H,
           W);
  const golden_layer *gold = find_golden(name);
  kn_conv2d conv;
  if (!gold || kn_conv2d_init(&conv, C, OC, k, s, p, g, H, W) != 0) return;
  long n_in = (long)B * C * H * W, n_out = (long)B * OC * conv.out_h * conv.out_w;
  long n_w = (long)OC * (C / g) * k * k;
  float *x = input_wave(n_in), *w = param_wave(n_w), *b = param_wave(OC), *y = zeros(n_out);
  float *dy = dout_wave(n_out), *dx = zeros(n_in), *dw = zeros(n_w), *db = zeros(OC);
  float *ws = zeros((long)kn_conv2d_workspace_floats(&conv, B));
  kn_conv2d_forward(&conv, y, x, w, b, B, ws);
  kn_conv2d_backward(&conv, dx, dw, db, dy, x, w, B, ws);
  check_sums(name, "out", y, n_out, &gold->out);
  check_sums(name, "dinp", dx, n_in, &gold->grads[0]);
  check_sums(name, "dweight", dw, n_w, &gold->grads[1]);
  check_sums(name, "dbias", db, OC, &gold->grads[2]);
  free(x), free(w), free(b), free(y), free(dy), free(dx), free(dw), free(db), free(ws);
}

static void batchnorm_case(int B, int C, int H, int W, float eps, float momentum) {
  char name[96], eval_name[112];
  snprintf(name, sizeof name, "batchnorm B%d C%d %dx%d eps%g momentum%g", B, C, H, W, eps,
           momentum);
  snprintf(eval_name, sizeof eval_name, "batchnorm eval B%d C%d %dx%d eps%g momentum%g", B, C, H, W,
           eps, momentum);
  const golden_layer *gold = find_golden(name), *gold_eval = find_golden(eval_name);
  if (!gold || !gold_eval) return;
  const int HW = H * W;
  const long n = (long)B * C * HW;
  float *x = input_wave(n), *w = param_wave(C), *b = param_wave(C), *y = zeros(n);
  float *dy = dout_wave(n), *dx = zeros(n), *dw = zeros(C), *db = zeros(C);
  float mean[8], invstd[8], stats[16], running[16];
  kn_batchnorm_forward_train(y, mean, invstd, stats, stats + C, x, w, b, B, C, HW, eps);
  kn_batchnorm_backward(dx, dw, db, dy, x, mean, invstd, w, B, C, HW);
  /* PyTorch's fresh buffers (mean 0, var 1), updated the way the harness does it */
  for (int c = 0; c < C; c++) running[c] = 0.0f, running[C + c] = 1.0f;
  kn_model fake;
  memset(&fake, 0, sizeof fake);
  fake.num_buffers = (size_t)2 * C;
  fake.buffers = running;
  kn_model_update_buffers(&fake, stats, momentum);
  check_sums(name, "out", y, n, &gold->out);
  check_sums(name, "dinp", dx, n, &gold->grads[0]);
  check_sums(name, "dweight", dw, C, &gold->grads[1]);
  check_sums(name, "dbias", db, C, &gold->grads[2]);
  check_sums(name, "running_mean", running, C, &gold->grads[3]);
  check_sums(name, "running_var", running + C, C, &gold->grads[4]);
  kn_batchnorm_forward_eval(y, x, w, b, running, running + C, B, C, HW, eps);
  check_sums(eval_name, "out", y, n, &gold_eval->out);
  free(x), free(w), free(b), free(y), free(dy), free(dx), free(dw), free(db);
}

static void pool_case(int B, int C, int H, int W, int k, int s, int p, int ceil_mode) {
  for (int is_max = 1; is_max >= 0; is_max--) {
    char name[96];
    snprintf(name, sizeof name, "%s B%d C%d %dx%d k%d s%d p%d ceil%d",
             is_max ? "maxpool" : "avgpool", B, C, H, W, k, s, p, ceil_mode);
    const golden_layer *gold = find_golden(name);
    kn_pool2d pool;
    if (!gold || kn_pool2d_init(&pool, C, H, W, k, s, p, ceil_mode) != 0) return;
    long n_in = (long)B * C * H * W, n_out = (long)B * C * pool.out_h * pool.out_w;
    float *x = input_wave(n_in), *y = zeros(n_out), *dy = dout_wave(n_out), *dx = zeros(n_in);
    int32_t *arg = malloc((size_t)n_out * sizeof(int32_t));
    if (is_max) {
      kn_maxpool2d_forward(&pool, y, arg, x, B);
      kn_maxpool2d_backward(&pool, dx, dy, arg, B);
    } else {
      kn_avgpool2d_forward(&pool, y, x, B);
      kn_avgpool2d_backward(&pool, dx, dy, B);
    }
    check_sums(name, "out", y, n_out, &gold->out);
    check_sums(name, "dinp", dx, n_in, &gold->grads[0]);
    free(x), free(y), free(dy), free(dx), free(arg);
  }
}

static void adaptive_case(int B, int C, int H, int W, int OH, int OW) {
  char name[96];
  snprintf(name, sizeof name, "adaptive avgpool B%d C%d %dx%d -> %dx%d", B, C, H, W, OH, OW);
  const golden_layer *gold = find_golden(name);
  if (!gold) return;
  long n_in = (long)B * C * H * W, n_out = (long)B * C * OH * OW;
  float *x = input_wave(n_in), *y = zeros(n_out), *dy = dout_wave(n_out), *dx = zeros(n_in);
  kn_adaptive_avgpool2d_forward(y, x, B, C, H, W, OH, OW);
  kn_adaptive_avgpool2d_backward(dx, dy, B, C, H, W, OH, OW);
  check_sums(name, "out", y, n_out, &gold->out);
  check_sums(name, "dinp", dx, n_in, &gold->grads[0]);
  free(x), free(y), free(dy), free(dx);
}

static void activation_case(const char *name, void (*fwd)(float *, const float *, long),
                            void (*bwd)(float *, const float *, const float *, long)) {
  const golden_layer *gold = find_golden(name);
  if (!gold) return;
  float x[33], y[33], dx[33];
  for (int i = 0; i < 33; i++) x[i] = -4.0f + 0.25f * (float)i; /* torch.linspace(-4, 4, 33) */
  float *dy = dout_wave(33);
  memset(dx, 0, sizeof dx);
  fwd(y, x, 33);
  bwd(dx, dy, x, 33);
  check_sums(name, "out", y, 33, &gold->out);
  check_sums(name, "dinp", dx, 33, &gold->grads[0]);
  free(dy);
}

static void cross_entropy_case(void) {
  const golden_layer *gold = find_golden("cross_entropy");
  if (!gold) return;
  float *logits = input_wave(15), probs[15], dlogits[15];
  int32_t target[3] = {4, 0, 2};
  memset(dlogits, 0, sizeof dlogits);
  float loss = kn_cross_entropy_forward(probs, logits, target, 3, 5);
  kn_cross_entropy_backward(dlogits, probs, target, 3, 5);
  check_sums("cross_entropy", "loss", &loss, 1, &gold->out);
  check_sums("cross_entropy", "dlogits", dlogits, 15, &gold->grads[0]);
  free(logits);
}

int main(void) {
  conv_case(2, 4, 6, 3, 2, 1, 2, 7, 7);   /* groups 2, stride 2 */
  conv_case(2, 4, 8, 5, 2, 2, 4, 9, 9);   /* depthwise with multiplier 2 */
  conv_case(3, 3, 5, 3, 1, 1, 1, 6, 6);   /* batched gemm */
  conv_case(2, 5, 4, 1, 1, 0, 1, 24, 24); /* pointwise, direct */
  conv_case(4, 6, 5, 3, 1, 1, 1, 1, 1);   /* 1x1 map: single tap */
  conv_case(3, 5, 5, 5, 1, 2, 5, 2, 2);   /* depthwise 5x5 on a 2x2 map */
  batchnorm_case(3, 4, 5, 5, 1e-5f, 0.1f);
  batchnorm_case(4, 3, 1, 1, 1e-3f, 0.01f); /* MobileNetV3's eps and momentum, N = B */
  pool_case(2, 2, 8, 8, 3, 2, 0, 1);
  pool_case(2, 3, 15, 15, 3, 2, 0, 1); /* SqueezeNet 1.1's pools */
  pool_case(1, 2, 5, 5, 2, 2, 1, 1);
  pool_case(2, 2, 7, 5, 3, 2, 1, 0);
  adaptive_case(2, 2, 5, 7, 3, 3);
  adaptive_case(2, 3, 1, 1, 7, 7);
  adaptive_case(2, 3, 4, 4, 1, 1);
  activation_case("hardswish", kn_hardswish_forward, kn_hardswish_backward);
  activation_case("hardsigmoid", kn_hardsigmoid_forward, kn_hardsigmoid_backward);
  cross_entropy_case();
  return check_summary("test_layers_torch");
}

// clang-format off
/* The generator of golden_layers (PyTorch 1.13, /usr/bin/python3):
GENERATOR
import math, numpy as np, torch, torch.nn as nn, torch.nn.functional as F
torch.set_num_threads(1)
def wave(n, a, b, scale):  # the C side builds the same floats with libm's sin
    return torch.from_numpy(np.array([scale * math.sin(a * i + b) for i in range(n)], dtype=np.float32))
def inp(shape): return wave(math.prod(shape), 0.37, 0.1, 2.0).reshape(shape).requires_grad_()
def par(shape): return wave(math.prod(shape), 0.11, 0.3, 0.5).reshape(shape).requires_grad_()
def dout(shape): return wave(math.prod(shape), 0.3, 1.1, 1.0).reshape(shape)
def sums(t):
    v = t.detach().double().flatten()
    w = torch.tensor([math.cos(0.7 * i) for i in range(v.numel())], dtype=torch.float64)
    return "{%d, %.12g, %.12g, %.12g}" % (v.numel(), v.sum().item(), (v * w).sum().item(), v.abs().sum().item())
def emit(name, out, grads):
    print("    {\"%s\", %s, {%s}}," % (name, sums(out), ", ".join(sums(g) for g in grads)))
print("static const golden_layer golden_layers[] = {")
for (B, C, OC, k, s, p, g, H, W) in [(2, 4, 6, 3, 2, 1, 2, 7, 7), (2, 4, 8, 5, 2, 2, 4, 9, 9),
                                     (3, 3, 5, 3, 1, 1, 1, 6, 6), (2, 5, 4, 1, 1, 0, 1, 24, 24),
                                     (4, 6, 5, 3, 1, 1, 1, 1, 1), (3, 5, 5, 5, 1, 2, 5, 2, 2)]:
    x, w, b = inp((B, C, H, W)), par((OC, C // g, k, k)), par((OC,))
    y = F.conv2d(x, w, b, s, p, 1, g); y.backward(dout(y.shape))
    emit("conv2d B%d C%d OC%d k%d s%d p%d g%d %dx%d" % (B, C, OC, k, s, p, g, H, W), y, [x.grad, w.grad, b.grad])
for (B, C, H, W, eps, momentum) in [(3, 4, 5, 5, 1e-5, 0.1), (4, 3, 1, 1, 1e-3, 0.01)]:
    x, w, b = inp((B, C, H, W)), par((C,)), par((C,))
    bn = nn.BatchNorm2d(C, eps=eps, momentum=momentum)
    bn.weight.data, bn.bias.data = w.detach().clone(), b.detach().clone()
    y = bn(x); y.backward(dout(y.shape))
    emit("batchnorm B%d C%d %dx%d eps%g momentum%g" % (B, C, H, W, eps, momentum), y,
         [x.grad, bn.weight.grad, bn.bias.grad, bn.running_mean, bn.running_var])
    bn.eval(); emit("batchnorm eval B%d C%d %dx%d eps%g momentum%g" % (B, C, H, W, eps, momentum), bn(x), [])
for (B, C, H, W, k, s, p, ceil) in [(2, 2, 8, 8, 3, 2, 0, True), (2, 3, 15, 15, 3, 2, 0, True), (1, 2, 5, 5, 2, 2, 1, True), (2, 2, 7, 5, 3, 2, 1, False)]:
    x = inp((B, C, H, W)); y = F.max_pool2d(x, k, s, p, ceil_mode=ceil); y.backward(dout(y.shape))
    emit("maxpool B%d C%d %dx%d k%d s%d p%d ceil%d" % (B, C, H, W, k, s, p, ceil), y, [x.grad])
    x = inp((B, C, H, W)); y = F.avg_pool2d(x, k, s, p, ceil_mode=ceil); y.backward(dout(y.shape))
    emit("avgpool B%d C%d %dx%d k%d s%d p%d ceil%d" % (B, C, H, W, k, s, p, ceil), y, [x.grad])
for (B, C, H, W, OH, OW) in [(2, 2, 5, 7, 3, 3), (2, 3, 1, 1, 7, 7), (2, 3, 4, 4, 1, 1)]:
    x = inp((B, C, H, W)); y = F.adaptive_avg_pool2d(x, (OH, OW)); y.backward(dout(y.shape))
    emit("adaptive avgpool B%d C%d %dx%d -> %dx%d" % (B, C, H, W, OH, OW), y, [x.grad])
x = torch.linspace(-4, 4, 33).requires_grad_()  # includes -3 and 3 exactly
for name, fn in [("hardswish", F.hardswish), ("hardsigmoid", F.hardsigmoid)]:
    x.grad = None; y = fn(x); y.backward(dout(y.shape)); emit(name, y, [x.grad])
logits = inp((3, 5)); target = torch.tensor([4, 0, 2])
loss = F.cross_entropy(logits, target); loss.backward()
emit("cross_entropy", loss.reshape(1), [logits.grad])
print("};")
END GENERATOR
*/
// clang-format on
