/* Elementwise activations: ReLU, Hardswish and Hardsigmoid (MobileNetV3).
 * All work on flat arrays of n floats, so any shape (B,C,H,W) or (B,C) goes through unchanged.
 * Backward accumulates into dinp. */
#include "kernels/layers.h"

void kn_relu_forward(float *out, const float *inp, long n) {
  for (long i = 0; i < n; i++) out[i] = inp[i] > 0.0f ? inp[i] : 0.0f;
}

void kn_relu_backward(float *dinp, const float *dout, const float *out, long n) {
  for (long i = 0; i < n; i++) dinp[i] += out[i] > 0.0f ? dout[i] : 0.0f;
}

/* Hardswish(x) = x relu6(x + 3) / 6. Backward follows PyTorch's hardswish_backward exactly,
 * including the boundaries: 0 below -3, x/3 + 1/2 on [-3, 3], 1 above 3. */
void kn_hardswish_forward(float *out, const float *inp, long n) {
  for (long i = 0; i < n; i++) {
    float x = inp[i];
    out[i] = x <= -3.0f ? 0.0f : x >= 3.0f ? x : x * (x + 3.0f) / 6.0f;
  }
}

void kn_hardswish_backward(float *dinp, const float *dout, const float *inp, long n) {
  for (long i = 0; i < n; i++) {
    float x = inp[i];
    dinp[i] += x < -3.0f ? 0.0f : x <= 3.0f ? dout[i] * (x / 3.0f + 0.5f) : dout[i];
  }
}

/* Hardsigmoid(x) = relu6(x + 3) / 6; derivative 1/6 strictly inside (-3, 3) (PyTorch). */
void kn_hardsigmoid_forward(float *out, const float *inp, long n) {
  for (long i = 0; i < n; i++) {
    float x = inp[i];
    out[i] = x <= -3.0f ? 0.0f : x >= 3.0f ? 1.0f : (x + 3.0f) / 6.0f;
  }
}

void kn_hardsigmoid_backward(float *dinp, const float *dout, const float *inp, long n) {
  for (long i = 0; i < n; i++) {
    float x = inp[i];
    if (x > -3.0f && x < 3.0f) dinp[i] += dout[i] / 6.0f;
  }
}
