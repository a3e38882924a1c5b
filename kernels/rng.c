/* xoshiro256** with splitmix64 seeding (see rng.h for why the kernels carry their own PRNG).
 * Reference: https://prng.di.unimi.it/ (public domain algorithms by Blackman and Vigna). */
#include "kernels/rng.h"

#include <math.h>

uint64_t kn_splitmix64(uint64_t *state) {
  uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

void kn_rng_seed(kn_rng *rng, uint64_t seed) {
  uint64_t state = seed;
  for (int i = 0; i < 4; i++) rng->s[i] = kn_splitmix64(&state);
}

static inline uint64_t rotl(uint64_t x, int k) {
  return (x << k) | (x >> (64 - k));
}

uint64_t kn_rng_next(kn_rng *rng) {
  uint64_t *s = rng->s;
  uint64_t result = rotl(s[1] * 5, 7) * 9;
  uint64_t t = s[1] << 17;
  s[2] ^= s[0];
  s[3] ^= s[1];
  s[1] ^= s[2];
  s[0] ^= s[3];
  s[2] ^= t;
  s[3] = rotl(s[3], 45);
  return result;
}

float kn_rng_uniform(kn_rng *rng) {
  return (float)(kn_rng_next(rng) >> 40) * (1.0f / 16777216.0f);
}

float kn_rng_symmetric(kn_rng *rng, float bound) {
  return (2.0f * kn_rng_uniform(rng) - 1.0f) * bound;
}

void kn_rng_fill_symmetric(kn_rng *rng, float *x, long n, float bound) {
  for (long i = 0; i < n; i++) x[i] = kn_rng_symmetric(rng, bound);
}

float kn_rng_normal(kn_rng *rng) {
  double u1 = 1.0 - (double)kn_rng_uniform(rng); /* (0, 1]: the logarithm stays finite */
  double u2 = (double)kn_rng_uniform(rng);
  const double two_pi = 6.283185307179586476925; /* M_PI is not ISO C */
  return (float)(sqrt(-2.0 * log(u1)) * cos(two_pi * u2));
}

void kn_rng_fill_normal(kn_rng *rng, float *x, long n, float std) {
  for (long i = 0; i < n; i++) x[i] = std * kn_rng_normal(rng);
}
