/* torch.optim.SGD (dampening 0, nesterov off) on flat vectors; see sgd.h for the rule. */
#include "kernels/sgd.h"

#include <stdlib.h>
#include <string.h>

int kn_sgd_init(kn_sgd *opt, size_t n, float lr, float momentum, float weight_decay) {
  memset(opt, 0, sizeof *opt);
  opt->n = n;
  opt->lr = lr;
  opt->momentum = momentum;
  opt->weight_decay = weight_decay;
  if (momentum != 0.0f && n > 0) {
    opt->velocity = calloc(n, sizeof(float));
    if (!opt->velocity) return -1;
  }
  return 0;
}

void kn_sgd_step(kn_sgd *opt, float *params, const float *grads) {
  const float lr = opt->lr, momentum = opt->momentum, wd = opt->weight_decay;
  float *v = opt->velocity;
  for (size_t i = 0; i < opt->n; i++) {
    float g = grads[i];
    if (wd != 0.0f) g += wd * params[i];
    if (v) {
      v[i] = opt->steps == 0 ? g : momentum * v[i] + g;
      g = v[i];
    }
    params[i] -= lr * g;
  }
  opt->steps++;
}

void kn_sgd_free(kn_sgd *opt) {
  free(opt->velocity);
  opt->velocity = NULL;
}
