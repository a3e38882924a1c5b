/* Small inline helpers the kernel files share. Elementwise loops are written in blocks of 8 so
 * GCC vectorises them at the project's -O2 (GCC 12's -O2 cost model vectorises fixed-size blocks
 * but not open loops that need an epilogue or an aliasing check). Loading a whole block into locals
 * before storing makes in-place calls (dst == src) correct. Private to kernels/: not part of the
 * layer API. */
#ifndef MAYFLY_KERNELS_VEC_H
#define MAYFLY_KERNELS_VEC_H

#include <stddef.h>

#define KN_VEC 8

/* dst[i] += src[i] */
static inline void kn_vec_add(float *dst, const float *src, size_t n) {
  size_t i = 0;
  for (; i + KN_VEC <= n; i += KN_VEC) {
    float v[KN_VEC];
    for (int j = 0; j < KN_VEC; j++) v[j] = dst[i + j] + src[i + j];
    for (int j = 0; j < KN_VEC; j++) dst[i + j] = v[j];
  }
  for (; i < n; i++) dst[i] += src[i];
}

/* dst[i] = src[i] + add */
static inline void kn_vec_copy_add(float *dst, const float *src, float add, size_t n) {
  size_t i = 0;
  for (; i + KN_VEC <= n; i += KN_VEC) {
    float v[KN_VEC];
    for (int j = 0; j < KN_VEC; j++) v[j] = src[i + j] + add;
    for (int j = 0; j < KN_VEC; j++) dst[i + j] = v[j];
  }
  for (; i < n; i++) dst[i] = src[i] + add;
}

/* dst[i] = a[i] + b[i] */
static inline void kn_vec_sum(float *dst, const float *a, const float *b, size_t n) {
  size_t i = 0;
  for (; i + KN_VEC <= n; i += KN_VEC) {
    float v[KN_VEC];
    for (int j = 0; j < KN_VEC; j++) v[j] = a[i + j] + b[i + j];
    for (int j = 0; j < KN_VEC; j++) dst[i + j] = v[j];
  }
  for (; i < n; i++) dst[i] = a[i] + b[i];
}

/* dst[i] = src[i] * scale */
static inline void kn_vec_scale(float *dst, const float *src, float scale, size_t n) {
  size_t i = 0;
  for (; i + KN_VEC <= n; i += KN_VEC) {
    float v[KN_VEC];
    for (int j = 0; j < KN_VEC; j++) v[j] = src[i + j] * scale;
    for (int j = 0; j < KN_VEC; j++) dst[i + j] = v[j];
  }
  for (; i < n; i++) dst[i] = src[i] * scale;
}

/* dst[i] = value */
static inline void kn_vec_fill(float *dst, float value, size_t n) {
  for (size_t i = 0; i < n; i++) dst[i] = value;
}

/* dst[i] = src[i] * scale + shift */
static inline void kn_vec_scale_shift(float *dst, const float *src, float scale, float shift,
                                      size_t n) {
  size_t i = 0;
  for (; i + KN_VEC <= n; i += KN_VEC) {
    float v[KN_VEC];
    for (int j = 0; j < KN_VEC; j++) v[j] = src[i + j] * scale + shift;
    for (int j = 0; j < KN_VEC; j++) dst[i + j] = v[j];
  }
  for (; i < n; i++) dst[i] = src[i] * scale + shift;
}

/* dst[i] += src[i] * scale */
static inline void kn_vec_axpy(float *dst, float scale, const float *src, size_t n) {
  size_t i = 0;
  for (; i + KN_VEC <= n; i += KN_VEC) {
    float v[KN_VEC];
    for (int j = 0; j < KN_VEC; j++) v[j] = dst[i + j] + src[i + j] * scale;
    for (int j = 0; j < KN_VEC; j++) dst[i + j] = v[j];
  }
  for (; i < n; i++) dst[i] += src[i] * scale;
}

/* sum of x[i], in KN_VEC interleaved partial sums added pairwise at the end: vectorises, and
 * is more accurate than one running sum. The order is fixed, so results are reproducible. */
static inline float kn_vec_sum_all(const float *x, size_t n) {
  float lane[KN_VEC] = {0};
  size_t i = 0;
  for (; i + KN_VEC <= n; i += KN_VEC)
    for (int j = 0; j < KN_VEC; j++) lane[j] += x[i + j];
  for (int j = 0; i < n; i++, j++) lane[j] += x[i];
  return ((lane[0] + lane[4]) + (lane[1] + lane[5])) + ((lane[2] + lane[6]) + (lane[3] + lane[7]));
}

/* sum of (x[i] - center)^2, the same way */
static inline float kn_vec_sum_squared_deviation(const float *x, float center, size_t n) {
  float lane[KN_VEC] = {0};
  size_t i = 0;
  for (; i + KN_VEC <= n; i += KN_VEC)
    for (int j = 0; j < KN_VEC; j++) lane[j] += (x[i + j] - center) * (x[i + j] - center);
  for (int j = 0; i < n; i++, j++) lane[j] += (x[i] - center) * (x[i] - center);
  return ((lane[0] + lane[4]) + (lane[1] + lane[5])) + ((lane[2] + lane[6]) + (lane[3] + lane[7]));
}

/* sum of g[i] * (x[i] - center), the same way */
static inline float kn_vec_dot_deviation(const float *g, const float *x, float center, size_t n) {
  float lane[KN_VEC] = {0};
  size_t i = 0;
  for (; i + KN_VEC <= n; i += KN_VEC)
    for (int j = 0; j < KN_VEC; j++) lane[j] += g[i + j] * (x[i + j] - center);
  for (int j = 0; i < n; i++, j++) lane[j] += g[i] * (x[i] - center);
  return ((lane[0] + lane[4]) + (lane[1] + lane[5])) + ((lane[2] + lane[6]) + (lane[3] + lane[7]));
}

/* The outputs o of a sliding window (stride, pad) whose tap k lands inside 0..in-1, i.e.
 * 0 <= o*stride - pad + k < in, as the range [*lo, *hi) within 0..out. */
static inline void kn_tap_range(int k, int stride, int pad, int in, int out, int *lo, int *hi) {
  int first = pad - k; /* o*stride >= first */
  int l = first <= 0 ? 0 : (first + stride - 1) / stride;
  int last = in - 1 + pad - k; /* o*stride <= last */
  int h = last < 0 ? 0 : last / stride + 1;
  *lo = l < out ? l : out;
  *hi = h < out ? h : out;
  if (*hi < *lo) *hi = *lo;
}

#endif
