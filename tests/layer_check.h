/* Helpers shared by the layer tests (tests/test_layers.c, tests/test_layers_fastpaths.c):
 * seeded random and constant arrays, and the dot product behind their objective
 * L = sum(out * r). Backward gradients are pre-filled with PREFILL so that the tests also check
 * that backward accumulates. Each test program includes this once and seeds `rng` in main. */
#ifndef MAYFLY_TESTS_LAYER_CHECK_H
#define MAYFLY_TESTS_LAYER_CHECK_H

#include <stdlib.h>

#include "kernels/rng.h"

#define PREFILL 0.5f

static kn_rng rng;

static inline float *random_array(long n, float bound) {
  float *x = malloc((size_t)(n > 0 ? n : 1) * sizeof(float));
  kn_rng_fill_symmetric(&rng, x, n, bound);
  return x;
}

static inline float *filled_array(long n, float value) {
  float *x = malloc((size_t)(n > 0 ? n : 1) * sizeof(float));
  for (long i = 0; i < n; i++) x[i] = value;
  return x;
}

/* A workspace of n floats gets CANARY_FLOATS more, set to a canary: a kernel that writes past
 * its declared workspace changes them. */
enum { CANARY_FLOATS = 16 };
#define CANARY_VALUE 1234.5f

static inline float *workspace_with_canary(size_t n) {
  float *ws = malloc((n + CANARY_FLOATS) * sizeof(float));
  for (size_t i = 0; i < n + CANARY_FLOATS; i++) ws[i] = i < n ? 0.0f : CANARY_VALUE;
  return ws;
}

static inline void reset_canary(float *ws, size_t n) {
  for (int i = 0; i < CANARY_FLOATS; i++) ws[n + i] = CANARY_VALUE;
}

static inline int canary_intact(const float *ws, size_t n) {
  int ok = 1;
  for (int i = 0; i < CANARY_FLOATS; i++) ok &= ws[n + i] == CANARY_VALUE;
  return ok;
}

static inline double dot(const float *a, const float *b, long n) {
  double s = 0.0;
  for (long i = 0; i < n; i++) s += (double)a[i] * b[i];
  return s;
}

#endif
