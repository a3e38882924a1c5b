/* Elementwise activations: ReLU, Hardswish and Hardsigmoid (MobileNetV3).
 * All work on flat arrays of n floats, so any shape (B,C,H,W) or (B,C) goes through unchanged.
 * Backward accumulates into dinp (kn_relu_backward_store stores instead, for gradients with a
 * single producer; kn_bias_relu_forward adds a per-row bias first, after bias-free convs). Every
 * loop runs in blocks of KN_VEC (vec.h) made of plain selects: GCC then vectorises them at -O2
 * without branches, which matters because activations of random-signed inputs defeat branch
 * prediction (a branchy ReLU ran 8x slower). Blocks are read before they are written, so forward
 * calls may run in place (out == inp). The formulas are those of PyTorch 1.13's vectorised CPU
 * kernels. */
#include "kernels/layers.h"
#include "kernels/vec.h"

static inline float relu(float x) {
  return x > 0.0f ? x : 0.0f;
}
static inline float relu_grad(float out, float g) {
  return out > 0.0f ? g : 0.0f;
}

void kn_relu_forward(float *out, const float *inp, long n) {
  long i = 0;
  for (; i + KN_VEC <= n; i += KN_VEC) {
    float r[KN_VEC];
    for (int j = 0; j < KN_VEC; j++) r[j] = relu(inp[i + j]);
    for (int j = 0; j < KN_VEC; j++) out[i + j] = r[j];
  }
  for (; i < n; i++) out[i] = relu(inp[i]);
}

void kn_relu_backward(float *dinp, const float *dout, const float *out, long n) {
  long i = 0;
  for (; i + KN_VEC <= n; i += KN_VEC) {
    float r[KN_VEC];
    for (int j = 0; j < KN_VEC; j++) r[j] = dinp[i + j] + relu_grad(out[i + j], dout[i + j]);
    for (int j = 0; j < KN_VEC; j++) dinp[i + j] = r[j];
  }
  for (; i < n; i++) dinp[i] += relu_grad(out[i], dout[i]);
}

void kn_bias_relu_forward(float *x, const float *bias, int C, long n) {
  for (int c = 0; c < C; c++) {
    float *row = x + (long)c * n;
    const float b = bias[c];
    long i = 0;
    for (; i + KN_VEC <= n; i += KN_VEC) {
      float r[KN_VEC];
      for (int j = 0; j < KN_VEC; j++) r[j] = relu(row[i + j] + b);
      for (int j = 0; j < KN_VEC; j++) row[i + j] = r[j];
    }
    for (; i < n; i++) row[i] = relu(row[i] + b);
  }
}

void kn_relu_backward_store(float *dinp, const float *dout, const float *out, long n) {
  long i = 0;
  for (; i + KN_VEC <= n; i += KN_VEC) {
    float r[KN_VEC];
    for (int j = 0; j < KN_VEC; j++) r[j] = relu_grad(out[i + j], dout[i + j]);
    for (int j = 0; j < KN_VEC; j++) dinp[i + j] = r[j];
  }
  for (; i < n; i++) dinp[i] = relu_grad(out[i], dout[i]);
}

/* The four MobileNetV3 activations spell out one select per pass over the block: GCC 12's
 * -O2 vectoriser gives up on a chain of selects inside one statement. */

/* Hardswish(x) = x min(max(x + 3, 0), 6) / 6 */
void kn_hardswish_forward(float *out, const float *inp, long n) {
  long i = 0;
  for (; i + KN_VEC <= n; i += KN_VEC) {
    float x[KN_VEC], t[KN_VEC];
    for (int j = 0; j < KN_VEC; j++) x[j] = inp[i + j], t[j] = x[j] + 3.0f;
    for (int j = 0; j < KN_VEC; j++) t[j] = t[j] > 0.0f ? t[j] : 0.0f;
    for (int j = 0; j < KN_VEC; j++) t[j] = t[j] < 6.0f ? t[j] : 6.0f;
    for (int j = 0; j < KN_VEC; j++) out[i + j] = x[j] * t[j] / 6.0f;
  }
  for (; i < n; i++) {
    float x = inp[i], t = x + 3.0f;
    t = t > 0.0f ? t : 0.0f;
    t = t < 6.0f ? t : 6.0f;
    out[i] = x * t / 6.0f;
  }
}

/* d/dx: 0 below -3, x/3 + 1/2 on [-3, 3), 1 from 3 on (PyTorch's vectorised kernel; its scalar
 * tail loop says 1.5 at exactly 3) */
void kn_hardswish_backward(float *dinp, const float *dout, const float *inp, long n) {
  long i = 0;
  for (; i + KN_VEC <= n; i += KN_VEC) {
    float x[KN_VEC], g[KN_VEC], r[KN_VEC];
    for (int j = 0; j < KN_VEC; j++) x[j] = inp[i + j], g[j] = dout[i + j];
    for (int j = 0; j < KN_VEC; j++) r[j] = g[j] * (x[j] / 3.0f + 0.5f);
    for (int j = 0; j < KN_VEC; j++) r[j] = x[j] < 3.0f ? r[j] : g[j];
    for (int j = 0; j < KN_VEC; j++) r[j] = x[j] < -3.0f ? 0.0f : r[j];
    for (int j = 0; j < KN_VEC; j++) r[j] += dinp[i + j];
    for (int j = 0; j < KN_VEC; j++) dinp[i + j] = r[j];
  }
  for (; i < n; i++) {
    float x = inp[i], g = dout[i];
    dinp[i] += x < -3.0f ? 0.0f : x < 3.0f ? g * (x / 3.0f + 0.5f) : g;
  }
}

/* Hardsigmoid(x) = min(max(x + 3, 0), 6) / 6 */
void kn_hardsigmoid_forward(float *out, const float *inp, long n) {
  long i = 0;
  for (; i + KN_VEC <= n; i += KN_VEC) {
    float t[KN_VEC];
    for (int j = 0; j < KN_VEC; j++) t[j] = inp[i + j] + 3.0f;
    for (int j = 0; j < KN_VEC; j++) t[j] = t[j] > 0.0f ? t[j] : 0.0f;
    for (int j = 0; j < KN_VEC; j++) t[j] = t[j] < 6.0f ? t[j] : 6.0f;
    for (int j = 0; j < KN_VEC; j++) out[i + j] = t[j] / 6.0f;
  }
  for (; i < n; i++) {
    float t = inp[i] + 3.0f;
    t = t > 0.0f ? t : 0.0f;
    t = t < 6.0f ? t : 6.0f;
    out[i] = t / 6.0f;
  }
}

/* d/dx: 1/6 strictly inside (-3, 3) */
void kn_hardsigmoid_backward(float *dinp, const float *dout, const float *inp, long n) {
  long i = 0;
  for (; i + KN_VEC <= n; i += KN_VEC) {
    float x[KN_VEC], r[KN_VEC];
    for (int j = 0; j < KN_VEC; j++) x[j] = inp[i + j], r[j] = dout[i + j] / 6.0f;
    for (int j = 0; j < KN_VEC; j++) r[j] = x[j] > -3.0f ? r[j] : 0.0f;
    for (int j = 0; j < KN_VEC; j++) r[j] = x[j] < 3.0f ? r[j] : 0.0f;
    for (int j = 0; j < KN_VEC; j++) r[j] += dinp[i + j];
    for (int j = 0; j < KN_VEC; j++) dinp[i + j] = r[j];
  }
  for (; i < n; i++)
    if (inp[i] > -3.0f && inp[i] < 3.0f) dinp[i] += dout[i] / 6.0f;
}
