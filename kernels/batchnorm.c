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
 * Channel sums: each (b,c) plane is summed in float over 8 interleaved lanes (vectorised), and
 * the planes are added up in double, so sums of B*H*W terms stay accurate without the cost of
 * double arithmetic per element. eps is 1e-5 in PyTorch's default, 1e-3 in torchvision's
 * MobileNetV3 (whose momentum is 0.01 instead of 0.1). */
#include <math.h>
#include <string.h>

#include "kernels/layers.h"
#include "kernels/vec.h"

/* Channels are processed in chunks with per-channel accumulators on the stack, samples in the
 * outer loop: every pass then streams through memory in order. Visiting one channel's B planes
 * at a stride of C*HW floats (the obvious loop) is load-bound on small planes. The per-channel
 * summation order is the same either way: plane sums added in sample order. */
enum { CHUNK = 256 };

/* Small planes (deep layers at 32x32 input: 24 of MobileNetV3's 34 batch norms see 2x2 or 1x1
 * maps): per-plane loops would be all overhead. Instead a sample's chunk of channels, nc*HW
 * contiguous floats, is one "slab", and every pass is a vector stream over slabs with the
 * per-channel values expanded to per-element arrays. Used when a chunk's slab fits SLAB. */
enum { SLAB = 4096, SMALL_PLANE = SLAB / CHUNK };

/* dst[c*n + j] = values[c] for j < n */
static void expand(float *dst, const float *values, int nc, size_t n) {
  for (int c = 0; c < nc; c++) kn_vec_fill(dst + c * n, values[c], n);
}

/* per-channel totals of a slab accumulator, in double */
static void channel_totals(double *total, const float *acc, int nc, size_t n) {
  for (int c = 0; c < nc; c++) total[c] = kn_vec_sum_all(acc + c * n, n);
}

static void forward_train_slabs(float *out, float *mean, float *invstd, float *stat_mean,
                                float *stat_var, const float *inp, const float *weight,
                                const float *bias, int B, int C, int HW, float eps, int c0,
                                int nc) {
  const size_t n = (size_t)HW, L = (size_t)nc * n, N = (size_t)B * HW;
  float acc[SLAB], center[SLAB], shift[SLAB];
  double sum[CHUNK], squares[CHUNK];
  float mu[CHUNK], scale[CHUNK], offset[CHUNK];
  memset(acc, 0, L * sizeof(float));
  for (int b = 0; b < B; b++) kn_vec_add(acc, inp + ((size_t)b * C + c0) * n, L);
  channel_totals(sum, acc, nc, n);
  for (int c = 0; c < nc; c++) mu[c] = (float)(sum[c] / (double)N);
  expand(center, mu, nc, n);
  memset(acc, 0, L * sizeof(float));
  for (int b = 0; b < B; b++) {
    const float *x = inp + ((size_t)b * C + c0) * n;
    size_t i = 0;
    for (; i + KN_VEC <= L; i += KN_VEC)
      for (int j = 0; j < KN_VEC; j++)
        acc[i + j] += (x[i + j] - center[i + j]) * (x[i + j] - center[i + j]);
    for (; i < L; i++) acc[i] += (x[i] - center[i]) * (x[i] - center[i]);
  }
  channel_totals(squares, acc, nc, n);
  for (int c = 0; c < nc; c++) {
    const double var = squares[c] / (double)N;
    const float is = (float)(1.0 / sqrt(var + eps));
    mean[c0 + c] = mu[c];
    invstd[c0 + c] = is;
    if (stat_mean) stat_mean[c0 + c] = mu[c];
    if (stat_var) stat_var[c0 + c] = (float)(N > 1 ? squares[c] / (double)(N - 1) : var);
    scale[c] = weight[c0 + c] * is;
    offset[c] = bias[c0 + c] - mu[c] * scale[c];
  }
  expand(center, scale, nc, n); /* reused: per-element scale */
  expand(shift, offset, nc, n);
  for (int b = 0; b < B; b++) {
    const size_t at = ((size_t)b * C + c0) * n;
    const float *x = inp + at;
    float *y = out + at;
    size_t i = 0;
    for (; i + KN_VEC <= L; i += KN_VEC) {
      float r[KN_VEC];
      for (int j = 0; j < KN_VEC; j++) r[j] = x[i + j] * center[i + j] + shift[i + j];
      for (int j = 0; j < KN_VEC; j++) y[i + j] = r[j];
    }
    for (; i < L; i++) y[i] = x[i] * center[i] + shift[i];
  }
}

static void backward_slabs(float *dinp, float *dweight, float *dbias, const float *dout,
                           const float *inp, const float *mean, const float *invstd,
                           const float *weight, int B, int C, int HW, int c0, int nc) {
  const size_t n = (size_t)HW, L = (size_t)nc * n;
  const double N = (double)B * HW;
  float acc_g[SLAB], acc_gx[SLAB], center[SLAB];
  double sum_dout[CHUNK], sum_dout_centered[CHUNK];
  expand(center, mean + c0, nc, n);
  memset(acc_g, 0, L * sizeof(float));
  memset(acc_gx, 0, L * sizeof(float));
  for (int b = 0; b < B; b++) {
    const size_t at = ((size_t)b * C + c0) * n;
    const float *x = inp + at, *g = dout + at;
    size_t i = 0;
    for (; i + KN_VEC <= L; i += KN_VEC)
      for (int j = 0; j < KN_VEC; j++) {
        acc_g[i + j] += g[i + j];
        acc_gx[i + j] += g[i + j] * (x[i + j] - center[i + j]);
      }
    for (; i < L; i++) acc_g[i] += g[i], acc_gx[i] += g[i] * (x[i] - center[i]);
  }
  channel_totals(sum_dout, acc_g, nc, n);
  channel_totals(sum_dout_centered, acc_gx, nc, n);
  float k[CHUNK], u[CHUNK], v[CHUNK];
  for (int c = 0; c < nc; c++) {
    const float is = invstd[c0 + c];
    const double sum_dout_xhat = sum_dout_centered[c] * is;
    dweight[c0 + c] += (float)sum_dout_xhat;
    dbias[c0 + c] += (float)sum_dout[c];
    k[c] = weight[c0 + c] * is;
    u[c] = (float)(-(double)k[c] * is * (sum_dout_xhat / N));
    v[c] = (float)(-(double)k[c] * (sum_dout[c] / N));
  }
  if (!dinp) return;
  float ke[SLAB], ue[SLAB]; /* per-element k and u; acc_g is reused for v */
  expand(ke, k, nc, n);
  expand(ue, u, nc, n);
  expand(acc_g, v, nc, n);
  for (int b = 0; b < B; b++) {
    const size_t at = ((size_t)b * C + c0) * n;
    const float *x = inp + at, *g = dout + at;
    float *d = dinp + at;
    size_t i = 0;
    for (; i + KN_VEC <= L; i += KN_VEC) {
      float r[KN_VEC];
      for (int j = 0; j < KN_VEC; j++)
        r[j] =
            d[i + j] + ke[i + j] * g[i + j] + (x[i + j] - center[i + j]) * ue[i + j] + acc_g[i + j];
      for (int j = 0; j < KN_VEC; j++) d[i + j] = r[j];
    }
    for (; i < L; i++) d[i] += ke[i] * g[i] + (x[i] - center[i]) * ue[i] + acc_g[i];
  }
}

void kn_batchnorm_forward_train(float *out, float *mean, float *invstd, float *stat_mean,
                                float *stat_var, const float *inp, const float *weight,
                                const float *bias, int B, int C, int HW, float eps) {
  const size_t N = (size_t)B * HW, n = (size_t)HW;
  for (int c0 = 0; c0 < C; c0 += CHUNK) {
    const int nc = C - c0 < CHUNK ? C - c0 : CHUNK;
    if (HW <= SMALL_PLANE) {
      forward_train_slabs(out, mean, invstd, stat_mean, stat_var, inp, weight, bias, B, C, HW, eps,
                          c0, nc);
      continue;
    }
    double sum[CHUNK] = {0}, squares[CHUNK] = {0};
    float mu[CHUNK], scale[CHUNK], shift[CHUNK];
    for (int b = 0; b < B; b++) {
      const float *x = inp + ((size_t)b * C + c0) * n;
      for (int c = 0; c < nc; c++) sum[c] += kn_vec_sum_all(x + c * n, n);
    }
    for (int c = 0; c < nc; c++) mu[c] = (float)(sum[c] / (double)N);
    for (int b = 0; b < B; b++) {
      const float *x = inp + ((size_t)b * C + c0) * n;
      for (int c = 0; c < nc; c++) squares[c] += kn_vec_sum_squared_deviation(x + c * n, mu[c], n);
    }
    for (int c = 0; c < nc; c++) {
      const double var = squares[c] / (double)N;
      const float is = (float)(1.0 / sqrt(var + eps));
      mean[c0 + c] = mu[c];
      invstd[c0 + c] = is;
      if (stat_mean) stat_mean[c0 + c] = mu[c];
      if (stat_var) stat_var[c0 + c] = (float)(N > 1 ? squares[c] / (double)(N - 1) : var);
      /* out = x * scale + shift with scale = weight invstd, shift = bias - mean scale */
      scale[c] = weight[c0 + c] * is;
      shift[c] = bias[c0 + c] - mu[c] * scale[c];
    }
    for (int b = 0; b < B; b++) {
      const size_t at = ((size_t)b * C + c0) * n;
      for (int c = 0; c < nc; c++)
        kn_vec_scale_shift(out + at + c * n, inp + at + c * n, scale[c], shift[c], n);
    }
  }
}

void kn_batchnorm_forward_eval(float *out, const float *inp, const float *weight, const float *bias,
                               const float *running_mean, const float *running_var, int B, int C,
                               int HW, float eps) {
  const size_t n = (size_t)HW;
  for (int c0 = 0; c0 < C; c0 += CHUNK) {
    const int nc = C - c0 < CHUNK ? C - c0 : CHUNK;
    float scale[CHUNK], shift[CHUNK];
    for (int c = 0; c < nc; c++) {
      const float is = (float)(1.0 / sqrt((double)running_var[c0 + c] + eps));
      scale[c] = weight[c0 + c] * is;
      shift[c] = bias[c0 + c] - running_mean[c0 + c] * scale[c];
    }
    for (int b = 0; b < B; b++) {
      const size_t at = ((size_t)b * C + c0) * n;
      for (int c = 0; c < nc; c++)
        kn_vec_scale_shift(out + at + c * n, inp + at + c * n, scale[c], shift[c], n);
    }
  }
}

void kn_batchnorm_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                           const float *inp, const float *mean, const float *invstd,
                           const float *weight, int B, int C, int HW) {
  const double N = (double)B * HW;
  const size_t n = (size_t)HW;
  for (int c0 = 0; c0 < C; c0 += CHUNK) {
    const int nc = C - c0 < CHUNK ? C - c0 : CHUNK;
    if (HW <= SMALL_PLANE) {
      backward_slabs(dinp, dweight, dbias, dout, inp, mean, invstd, weight, B, C, HW, c0, nc);
      continue;
    }
    double sum_dout[CHUNK] = {0}, sum_dout_centered[CHUNK] = {0};
    float k[CHUNK], u[CHUNK], v[CHUNK];
    for (int b = 0; b < B; b++) {
      const size_t at = ((size_t)b * C + c0) * n;
      for (int c = 0; c < nc; c++) {
        sum_dout[c] += kn_vec_sum_all(dout + at + c * n, n);
        sum_dout_centered[c] +=
            kn_vec_dot_deviation(dout + at + c * n, inp + at + c * n, mean[c0 + c], n);
      }
    }
    for (int c = 0; c < nc; c++) {
      const float is = invstd[c0 + c];
      const double sum_dout_xhat = sum_dout_centered[c] * is;
      dweight[c0 + c] += (float)sum_dout_xhat;
      dbias[c0 + c] += (float)sum_dout[c];
      /* dinp += k (dout - a - xhat b) with k = weight invstd, a = mean(dout),
       * b = mean(dout xhat), xhat = (x - mean) invstd; as one pass:
       * dinp += k dout + (x - mean) u + v */
      k[c] = weight[c0 + c] * is;
      u[c] = (float)(-(double)k[c] * is * (sum_dout_xhat / N));
      v[c] = (float)(-(double)k[c] * (sum_dout[c] / N));
    }
    if (!dinp) continue;
    for (int b = 0; b < B; b++)
      for (int c = 0; c < nc; c++) {
        const size_t at = ((size_t)b * C + c0 + c) * n;
        const float *x = inp + at, *g = dout + at;
        const float mu = mean[c0 + c];
        float *d = dinp + at;
        size_t i = 0;
        for (; i + KN_VEC <= n; i += KN_VEC) {
          float r[KN_VEC];
          for (int j = 0; j < KN_VEC; j++)
            r[j] = d[i + j] + k[c] * g[i + j] + (x[i + j] - mu) * u[c] + v[c];
          for (int j = 0; j < KN_VEC; j++) d[i + j] = r[j];
        }
        for (; i < n; i++) d[i] += k[c] * g[i] + (x[i] - mu) * u[c] + v[c];
      }
  }
}
