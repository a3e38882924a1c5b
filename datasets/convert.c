/* Conversion from stored pixels (uint8, CHW) to model input (float, CHW) of possibly another
 * geometry, so that one model zoo runs on every dataset: Fashion-MNIST's 1x28x28 fed to a
 * CIFAR-shaped 3x32x32 network is replicated to three channels and zero-padded, centred. */
#include "datasets/internal.h"

/* Source coordinate for output coordinate `o` when centring a length-`from` axis in a
 * length-`to` axis; out of [0, from) means padding. Same formula pads and crops. */
static int centred_source(int o, int from, int to) {
  return o - (to - from) / 2;
}

void ds_to_input(const uint8_t *pixels, const uint8_t *labels, int n, int c, int h, int w, int C,
                 int H, int W, float *x, int32_t *y) {
  const float scale = 1.0f / 255.0f;
  for (int s = 0; s < n; s++) {
    const uint8_t *in = pixels + (int64_t)s * c * h * w;
    float *out = x + (int64_t)s * C * H * W;
    for (int oc = 0; oc < C; oc++)
      for (int oy = 0; oy < H; oy++) {
        int iy = centred_source(oy, h, H);
        for (int ox = 0; ox < W; ox++) {
          int ix = centred_source(ox, w, W);
          float v = 0.0f;
          if (iy >= 0 && iy < h && ix >= 0 && ix < w) {
            int64_t at = (int64_t)iy * w + ix;
            if (c == C) {
              v = in[(int64_t)oc * h * w + at] * scale;
            } else if (c == 1) { /* grey to any channel count: replicate */
              v = in[at] * scale;
            } else { /* colour to fewer channels: average */
              int sum = 0;
              for (int ic = 0; ic < c; ic++) sum += in[(int64_t)ic * h * w + at];
              v = (float)sum / (255.0f * c);
            }
          }
          out[((int64_t)oc * H + oy) * W + ox] = v;
        }
      }
    if (y) y[s] = labels[s];
  }
}
