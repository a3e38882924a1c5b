/* Fully connected layer (PyTorch nn.Linear) on top of cblas_sgemm.
 *   inp (B,C)  weight (OC,C)  bias (OC)  out (B,OC)
 *   forward   out    = inp weight^T + bias
 *   backward  dinp  += dout weight          (B,OC)(OC,C)
 *             dweight += dout^T inp         (OC,B)(B,C)
 *             dbias += sum over b of dout
 * Row-major throughout; beta = 1 gives the accumulation for free. */
#include <cblas.h>
#include <math.h>
#include <string.h>

#include "kernels/layers.h"
#include "kernels/vec.h"

void kn_init_fan_in_uniform(kn_rng *rng, float *x, long n, long fan_in) {
  kn_rng_fill_symmetric(rng, x, n, (float)(1.0 / sqrt((double)fan_in)));
}

void kn_linear_forward(float *out, const float *inp, const float *weight, const float *bias, int B,
                       int C, int OC) {
  float beta = 0.0f;
  if (bias) {
    for (int b = 0; b < B; b++) memcpy(out + (size_t)b * OC, bias, (size_t)OC * sizeof(float));
    beta = 1.0f;
  }
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, B, OC, C, 1.0f, inp, C, weight, C, beta, out,
              OC);
}

void kn_linear_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                        const float *inp, const float *weight, int B, int C, int OC) {
  if (dinp)
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, B, C, OC, 1.0f, dout, OC, weight, C,
                1.0f, dinp, C);
  cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, OC, C, B, 1.0f, dout, OC, inp, C, 1.0f,
              dweight, C);
  if (dbias)
    for (int b = 0; b < B; b++) {
      const float *row = dout + (size_t)b * OC;
      for (int o = 0; o < OC; o++) dbias[o] += row[o];
    }
}

/* dst[i] += value, in vectorisable blocks of 8 (kernels/vec.h's style). */
static void add_constant(float *dst, float value, size_t n) {
  size_t i = 0;
  for (; i + KN_VEC <= n; i += KN_VEC) {
    float v[KN_VEC];
    for (int j = 0; j < KN_VEC; j++) v[j] = dst[i + j] + value;
    for (int j = 0; j < KN_VEC; j++) dst[i + j] = v[j];
  }
  for (; i < n; i++) dst[i] += value;
}

/* Linear on repeated features. Forward folds the repeats into the weight once (folded[o,c] =
 * sum over r of weight[o, c*R + r]) and runs a C-wide Linear: R times fewer flops, and the
 * (B, C*R) replicated input is never built. The folded weight is kept for backward, where dinp
 * needs it and dweight gets the same (OC,C) gradient in each repeat. Both loops stream the
 * whole (OC, C*R) weight or its gradient once, so they are memory bound (VGG11: 411 MB each);
 * they are written in blocks of 8 so they vectorise (a plain 49-term running sum is a chain of
 * 49 dependent adds, ~200 cycles, per 196 bytes read: slower than the memory stream). */
void kn_linear_repeated_forward(float *out, float *folded, const float *inp, const float *weight,
                                const float *bias, int B, int C, int R, int OC) {
  for (size_t oc = 0; oc < (size_t)OC * C; oc++) folded[oc] = kn_vec_sum_all(weight + oc * R, R);
  kn_linear_forward(out, inp, folded, bias, B, C, OC);
}

static void repeated_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                              const float *inp, const float *folded, int B, int C, int R, int OC,
                              float *workspace, int store) {
  memset(workspace, 0, (size_t)OC * C * sizeof(float));
  kn_linear_backward(dinp, workspace, dbias, dout, inp, folded, B, C, OC);
  for (size_t oc = 0; oc < (size_t)OC * C; oc++)
    if (store)
      kn_vec_fill(dweight + oc * R, workspace[oc], (size_t)R);
    else
      add_constant(dweight + oc * R, workspace[oc], (size_t)R);
}

void kn_linear_repeated_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                                 const float *inp, const float *folded, int B, int C, int R, int OC,
                                 float *workspace) {
  repeated_backward(dinp, dweight, dbias, dout, inp, folded, B, C, R, OC, workspace, 0);
}

void kn_linear_repeated_backward_store(float *dinp, float *dweight, float *dbias, const float *dout,
                                       const float *inp, const float *folded, int B, int C, int R,
                                       int OC, float *workspace) {
  repeated_backward(dinp, dweight, dbias, dout, inp, folded, B, C, R, OC, workspace, 1);
}
