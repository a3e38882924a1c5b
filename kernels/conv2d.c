/* 2-D convolution (PyTorch nn.Conv2d, dilation 1) for NCHW tensors.
 *   inp (B,C,H,W)  weight (OC,C/groups,KH,KW)  bias (OC) or NULL  out (B,OC,OH,OW)
 *   OH = (H + 2 pad_h - KH) / stride_h + 1, OW likewise (floor)
 *   forward   out[b,o] = bias[o] + sum over the group's input channels and the kernel window
 *   backward  dinp += (transposed conv of dout), dweight += , dbias += sums of dout
 * Four algorithms, chosen from the geometry and B only (never from the data), so equal shapes
 * always give bit-identical results:
 *  - depthwise (groups == C > 1): direct loops per (b,c) plane with the valid window ranges
 *    precomputed. A gemm per channel loses here: the planes of MobileNetV3 at 32x32 input are
 *    4x4 to 1x1 and per-call overheads would dominate (measured 10-45x slower).
 *  - single tap (1x1 input and output planes, groups 1): only the kernel's tap (pad_h, pad_w)
 *    meets the input, so the convolution is a Linear layer with that weight slice: one sgemm,
 *    no im2col, no zero rows (SqueezeNet's last fire modules and classifier).
 *  - gemm, one sample at a time (large planes): per sample and group, im2col into col
 *    (C/groups*KH*KW, OH*OW) and out = weight col via cblas_sgemm straight into the NCHW
 *    output. A 1x1, stride 1, unpadded convolution skips im2col: the input plane IS the col
 *    matrix (and dinp is dcol).
 *  - gemm, several samples at a time (small planes): col gets the columns of n samples side by
 *    side, (C/groups*KH*KW, n*OH*OW), so the gemm is wide enough to run near sgemm peak; the
 *    (OC/groups, n*OH*OW) result is copied plane by plane into NCHW.
 * Workspace: kn_conv2d_workspace_floats() floats, shared by forward and backward; the model
 * allocates it once for max_batch (the largest over its layers) and passes it in. */
#include <cblas.h>
#include <string.h>

#include "kernels/layers.h"
#include "kernels/vec.h"

/* Aim for gemms at least this many columns wide; below it OpenBLAS runs far from peak. */
enum { KN_CONV_MIN_GEMM_COLUMNS = 512 };
/* Upper bound on the workspace when batching samples (floats): 16 MiB. */
#define KN_CONV_MAX_BATCHED_WORKSPACE ((size_t)1 << 22)
/* The direct depthwise loops keep per-tap and per-row/column tables on the stack. */
enum { KN_CONV_MAX_DIRECT_KERNEL = 16, KN_CONV_MAX_DIRECT_PLANE = 1024 };

int kn_conv2d_init(kn_conv2d *conv, int C, int OC, int kernel, int stride, int padding, int groups,
                   int H, int W) {
  memset(conv, 0, sizeof *conv);
  if (C < 1 || OC < 1 || kernel < 1 || stride < 1 || padding < 0 || groups < 1 || H < 1 || W < 1 ||
      C % groups || OC % groups)
    return -1;
  conv->in_channels = C;
  conv->out_channels = OC;
  conv->groups = groups;
  conv->kernel_h = conv->kernel_w = kernel;
  conv->stride_h = conv->stride_w = stride;
  conv->pad_h = conv->pad_w = padding;
  conv->in_h = H;
  conv->in_w = W;
  if (H + 2 * padding < kernel || W + 2 * padding < kernel) return -1;
  conv->out_h = (H + 2 * padding - kernel) / stride + 1;
  conv->out_w = (W + 2 * padding - kernel) / stride + 1;
  return 0;
}

static int is_depthwise(const kn_conv2d *conv) {
  return conv->groups > 1 && conv->groups == conv->in_channels &&
         conv->kernel_h <= KN_CONV_MAX_DIRECT_KERNEL &&
         conv->kernel_w <= KN_CONV_MAX_DIRECT_KERNEL && conv->in_h <= KN_CONV_MAX_DIRECT_PLANE &&
         conv->in_w <= KN_CONV_MAX_DIRECT_PLANE;
}

static int is_single_tap(const kn_conv2d *conv) {
  return conv->groups == 1 && conv->in_h == 1 && conv->in_w == 1 && conv->out_h == 1 &&
         conv->out_w == 1;
}

static int is_pointwise(const kn_conv2d *conv) {
  return conv->kernel_h == 1 && conv->kernel_w == 1 && conv->stride_h == 1 && conv->stride_w == 1 &&
         conv->pad_h == 0 && conv->pad_w == 0;
}

/* Rows of the col matrix: the gemm's K. */
static int col_rows(const kn_conv2d *conv) {
  return conv->in_channels / conv->groups * conv->kernel_h * conv->kernel_w;
}

/* How many samples share one gemm: enough to make it KN_CONV_MIN_GEMM_COLUMNS wide, within the
 * workspace bound, never more than B. */
static int samples_per_gemm(const kn_conv2d *conv, int B) {
  size_t plane = (size_t)conv->out_h * conv->out_w;
  int n = (int)((KN_CONV_MIN_GEMM_COLUMNS + plane - 1) / plane);
  size_t per_sample = ((size_t)col_rows(conv) + conv->out_channels / conv->groups) * plane;
  if ((size_t)n * per_sample > KN_CONV_MAX_BATCHED_WORKSPACE)
    n = (int)(KN_CONV_MAX_BATCHED_WORKSPACE / per_sample);
  if (n > B) n = B;
  return n < 1 ? 1 : n;
}

size_t kn_conv2d_workspace_floats(const kn_conv2d *conv, int max_batch) {
  if (is_depthwise(conv)) return 0;
  if (is_single_tap(conv)) /* the tap's weight slice and its gradient, unless it is the weight */
    return conv->kernel_h == 1 && conv->kernel_w == 1
               ? 0
               : (size_t)2 * conv->out_channels * conv->in_channels;
  size_t plane = (size_t)conv->out_h * conv->out_w;
  int n = samples_per_gemm(conv, max_batch);
  if (n == 1) return is_pointwise(conv) ? 0 : (size_t)col_rows(conv) * plane;
  return ((size_t)col_rows(conv) + conv->out_channels / conv->groups) * n * plane;
}

/* One sample's channels [C/groups planes of H*W] -> its OH*OW columns of col, whose rows are
 * ldcol floats apart. Padding becomes zeros. */
static void im2col(const kn_conv2d *conv, const float *inp, float *col, size_t ldcol) {
  if (is_pointwise(conv)) { /* each channel plane is one row of col */
    const size_t plane = (size_t)conv->in_h * conv->in_w;
    for (int c = 0; c < conv->in_channels / conv->groups; c++)
      memcpy(col + c * ldcol, inp + c * plane, plane * sizeof(float));
    return;
  }
  const int channels = conv->in_channels / conv->groups, H = conv->in_h, W = conv->in_w;
  const int KH = conv->kernel_h, KW = conv->kernel_w, OH = conv->out_h, OW = conv->out_w;
  const int sh = conv->stride_h, sw = conv->stride_w, ph = conv->pad_h, pw = conv->pad_w;
  for (int c = 0; c < channels; c++)
    for (int kh = 0; kh < KH; kh++)
      for (int kw = 0; kw < KW; kw++) {
        float *row = col + ((size_t)(c * KH + kh) * KW + kw) * ldcol;
        int lo, hi;
        kn_tap_range(kw, sw, pw, W, OW, &lo, &hi);
        for (int oh = 0; oh < OH; oh++) {
          float *dst = row + (size_t)oh * OW;
          int ih = oh * sh - ph + kh;
          if (ih < 0 || ih >= H) {
            memset(dst, 0, (size_t)OW * sizeof(float));
            continue;
          }
          const float *src = inp + ((size_t)c * H + ih) * W - pw + kw;
          for (int ow = 0; ow < lo; ow++) dst[ow] = 0.0f;
          if (sw == 1)
            memcpy(dst + lo, src + lo, (size_t)(hi - lo) * sizeof(float));
          else
            for (int ow = lo; ow < hi; ow++) dst[ow] = src[ow * sw];
          for (int ow = hi; ow < OW; ow++) dst[ow] = 0.0f;
        }
      }
}

/* The adjoint of im2col: adds the columns back onto the input planes (dinp += ...). */
static void col2im(const kn_conv2d *conv, const float *col, size_t ldcol, float *dinp) {
  if (is_pointwise(conv)) {
    const size_t plane = (size_t)conv->in_h * conv->in_w;
    for (int c = 0; c < conv->in_channels / conv->groups; c++)
      kn_vec_add(dinp + c * plane, col + c * ldcol, plane);
    return;
  }
  const int channels = conv->in_channels / conv->groups, H = conv->in_h, W = conv->in_w;
  const int KH = conv->kernel_h, KW = conv->kernel_w, OH = conv->out_h, OW = conv->out_w;
  const int sh = conv->stride_h, sw = conv->stride_w, ph = conv->pad_h, pw = conv->pad_w;
  for (int c = 0; c < channels; c++)
    for (int kh = 0; kh < KH; kh++)
      for (int kw = 0; kw < KW; kw++) {
        const float *row = col + ((size_t)(c * KH + kh) * KW + kw) * ldcol;
        int lo, hi;
        kn_tap_range(kw, sw, pw, W, OW, &lo, &hi);
        for (int oh = 0; oh < OH; oh++) {
          int ih = oh * sh - ph + kh;
          if (ih < 0 || ih >= H) continue;
          const float *src = row + (size_t)oh * OW;
          float *dst = dinp + ((size_t)c * H + ih) * W - pw + kw;
          if (sw == 1)
            kn_vec_add(dst + lo, src + lo, (size_t)(hi - lo));
          else
            for (int ow = lo; ow < hi; ow++) dst[ow * sw] += src[ow];
        }
      }
}

/* ---- depthwise: direct loops ---------------------------------------------------------------- */

/* The taps k of a window starting at input position start that fall inside 0..in-1. */
static inline void window_taps(int start, int kernel, int in, int *lo, int *hi) {
  *lo = start < 0 ? -start : 0;
  *hi = in - start < kernel ? in - start : kernel;
}

/* One accumulator per output, taps clipped to the plane, one store: on the 4x4..1x1 planes of
 * MobileNetV3 at 32x32 input, updating whole output rows tap by tap spent its time in
 * store-to-load chains. Output channel o reads input channel o / (OC/C) (PyTorch's channel
 * multiplier layout). */
static void depthwise_forward(const kn_conv2d *conv, float *out, const float *inp,
                              const float *weight, const float *bias, int B) {
  const int C = conv->in_channels, OC = conv->out_channels, per = OC / C;
  const int H = conv->in_h, W = conv->in_w, OH = conv->out_h, OW = conv->out_w;
  const int KH = conv->kernel_h, KW = conv->kernel_w;
  for (int b = 0; b < B; b++)
    for (int o = 0; o < OC; o++) {
      const float *in = inp + ((size_t)b * C + o / per) * H * W;
      const float *w = weight + (size_t)o * KH * KW;
      float *dst = out + ((size_t)b * OC + o) * OH * OW;
      const float init = bias ? bias[o] : 0.0f;
      for (int oh = 0; oh < OH; oh++) {
        const int ih = oh * conv->stride_h - conv->pad_h;
        int kh_lo, kh_hi;
        window_taps(ih, KH, H, &kh_lo, &kh_hi);
        for (int ow = 0; ow < OW; ow++) {
          const int iw = ow * conv->stride_w - conv->pad_w;
          int kw_lo, kw_hi;
          window_taps(iw, KW, W, &kw_lo, &kw_hi);
          float acc = init;
          for (int kh = kh_lo; kh < kh_hi; kh++) {
            const float *src = in + (size_t)(ih + kh) * W + iw, *wr = w + kh * KW;
            for (int kw = kw_lo; kw < kw_hi; kw++) acc += wr[kw] * src[kw];
          }
          dst[oh * OW + ow] = acc;
        }
      }
    }
}

/* For input position i (a row or a column): the taps k that read it, k = first, first + stride,
 * ... (count of them), and the output position they read it for, o = (i + pad - k) / stride,
 * starting at out_first and decreasing by one per tap. */
typedef struct {
  int first, count, out_first;
} input_taps;

static void input_taps_init(input_taps *t, int in, int kernel, int stride, int pad, int out) {
  for (int i = 0; i < in; i++) {
    const int reach = i + pad;                                 /* = o * stride + k */
    const int k_min = reach - (out - 1) * stride;              /* o <= out - 1 */
    const int k_max = reach < kernel - 1 ? reach : kernel - 1; /* o >= 0 */
    int k = reach % stride;
    if (k < k_min) k += (k_min - k + stride - 1) / stride * stride;
    t[i].first = k;
    t[i].count = k > k_max ? 0 : (k_max - k) / stride + 1;
    t[i].out_first = (reach - k) / stride;
  }
}

/* Backward in the same spirit: every result is one register accumulator and one store. The
 * weight gradient of tap (kh,kw) is a dot over the outputs that tap reaches (ranges from
 * kn_tap_range); the input gradient is gathered per input element from the taps and outputs
 * that read it (the transposed convolution) through tables built once per call, instead of
 * being scattered output by output. */
static void depthwise_backward(const kn_conv2d *conv, float *dinp, float *dweight, float *dbias,
                               const float *dout, const float *inp, const float *weight, int B) {
  const int C = conv->in_channels, OC = conv->out_channels, per = OC / C;
  const int H = conv->in_h, W = conv->in_w, OH = conv->out_h, OW = conv->out_w;
  const int KH = conv->kernel_h, KW = conv->kernel_w;
  const int sh = conv->stride_h, sw = conv->stride_w, ph = conv->pad_h, pw = conv->pad_w;
  int row_lo[KN_CONV_MAX_DIRECT_KERNEL], row_hi[KN_CONV_MAX_DIRECT_KERNEL];
  int col_lo[KN_CONV_MAX_DIRECT_KERNEL], col_hi[KN_CONV_MAX_DIRECT_KERNEL];
  input_taps rows[KN_CONV_MAX_DIRECT_PLANE], cols[KN_CONV_MAX_DIRECT_PLANE];
  for (int kh = 0; kh < KH; kh++) kn_tap_range(kh, sh, ph, H, OH, &row_lo[kh], &row_hi[kh]);
  for (int kw = 0; kw < KW; kw++) kn_tap_range(kw, sw, pw, W, OW, &col_lo[kw], &col_hi[kw]);
  input_taps_init(rows, H, KH, sh, ph, OH);
  input_taps_init(cols, W, KW, sw, pw, OW);
  /* the taps that meet the input at all: on a 1x1 map only the centre of a padded 5x5 kernel */
  int live_kh[KN_CONV_MAX_DIRECT_KERNEL * KN_CONV_MAX_DIRECT_KERNEL];
  int live_kw[KN_CONV_MAX_DIRECT_KERNEL * KN_CONV_MAX_DIRECT_KERNEL], live = 0;
  for (int kh = 0; kh < KH; kh++)
    for (int kw = 0; kw < KW; kw++)
      if (row_lo[kh] < row_hi[kh] && col_lo[kw] < col_hi[kw])
        live_kh[live] = kh, live_kw[live++] = kw;
  for (int b = 0; b < B; b++)
    for (int o = 0; o < OC; o++) {
      const size_t in_offset = ((size_t)b * C + o / per) * H * W;
      const float *in = inp + in_offset;
      const float *w = weight + (size_t)o * KH * KW;
      const float *g = dout + ((size_t)b * OC + o) * OH * OW;
      float *dw = dweight + (size_t)o * KH * KW;
      if (dbias) dbias[o] += kn_vec_sum_all(g, (size_t)OH * OW);
      for (int t = 0; t < live; t++) {
        const int kh = live_kh[t], kw = live_kw[t];
        float acc = 0.0f;
        for (int oh = row_lo[kh]; oh < row_hi[kh]; oh++) {
          const float *src = in + (size_t)(oh * sh - ph + kh) * W - pw + kw;
          const float *grow = g + (size_t)oh * OW;
          for (int ow = col_lo[kw]; ow < col_hi[kw]; ow++) acc += grow[ow] * src[ow * sw];
        }
        dw[kh * KW + kw] += acc;
      }
      if (!dinp) continue;
      float *din = dinp + in_offset;
      for (int ih = 0; ih < H; ih++) {
        const input_taps r = rows[ih];
        for (int iw = 0; iw < W; iw++) {
          const input_taps c = cols[iw];
          float acc = 0.0f;
          for (int i = 0; i < r.count; i++) {
            const float *wr = w + (r.first + i * sh) * KW;
            const float *grow = g + (r.out_first - i) * OW;
            for (int j = 0; j < c.count; j++) acc += wr[c.first + j * sw] * grow[c.out_first - j];
          }
          din[ih * W + iw] += acc;
        }
      }
    }
}

/* ---- single tap: a 1x1 map through a padded kernel is a Linear layer ------------------------ */

/* The weight of tap (pad_h, pad_w) as an (OC, C) matrix: the weight itself for a 1x1 kernel,
 * else gathered into slice (OC*C floats of workspace). NULL when the tap lies outside the
 * kernel (padding >= kernel): then only the bias reaches the output. */
static const float *tap_weight(const kn_conv2d *conv, const float *weight, float *slice) {
  const int KH = conv->kernel_h, KW = conv->kernel_w, OC = conv->out_channels;
  const int C = conv->in_channels;
  if (conv->pad_h >= KH || conv->pad_w >= KW) return NULL;
  if (KH == 1 && KW == 1) return weight;
  const size_t tap = (size_t)conv->pad_h * KW + conv->pad_w;
  for (size_t i = 0; i < (size_t)OC * C; i++) slice[i] = weight[i * KH * KW + tap];
  return slice;
}

static void single_tap_forward(const kn_conv2d *conv, float *out, const float *inp,
                               const float *weight, const float *bias, int B, float *workspace) {
  const float *w = tap_weight(conv, weight, workspace);
  if (w) {
    kn_linear_forward(out, inp, w, bias, B, conv->in_channels, conv->out_channels);
    return;
  }
  for (int b = 0; b < B; b++)
    for (int o = 0; o < conv->out_channels; o++)
      out[(size_t)b * conv->out_channels + o] = bias ? bias[o] : 0.0f;
}

static void single_tap_backward(const kn_conv2d *conv, float *dinp, float *dweight, float *dbias,
                                const float *dout, const float *inp, const float *weight, int B,
                                float *workspace) {
  const int KH = conv->kernel_h, KW = conv->kernel_w, OC = conv->out_channels;
  const int C = conv->in_channels;
  const float *w = tap_weight(conv, weight, workspace);
  if (!w || (KH == 1 && KW == 1)) { /* no tap, or the weight is the (OC, C) matrix itself */
    if (w)
      kn_linear_backward(dinp, dweight, dbias, dout, inp, w, B, C, OC);
    else if (dbias)
      for (int b = 0; b < B; b++) kn_vec_add(dbias, dout + (size_t)b * OC, (size_t)OC);
    return;
  }
  float *dslice = workspace + (size_t)OC * C;
  memset(dslice, 0, (size_t)OC * C * sizeof(float));
  kn_linear_backward(dinp, dslice, dbias, dout, inp, w, B, C, OC);
  const size_t tap = (size_t)conv->pad_h * KW + conv->pad_w;
  for (size_t i = 0; i < (size_t)OC * C; i++) dweight[i * KH * KW + tap] += dslice[i];
}

/* ---- im2col + gemm -------------------------------------------------------------------------- */

void kn_conv2d_forward(const kn_conv2d *conv, float *out, const float *inp, const float *weight,
                       const float *bias, int B, float *workspace) {
  if (is_depthwise(conv)) {
    depthwise_forward(conv, out, inp, weight, bias, B);
    return;
  }
  if (is_single_tap(conv)) {
    single_tap_forward(conv, out, inp, weight, bias, B, workspace);
    return;
  }
  const int G = conv->groups, Cg = conv->in_channels / G, OCg = conv->out_channels / G;
  const int K = col_rows(conv);
  const size_t in_plane = (size_t)conv->in_h * conv->in_w;
  const size_t plane = (size_t)conv->out_h * conv->out_w;
  const int n = samples_per_gemm(conv, B);
  for (int b0 = 0; b0 < B; b0 += n) {
    const int count = B - b0 < n ? B - b0 : n;
    const size_t columns = (size_t)count * plane;
    for (int g = 0; g < G; g++) {
      const float *w = weight + (size_t)g * OCg * K;
      if (n == 1) { /* straight into the NCHW output plane block of (b0, group g) */
        const float *in = inp + ((size_t)b0 * conv->in_channels + (size_t)g * Cg) * in_plane;
        float *dst = out + ((size_t)b0 * conv->out_channels + (size_t)g * OCg) * plane;
        const float *col = in;
        if (!is_pointwise(conv)) {
          im2col(conv, in, workspace, plane);
          col = workspace;
        }
        float beta = 0.0f;
        if (bias) {
          for (int o = 0; o < OCg; o++) kn_vec_fill(dst + o * plane, bias[g * OCg + o], plane);
          beta = 1.0f;
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, OCg, (int)plane, K, 1.0f, w, K, col,
                    (int)plane, beta, dst, (int)plane);
        continue;
      }
      float *col = workspace, *result = workspace + (size_t)K * columns;
      for (int s = 0; s < count; s++)
        im2col(conv, inp + ((size_t)(b0 + s) * conv->in_channels + (size_t)g * Cg) * in_plane,
               col + s * plane, columns);
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, OCg, (int)columns, K, 1.0f, w, K, col,
                  (int)columns, 0.0f, result, (int)columns);
      for (int s = 0; s < count; s++)
        for (int o = 0; o < OCg; o++) {
          const float *src = result + (size_t)o * columns + s * plane;
          float *dst = out + ((size_t)(b0 + s) * conv->out_channels + g * OCg + o) * plane;
          kn_vec_copy_add(dst, src, bias ? bias[g * OCg + o] : 0.0f, plane);
        }
    }
  }
}

void kn_conv2d_backward(const kn_conv2d *conv, float *dinp, float *dweight, float *dbias,
                        const float *dout, const float *inp, const float *weight, int B,
                        float *workspace) {
  if (is_depthwise(conv)) {
    depthwise_backward(conv, dinp, dweight, dbias, dout, inp, weight, B);
    return;
  }
  if (is_single_tap(conv)) {
    single_tap_backward(conv, dinp, dweight, dbias, dout, inp, weight, B, workspace);
    return;
  }
  const int G = conv->groups, Cg = conv->in_channels / G, OCg = conv->out_channels / G;
  const int K = col_rows(conv);
  const size_t in_plane = (size_t)conv->in_h * conv->in_w;
  const size_t plane = (size_t)conv->out_h * conv->out_w;
  const int n = samples_per_gemm(conv, B);
  if (dbias)
    for (int b = 0; b < B; b++)
      for (int o = 0; o < conv->out_channels; o++) {
        const float *g = dout + ((size_t)b * conv->out_channels + o) * plane;
        float sum = 0.0f;
        for (size_t p = 0; p < plane; p++) sum += g[p];
        dbias[o] += sum;
      }
  for (int b0 = 0; b0 < B; b0 += n) {
    const int count = B - b0 < n ? B - b0 : n;
    const size_t columns = (size_t)count * plane;
    for (int g = 0; g < G; g++) {
      const float *w = weight + (size_t)g * OCg * K;
      float *dw = dweight + (size_t)g * OCg * K;
      if (n == 1) {
        const size_t in_offset = ((size_t)b0 * conv->in_channels + (size_t)g * Cg) * in_plane;
        const float *grad = dout + ((size_t)b0 * conv->out_channels + (size_t)g * OCg) * plane;
        if (is_pointwise(conv)) { /* col is the input itself, dcol is dinp itself */
          cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, OCg, K, (int)plane, 1.0f, grad,
                      (int)plane, inp + in_offset, (int)plane, 1.0f, dw, K);
          if (dinp)
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, K, (int)plane, OCg, 1.0f, w, K,
                        grad, (int)plane, 1.0f, dinp + in_offset, (int)plane);
          continue;
        }
        im2col(conv, inp + in_offset, workspace, plane);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, OCg, K, (int)plane, 1.0f, grad,
                    (int)plane, workspace, (int)plane, 1.0f, dw, K);
        if (dinp) {
          cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, K, (int)plane, OCg, 1.0f, w, K, grad,
                      (int)plane, 0.0f, workspace, (int)plane);
          col2im(conv, workspace, plane, dinp + in_offset);
        }
        continue;
      }
      float *col = workspace, *grad = workspace + (size_t)K * columns;
      for (int s = 0; s < count; s++) {
        im2col(conv, inp + ((size_t)(b0 + s) * conv->in_channels + (size_t)g * Cg) * in_plane,
               col + s * plane, columns);
        for (int o = 0; o < OCg; o++)
          memcpy(grad + (size_t)o * columns + s * plane,
                 dout + ((size_t)(b0 + s) * conv->out_channels + g * OCg + o) * plane,
                 plane * sizeof(float));
      }
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, OCg, K, (int)columns, 1.0f, grad,
                  (int)columns, col, (int)columns, 1.0f, dw, K);
      if (dinp) {
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, K, (int)columns, OCg, 1.0f, w, K, grad,
                    (int)columns, 0.0f, col, (int)columns);
        for (int s = 0; s < count; s++)
          col2im(conv, col + s * plane, columns,
                 dinp + ((size_t)(b0 + s) * conv->in_channels + (size_t)g * Cg) * in_plane);
      }
    }
  }
}
