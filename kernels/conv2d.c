/* 2-D convolution (PyTorch nn.Conv2d, dilation 1) for NCHW tensors.
 *   inp (B,C,H,W)  weight (OC,C/groups,KH,KW)  bias (OC) or NULL  out (B,OC,OH,OW)
 *   OH = (H + 2 pad_h - KH) / stride_h + 1, OW likewise (floor)
 *   forward   out[b,o] = bias[o] + sum over the group's input channels and the kernel window
 *   backward  dinp += (transposed conv of dout), dweight += , dbias += sums of dout
 * Five algorithms, chosen from the geometry and B only (never from the data), so equal shapes
 * always give bit-identical results:
 *  - depthwise, channels last (groups == C == OC >= 8, MobileNetV3): each sample is transposed
 *    to (position, channel) so every tap is one multiply-add over a contiguous run of channels
 *    (vectorised); this took MobileNetV3's step from ~31 to ~24 ms of CPU time.
 *  - depthwise (other groups == C > 1): direct loops per (b,c) plane with the valid window
 *    ranges precomputed. A gemm per channel loses here: the planes of MobileNetV3 at 32x32 input
 *    are 4x4 to 1x1 and per-call overheads would dominate (measured 10-45x slower).
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
 *  im2col/col2im read and write through a zero-bordered copy of each sample's planes (see
 *  pad_planes): no bounds tests and no library call per short row; unpadded convolutions read
 *  the input in place.
 * kn_conv2d_cnhw_*: the same convolution on CNHW tensors (SqueezeNet, cnn): the B samples'
 *  planes of a channel lie side by side, so each group is one gemm per chunk of samples that
 *  reads and writes the activations in place (no copy of inputs or results), and a 1x1 (or
 *  single-tap) convolution is one gemm on the input itself.
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

/* Depthwise with one output channel per input channel and at least one vector of channels:
 * the channels-last loops below (MobileNetV3's 16..576-channel depthwise convs). */
static int is_depthwise_channels_last(const kn_conv2d *conv) {
  return is_depthwise(conv) && conv->out_channels == conv->in_channels &&
         conv->in_channels >= KN_VEC;
}

static int is_single_tap(const kn_conv2d *conv) {
  return conv->groups == 1 && conv->in_h == 1 && conv->in_w == 1 && conv->out_h == 1 &&
         conv->out_w == 1;
}

/* Workspace of a single-tap conv: the tap's weight slice and its gradient, unless the kernel is
 * 1x1 and the weight is the (OC, C) matrix itself. */
static size_t tap_slice_floats(const kn_conv2d *conv) {
  return conv->kernel_h == 1 && conv->kernel_w == 1
             ? 0
             : (size_t)2 * conv->out_channels * conv->in_channels;
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

/* Floats of one sample's C/groups input planes with their zero border: the scratch im2col and
 * col2im work in, after the gemm operands in the workspace. */
static size_t padded_floats(const kn_conv2d *conv) {
  return (size_t)(conv->in_channels / conv->groups) * (conv->in_h + 2 * conv->pad_h) *
         (conv->in_w + 2 * conv->pad_w);
}

/* Where the padded planes live in the workspace: after col (and the batched gemm's second
 * operand) of n samples. */
static float *padded_scratch(const kn_conv2d *conv, float *workspace, int n) {
  const size_t plane = (size_t)conv->out_h * conv->out_w;
  if (n == 1) return workspace + (size_t)col_rows(conv) * plane;
  return workspace + ((size_t)col_rows(conv) + conv->out_channels / conv->groups) * n * plane;
}

size_t kn_conv2d_workspace_floats(const kn_conv2d *conv, int max_batch) {
  if (is_depthwise_channels_last(conv)) { /* transposed weight, its gradient, one sample */
    const size_t C = (size_t)conv->in_channels, taps = (size_t)conv->kernel_h * conv->kernel_w;
    const size_t in_plane = (size_t)conv->in_h * conv->in_w,
                 plane = (size_t)conv->out_h * conv->out_w;
    return C * (2 * taps + 2 * in_plane + plane);
  }
  if (is_depthwise(conv)) return 0;
  if (is_single_tap(conv)) return tap_slice_floats(conv);
  size_t plane = (size_t)conv->out_h * conv->out_w;
  int n = samples_per_gemm(conv, max_batch);
  if (n == 1 && is_pointwise(conv)) return 0;
  const size_t padded = is_pointwise(conv) ? 0 : padded_floats(conv);
  if (n == 1) return (size_t)col_rows(conv) * plane + padded;
  return ((size_t)col_rows(conv) + conv->out_channels / conv->groups) * n * plane + padded;
}

/* dst[i] = src[i] and dst[i] += src[i] for the short rows of im2col/col2im (2..16 floats): blocks
 * of 8 and 4 through locals vectorise at -O2, and with no open copy loop GCC cannot turn the
 * copy back into a memcpy call (which costs more than copying 8 floats). */
static inline void copy_short(float *dst, const float *src, int n) {
  int i = 0;
  for (; i + 8 <= n; i += 8) {
    float v[8];
    for (int j = 0; j < 8; j++) v[j] = src[i + j];
    for (int j = 0; j < 8; j++) dst[i + j] = v[j];
  }
  if (i + 4 <= n) {
    float v[4];
    for (int j = 0; j < 4; j++) v[j] = src[i + j];
    for (int j = 0; j < 4; j++) dst[i + j] = v[j];
    i += 4;
  }
  if (i + 2 <= n) {
    float a = src[i], b = src[i + 1];
    dst[i] = a, dst[i + 1] = b;
    i += 2;
  }
  if (i < n) dst[i] = src[i];
}

static inline void add_short(float *dst, const float *src, int n) {
  int i = 0;
  for (; i + 8 <= n; i += 8) {
    float v[8];
    for (int j = 0; j < 8; j++) v[j] = dst[i + j] + src[i + j];
    for (int j = 0; j < 8; j++) dst[i + j] = v[j];
  }
  if (i + 4 <= n) {
    float v[4];
    for (int j = 0; j < 4; j++) v[j] = dst[i + j] + src[i + j];
    for (int j = 0; j < 4; j++) dst[i + j] = v[j];
    i += 4;
  }
  for (; i < n; i++) dst[i] += src[i];
}

/* A plane copy: memcpy for long ones, inline for the 2x2..4x4 planes of MobileNetV3's pointwise
 * convs, where a library call per (sample, channel) costs more than the copy. */
static inline void copy_plane(float *dst, const float *src, size_t n) {
  if (n >= 16)
    memcpy(dst, src, n * sizeof(float));
  else
    copy_short(dst, src, (int)n);
}

/* im2col and col2im go through a zero-bordered copy of the sample's planes: every column entry
 * is then a plain strided read (or add) with no bounds test and no per-row memcpy/memset call.
 * On VGG's 8x8..2x2 planes rows are 8..2 floats long, and the per-row library calls of the
 * clipped version cost more than the copying itself (VGG's 2x2 layers spent a third of their
 * time there). */
static void pad_planes(const kn_conv2d *conv, const float *inp, size_t channel_stride,
                       float *padded) {
  const int channels = conv->in_channels / conv->groups, H = conv->in_h, W = conv->in_w;
  const int Hp = H + 2 * conv->pad_h, Wp = W + 2 * conv->pad_w;
  memset(padded, 0, padded_floats(conv) * sizeof(float));
  for (int c = 0; c < channels; c++)
    for (int ih = 0; ih < H; ih++) {
      float *dst = padded + ((size_t)c * Hp + ih + conv->pad_h) * Wp + conv->pad_w;
      const float *src = inp + (size_t)c * channel_stride + (size_t)ih * W;
      copy_short(dst, src, W);
    }
}

/* One sample's channels [C/groups planes of H*W, channel_stride floats apart: H*W in NCHW,
 * B*H*W in CNHW] -> its OH*OW columns of col, whose rows are ldcol floats apart. Padding becomes
 * zeros. padded: padded_floats() of scratch. */
static void im2col(const kn_conv2d *conv, const float *inp, size_t channel_stride, float *col,
                   size_t ldcol, float *padded) {
  if (is_pointwise(conv)) { /* each channel plane is one row of col */
    const size_t plane = (size_t)conv->in_h * conv->in_w;
    for (int c = 0; c < conv->in_channels / conv->groups; c++)
      copy_plane(col + c * ldcol, inp + c * channel_stride, plane);
    return;
  }
  const int channels = conv->in_channels / conv->groups;
  const int Hp = conv->in_h + 2 * conv->pad_h, Wp = conv->in_w + 2 * conv->pad_w;
  const int KH = conv->kernel_h, KW = conv->kernel_w, OH = conv->out_h, OW = conv->out_w;
  const int sh = conv->stride_h, sw = conv->stride_w;
  const float *planes = inp; /* unpadded: read the input in place */
  size_t plane_stride = channel_stride;
  if (conv->pad_h || conv->pad_w) {
    pad_planes(conv, inp, channel_stride, padded);
    planes = padded, plane_stride = (size_t)Hp * Wp;
  }
  for (int c = 0; c < channels; c++)
    for (int kh = 0; kh < KH; kh++)
      for (int kw = 0; kw < KW; kw++) {
        float *row = col + ((size_t)(c * KH + kh) * KW + kw) * ldcol;
        const float *src = planes + c * plane_stride + (size_t)kh * Wp + kw;
        for (int oh = 0; oh < OH; oh++) {
          float *dst = row + (size_t)oh * OW;
          const float *s = src + (size_t)oh * sh * Wp;
          if (sw == 1)
            copy_short(dst, s, OW);
          else
            for (int ow = 0; ow < OW; ow++) dst[ow] = s[ow * sw];
        }
      }
}

/* The adjoint of im2col: adds the columns back onto the input planes (dinp += ...). */
static void col2im(const kn_conv2d *conv, const float *col, size_t ldcol, float *dinp,
                   size_t channel_stride, float *padded) {
  if (is_pointwise(conv)) {
    const size_t plane = (size_t)conv->in_h * conv->in_w;
    for (int c = 0; c < conv->in_channels / conv->groups; c++)
      kn_vec_add(dinp + c * channel_stride, col + c * ldcol, plane);
    return;
  }
  const int channels = conv->in_channels / conv->groups, H = conv->in_h, W = conv->in_w;
  const int Hp = H + 2 * conv->pad_h, Wp = W + 2 * conv->pad_w;
  const int KH = conv->kernel_h, KW = conv->kernel_w, OH = conv->out_h, OW = conv->out_w;
  const int sh = conv->stride_h, sw = conv->stride_w;
  memset(padded, 0, padded_floats(conv) * sizeof(float));
  for (int c = 0; c < channels; c++) {
    for (int kh = 0; kh < KH; kh++)
      for (int kw = 0; kw < KW; kw++) {
        const float *row = col + ((size_t)(c * KH + kh) * KW + kw) * ldcol;
        float *dst = padded + ((size_t)c * Hp + kh) * Wp + kw;
        for (int oh = 0; oh < OH; oh++) {
          const float *src = row + (size_t)oh * OW;
          float *d = dst + (size_t)oh * sh * Wp;
          if (sw == 1)
            add_short(d, src, OW);
          else
            for (int ow = 0; ow < OW; ow++) d[ow * sw] += src[ow];
        }
      }
    for (int ih = 0; ih < H; ih++)
      add_short(dinp + (size_t)c * channel_stride + (size_t)ih * W,
                padded + ((size_t)c * Hp + ih + conv->pad_h) * Wp + conv->pad_w, W);
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

/* ---- depthwise, channels last ---------------------------------------------------------------- */

/* Why: on MobileNetV3's 8x8..1x1 planes a per-(sample, channel) loop does a handful of
 * multiply-adds per window and spends its time on loop control (the plain loops above were a
 * third of the model's step). Transposing each sample to (position, channel) makes every tap of
 * every output position one multiply-add over a contiguous run of channels, which vectorises,
 * and the window bookkeeping is paid once per sample instead of once per channel. Transposes
 * are skipped for 1x1 planes, where (C,1) and (1,C) are the same memory.
 * Workspace (kn_conv2d_workspace_floats): wt (taps,C) the weight transposed, dwt its gradient,
 * it (H*W,C) the sample's input, dit its gradient, ot (OH*OW,C) its output or output gradient. */

/* src (rows, cols) -> dst (cols, rows) */
static void transpose(float *dst, const float *src, int rows, int cols) {
  for (int r = 0; r < rows; r++)
    for (int c = 0; c < cols; c++) dst[(size_t)c * rows + r] = src[(size_t)r * cols + c];
}

/* One output position: out[c] = init[c] + sum over the window's taps of wt[tap][c] it[in][c]. */
static void depthwise_cl_position(const kn_conv2d *conv, float *out, const float *init,
                                  const float *it, const float *wt, int oh, int ow) {
  const int C = conv->in_channels, W = conv->in_w, KW = conv->kernel_w;
  const int ih = oh * conv->stride_h - conv->pad_h, iw = ow * conv->stride_w - conv->pad_w;
  int kh_lo, kh_hi, kw_lo, kw_hi;
  window_taps(ih, conv->kernel_h, conv->in_h, &kh_lo, &kh_hi);
  window_taps(iw, KW, W, &kw_lo, &kw_hi);
  int c = 0;
  for (; c + KN_VEC <= C; c += KN_VEC) {
    float acc[KN_VEC];
    for (int j = 0; j < KN_VEC; j++) acc[j] = init ? init[c + j] : 0.0f;
    for (int kh = kh_lo; kh < kh_hi; kh++)
      for (int kw = kw_lo; kw < kw_hi; kw++) {
        const float *w = wt + (size_t)(kh * KW + kw) * C + c;
        const float *x = it + ((size_t)(ih + kh) * W + iw + kw) * C + c;
        for (int j = 0; j < KN_VEC; j++) acc[j] += w[j] * x[j];
      }
    for (int j = 0; j < KN_VEC; j++) out[c + j] = acc[j];
  }
  for (; c < C; c++) {
    float acc = init ? init[c] : 0.0f;
    for (int kh = kh_lo; kh < kh_hi; kh++)
      for (int kw = kw_lo; kw < kw_hi; kw++)
        acc += wt[(size_t)(kh * KW + kw) * C + c] * it[((size_t)(ih + kh) * W + iw + kw) * C + c];
    out[c] = acc;
  }
}

static void depthwise_cl_forward(const kn_conv2d *conv, float *out, const float *inp,
                                 const float *weight, const float *bias, int B, float *workspace) {
  const int C = conv->in_channels, taps = conv->kernel_h * conv->kernel_w;
  const size_t in_plane = (size_t)conv->in_h * conv->in_w,
               plane = (size_t)conv->out_h * conv->out_w;
  float *wt = workspace, *it = wt + 2 * (size_t)taps * C, *ot = it + 2 * in_plane * C;
  transpose(wt, weight, C, taps);
  for (int b = 0; b < B; b++) {
    const float *in = inp + (size_t)b * C * in_plane;
    float *dst = out + (size_t)b * C * plane;
    const float *x = in;
    if (in_plane > 1) transpose(it, in, C, (int)in_plane), x = it;
    float *y = plane > 1 ? ot : dst;
    for (int oh = 0; oh < conv->out_h; oh++)
      for (int ow = 0; ow < conv->out_w; ow++)
        depthwise_cl_position(conv, y + (size_t)(oh * conv->out_w + ow) * C, bias, x, wt, oh, ow);
    if (plane > 1) transpose(dst, ot, (int)plane, C);
  }
}

/* Backward of one output position: for every tap of its window, dwt[tap][c] += g[c] it[in][c]
 * and (when dit) dit[in][c] += wt[tap][c] g[c]. */
static void depthwise_cl_position_backward(const kn_conv2d *conv, float *dwt, float *dit,
                                           const float *g, const float *it, const float *wt, int oh,
                                           int ow) {
  const int C = conv->in_channels, W = conv->in_w, KW = conv->kernel_w;
  const int ih = oh * conv->stride_h - conv->pad_h, iw = ow * conv->stride_w - conv->pad_w;
  int kh_lo, kh_hi, kw_lo, kw_hi;
  window_taps(ih, conv->kernel_h, conv->in_h, &kh_lo, &kh_hi);
  window_taps(iw, KW, W, &kw_lo, &kw_hi);
  for (int kh = kh_lo; kh < kh_hi; kh++)
    for (int kw = kw_lo; kw < kw_hi; kw++) {
      const size_t tap = (size_t)(kh * KW + kw) * C, in = ((size_t)(ih + kh) * W + iw + kw) * C;
      float *dw = dwt + tap;
      const float *x = it + in;
      int c = 0;
      for (; c + KN_VEC <= C; c += KN_VEC) {
        float v[KN_VEC];
        for (int j = 0; j < KN_VEC; j++) v[j] = dw[c + j] + g[c + j] * x[c + j];
        for (int j = 0; j < KN_VEC; j++) dw[c + j] = v[j];
      }
      for (; c < C; c++) dw[c] += g[c] * x[c];
      if (!dit) continue;
      float *dx = dit + in;
      const float *w = wt + tap;
      c = 0;
      for (; c + KN_VEC <= C; c += KN_VEC) {
        float v[KN_VEC];
        for (int j = 0; j < KN_VEC; j++) v[j] = dx[c + j] + w[c + j] * g[c + j];
        for (int j = 0; j < KN_VEC; j++) dx[c + j] = v[j];
      }
      for (; c < C; c++) dx[c] += w[c] * g[c];
    }
}

static void depthwise_cl_backward(const kn_conv2d *conv, float *dinp, float *dweight, float *dbias,
                                  const float *dout, const float *inp, const float *weight, int B,
                                  float *workspace) {
  const int C = conv->in_channels, taps = conv->kernel_h * conv->kernel_w;
  const size_t in_plane = (size_t)conv->in_h * conv->in_w,
               plane = (size_t)conv->out_h * conv->out_w;
  float *wt = workspace, *dwt = wt + (size_t)taps * C, *it = dwt + (size_t)taps * C;
  float *dit = it + in_plane * C, *gt = dit + in_plane * C;
  transpose(wt, weight, C, taps);
  memset(dwt, 0, (size_t)taps * C * sizeof(float));
  for (int b = 0; b < B; b++) {
    const float *in = inp + (size_t)b * C * in_plane, *grad = dout + (size_t)b * C * plane;
    float *din = dinp ? dinp + (size_t)b * C * in_plane : NULL;
    const float *x = in, *g = grad;
    if (in_plane > 1) transpose(it, in, C, (int)in_plane), x = it;
    if (plane > 1) transpose(gt, grad, C, (int)plane), g = gt;
    if (dbias)
      for (size_t p = 0; p < plane; p++) kn_vec_add(dbias, g + p * C, (size_t)C);
    float *dx = NULL; /* the input gradient, channels last: dinp itself on a 1x1 plane */
    if (din) {
      dx = in_plane > 1 ? dit : din;
      if (in_plane > 1) memset(dit, 0, in_plane * C * sizeof(float));
    }
    for (int oh = 0; oh < conv->out_h; oh++)
      for (int ow = 0; ow < conv->out_w; ow++)
        depthwise_cl_position_backward(conv, dwt, dx, g + (size_t)(oh * conv->out_w + ow) * C, x,
                                       wt, oh, ow);
    if (din && in_plane > 1)
      for (int c = 0; c < C; c++)
        for (size_t q = 0; q < in_plane; q++) din[c * in_plane + q] += dit[q * C + c];
  }
  for (int c = 0; c < C; c++)
    for (int t = 0; t < taps; t++) dweight[(size_t)c * taps + t] += dwt[(size_t)t * C + c];
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

/* Where a single-tap conv's weight gradient (OC, C) is summed: dweight itself for a 1x1 kernel,
 * else a zeroed slice after the weight slice in workspace (add_tap_gradient moves it back). */
static float *tap_gradient(const kn_conv2d *conv, float *dweight, float *workspace) {
  if (conv->kernel_h == 1 && conv->kernel_w == 1) return dweight;
  const size_t n = (size_t)conv->out_channels * conv->in_channels;
  memset(workspace + n, 0, n * sizeof(float));
  return workspace + n;
}

static void add_tap_gradient(const kn_conv2d *conv, float *dweight, const float *dslice) {
  if (dslice == dweight) return;
  const size_t taps = (size_t)conv->kernel_h * conv->kernel_w;
  const size_t tap = (size_t)conv->pad_h * conv->kernel_w + conv->pad_w;
  for (size_t i = 0; i < (size_t)conv->out_channels * conv->in_channels; i++)
    dweight[i * taps + tap] += dslice[i];
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
  const int OC = conv->out_channels, C = conv->in_channels;
  const float *w = tap_weight(conv, weight, workspace);
  if (!w) { /* no tap meets the input: only the bias has a gradient */
    if (dbias)
      for (int b = 0; b < B; b++) kn_vec_add(dbias, dout + (size_t)b * OC, (size_t)OC);
    return;
  }
  float *dw = tap_gradient(conv, dweight, workspace);
  kn_linear_backward(dinp, dw, dbias, dout, inp, w, B, C, OC);
  add_tap_gradient(conv, dweight, dw);
}

/* ---- im2col + gemm -------------------------------------------------------------------------- */

void kn_conv2d_forward(const kn_conv2d *conv, float *out, const float *inp, const float *weight,
                       const float *bias, int B, float *workspace) {
  if (is_depthwise_channels_last(conv)) {
    depthwise_cl_forward(conv, out, inp, weight, bias, B, workspace);
    return;
  }
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
          im2col(conv, in, in_plane, workspace, plane, padded_scratch(conv, workspace, 1));
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
               in_plane, col + s * plane, columns, padded_scratch(conv, workspace, n));
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
  if (is_depthwise_channels_last(conv)) {
    depthwise_cl_backward(conv, dinp, dweight, dbias, dout, inp, weight, B, workspace);
    return;
  }
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
        /* kn_vec_sum_all: 8 partial sums; one running sum is a latency chain (VGG: ~10 ms) */
        dbias[o] += kn_vec_sum_all(dout + ((size_t)b * conv->out_channels + o) * plane, plane);
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
        im2col(conv, inp + in_offset, in_plane, workspace, plane,
               padded_scratch(conv, workspace, 1));
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, OCg, K, (int)plane, 1.0f, grad,
                    (int)plane, workspace, (int)plane, 1.0f, dw, K);
        if (dinp) {
          cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, K, (int)plane, OCg, 1.0f, w, K, grad,
                      (int)plane, 0.0f, workspace, (int)plane);
          col2im(conv, workspace, plane, dinp + in_offset, in_plane,
                 padded_scratch(conv, workspace, 1));
        }
        continue;
      }
      float *col = workspace, *grad = workspace + (size_t)K * columns;
      for (int s = 0; s < count; s++) {
        im2col(conv, inp + ((size_t)(b0 + s) * conv->in_channels + (size_t)g * Cg) * in_plane,
               in_plane, col + s * plane, columns, padded_scratch(conv, workspace, n));
        for (int o = 0; o < OCg; o++)
          copy_plane(grad + (size_t)o * columns + s * plane,
                     dout + ((size_t)(b0 + s) * conv->out_channels + g * OCg + o) * plane, plane);
      }
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, OCg, K, (int)columns, 1.0f, grad,
                  (int)columns, col, (int)columns, 1.0f, dw, K);
      if (dinp) {
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, K, (int)columns, OCg, 1.0f, w, K, grad,
                    (int)columns, 0.0f, col, (int)columns);
        for (int s = 0; s < count; s++)
          col2im(conv, col + s * plane, columns,
                 dinp + ((size_t)(b0 + s) * conv->in_channels + (size_t)g * Cg) * in_plane,
                 in_plane, padded_scratch(conv, workspace, n));
      }
    }
  }
}

/* ---- CNHW: one gemm per group and chunk of samples ------------------------------------------ */
/* Chunks are as wide as the batched NCHW gemm (samples_per_gemm: >= 512 columns, bounded
 * workspace). Wider ones ran slower: cnn's conv2 with 26-sample, 16 MiB col chunks took 68
 * against 61 ms a step, the col matrix no longer staying in cache between im2col and the gemm.
 * What CNHW saves is the copying: the gemms read and write the activations in place. */

/* A 1x1 stride-1 unpadded convolution, or one whose only live tap is a single weight slice
 * (1x1 planes): the (C, B*plane) input is the gemm operand itself. */
static int cnhw_direct(const kn_conv2d *conv) {
  return is_single_tap(conv) || (is_pointwise(conv) && conv->groups == 1);
}

size_t kn_conv2d_cnhw_workspace_floats(const kn_conv2d *conv, int max_batch) {
  if (cnhw_direct(conv)) return tap_slice_floats(conv);
  const size_t columns = (size_t)samples_per_gemm(conv, max_batch) * conv->out_h * conv->out_w;
  return (size_t)col_rows(conv) * columns + (is_pointwise(conv) ? 0 : padded_floats(conv));
}

/* col (K, count*OH*OW) of group g for samples first..first+count-1 of B: sample s's columns at
 * (s - first)*OH*OW, its channel planes B*H*W apart in inp. */
static void cnhw_im2col(const kn_conv2d *conv, const float *inp, int g, int B, int first, int count,
                        float *col, float *padded) {
  const size_t in_plane = (size_t)conv->in_h * conv->in_w,
               plane = (size_t)conv->out_h * conv->out_w;
  const float *group = inp + (size_t)g * (conv->in_channels / conv->groups) * B * in_plane;
  for (int s = 0; s < count; s++)
    im2col(conv, group + (size_t)(first + s) * in_plane, B * in_plane, col + s * plane,
           (size_t)count * plane, padded);
}

void kn_conv2d_cnhw_forward(const kn_conv2d *conv, float *out, const float *inp,
                            const float *weight, const float *bias, int B, float *workspace) {
  const int G = conv->groups, OCg = conv->out_channels / G, K = col_rows(conv);
  const int plane = conv->out_h * conv->out_w, columns = B * plane;
  const float *w = weight;
  if (cnhw_direct(conv) && !(w = tap_weight(conv, weight, workspace))) {
    for (int o = 0; o < conv->out_channels; o++) /* no tap meets the input: bias only */
      kn_vec_fill(out + (size_t)o * columns, bias ? bias[o] : 0.0f, (size_t)columns);
    return;
  }
  for (int o = 0; bias && o < conv->out_channels; o++)
    kn_vec_fill(out + (size_t)o * columns, bias[o], (size_t)columns);
  const float beta = bias ? 1.0f : 0.0f;
  if (cnhw_direct(conv)) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, conv->out_channels, columns,
                conv->in_channels, 1.0f, w, conv->in_channels, inp, columns, beta, out, columns);
    return;
  }
  const int n = samples_per_gemm(conv, B);
  for (int first = 0; first < B; first += n) {
    const int count = B - first < n ? B - first : n, width = count * plane;
    for (int g = 0; g < G; g++) {
      cnhw_im2col(conv, inp, g, B, first, count, workspace, workspace + (size_t)K * width);
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, OCg, width, K, 1.0f,
                  weight + (size_t)g * OCg * K, K, workspace, width, beta,
                  out + (size_t)g * OCg * columns + (size_t)first * plane, columns);
    }
  }
}

void kn_conv2d_cnhw_backward(const kn_conv2d *conv, float *dinp, float *dweight, float *dbias,
                             const float *dout, const float *inp, const float *weight, int B,
                             float *workspace) {
  const int G = conv->groups, OCg = conv->out_channels / G, K = col_rows(conv);
  const int C = conv->in_channels, OC = conv->out_channels;
  const int plane = conv->out_h * conv->out_w, columns = B * plane;
  for (int o = 0; dbias && o < OC; o++)
    dbias[o] += kn_vec_sum_all(dout + (size_t)o * columns, (size_t)columns);
  if (cnhw_direct(conv)) {
    const float *w = tap_weight(conv, weight, workspace);
    if (!w) return; /* no tap meets the input: only the bias has a gradient */
    float *dw = tap_gradient(conv, dweight, workspace);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, OC, C, columns, 1.0f, dout, columns, inp,
                columns, 1.0f, dw, C);
    if (dinp)
      cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, C, columns, OC, 1.0f, w, C, dout,
                  columns, 1.0f, dinp, columns);
    add_tap_gradient(conv, dweight, dw);
    return;
  }
  const size_t in_plane = (size_t)conv->in_h * conv->in_w;
  const int n = samples_per_gemm(conv, B);
  for (int first = 0; first < B; first += n) {
    const int count = B - first < n ? B - first : n, width = count * plane;
    float *col = workspace, *padded = workspace + (size_t)K * width;
    for (int g = 0; g < G; g++) {
      const float *grad = dout + (size_t)g * OCg * columns + (size_t)first * plane;
      cnhw_im2col(conv, inp, g, B, first, count, col, padded);
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, OCg, K, width, 1.0f, grad, columns, col,
                  width, 1.0f, dweight + (size_t)g * OCg * K, K);
      if (!dinp) continue; /* col becomes dcol: the gradient of the im2col matrix */
      cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, K, width, OCg, 1.0f,
                  weight + (size_t)g * OCg * K, K, grad, columns, 0.0f, col, width);
      float *group = dinp + (size_t)g * (C / G) * B * in_plane;
      for (int s = 0; s < count; s++)
        col2im(conv, col + (size_t)s * plane, (size_t)width, group + (size_t)(first + s) * in_plane,
               B * in_plane, padded);
    }
  }
}
