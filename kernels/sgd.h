/* Stochastic gradient descent with PyTorch's torch.optim.SGD semantics, on a flat parameter
 * vector (the model's parameter block).
 *
 * Why its own module: every peer applies the same update to its replica after the gradient
 * exchange; the update must be exactly PyTorch's (dampening 0, nesterov off) so runs can be
 * checked against PyTorch, and deterministic so all replicas stay bit-identical:
 *   g' = g + weight_decay * p
 *   v  = g'                      on the first step (PyTorch clones the gradient)
 *   v  = momentum * v + g'       afterwards
 *   p  = p - lr * v              (with momentum 0: p = p - lr * g', no velocity kept) */
#ifndef MAYFLY_KERNELS_SGD_H
#define MAYFLY_KERNELS_SGD_H

#include <stddef.h>

typedef struct {
  size_t n;
  float lr, momentum, weight_decay;
  float *velocity; /* n floats, NULL when momentum == 0 */
  long steps;      /* updates applied so far */
} kn_sgd;

/* Returns 0, or -1 when the velocity cannot be allocated. */
int kn_sgd_init(kn_sgd *opt, size_t n, float lr, float momentum, float weight_decay);
/* One update of params[0..n) with grads[0..n). */
void kn_sgd_step(kn_sgd *opt, float *params, const float *grads);
void kn_sgd_free(kn_sgd *opt);

#endif
