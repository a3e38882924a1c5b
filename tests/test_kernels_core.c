/* Unit tests for the kernels core: the model interface (model.c, model_registry.c), the phase-1
 * layers (linear, ReLU, softmax cross-entropy), the "mlp" model and SGD.
 * Gradients are checked against central finite differences of a scalar objective; SGD against
 * values computed by hand with PyTorch's rule; determinism bit for bit. */
#include <malloc.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/layers.h"
#include "kernels/model.h"
#include "kernels/rng.h"
#include "kernels/sgd.h"
#include "tests/check.h"

/* |numeric - analytic| within a relative 1e-2 plus a small absolute floor for rounding. */
static void check_gradient(const char *what, int index, double analytic, double numeric,
                           double abs_floor) {
  double tol = 1e-2 * fmax(fabs(analytic), fabs(numeric)) + abs_floor;
  CHECK_MSG(fabs(analytic - numeric) <= tol, "%s[%d]: analytic %.7g numeric %.7g", what, index,
            analytic, numeric);
}

static void fill(kn_rng *rng, float *x, long n, float bound) {
  kn_rng_fill_symmetric(rng, x, n, bound);
}

/* sum_i out[i] * r[i] in double: the objective whose gradient w.r.t. out is r. */
static double dot(const float *out, const float *r, long n) {
  double s = 0.0;
  for (long i = 0; i < n; i++) s += (double)out[i] * r[i];
  return s;
}

static void test_linear(void) {
  enum { B = 3, C = 7, OC = 5 };
  kn_rng rng;
  kn_rng_seed(&rng, 1);
  float inp[B * C], w[OC * C], bias[OC], out[B * OC], r[B * OC];
  fill(&rng, inp, B * C, 1.0f);
  fill(&rng, w, OC * C, 1.0f);
  fill(&rng, bias, OC, 1.0f);
  fill(&rng, r, B * OC, 1.0f);

  /* forward against a direct triple loop */
  kn_linear_forward(out, inp, w, bias, B, C, OC);
  double max_err = 0.0;
  for (int b = 0; b < B; b++)
    for (int o = 0; o < OC; o++) {
      double s = bias[o];
      for (int c = 0; c < C; c++) s += (double)inp[b * C + c] * w[o * C + c];
      max_err = fmax(max_err, fabs(s - out[b * OC + o]));
    }
  CHECK_NEAR(max_err, 0.0, 1e-5);

  float dinp[B * C], dw[OC * C], db[OC];
  for (int i = 0; i < B * C; i++) dinp[i] = 0.5f; /* backward must ADD to what is there */
  for (int i = 0; i < OC * C; i++) dw[i] = 0.25f;
  for (int i = 0; i < OC; i++) db[i] = -1.0f;
  kn_linear_backward(dinp, dw, db, r, inp, w, B, C, OC);

  const float eps = 1e-2f;
  float *targets[3] = {inp, w, bias};
  float *grads[3] = {dinp, dw, db};
  float offsets[3] = {0.5f, 0.25f, -1.0f};
  int sizes[3] = {B * C, OC * C, OC};
  const char *names[3] = {"linear dinp", "linear dweight", "linear dbias"};
  for (int t = 0; t < 3; t++)
    for (int i = 0; i < sizes[t]; i++) {
      float saved = targets[t][i];
      targets[t][i] = saved + eps;
      kn_linear_forward(out, inp, w, bias, B, C, OC);
      double plus = dot(out, r, B * OC);
      targets[t][i] = saved - eps;
      kn_linear_forward(out, inp, w, bias, B, C, OC);
      double minus = dot(out, r, B * OC);
      targets[t][i] = saved;
      check_gradient(names[t], i, grads[t][i] - offsets[t], (plus - minus) / (2 * eps), 1e-4);
    }

  /* without bias and without dinp */
  float out2[B * OC];
  kn_linear_forward(out2, inp, w, NULL, B, C, OC);
  kn_linear_forward(out, inp, w, bias, B, C, OC);
  CHECK_NEAR(out[4] - out2[4], bias[4], 1e-5);
}

static void test_relu(void) {
  enum { N = 40 };
  kn_rng rng;
  kn_rng_seed(&rng, 2);
  float inp[N], out[N], r[N], dinp[N];
  fill(&rng, inp, N, 1.0f);
  for (int i = 0; i < N; i++)
    if (fabsf(inp[i]) < 0.05f) inp[i] = 0.1f; /* keep clear of the kink at 0 */
  fill(&rng, r, N, 1.0f);
  kn_relu_forward(out, inp, N);
  int zeros = 0;
  for (int i = 0; i < N; i++) {
    zeros += out[i] == 0.0f;
    CHECK(out[i] == (inp[i] > 0 ? inp[i] : 0.0f));
  }
  CHECK(zeros > 5 && zeros < N - 5); /* both branches are exercised */
  memset(dinp, 0, sizeof dinp);
  kn_relu_backward(dinp, r, out, N);
  const float eps = 1e-2f;
  for (int i = 0; i < N; i++) {
    float saved = inp[i];
    inp[i] = saved + eps;
    kn_relu_forward(out, inp, N);
    double plus = dot(out, r, N);
    inp[i] = saved - eps;
    kn_relu_forward(out, inp, N);
    double minus = dot(out, r, N);
    inp[i] = saved;
    check_gradient("relu dinp", i, dinp[i], (plus - minus) / (2 * eps), 1e-4);
  }
  /* in place */
  float copy[N];
  memcpy(copy, inp, sizeof copy);
  kn_relu_forward(copy, copy, N);
  kn_relu_forward(out, inp, N);
  CHECK(memcmp(copy, out, sizeof out) == 0);
}

static void test_cross_entropy(void) {
  /* by hand: softmax([1,2,3])[2] = e^3 / (e + e^2 + e^3); loss = log(e + e^2 + e^3) - 3 */
  float logits1[3] = {1, 2, 3}, probs1[3];
  int32_t target1[1] = {2};
  float loss = kn_cross_entropy_forward(probs1, logits1, target1, 1, 3);
  CHECK_NEAR(loss, 0.40760596, 1e-6);
  CHECK_NEAR(probs1[0], 0.09003057, 1e-6);
  CHECK_NEAR(probs1[2], 0.66524096, 1e-6);
  /* huge logits must not overflow */
  float big[3] = {1000, 0, -1000};
  int32_t target_big[1] = {1};
  CHECK_NEAR(kn_cross_entropy_forward(probs1, big, target_big, 1, 3), 1000.0, 1e-3);

  enum { B = 4, V = 6 };
  kn_rng rng;
  kn_rng_seed(&rng, 3);
  float logits[B * V], probs[B * V], dlogits[B * V];
  int32_t targets[B] = {0, 5, 2, 2};
  fill(&rng, logits, B * V, 3.0f);
  kn_cross_entropy_forward(probs, logits, targets, B, V);
  for (int i = 0; i < B * V; i++) dlogits[i] = 1.0f;
  kn_cross_entropy_backward(dlogits, probs, targets, B, V);
  double row_sum = 0.0;
  for (int v = 0; v < V; v++) row_sum += dlogits[V + v] - 1.0f;
  CHECK_NEAR(row_sum, 0.0, 1e-6); /* softmax - onehot sums to zero */
  const float eps = 1e-2f;
  for (int i = 0; i < B * V; i++) {
    float saved = logits[i];
    logits[i] = saved + eps;
    double plus = kn_cross_entropy_forward(probs, logits, targets, B, V);
    logits[i] = saved - eps;
    double minus = kn_cross_entropy_forward(probs, logits, targets, B, V);
    logits[i] = saved;
    check_gradient("cross-entropy dlogits", i, dlogits[i] - 1.0f, (plus - minus) / (2 * eps), 2e-4);
  }
}

static void make_batch(uint64_t seed, float *x, int32_t *y, int B, int sample, int classes) {
  kn_rng rng;
  kn_rng_seed(&rng, seed);
  for (long i = 0; i < (long)B * sample; i++) x[i] = kn_rng_uniform(&rng);
  for (int b = 0; b < B; b++) y[b] = (int32_t)(kn_rng_next(&rng) % (uint64_t)classes);
}

static void test_model_table(void) {
  CHECK(kn_model_find("mlp") != NULL);
  CHECK(kn_model_find("no-such-model") == NULL);
  CHECK(kn_model_find(NULL) == NULL);
  int n = 0;
  for (; kn_model_kinds[n]; n++) CHECK(kn_model_find(kn_model_kinds[n]->name) == kn_model_kinds[n]);
  CHECK(n >= 1);
  char err[256];
  CHECK(kn_model_create(kn_model_find("mlp"), 0, 1, err, sizeof err) == NULL);
  CHECK(strstr(err, "max_batch") != NULL);
}

static void test_mlp_layout(void) {
  char err[256] = "";
  kn_model *m = kn_model_create(kn_model_find("mlp"), 8, 42, err, sizeof err);
  CHECK_MSG(m != NULL, "%s", err);
  if (!m) return;
  CHECK(m->num_params == 784 * 256 + 256 + 256 * 128 + 128 + 128 * 10 + 10);
  CHECK(m->num_params == 235146);
  CHECK(m->num_buffers == 0);
  CHECK(m->num_param_tensors == 6);
  static const char *names[6] = {"fc1.weight", "fc1.bias",   "fc2.weight",
                                 "fc2.bias",   "fc3.weight", "fc3.bias"};
  size_t offset = 0;
  for (int i = 0; i < 6 && i < m->num_param_tensors; i++) {
    CHECK(strcmp(m->param_tensors[i].name, names[i]) == 0);
    CHECK(m->param_tensors[i].offset == offset);
    CHECK(kn_model_param(m, i) == m->params + offset);
    CHECK(kn_model_grad(m, i) == m->grads + offset);
    offset += m->param_tensors[i].count;
  }
  CHECK(offset == m->num_params);
  CHECK(m->param_tensors[0].rank == 2 && m->param_tensors[0].shape[0] == 256 &&
        m->param_tensors[0].shape[1] == 784);
  CHECK(m->param_tensors[5].rank == 1 && m->param_tensors[5].shape[0] == 10);

  /* PyTorch's default init: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weight and bias */
  static const double fan_in[6] = {784, 784, 256, 256, 128, 128};
  for (int i = 0; i < 6; i++) {
    const float *p = kn_model_param(m, i);
    size_t count = m->param_tensors[i].count;
    double bound = 1.0 / sqrt(fan_in[i]), sum = 0.0, sum_sq = 0.0, max_abs = 0.0;
    for (size_t k = 0; k < count; k++) {
      sum += p[k];
      sum_sq += (double)p[k] * p[k];
      max_abs = fmax(max_abs, fabs(p[k]));
    }
    CHECK_MSG(max_abs <= bound, "%s max %g bound %g", names[i], max_abs, bound);
    if (count > 1000) { /* moments of U(-b, b): mean 0, variance b^2/3 */
      CHECK_NEAR(sum / count, 0.0, 0.02 * bound);
      CHECK_NEAR(sqrt(sum_sq / count), bound / sqrt(3.0), 0.02 * bound);
      CHECK(max_abs > 0.99 * bound);
    }
  }
  kn_model_free(m);
}

/* An independent double-precision forward of the mlp (fc1-relu-fc2-relu-fc3, mean
 * cross-entropy) over the float parameters in p: the reference for finite differences, which
 * in double resolve gradients far below what a float loss could. */
static double mlp_loss_double(const float *p, const double *delta, size_t delta_at, const float *x,
                              const int32_t *y, int B) {
  static const int dims[4] = {784, 256, 128, 10};
  double act[2][784];
  double total = 0.0;
  for (int b = 0; b < B; b++) {
    for (int i = 0; i < 784; i++) act[0][i] = x[b * 784 + i];
    size_t offset = 0;
    int cur = 0;
    for (int layer = 0; layer < 3; layer++) {
      int in = dims[layer], out = dims[layer + 1];
      size_t w = offset, bias = offset + (size_t)in * out;
      for (int o = 0; o < out; o++) {
        double s = p[bias + o] + (bias + o == delta_at ? *delta : 0.0);
        for (int i = 0; i < in; i++) {
          size_t k = w + (size_t)o * in + i;
          s += (p[k] + (k == delta_at ? *delta : 0.0)) * act[cur][i];
        }
        act[1 - cur][o] = layer < 2 && s < 0.0 ? 0.0 : s;
      }
      cur = 1 - cur;
      offset = bias + out;
    }
    double max = act[cur][0], sum = 0.0;
    for (int v = 1; v < 10; v++) max = fmax(max, act[cur][v]);
    for (int v = 0; v < 10; v++) sum += exp(act[cur][v] - max);
    total += log(sum) - (act[cur][y[b]] - max);
  }
  return total / B;
}

static void test_mlp_gradient(void) {
  enum { B = 4 };
  char err[256] = "";
  kn_model *m = kn_model_create(kn_model_find("mlp"), B, 7, err, sizeof err);
  CHECK_MSG(m != NULL, "%s", err);
  if (!m) return;
  float x[B * 784];
  int32_t y[B];
  make_batch(11, x, y, B, 784, 10);
  float logits[B * 10];
  float loss = m->kind->train_step(m, x, y, B, logits); /* grads start at zero after create */
  CHECK(loss > 1.5f && loss < 3.5f);                    /* about log(10) = 2.30 at init */
  CHECK_NEAR(loss, mlp_loss_double(m->params, NULL, (size_t)-1, x, y, B), 1e-5);
  float loss2 = kn_model_loss_and_grad(m, x, y, B);
  CHECK(loss == loss2);

  /* The 4 largest gradient coordinates of every tensor plus 3 fixed ones. A coordinate whose
   * perturbation moves a ReLU input across 0 has no derivative; those are recognised by
   * disagreeing one-sided differences and skipped (at most a few). */
  const double eps = 1e-4;
  int checked = 0, skipped = 0;
  for (int t = 0; t < m->num_param_tensors; t++) {
    const kn_tensor_info *info = &m->param_tensors[t];
    size_t picks[7];
    int npicks = 0;
    float last = INFINITY;
    for (int k = 0; k < 4; k++) { /* k-th largest |grad| below the previous one */
      size_t best = info->offset;
      float best_abs = -1.0f;
      for (size_t i = info->offset; i < info->offset + info->count; i++) {
        float a = fabsf(m->grads[i]);
        if (a < last && a > best_abs) best_abs = a, best = i;
      }
      picks[npicks++] = best;
      last = best_abs;
    }
    for (int k = 0; k < 3; k++) picks[npicks++] = info->offset + (info->count * (2 * k + 1)) / 7;
    for (int k = 0; k < npicks; k++) {
      size_t i = picks[k];
      double plus_delta = eps, minus_delta = -eps;
      double center = mlp_loss_double(m->params, NULL, (size_t)-1, x, y, B);
      double plus = mlp_loss_double(m->params, &plus_delta, i, x, y, B);
      double minus = mlp_loss_double(m->params, &minus_delta, i, x, y, B);
      double forward = (plus - center) / eps, backward = (center - minus) / eps;
      if (fabs(forward - backward) > 0.05 * fmax(fabs(forward), fabs(backward)) + 1e-6) {
        skipped++;
        continue;
      }
      check_gradient(info->name, (int)(i - info->offset), m->grads[i], (plus - minus) / (2 * eps),
                     1e-6);
      checked++;
    }
  }
  printf("mlp: %d gradient coordinates checked, %d skipped at ReLU kinks\n", checked, skipped);
  CHECK_MSG(checked >= 38 && checked + skipped == 42, "checked %d skipped %d", checked, skipped);
  /* the logits from train_step equal the ones from infer */
  float logits_infer[B * 10];
  m->kind->infer(m, x, B, logits_infer);
  CHECK(memcmp(logits, logits_infer, sizeof logits) == 0);
  /* batch outside 1..max_batch is refused, not overrun */
  CHECK(isnan(m->kind->train_step(m, x, y, B + 1, NULL)));
  kn_model_free(m);
}

static void test_determinism(void) {
  enum { B = 8 };
  char err[256];
  const kn_model_kind *kind = kn_model_find("mlp");
  kn_model *a = kn_model_create(kind, B, 123, err, sizeof err);
  kn_model *b = kn_model_create(kind, B, 123, err, sizeof err);
  kn_model *c = kn_model_create(kind, B, 124, err, sizeof err);
  CHECK(a && b && c);
  if (!a || !b || !c) return;
  CHECK(memcmp(a->params, b->params, a->num_params * sizeof(float)) == 0);
  CHECK(memcmp(a->params, c->params, a->num_params * sizeof(float)) != 0);
  /* a fixed value pins the generator across machines and compilers */
  kn_rng rng;
  kn_rng_seed(&rng, 0);
  CHECK(kn_rng_next(&rng) == 0x99ec5f36cb75f2b4ULL);
  /* normals: moments of N(0, 1) over 20000 draws, and the same stream for the same seed */
  kn_rng_seed(&rng, 5);
  double sum = 0.0, sum_sq = 0.0, sum_4 = 0.0;
  for (int i = 0; i < 20000; i++) {
    double z = kn_rng_normal(&rng);
    sum += z, sum_sq += z * z, sum_4 += z * z * z * z;
  }
  CHECK_NEAR(sum / 20000, 0.0, 0.03);
  CHECK_NEAR(sum_sq / 20000, 1.0, 0.04);
  CHECK_NEAR(sum_4 / 20000, 3.0, 0.25); /* kurtosis of a normal, not of a uniform (1.8) */
  float normals[2][8];
  for (int k = 0; k < 2; k++) {
    kn_rng_seed(&rng, 77);
    kn_rng_fill_normal(&rng, normals[k], 8, 0.01f);
  }
  CHECK(memcmp(normals[0], normals[1], sizeof normals[0]) == 0 && normals[0][3] != 0.0f);

  float x[B * 784];
  int32_t y[B];
  make_batch(5, x, y, B, 784, 10);
  float la = kn_model_loss_and_grad(a, x, y, B);
  float *first = malloc(a->num_params * sizeof(float));
  memcpy(first, a->grads, a->num_params * sizeof(float));
  float la2 = kn_model_loss_and_grad(a, x, y, B);
  float lb = kn_model_loss_and_grad(b, x, y, B);
  CHECK(la == la2 && la == lb);
  CHECK(memcmp(first, a->grads, a->num_params * sizeof(float)) == 0);
  CHECK(memcmp(b->grads, a->grads, a->num_params * sizeof(float)) == 0);
  /* train_step accumulates: a second step without zeroing doubles the gradient (up to the
   * rounding of the different summation order) */
  a->kind->train_step(a, x, y, B, NULL);
  double worst = 0.0;
  for (size_t i = 0; i < a->num_params; i++)
    worst = fmax(worst, fabs(a->grads[i] - 2.0 * first[i]) / (fabs(first[i]) + 1e-6));
  CHECK_MSG(worst < 1e-4, "worst relative deviation %g", worst);
  kn_model_zero_grad(a);
  int zero = 1;
  for (size_t i = 0; i < a->num_params; i++) zero &= a->grads[i] == 0.0f;
  CHECK(zero);
  free(first);
  kn_model_free(a);
  kn_model_free(b);
  kn_model_free(c);
}

static void test_sgd(void) {
  /* Two steps of torch.optim.SGD([p], lr=0.1, momentum=0.9, weight_decay=0.01), by hand:
   * step 1: g' = g + 0.01 p; v = g'; p -= 0.1 v
   *   p0: g' = 0.5 + 0.01 = 0.51, p = 0.949;  p1: g' = -1 - 0.02 = -1.02, p = -1.898
   * step 2: p0: g' = 0.25 + 0.00949 = 0.25949, v = 0.459 + 0.25949 = 0.71849, p = 0.877151
   *         p1: g' = 0.5 - 0.01898 = 0.48102, v = -0.918 + 0.48102 = -0.43698, p = -1.854302 */
  kn_sgd opt;
  CHECK(kn_sgd_init(&opt, 2, 0.1f, 0.9f, 0.01f) == 0);
  float p[2] = {1.0f, -2.0f};
  float g1[2] = {0.5f, -1.0f}, g2[2] = {0.25f, 0.5f};
  kn_sgd_step(&opt, p, g1);
  CHECK_NEAR(p[0], 0.949, 1e-6);
  CHECK_NEAR(p[1], -1.898, 1e-6);
  CHECK_NEAR(opt.velocity[0], 0.51, 1e-6);
  kn_sgd_step(&opt, p, g2);
  CHECK_NEAR(p[0], 0.877151, 1e-6);
  CHECK_NEAR(p[1], -1.854302, 1e-6);
  CHECK_NEAR(opt.velocity[1], -0.43698, 1e-6);
  CHECK(opt.steps == 2);
  kn_sgd_free(&opt);

  /* plain SGD keeps no velocity: p -= lr (g + wd p) */
  CHECK(kn_sgd_init(&opt, 2, 0.5f, 0.0f, 0.0f) == 0);
  CHECK(opt.velocity == NULL);
  float q[2] = {1.0f, 2.0f};
  kn_sgd_step(&opt, q, g1);
  kn_sgd_step(&opt, q, g1);
  CHECK(q[0] == 0.5f && q[1] == 3.0f);
  kn_sgd_free(&opt);
}

static void test_training_reduces_loss(void) {
  enum { B = 16 };
  char err[256];
  kn_model *m = kn_model_create(kn_model_find("mlp"), B, 3, err, sizeof err);
  CHECK(m != NULL);
  if (!m) return;
  float x[B * 784];
  int32_t y[B];
  make_batch(9, x, y, B, 784, 10);
  kn_sgd opt;
  CHECK(kn_sgd_init(&opt, m->num_params, 0.05f, 0.9f, 1e-4f) == 0);
  float first = kn_model_loss_and_grad(m, x, y, B), last = first;
  kn_sgd_step(&opt, m->params, m->grads);
  struct mallinfo2 heap_before = mallinfo2(); /* a training step must not allocate */
  for (int step = 1; step < 50; step++) {
    last = kn_model_loss_and_grad(m, x, y, B);
    kn_sgd_step(&opt, m->params, m->grads);
  }
  struct mallinfo2 heap_after = mallinfo2();
  CHECK(heap_after.uordblks == heap_before.uordblks && heap_after.hblkhd == heap_before.hblkhd);
  printf("mlp: loss %.4f -> %.4f over 50 SGD steps on one batch of %d\n", first, last, B);
  CHECK(last < 0.1f * first);
  float scratch[B * 10];
  CHECK(kn_model_count_correct(m, x, y, B, scratch) == B);
  CHECK(kn_model_count_correct(m, x, y, B, NULL) == B);
  kn_sgd_free(&opt);
  kn_model_free(m);
}

static void test_update_buffers(void) {
  /* running = (1 - momentum) running + momentum stats, on a hand-made buffer block */
  float running[3] = {0.0f, 1.0f, 2.0f}, stats[3] = {1.0f, 3.0f, 2.0f};
  kn_model m;
  memset(&m, 0, sizeof m);
  m.num_buffers = 3;
  m.buffers = running;
  kn_model_update_buffers(&m, stats, 0.1f);
  CHECK_NEAR(running[0], 0.1, 1e-7);
  CHECK_NEAR(running[1], 1.2, 1e-7);
  CHECK_NEAR(running[2], 2.0, 1e-7);
}

static void test_threads(void) {
  kn_set_threads(1);
  CHECK(kn_get_threads() == 1);
}

int main(void) {
  test_threads();
  test_linear();
  test_relu();
  test_cross_entropy();
  test_model_table();
  test_mlp_layout();
  test_mlp_gradient();
  test_determinism();
  test_sgd();
  test_training_reduces_loss();
  test_update_buffers();
  return check_summary("test_kernels_core");
}
