/* Pooling over the planes of NCHW tensors: max pool (PyTorch nn.MaxPool2d, incl. ceil_mode),
 * average pool (nn.AvgPool2d, count_include_pad) and adaptive average pool
 * (nn.AdaptiveAvgPool2d; output 1x1 is global average pooling).
 *   inp (B,C,H,W)  out (B,C,OH,OW)  argmax (B,C,OH,OW) int32, index into the input plane
 *   max:      out = max over the window; backward dinp[argmax] += dout
 *   average:  out = sum over the window / divisor; backward spreads dout / divisor
 * Output sizes and divisors follow PyTorch's pooling_output_shape / avg_pool2d exactly: with
 * ceil_mode the last window may hang over the edge but must start inside the input or left
 * padding; count_include_pad counts padded positions, but not the part of a ceil_mode window
 * beyond the padding. Ties in max pooling go to the first maximum in row-major window order
 * and NaN wins, as in PyTorch. */
#include <math.h>
#include <string.h>

#include "kernels/layers.h"
#include "kernels/vec.h"

static int pooled_size(int in, int kernel, int stride, int pad, int ceil_mode) {
  int span = in + 2 * pad - kernel + (ceil_mode ? stride - 1 : 0);
  int out = span / stride + 1;
  if (ceil_mode && (out - 1) * stride >= in + pad) out--;
  return out;
}

int kn_pool2d_init(kn_pool2d *pool, int C, int H, int W, int kernel, int stride, int padding,
                   int ceil_mode) {
  memset(pool, 0, sizeof *pool);
  if (C < 1 || H < 1 || W < 1 || kernel < 1 || stride < 1 || padding < 0 || 2 * padding > kernel ||
      H + 2 * padding < kernel || W + 2 * padding < kernel)
    return -1;
  pool->channels = C;
  pool->in_h = H;
  pool->in_w = W;
  pool->kernel_h = pool->kernel_w = kernel;
  pool->stride_h = pool->stride_w = stride;
  pool->pad_h = pool->pad_w = padding;
  pool->ceil_mode = ceil_mode != 0;
  pool->count_include_pad = 1;
  pool->out_h = pooled_size(H, kernel, stride, padding, pool->ceil_mode);
  pool->out_w = pooled_size(W, kernel, stride, padding, pool->ceil_mode);
  return 0;
}

/* Branch-free "keep the first maximum, NaN wins" (PyTorch's rule): the winner on real data is
 * unpredictable, and a mispredicted branch per element made max pooling a quarter of
 * SqueezeNet's step. The comparisons combine with | (not ||) into an all-ones/zero mask that
 * blends the bits, so the compiler has nothing to branch on. */
static inline uint32_t float_bits(float x) {
  uint32_t u;
  memcpy(&u, &x, sizeof u);
  return u;
}

static inline float bits_float(uint32_t u) {
  float x;
  memcpy(&x, &u, sizeof x);
  return x;
}

static inline void take_max(float v, int at, float *best, int *best_at) {
  const uint32_t take = 0u - (uint32_t)((v > *best) | (v != v));
  *best = bits_float((float_bits(v) & take) | (float_bits(*best) & ~take));
  *best_at = (int)(((uint32_t)at & take) | ((uint32_t)*best_at & ~take));
}

/* Every window inside the plane (no padding, no ceil_mode overhang: CNN, VGG, SqueezeNet): four
 * outputs at a time, taken in flat (plane, oh, ow) order so that planes of 1x1 or 3x3 outputs
 * fill the lanes too. Each tap gathers one input per lane into a 4-float vector and keeps the
 * winner with a compare mask, so the four compare/select chains run side by side instead of one
 * latency-bound chain per output (3-10x faster than scalar code on SqueezeNet's and VGG's
 * shapes). GCC/clang vector extensions: SSE2 on x86-64, NEON on arm64, no target flags. */
typedef float pool_v4f __attribute__((vector_size(16)));
typedef int32_t pool_v4i __attribute__((vector_size(16)));
enum { POOL_LANES = 4, MAX_INSIDE_TAPS = 256 };

static int windows_inside(const kn_pool2d *pool) {
  return pool->pad_h == 0 && pool->pad_w == 0 &&
         pool->kernel_h * pool->kernel_w <= MAX_INSIDE_TAPS &&
         (pool->out_h - 1) * pool->stride_h + pool->kernel_h <= pool->in_h &&
         (pool->out_w - 1) * pool->stride_w + pool->kernel_w <= pool->in_w;
}

static void maxpool_inside(const kn_pool2d *pool, float *out, int32_t *argmax, const float *inp,
                           long planes) {
  const int W = pool->in_w, OH = pool->out_h, OW = pool->out_w;
  const long plane_size = (long)pool->in_h * W, total = planes * OH * OW;
  int tap[MAX_INSIDE_TAPS], taps = 0; /* offset of each tap from the window's corner */
  for (int kh = 0; kh < pool->kernel_h; kh++)
    for (int kw = 0; kw < pool->kernel_w; kw++) tap[taps++] = kh * W + kw;
  long plane = 0, f = 0;
  int oh = 0, ow = 0; /* position of output f */
  for (; f + POOL_LANES <= total; f += POOL_LANES) {
    long start[POOL_LANES]; /* window corner of each lane in inp */
    pool_v4i corner;        /* the same inside its plane */
    for (int j = 0; j < POOL_LANES; j++) {
      corner[j] = oh * pool->stride_h * W + ow * pool->stride_w;
      start[j] = plane * plane_size + corner[j];
      if (++ow == OW) {
        ow = 0;
        if (++oh == OH) oh = 0, plane++;
      }
    }
    pool_v4f best = {inp[start[0]], inp[start[1]], inp[start[2]], inp[start[3]]};
    pool_v4i at = corner;
    for (int t = 1; t < taps; t++) {
      const int o = tap[t];
      const pool_v4f v = {inp[start[0] + o], inp[start[1] + o], inp[start[2] + o],
                          inp[start[3] + o]};
      const pool_v4i take = (v > best) | (v != v); /* first maximum wins, NaN wins */
      best = (pool_v4f)(((pool_v4i)v & take) | ((pool_v4i)best & ~take));
      at = ((corner + o) & take) | (at & ~take);
    }
    memcpy(out + f, &best, sizeof best);
    memcpy(argmax + f, &at, sizeof at);
  }
  for (; f < total; f++) { /* the last < 4 outputs */
    const int corner = oh * pool->stride_h * W + ow * pool->stride_w;
    const float *in = inp + plane * plane_size + corner;
    float best = in[0];
    int at = corner;
    for (int t = 1; t < taps; t++) take_max(in[tap[t]], corner + tap[t], &best, &at);
    out[f] = best, argmax[f] = at;
    if (++ow == OW) {
      ow = 0;
      if (++oh == OH) oh = 0, plane++;
    }
  }
}

/* Any other window: a whole output row at a time, tap by tap in window order (row-major), so
 * the compare/select chains of neighbouring outputs are independent and overlap. Taps whose
 * column falls outside the plane are skipped through precomputed ranges. */
enum { MAX_ROW_KERNEL = 16 };

static void maxpool_rows(const kn_pool2d *pool, float *out, int32_t *argmax, const float *inp,
                         long planes) {
  const int H = pool->in_h, W = pool->in_w, OH = pool->out_h, OW = pool->out_w;
  const int sh = pool->stride_h, sw = pool->stride_w, ph = pool->pad_h, pw = pool->pad_w;
  int lo[MAX_ROW_KERNEL], hi[MAX_ROW_KERNEL];
  for (int kw = 0; kw < pool->kernel_w; kw++) kn_tap_range(kw, sw, pw, W, OW, &lo[kw], &hi[kw]);
  for (long p = 0; p < planes; p++) {
    const float *in = inp + p * H * W;
    for (int oh = 0; oh < OH; oh++) {
      float *best = out + (p * OH + oh) * OW;
      int32_t *at = argmax + (p * OH + oh) * OW;
      int h0 = oh * sh - ph, h1 = h0 + pool->kernel_h;
      if (h0 < 0) h0 = 0;
      if (h1 > H) h1 = H;
      for (int ow = 0; ow < OW; ow++) {
        int w0 = ow * sw - pw;
        best[ow] = -INFINITY;
        at[ow] = h0 * W + (w0 < 0 ? 0 : w0); /* PyTorch's index when no element beats -inf */
      }
      for (int h = h0; h < h1; h++)
        for (int kw = 0; kw < pool->kernel_w; kw++) {
          const int shift = h * W - pw + kw; /* input index of output ow: ow*sw + shift */
          for (int ow = lo[kw]; ow < hi[kw]; ow++) {
            float b = best[ow];
            int a = at[ow];
            take_max(in[ow * sw + shift], ow * sw + shift, &b, &a);
            best[ow] = b, at[ow] = a;
          }
        }
    }
  }
}

/* The general loop, one window at a time: only for kernels wider than MAX_ROW_KERNEL. */
static void maxpool_windows(const kn_pool2d *pool, float *out, int32_t *argmax, const float *inp,
                            long planes) {
  const int H = pool->in_h, W = pool->in_w, OH = pool->out_h, OW = pool->out_w;
  for (long p = 0; p < planes; p++) {
    const float *in = inp + p * H * W;
    float *o = out + p * OH * OW;
    int32_t *arg = argmax + p * OH * OW;
    for (int oh = 0; oh < OH; oh++) {
      int h0 = oh * pool->stride_h - pool->pad_h, h1 = h0 + pool->kernel_h;
      if (h0 < 0) h0 = 0;
      if (h1 > H) h1 = H;
      for (int ow = 0; ow < OW; ow++) {
        int w0 = ow * pool->stride_w - pool->pad_w, w1 = w0 + pool->kernel_w;
        if (w0 < 0) w0 = 0;
        if (w1 > W) w1 = W;
        float best = -INFINITY;
        int best_at = h0 * W + w0;
        for (int h = h0; h < h1; h++)
          for (int w = w0; w < w1; w++) take_max(in[h * W + w], h * W + w, &best, &best_at);
        o[oh * OW + ow] = best;
        arg[oh * OW + ow] = best_at;
      }
    }
  }
}

void kn_maxpool2d_forward(const kn_pool2d *pool, float *out, int32_t *argmax, const float *inp,
                          int B) {
  const long planes = (long)B * pool->channels;
  if (windows_inside(pool))
    maxpool_inside(pool, out, argmax, inp, planes);
  else if (pool->kernel_w <= MAX_ROW_KERNEL)
    maxpool_rows(pool, out, argmax, inp, planes);
  else
    maxpool_windows(pool, out, argmax, inp, planes);
}

void kn_maxpool2d_backward(const kn_pool2d *pool, float *dinp, const float *dout,
                           const int32_t *argmax, int B) {
  const long in_plane = (long)pool->in_h * pool->in_w, plane = (long)pool->out_h * pool->out_w;
  const long planes = (long)B * pool->channels;
  for (long p = 0; p < planes; p++) {
    float *d = dinp + p * in_plane;
    const float *g = dout + p * plane;
    const int32_t *arg = argmax + p * plane;
    for (long i = 0; i < plane; i++) d[arg[i]] += g[i];
  }
}

/* The window of output (oh, ow) clipped to the input, and PyTorch's divisor for it. */
static float avg_window(const kn_pool2d *pool, int oh, int ow, int *h0, int *h1, int *w0, int *w1) {
  int hs = oh * pool->stride_h - pool->pad_h, ws = ow * pool->stride_w - pool->pad_w;
  int he = hs + pool->kernel_h, we = ws + pool->kernel_w;
  if (he > pool->in_h + pool->pad_h) he = pool->in_h + pool->pad_h;
  if (we > pool->in_w + pool->pad_w) we = pool->in_w + pool->pad_w;
  int padded_count = (he - hs) * (we - ws);
  *h0 = hs < 0 ? 0 : hs;
  *w0 = ws < 0 ? 0 : ws;
  *h1 = he > pool->in_h ? pool->in_h : he;
  *w1 = we > pool->in_w ? pool->in_w : we;
  return (float)(pool->count_include_pad ? padded_count : (*h1 - *h0) * (*w1 - *w0));
}

void kn_avgpool2d_forward(const kn_pool2d *pool, float *out, const float *inp, int B) {
  const int H = pool->in_h, W = pool->in_w, OH = pool->out_h, OW = pool->out_w;
  const long planes = (long)B * pool->channels;
  for (long p = 0; p < planes; p++) {
    const float *in = inp + p * H * W;
    float *o = out + p * OH * OW;
    for (int oh = 0; oh < OH; oh++)
      for (int ow = 0; ow < OW; ow++) {
        int h0, h1, w0, w1;
        float divisor = avg_window(pool, oh, ow, &h0, &h1, &w0, &w1);
        float sum = 0.0f;
        for (int h = h0; h < h1; h++)
          for (int w = w0; w < w1; w++) sum += in[h * W + w];
        o[oh * OW + ow] = sum / divisor;
      }
  }
}

void kn_avgpool2d_backward(const kn_pool2d *pool, float *dinp, const float *dout, int B) {
  const int H = pool->in_h, W = pool->in_w, OH = pool->out_h, OW = pool->out_w;
  const long planes = (long)B * pool->channels;
  for (long p = 0; p < planes; p++) {
    float *d = dinp + p * H * W;
    const float *g = dout + p * OH * OW;
    for (int oh = 0; oh < OH; oh++)
      for (int ow = 0; ow < OW; ow++) {
        int h0, h1, w0, w1;
        float share = g[oh * OW + ow] / avg_window(pool, oh, ow, &h0, &h1, &w0, &w1);
        for (int h = h0; h < h1; h++)
          for (int w = w0; w < w1; w++) d[h * W + w] += share;
      }
  }
}

/* Adaptive windows: output o covers input [floor(o I / O), ceil((o + 1) I / O)). */
static int adaptive_start(int o, int in, int out) {
  return (int)(((long)o * in) / out);
}
static int adaptive_end(int o, int in, int out) {
  return (int)(((long)(o + 1) * in + out - 1) / out);
}

void kn_adaptive_avgpool2d_forward(float *out, const float *inp, int B, int C, int H, int W, int OH,
                                   int OW) {
  const long planes = (long)B * C;
  if (OH == 1 && OW == 1) { /* global average pooling (squeeze-and-excitation, classifiers) */
    for (long p = 0; p < planes; p++)
      out[p] = kn_vec_sum_all(inp + p * H * W, (size_t)H * W) / (float)(H * W);
    return;
  }
  for (long p = 0; p < planes; p++) {
    const float *in = inp + p * H * W;
    float *o = out + p * OH * OW;
    for (int oh = 0; oh < OH; oh++) {
      int h0 = adaptive_start(oh, H, OH), h1 = adaptive_end(oh, H, OH);
      for (int ow = 0; ow < OW; ow++) {
        int w0 = adaptive_start(ow, W, OW), w1 = adaptive_end(ow, W, OW);
        float sum = 0.0f;
        for (int h = h0; h < h1; h++)
          for (int w = w0; w < w1; w++) sum += in[h * W + w];
        o[oh * OW + ow] = sum / (float)((h1 - h0) * (w1 - w0));
      }
    }
  }
}

void kn_adaptive_avgpool2d_backward(float *dinp, const float *dout, int B, int C, int H, int W,
                                    int OH, int OW) {
  const long planes = (long)B * C;
  if (OH == 1 && OW == 1) {
    for (long p = 0; p < planes; p++)
      kn_vec_copy_add(dinp + p * H * W, dinp + p * H * W, dout[p] / (float)(H * W), (size_t)H * W);
    return;
  }
  for (long p = 0; p < planes; p++) {
    float *d = dinp + p * H * W;
    const float *g = dout + p * OH * OW;
    for (int oh = 0; oh < OH; oh++) {
      int h0 = adaptive_start(oh, H, OH), h1 = adaptive_end(oh, H, OH);
      for (int ow = 0; ow < OW; ow++) {
        int w0 = adaptive_start(ow, W, OW), w1 = adaptive_end(ow, W, OW);
        float share = g[oh * OW + ow] / (float)((h1 - h0) * (w1 - w0));
        for (int h = h0; h < h1; h++)
          for (int w = w0; w < w1; w++) d[h * W + w] += share;
      }
    }
  }
}
