/* Dropout (PyTorch nn.Dropout, training mode) with a seeded, reproducible mask.
 *   inp, out, mask: n floats (any shape)
 *   forward   mask[i] = 0 with probability p, else 1 / (1 - p); out = inp mask
 *   backward  dinp += dout mask
 * seed 0 or p 0 means disabled: out = inp and mask = 1, so backward needs no special case.
 * The mask comes from kn_rng seeded with `seed`: the same seed gives the same mask on every
 * peer and worker (the model derives the seed from m->dropout_seed and the layer's position).
 * It does not reproduce PyTorch's bernoulli stream; only the distribution matches. */
#include <string.h>

#include "kernels/layers.h"

void kn_dropout_forward(float *out, float *mask, const float *inp, long n, float p, uint64_t seed) {
  if (seed == 0 || p <= 0.0f) {
    if (out != inp) memcpy(out, inp, (size_t)n * sizeof(float));
    for (long i = 0; i < n; i++) mask[i] = 1.0f;
    return;
  }
  kn_rng rng;
  kn_rng_seed(&rng, seed);
  const float keep_scale = p < 1.0f ? 1.0f / (1.0f - p) : 0.0f;
  for (long i = 0; i < n; i++) {
    mask[i] = kn_rng_uniform(&rng) < p ? 0.0f : keep_scale;
    out[i] = inp[i] * mask[i];
  }
}

void kn_dropout_backward(float *dinp, const float *dout, const float *mask, long n) {
  for (long i = 0; i < n; i++) dinp[i] += dout[i] * mask[i];
}
