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

/* Linear on repeated features. Forward folds the repeats into the weight once (folded[o,c] =
 * sum over r of weight[o, c*R + r], summed in r order) and runs a C-wide Linear: R times fewer
 * flops, and the (B, C*R) replicated input is never built. The folded weight is kept for
 * backward, where dinp needs it and dweight gets the same (OC,C) gradient in each repeat. */
void kn_linear_repeated_forward(float *out, float *folded, const float *inp, const float *weight,
                                const float *bias, int B, int C, int R, int OC) {
  for (size_t oc = 0; oc < (size_t)OC * C; oc++) {
    const float *w = weight + oc * R;
    float sum = 0.0f;
    for (int r = 0; r < R; r++) sum += w[r];
    folded[oc] = sum;
  }
  kn_linear_forward(out, inp, folded, bias, B, C, OC);
}

void kn_linear_repeated_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                                 const float *inp, const float *folded, int B, int C, int R, int OC,
                                 float *workspace) {
  memset(workspace, 0, (size_t)OC * C * sizeof(float));
  kn_linear_backward(dinp, workspace, dbias, dout, inp, folded, B, C, OC);
  for (size_t oc = 0; oc < (size_t)OC * C; oc++) {
    float *dw = dweight + oc * R;
    const float g = workspace[oc];
    for (int r = 0; r < R; r++) dw[r] += g;
  }
}
