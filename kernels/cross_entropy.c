/* Softmax cross-entropy loss, mean over the batch (PyTorch F.cross_entropy defaults).
 *   logits (B,V)  targets (B)  probs (B,V)
 *   forward   probs = softmax(logits) row by row; loss = mean_b -log probs[b, target_b]
 *   backward  dlogits += (probs - onehot(targets)) / B
 * The loss is computed as logsumexp - logit[target] (not -log(prob)), so a confidently wrong
 * prediction gives a large finite loss instead of log(0). Sums run in double: the loss is
 * a reported number that peers and workers compare. */
#include <math.h>

#include "kernels/layers.h"

float kn_cross_entropy_forward(float *probs, const float *logits, const int32_t *targets, int B,
                               int V) {
  double total = 0.0;
  for (int b = 0; b < B; b++) {
    const float *row = logits + (size_t)b * V;
    float *p = probs + (size_t)b * V;
    float max = row[0];
    for (int v = 1; v < V; v++)
      if (row[v] > max) max = row[v];
    double sum = 0.0;
    for (int v = 0; v < V; v++) {
      p[v] = expf(row[v] - max);
      sum += p[v];
    }
    float scale = (float)(1.0 / sum);
    for (int v = 0; v < V; v++) p[v] *= scale;
    total += log(sum) - (double)(row[targets[b]] - max);
  }
  return (float)(total / B);
}

void kn_cross_entropy_backward(float *dlogits, const float *probs, const int32_t *targets, int B,
                               int V) {
  float scale = 1.0f / (float)B;
  for (int b = 0; b < B; b++) {
    const float *p = probs + (size_t)b * V;
    float *d = dlogits + (size_t)b * V;
    for (int v = 0; v < V; v++) d[v] += (p[v] - (v == targets[b] ? 1.0f : 0.0f)) * scale;
  }
}
