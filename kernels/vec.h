/* Elementwise loops the kernels share, written in blocks of 8 so GCC vectorises them at the
 * project's -O2 (GCC 12's -O2 cost model vectorises fixed-size blocks but not open loops that
 * need an epilogue or an aliasing check). Loading a whole block into locals before storing makes
 * in-place calls (dst == src) correct. Private to kernels/: not part of the layer API. */
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

#endif
