/* Batch normalisation over the channels of NCHW tensors (PyTorch nn.BatchNorm2d, affine).
 *   inp, out (B,C,H,W)  weight, bias (C)  N = B*H*W values per channel
 *   training  mean = sum x / N, var = sum (x - mean)^2 / N (biased, used to normalise),
 *             out = (x - mean) / sqrt(var + eps) * weight + bias
 *             cache: mean (C), invstd (C) = 1 / sqrt(var + eps), kept for backward
 *             batch statistics: stat_mean (C) = mean, stat_var (C) = var * N / (N - 1)
 *             (unbiased): exactly what PyTorch folds into running_mean / running_var, so
 *             kn_model_update_buffers(m, m->batch_stats, momentum) reproduces PyTorch.
 *   eval      out = (x - running_mean) / sqrt(running_var + eps) * weight + bias
 *   backward (training mode, with xhat = (x - mean) invstd, N values per channel)
 *             dweight += sum dout xhat,  dbias += sum dout
 *             dinp += weight invstd (dout - sum(dout)/N - xhat sum(dout xhat)/N)
 * Channel sums run in double: they are sums of up to B*H*W terms and the statistics are
 * compared against PyTorch's. eps is 1e-5 in PyTorch's default, 1e-3 in torchvision's
 * MobileNetV3 (whose momentum is 0.01 instead of 0.1). */
#include <math.h>

#include "kernels/layers.h"
#include "kernels/vec.h"

void kn_batchnorm_forward_train(float *out, float *mean, float *invstd, float *stat_mean,
                                float *stat_var, const float *inp, const float *weight,
                                const float *bias, int B, int C, int HW, float eps) {
  const size_t N = (size_t)B * HW;
  for (int c = 0; c < C; c++) {
    double sum = 0.0;
    for (int b = 0; b < B; b++) {
      const float *x = inp + ((size_t)b * C + c) * HW;
      for (int i = 0; i < HW; i++) sum += x[i];
    }
    const double mu = sum / (double)N;
    double squares = 0.0;
    for (int b = 0; b < B; b++) {
      const float *x = inp + ((size_t)b * C + c) * HW;
      for (int i = 0; i < HW; i++) {
        double d = x[i] - mu;
        squares += d * d;
      }
    }
    const double var = squares / (double)N;
    const float is = (float)(1.0 / sqrt(var + eps));
    mean[c] = (float)mu;
    invstd[c] = is;
    if (stat_mean) stat_mean[c] = (float)mu;
    if (stat_var) stat_var[c] = (float)(N > 1 ? squares / (double)(N - 1) : var);
    /* out = x * scale + shift with scale = weight invstd, shift = bias - mean scale */
    const float scale = weight[c] * is, shift = bias[c] - (float)mu * scale;
    for (int b = 0; b < B; b++) {
      const size_t at = ((size_t)b * C + c) * HW;
      kn_vec_scale_shift(out + at, inp + at, scale, shift, (size_t)HW);
    }
  }
}

void kn_batchnorm_forward_eval(float *out, const float *inp, const float *weight, const float *bias,
                               const float *running_mean, const float *running_var, int B, int C,
                               int HW, float eps) {
  for (int c = 0; c < C; c++) {
    const float is = (float)(1.0 / sqrt((double)running_var[c] + eps));
    const float scale = weight[c] * is, shift = bias[c] - running_mean[c] * scale;
    for (int b = 0; b < B; b++) {
      const size_t at = ((size_t)b * C + c) * HW;
      kn_vec_scale_shift(out + at, inp + at, scale, shift, (size_t)HW);
    }
  }
}

void kn_batchnorm_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                           const float *inp, const float *mean, const float *invstd,
                           const float *weight, int B, int C, int HW) {
  const double N = (double)B * HW;
  for (int c = 0; c < C; c++) {
    const float mu = mean[c], is = invstd[c];
    double sum_dout = 0.0, sum_dout_xhat = 0.0;
    for (int b = 0; b < B; b++) {
      const float *x = inp + ((size_t)b * C + c) * HW;
      const float *g = dout + ((size_t)b * C + c) * HW;
      for (int i = 0; i < HW; i++) {
        sum_dout += g[i];
        sum_dout_xhat += (double)g[i] * ((x[i] - mu) * is);
      }
    }
    dweight[c] += (float)sum_dout_xhat;
    dbias[c] += (float)sum_dout;
    if (!dinp) continue;
    /* dinp = k (dout - a - xhat b) with k = weight invstd, a = mean(dout), b = mean(dout xhat) */
    const float k = weight[c] * is, a = (float)(sum_dout / N), bb = (float)(sum_dout_xhat / N);
    for (int b = 0; b < B; b++) {
      const float *x = inp + ((size_t)b * C + c) * HW;
      const float *g = dout + ((size_t)b * C + c) * HW;
      float *d = dinp + ((size_t)b * C + c) * HW;
      for (int i = 0; i < HW; i++) d[i] += k * (g[i] - a - (x[i] - mu) * is * bb);
    }
  }
}
