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

static inline double dot(const float *a, const float *b, long n) {
  double s = 0.0;
  for (long i = 0; i < n; i++) s += (double)a[i] * b[i];
  return s;
}

#endif
