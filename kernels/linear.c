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
