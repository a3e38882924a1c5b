/* The datasets module's own random numbers: splitmix64 (Steele, Lea, Flood 2014), a keyed hash
 * built on its finaliser, and unbiased bounded integers. Integer arithmetic only, so a seed
 * gives the same partition and the same synthetic samples on every machine and libc, which is
 * what lets a peer and a worker on different hosts agree on "minibatch i of peer p". */
#include "datasets/internal.h"

static uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

uint64_t ds_splitmix64(uint64_t *state) {
  *state += 0x9e3779b97f4a7c15ULL;
  return mix64(*state);
}

uint64_t ds_hash2(uint64_t a, uint64_t b) {
  return mix64(mix64(a + 0x9e3779b97f4a7c15ULL) ^ (b + 0x632be59bd9b4e019ULL));
}

/* Rejection sampling: draws landing in the incomplete last block of size 2^64 mod bound are
 * redrawn, so every value in [0, bound) is equally likely. */
uint64_t ds_uniform_below(uint64_t *state, uint64_t bound) {
  uint64_t threshold = (0 - bound) % bound; /* = 2^64 mod bound */
  for (;;) {
    uint64_t r = ds_splitmix64(state);
    if (r >= threshold) return r % bound;
  }
}
