/* Seeded pseudo-random numbers for the kernels: parameter initialisation and dropout masks.
 *
 * Why our own generator: initial weights must be identical on every machine and every libc, so
 * peers, workers and tests agree bit for bit. xoshiro256** seeded through splitmix64 (Vigna's
 * reference algorithms) uses only 64-bit integer arithmetic; floats are built from the top 24
 * bits, so the conversion is exact. */
#ifndef MAYFLY_KERNELS_RNG_H
#define MAYFLY_KERNELS_RNG_H

#include <stdint.h>

typedef struct {
  uint64_t s[4];
} kn_rng;

/* One splitmix64 step: advances *state and returns the next output. Also a good 64-bit mixer
 * for deriving independent seeds (e.g. seed ^ layer index). */
uint64_t kn_splitmix64(uint64_t *state);

void kn_rng_seed(kn_rng *rng, uint64_t seed);
uint64_t kn_rng_next(kn_rng *rng);
/* Uniform in [0, 1), a multiple of 2^-24 (exactly representable as float). */
float kn_rng_uniform(kn_rng *rng);
/* Uniform in [-bound, bound): PyTorch's init.uniform_(-bound, bound) distribution. */
float kn_rng_symmetric(kn_rng *rng, float bound);
/* Fills x[0..n) with kn_rng_symmetric(rng, bound). */
void kn_rng_fill_symmetric(kn_rng *rng, float *x, long n, float bound);
/* Standard normal by Box-Muller from two kn_rng_uniform draws (the second output is dropped so
 * every value costs exactly two draws). Uses libm's log, sqrt and cos in double: identical
 * wherever libm is (glibc is the same on all our machines), unlike the uniforms above, which
 * are exact everywhere. For torchvision's normal_ / kaiming_normal_ initialisations. */
float kn_rng_normal(kn_rng *rng);
/* Fills x[0..n) with std * kn_rng_normal(rng). */
void kn_rng_fill_normal(kn_rng *rng, float *x, long n, float std);

#endif
