/* Model tests for "mlp" and "cnn" against PyTorch 1.13, plus the model-level contracts the
 * harness relies on: state_dict names and shapes, determinism, accumulation, no heap allocation
 * in a training step, and that training the cnn on a batch lowers its loss.
 *
 * The golden values below come from PyTorch, not from this project's code: the generator
 * (reproduced at the end of this file) re-implements kn_rng in Python, builds the identical
 * initial weights and input batch, runs the same network in torch and prints the loss, the
 * first sample's logits, and per parameter tensor the gradient's L2 norm and six entries
 * (first, thirds, middle, last, largest). Regenerate with:
 *   sed -n '/^GENERATOR$/,/^END GENERATOR$/p' tests/test_layers_models.c | sed '1d;$d' \
 *     | /usr/bin/python3 */
#include <malloc.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/model.h"
#include "kernels/rng.h"
#include "kernels/sgd.h"
#include "tests/check.h"

typedef struct {
  const char *name;
  double norm;
  long index[6];
  double value[6];
} golden_tensor;

typedef struct {
  const char *model;
  uint64_t seed, data_seed;
  int batch;
  double loss;
  double logits0[10];
  golden_tensor tensors[8];
} golden_model;

// mlp: seed 7, batch kn_rng(11) B=4, labels [3, 5, 0, 6]
static const golden_model golden_mlp = {
    "mlp",
    7,
    11,
    4,
    2.28142357,
    {0.0240968466, 0.0614279248, 0.0404454283, 0.109856874, -0.0460380763, -0.0241728015,
     0.0911374986, -0.0234783739, -0.0132540707, 0.00937384367},
    {
        {"fc1.weight",
         1.09169614,
         {0, 66901, 100352, 133802, 153075, 200703},
         {0.00127532636, 0.00153618946, 0.00159545941, -5.23355957e-05, 0.0145259229, 0}},
        {"fc1.bias",
         0.0636985208,
         {0, 85, 128, 170, 195, 255},
         {0.00122311665, 0.0086920131, -0.0032579964, -8.56241677e-05, 0.016304858, 0}},
        {"fc2.weight",
         0.595185064,
         {0, 3956, 10922, 16384, 21845, 32767},
         {0, 0.0354797617, -0.000588963332, -0.0048469468, 0, 0}},
        {"fc2.bias",
         0.152235186,
         {0, 42, 45, 64, 85, 127},
         {0, 0.0026234528, -0.0439056456, -0.0209450927, 0, 0}},
        {"fc3.weight",
         0.414770048,
         {0, 426, 486, 640, 853, 1279},
         {0, 0.0110645387, -0.0546662062, 0, 0, 0}},
        {"fc3.bias",
         0.383221086,
         {0, 3, 5, 6, 9, 9},
         {-0.149358571, -0.145115912, -0.154032901, -0.144873351, 0.0980077609, 0.0980077609}},
    }};
// cnn: seed 5, batch kn_rng(13) B=3, labels [8, 4, 9]
static const golden_model golden_cnn = {
    "cnn",
    5,
    13,
    3,
    2.30798864,
    {-0.00141563127, 0.0306685641, -0.0119203478, 0.0928764194, 0.0432517715, 0.0887918323,
     0.0234787818, 0.0650116354, 0.0384875908, 0.0208076648},
    {
        {"conv1.weight",
         0.131891645,
         {0, 111, 266, 400, 533, 799},
         {0.000892702898, 0.0200031009, -0.00243109534, 0.00260687107, -0.0100641046,
          0.000547771982}},
        {"conv1.bias",
         0.0478730657,
         {0, 4, 10, 16, 21, 31},
         {0.00886319764, 0.0273214225, 0.00200117729, 0.00147649192, -0.0135345049, -0.0126839988}},
        {"conv2.weight",
         0.851774897,
         {0, 13348, 17066, 25600, 34133, 51199},
         {-0.0174187757, 0.0283786748, 0.0148668541, 0, 0.000718455238, 0.00252593029}},
        {"conv2.bias",
         0.100978556,
         {0, 16, 21, 32, 42, 63},
         {-0.0185628384, 0.0374827944, 0.0248868745, 0.00276806578, -0.0101955505, -0.0108843101}},
        {"fc1.weight",
         1.9406335,
         {0, 25071, 133802, 200704, 267605, 401407},
         {0, 0.0286474153, 0.00383040542, 0, -0.00107155042, 0}},
        {"fc1.bias",
         0.223806771,
         {0, 7, 42, 64, 85, 127},
         {0, 0.0598171614, 0.0144082317, 0, 0.00950612687, 0}},
        {"fc2.weight",
         0.373759635,
         {0, 426, 640, 853, 1084, 1279},
         {0, 0.000804547453, 0, 0.00256279553, -0.0515839644, 0}},
        {"fc2.bias",
         0.484802105,
         {0, 3, 5, 6, 9, 9},
         {0.0957198068, 0.105944067, 0.104576737, 0.0989109352, -0.235260084, -0.235260084}},
    }};

/* The batch the generator builds: B*784 kn_rng_uniform pixels, then B labels next() % 10. */
static void make_batch(uint64_t seed, float *x, int32_t *y, int B) {
  kn_rng rng;
  kn_rng_seed(&rng, seed);
  for (long i = 0; i < (long)B * 784; i++) x[i] = kn_rng_uniform(&rng);
  for (int b = 0; b < B; b++) y[b] = (int32_t)(kn_rng_next(&rng) % 10);
}

static void test_against_pytorch(const golden_model *g) {
  char err[256] = "";
  kn_model *m = kn_model_create(kn_model_find(g->model), g->batch, g->seed, err, sizeof err);
  CHECK_MSG(m != NULL, "%s", err);
  if (!m) return;
  float *x = malloc((size_t)g->batch * 784 * sizeof(float));
  int32_t y[8];
  make_batch(g->data_seed, x, y, g->batch);
  float logits[8 * 10];
  kn_model_zero_grad(m);
  float loss = m->kind->train_step(m, x, y, g->batch, logits);
  CHECK_MSG(fabs(loss - g->loss) < 1e-5, "%s loss %.9g, PyTorch %.9g", g->model, loss, g->loss);
  for (int v = 0; v < 10; v++)
    CHECK_MSG(fabs(logits[v] - g->logits0[v]) < 1e-5, "%s logit %d: %.9g, PyTorch %.9g", g->model,
              v, logits[v], g->logits0[v]);
  CHECK(m->num_param_tensors <= 8);
  for (int t = 0; t < m->num_param_tensors; t++) {
    const golden_tensor *gt = &g->tensors[t];
    const kn_tensor_info *info = &m->param_tensors[t];
    CHECK_MSG(strcmp(info->name, gt->name) == 0, "tensor %d: %s, PyTorch %s", t, info->name,
              gt->name);
    const float *grad = kn_model_grad(m, t);
    double sq = 0.0;
    for (size_t i = 0; i < info->count; i++) sq += (double)grad[i] * grad[i];
    CHECK_MSG(fabs(sqrt(sq) - gt->norm) <= 1e-4 * gt->norm, "%s %s: |grad| %.9g, PyTorch %.9g",
              g->model, gt->name, sqrt(sq), gt->norm);
    for (int k = 0; k < 6; k++) {
      double ours = grad[gt->index[k]], ref = gt->value[k];
      CHECK_MSG(fabs(ours - ref) <= 1e-4 * fabs(ref) + 1e-6 * gt->norm,
                "%s %s[%ld]: %.9g, PyTorch %.9g", g->model, gt->name, gt->index[k], ours, ref);
    }
  }
  free(x);
  kn_model_free(m);
}

static void test_cnn_layout(void) {
  char err[256] = "";
  kn_model *m = kn_model_create(kn_model_find("cnn"), 4, 1, err, sizeof err);
  CHECK_MSG(m != NULL, "%s", err);
  if (!m) return;
  CHECK(m->num_params == 32 * 25 + 32 + 64 * 32 * 25 + 64 + 128 * 3136 + 128 + 10 * 128 + 10);
  CHECK(m->num_buffers == 0 && m->buffers == NULL);
  CHECK(m->num_param_tensors == 8);
  const kn_tensor_info *conv2 = &m->param_tensors[2];
  CHECK(strcmp(conv2->name, "conv2.weight") == 0 && conv2->rank == 4 && conv2->shape[0] == 64 &&
        conv2->shape[1] == 32 && conv2->shape[2] == 5 && conv2->shape[3] == 5);
  CHECK(m->kind->channels == 1 && m->kind->height == 28 && m->kind->width == 28 &&
        m->kind->classes == 10);
  /* conv2.weight ~ U(-1/sqrt(800), 1/sqrt(800)) */
  double bound = 1.0 / sqrt(800.0), max_abs = 0.0;
  const float *w = kn_model_param(m, 2);
  for (size_t i = 0; i < conv2->count; i++) max_abs = fmax(max_abs, fabs(w[i]));
  CHECK(max_abs <= bound && max_abs > 0.99 * bound);
  kn_model_free(m);
}

/* Heap bytes in use (glibc), to prove a training step allocates nothing. */
static size_t heap_in_use(void) {
  struct mallinfo2 info = mallinfo2();
  return info.uordblks + info.hblkhd;
}

static void test_cnn_training(void) {
  enum { B = 8 };
  char err[256] = "";
  kn_set_threads(1);
  kn_model *m = kn_model_create(kn_model_find("cnn"), B, 21, err, sizeof err);
  kn_model *twin = kn_model_create(kn_model_find("cnn"), B, 21, err, sizeof err);
  CHECK_MSG(m && twin, "%s", err);
  if (!m || !twin) return;
  float *x = malloc(B * 784 * sizeof(float));
  int32_t y[B];
  make_batch(3, x, y, B);
  kn_sgd opt;
  CHECK(kn_sgd_init(&opt, m->num_params, 0.1f, 0.9f, 0.0f) == 0);

  float first = kn_model_loss_and_grad(m, x, y, B); /* first step may warm up OpenBLAS */
  kn_sgd_step(&opt, m->params, m->grads);
  size_t heap_before = heap_in_use();
  float last = first;
  for (int step = 1; step < 30; step++) {
    last = kn_model_loss_and_grad(m, x, y, B);
    kn_sgd_step(&opt, m->params, m->grads);
  }
  size_t heap_after = heap_in_use();
  CHECK_MSG(heap_after == heap_before, "heap grew from %zu to %zu bytes during training steps",
            heap_before, heap_after);
  printf("cnn: loss %.4f -> %.4f over 30 SGD steps on one batch of %d\n", first, last, B);
  CHECK(last < 0.2f * first);
  CHECK(kn_model_count_correct(m, x, y, B, NULL) == B);

  /* same seed and batch: bit-identical loss and gradients; a smaller batch works too */
  float a = kn_model_loss_and_grad(twin, x, y, B);
  float *grads = malloc(twin->num_params * sizeof(float));
  memcpy(grads, twin->grads, twin->num_params * sizeof(float));
  float b = kn_model_loss_and_grad(twin, x, y, B);
  CHECK(a == b && memcmp(grads, twin->grads, twin->num_params * sizeof(float)) == 0);
  CHECK(a == first);
  float small = kn_model_loss_and_grad(twin, x, y, 3);
  CHECK(isfinite(small) && small > 0.0f);
  CHECK(isnan(twin->kind->train_step(twin, x, y, B + 1, NULL)));
  free(grads);
  free(x);
  kn_sgd_free(&opt);
  kn_model_free(m);
  kn_model_free(twin);
}

/* kn_model_loss_and_grad (a kind's train_step_fresh where it has one: VGG11 writes its 411 MB
 * classifier.0 gradient instead of zeroing and adding) gives exactly what zero_grad +
 * train_step give, with every gradient written even over NaN garbage, for every model. */
static void test_fresh_step_equals_accumulating_step(void) {
  enum { B = 2 };
  for (int k = 0; kn_model_kinds[k]; k++) {
    const kn_model_kind *kind = kn_model_kinds[k];
    char err[256] = "";
    kn_model *m = kn_model_create(kind, B, 5, err, sizeof err);
    CHECK_MSG(m != NULL, "%s: %s", kind->name, err);
    if (!m) continue;
    const long n_x = (long)B * kind->channels * kind->height * kind->width;
    float *x = malloc((size_t)n_x * sizeof(float));
    float *fresh = malloc(m->num_params * sizeof(float));
    int32_t y[B] = {3, 7};
    kn_rng rng;
    kn_rng_seed(&rng, 11);
    for (long i = 0; i < n_x; i++) x[i] = kn_rng_uniform(&rng) - 0.5f;
    for (size_t i = 0; i < m->num_params; i++) m->grads[i] = NAN;
    const float loss_fresh = kn_model_loss_and_grad(m, x, y, B);
    memcpy(fresh, m->grads, m->num_params * sizeof(float));
    kn_model_zero_grad(m);
    const float loss = kind->train_step(m, x, y, B, NULL);
    CHECK_MSG(loss_fresh == loss && !isnan(loss), "%s: loss %g vs %g", kind->name, loss_fresh,
              loss);
    CHECK_MSG(memcmp(fresh, m->grads, m->num_params * sizeof(float)) == 0,
              "%s: kn_model_loss_and_grad's gradients differ from zero_grad + train_step",
              kind->name);
    free(x), free(fresh);
    kn_model_free(m);
  }
}

int main(void) {
  test_fresh_step_equals_accumulating_step();
  test_against_pytorch(&golden_mlp);
  test_against_pytorch(&golden_cnn);
  test_cnn_layout();
  test_cnn_training();
  return check_summary("test_layers_models");
}

// clang-format off
/* The generator of the golden values above (PyTorch 1.13, /usr/bin/python3):
GENERATOR
import math, sys
import numpy as np, torch, torch.nn as nn, torch.nn.functional as F
M = (1 << 64) - 1
class Rng:
    def __init__(self, seed):
        st = seed
        self.s = []
        for _ in range(4):
            st = (st + 0x9e3779b97f4a7c15) & M
            z = st
            z = ((z ^ (z >> 30)) * 0xbf58476d1ce4e5b9) & M
            z = ((z ^ (z >> 27)) * 0x94d049bb133111eb) & M
            self.s.append(z ^ (z >> 31))
    def next(self):
        s = self.s
        rotl = lambda x, k: ((x << k) | (x >> (64 - k))) & M
        r = (rotl((s[1] * 5) & M, 7) * 9) & M
        t = (s[1] << 17) & M
        s[2] ^= s[0]; s[3] ^= s[1]; s[1] ^= s[2]; s[0] ^= s[3]; s[2] ^= t; s[3] = rotl(s[3], 45)
        return r
    def uniform(self, n):
        return np.array([self.next() >> 40 for _ in range(n)], dtype=np.float32) * np.float32(1.0 / 16777216.0)
    def symmetric(self, n, bound):
        return (np.float32(2.0) * self.uniform(n) - np.float32(1.0)) * np.float32(bound)

def init_params(model, seed, fan_ins):
    rng = Rng(seed)
    for (name, p), fan_in in zip(model.named_parameters(), fan_ins):
        bound = np.float32(1.0 / math.sqrt(fan_in))
        p.data = torch.from_numpy(rng.symmetric(p.numel(), bound).reshape(p.shape))

def batch(seed, B, sample):
    rng = Rng(seed)
    x = rng.uniform(B * sample)
    y = [rng.next() % 10 for _ in range(B)]
    return torch.from_numpy(x), torch.tensor(y)

class MLP(nn.Module):
    def __init__(s):
        super().__init__(); s.fc1 = nn.Linear(784, 256); s.fc2 = nn.Linear(256, 128); s.fc3 = nn.Linear(128, 10)
    def forward(s, x):
        x = x.flatten(1); return s.fc3(F.relu(s.fc2(F.relu(s.fc1(x)))))
class CNN(nn.Module):
    def __init__(s):
        super().__init__()
        s.conv1 = nn.Conv2d(1, 32, 5, padding=2); s.conv2 = nn.Conv2d(32, 64, 5, padding=2)
        s.fc1 = nn.Linear(3136, 128); s.fc2 = nn.Linear(128, 10)
    def forward(s, x):
        x = F.max_pool2d(F.relu(s.conv1(x)), 2); x = F.max_pool2d(F.relu(s.conv2(x)), 2)
        return s.fc2(F.relu(s.fc1(x.flatten(1))))

torch.set_num_threads(1)
for tag, model, fan_ins, seed, data_seed, B in [
        ("mlp", MLP(), [784, 784, 256, 256, 128, 128], 7, 11, 4),
        ("cnn", CNN(), [25, 25, 800, 800, 3136, 3136, 128, 128], 5, 13, 3)]:
    init_params(model, seed, fan_ins)
    x, y = batch(data_seed, B, 784)
    logits = model(x.reshape(B, 1, 28, 28))
    loss = F.cross_entropy(logits, y)
    loss.backward()
    print("// %s: seed %d, batch kn_rng(%d) B=%d, labels %s" % (tag, seed, data_seed, B, y.tolist()))
    print("static const golden_model golden_%s = {\"%s\", %d, %d, %d, %.9g," % (tag, tag, seed, data_seed, B, loss.item()))
    print("    {%s}," % ", ".join("%.9g" % v for v in logits[0].tolist()))
    print("    {")
    for name, p in model.named_parameters():
        g = p.grad.double().flatten()
        n = g.numel()
        idx = sorted(set([0, n // 3, n // 2, (2 * n) // 3, n - 1, int(g.abs().argmax())]))
        while len(idx) < 6: idx.append(idx[-1])
        print("        {\"%s\", %.9g, {%s}, {%s}}," % (name, g.norm().item(), ", ".join(str(i) for i in idx),
              ", ".join("%.9g" % g[i].item() for i in idx)))
    print("    }};")
END GENERATOR
*/
// clang-format on
