/* Small structural layers on NCHW tensors: channel concatenation (SqueezeNet's fire modules),
 * per-channel scaling (squeeze-and-excitation), residual add. Flatten needs no code: a
 * contiguous (B,C,H,W) array already is the (B,C*H*W) matrix PyTorch's flatten(1) gives.
 *   concat   a (B,Ca,HW), b (B,Cb,HW) -> out (B,Ca+Cb,HW); backward splits dout
 *   scale    inp (B,C,HW), scale (B,C) -> out = inp * scale[b,c];
 *            backward dinp += dout scale, dscale[b,c] += sum over HW of dout inp
 *   add      out = a + b (n floats); backward da += dout, db += dout
 *   swap     (A,C,plane) -> (C,A,plane): NCHW <-> CNHW for models that run on CNHW */
#include <string.h>

#include "kernels/layers.h"
#include "kernels/vec.h"

void kn_concat_channels_forward(float *out, const float *a, int Ca, const float *b, int Cb, int B,
                                int HW) {
  const size_t na = (size_t)Ca * HW, nb = (size_t)Cb * HW;
  for (int s = 0; s < B; s++) {
    float *o = out + (size_t)s * (na + nb);
    memcpy(o, a + (size_t)s * na, na * sizeof(float));
    memcpy(o + na, b + (size_t)s * nb, nb * sizeof(float));
  }
}

void kn_concat_channels_backward(float *da, float *db, const float *dout, int Ca, int Cb, int B,
                                 int HW) {
  const size_t na = (size_t)Ca * HW, nb = (size_t)Cb * HW;
  for (int s = 0; s < B; s++) {
    const float *g = dout + (size_t)s * (na + nb);
    if (da) kn_vec_add(da + (size_t)s * na, g, na);
    if (db) kn_vec_add(db + (size_t)s * nb, g + na, nb);
  }
}

void kn_channel_scale_forward(float *out, const float *inp, const float *scale, int B, int C,
                              int HW) {
  for (long p = 0; p < (long)B * C; p++) {
    kn_vec_scale(out + p * HW, inp + p * HW, scale[p], (size_t)HW);
  }
}

void kn_channel_scale_backward(float *dinp, float *dscale, const float *dout, const float *inp,
                               const float *scale, int B, int C, int HW) {
  for (long p = 0; p < (long)B * C; p++) {
    const float *x = inp + p * HW, *g = dout + p * HW;
    float sum = 0.0f;
    for (int i = 0; i < HW; i++) sum += g[i] * x[i];
    if (dscale) dscale[p] += sum;
    if (dinp) kn_vec_axpy(dinp + p * HW, scale[p], g, (size_t)HW);
  }
}

void kn_add_forward(float *out, const float *a, const float *b, long n) {
  kn_vec_sum(out, a, b, (size_t)n);
}

void kn_add_backward(float *da, float *db, const float *dout, long n) {
  if (da) kn_vec_add(da, dout, (size_t)n);
  if (db) kn_vec_add(db, dout, (size_t)n);
}

void kn_swap_outer_planes(float *dst, const float *src, int A, int C, long plane) {
  for (int a = 0; a < A; a++)
    for (int c = 0; c < C; c++)
      memcpy(dst + ((long)c * A + a) * plane, src + ((long)a * C + c) * plane,
             (size_t)plane * sizeof(float));
}
