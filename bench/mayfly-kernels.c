/* mayfly-kernels: how fast are mayfly's compute kernels on this machine? Times one training step
 * (forward + backward) of every model, and the forward + backward of every convolution and
 * linear layer of those models on its own, at a given batch size and thread count; reports
 * medians, GFLOP/s, and GFLOP/s as a share of the sgemm peak measured on the spot.
 *
 * Why: "worker compute time" in mayfly-train is these kernels; before blaming the serverless
 * offload for a slow round one must know whether the step itself is at the BLAS roofline.
 * bench/scripts/torch_compare.py runs the same step in PyTorch and prints the ratio.
 *
 * FLOPs are those of the convolutions and linear layers only (layer table below, which init
 * checks against each model's state_dict): forward 2*MACs, backward 2*MACs for the weight
 * gradient plus 2*MACs for the input gradient (not for a model's first layer, whose input
 * gradient is skipped). Batch norm, pooling and activations cost time but are not counted.
 * A model row counts the NOMINAL FLOPs of torchvision's layers, so its GFLOP/s and peak_% are
 * "effective" numbers: where a model runs a layer with fewer FLOPs than nominal (VGG11 fuses
 * AdaptiveAvgPool2d((7,7)) on a 1x1 map into classifier.0 and runs a 512-wide instead of a
 * 25088-wide Linear, see kernels/vgg.c; a padded 3x3 conv on a 1x1 map runs its centre tap only,
 * as in SqueezeNet's last fire modules) the effective rate can exceed the sgemm peak; the text
 * output then adds a '#' line with the FLOPs actually executed and their rate. A layer row times
 * the layer the way its model runs it and counts the FLOPs it executes (for VGG11's
 * classifier.0: the fused 512-wide Linear plus the weight fold and gradient broadcast, which
 * cost memory traffic but no counted FLOPs), so layer rows stay at or below the peak; layers of
 * a model whose kind says cnhw (SqueezeNet, cnn) are timed with the CNHW convolution it runs.
 * Peak: the best GFLOP/s of --iterations cblas_sgemm calls on N x N matrices (N = --peak-n, at
 * least 20 runs) with the same threads; its row's median_ms is that best time. Timing: each row
 * is the median of --iterations (-i; --repeat is an alias) timed runs after --warmup runs; the box
 * may be shared, so compare rows of one run (ratios), not absolute numbers across runs. Output: a
 * '#' header and fixed-width rows, or with --csv the columns name,median_ms,gflops,peak_pct (name
 * is the model, "model/layer", or "sgemm_peak"). Errors: one line, exit 2 usage, 1 run. */
#include <cblas.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>

#include "bench/harness/options.h"
#include "bench/harness/util.h"
#include "kernels/layers.h"
#include "kernels/model.h"

typedef enum { KN_LAYER_CONV, KN_LAYER_LINEAR } layer_type;

/* Every conv and linear layer of the models, in forward order, generated from torchvision's
 * modules with forward hooks at the models' input sizes. SE blocks' fc1/fc2 are 1x1 convs on a
 * 1x1 map, run as linear layers. Fields: model, layer, type, in, out, kernel, stride, padding,
 * groups, in_h, in_w, bias, repeats. repeats > 1: a Linear whose input is in/repeats features
 * each repeated that many times, which the model runs as kn_linear_repeated_* (in stays the
 * nominal width: it is checked against the state_dict and counted in the model's FLOPs). */
typedef struct {
  const char *model, *layer;
  layer_type type;
  int in, out, kernel, stride, padding, groups, h, w, bias, repeats;
} layer_spec;

static const layer_spec layers[] = {
    {"mlp", "fc1", KN_LAYER_LINEAR, 784, 256, 0, 0, 0, 0, 0, 0, 1, 0},
    {"mlp", "fc2", KN_LAYER_LINEAR, 256, 128, 0, 0, 0, 0, 0, 0, 1, 0},
    {"mlp", "fc3", KN_LAYER_LINEAR, 128, 10, 0, 0, 0, 0, 0, 0, 1, 0},
    {"cnn", "conv1", KN_LAYER_CONV, 1, 32, 5, 1, 2, 1, 28, 28, 1, 0},
    {"cnn", "conv2", KN_LAYER_CONV, 32, 64, 5, 1, 2, 1, 14, 14, 1, 0},
    {"cnn", "fc1", KN_LAYER_LINEAR, 3136, 128, 0, 0, 0, 0, 0, 0, 1, 0},
    {"cnn", "fc2", KN_LAYER_LINEAR, 128, 10, 0, 0, 0, 0, 0, 0, 1, 0},
    {"vgg11", "features.0", KN_LAYER_CONV, 3, 64, 3, 1, 1, 1, 32, 32, 1, 0},
    {"vgg11", "features.3", KN_LAYER_CONV, 64, 128, 3, 1, 1, 1, 16, 16, 1, 0},
    {"vgg11", "features.6", KN_LAYER_CONV, 128, 256, 3, 1, 1, 1, 8, 8, 1, 0},
    {"vgg11", "features.8", KN_LAYER_CONV, 256, 256, 3, 1, 1, 1, 8, 8, 1, 0},
    {"vgg11", "features.11", KN_LAYER_CONV, 256, 512, 3, 1, 1, 1, 4, 4, 1, 0},
    {"vgg11", "features.13", KN_LAYER_CONV, 512, 512, 3, 1, 1, 1, 4, 4, 1, 0},
    {"vgg11", "features.16", KN_LAYER_CONV, 512, 512, 3, 1, 1, 1, 2, 2, 1, 0},
    {"vgg11", "features.18", KN_LAYER_CONV, 512, 512, 3, 1, 1, 1, 2, 2, 1, 0},
    {"vgg11", "classifier.0", KN_LAYER_LINEAR, 25088, 4096, 0, 0, 0, 0, 0, 0, 1, 49},
    {"vgg11", "classifier.3", KN_LAYER_LINEAR, 4096, 4096, 0, 0, 0, 0, 0, 0, 1, 0},
    {"vgg11", "classifier.6", KN_LAYER_LINEAR, 4096, 10, 0, 0, 0, 0, 0, 0, 1, 0},
    {"squeezenet1_1", "features.0", KN_LAYER_CONV, 3, 64, 3, 2, 0, 1, 32, 32, 1, 0},
    {"squeezenet1_1", "features.3.squeeze", KN_LAYER_CONV, 64, 16, 1, 1, 0, 1, 7, 7, 1, 0},
    {"squeezenet1_1", "features.3.expand1x1", KN_LAYER_CONV, 16, 64, 1, 1, 0, 1, 7, 7, 1, 0},
    {"squeezenet1_1", "features.3.expand3x3", KN_LAYER_CONV, 16, 64, 3, 1, 1, 1, 7, 7, 1, 0},
    {"squeezenet1_1", "features.4.squeeze", KN_LAYER_CONV, 128, 16, 1, 1, 0, 1, 7, 7, 1, 0},
    {"squeezenet1_1", "features.4.expand1x1", KN_LAYER_CONV, 16, 64, 1, 1, 0, 1, 7, 7, 1, 0},
    {"squeezenet1_1", "features.4.expand3x3", KN_LAYER_CONV, 16, 64, 3, 1, 1, 1, 7, 7, 1, 0},
    {"squeezenet1_1", "features.6.squeeze", KN_LAYER_CONV, 128, 32, 1, 1, 0, 1, 3, 3, 1, 0},
    {"squeezenet1_1", "features.6.expand1x1", KN_LAYER_CONV, 32, 128, 1, 1, 0, 1, 3, 3, 1, 0},
    {"squeezenet1_1", "features.6.expand3x3", KN_LAYER_CONV, 32, 128, 3, 1, 1, 1, 3, 3, 1, 0},
    {"squeezenet1_1", "features.7.squeeze", KN_LAYER_CONV, 256, 32, 1, 1, 0, 1, 3, 3, 1, 0},
    {"squeezenet1_1", "features.7.expand1x1", KN_LAYER_CONV, 32, 128, 1, 1, 0, 1, 3, 3, 1, 0},
    {"squeezenet1_1", "features.7.expand3x3", KN_LAYER_CONV, 32, 128, 3, 1, 1, 1, 3, 3, 1, 0},
    {"squeezenet1_1", "features.9.squeeze", KN_LAYER_CONV, 256, 48, 1, 1, 0, 1, 1, 1, 1, 0},
    {"squeezenet1_1", "features.9.expand1x1", KN_LAYER_CONV, 48, 192, 1, 1, 0, 1, 1, 1, 1, 0},
    {"squeezenet1_1", "features.9.expand3x3", KN_LAYER_CONV, 48, 192, 3, 1, 1, 1, 1, 1, 1, 0},
    {"squeezenet1_1", "features.10.squeeze", KN_LAYER_CONV, 384, 48, 1, 1, 0, 1, 1, 1, 1, 0},
    {"squeezenet1_1", "features.10.expand1x1", KN_LAYER_CONV, 48, 192, 1, 1, 0, 1, 1, 1, 1, 0},
    {"squeezenet1_1", "features.10.expand3x3", KN_LAYER_CONV, 48, 192, 3, 1, 1, 1, 1, 1, 1, 0},
    {"squeezenet1_1", "features.11.squeeze", KN_LAYER_CONV, 384, 64, 1, 1, 0, 1, 1, 1, 1, 0},
    {"squeezenet1_1", "features.11.expand1x1", KN_LAYER_CONV, 64, 256, 1, 1, 0, 1, 1, 1, 1, 0},
    {"squeezenet1_1", "features.11.expand3x3", KN_LAYER_CONV, 64, 256, 3, 1, 1, 1, 1, 1, 1, 0},
    {"squeezenet1_1", "features.12.squeeze", KN_LAYER_CONV, 512, 64, 1, 1, 0, 1, 1, 1, 1, 0},
    {"squeezenet1_1", "features.12.expand1x1", KN_LAYER_CONV, 64, 256, 1, 1, 0, 1, 1, 1, 1, 0},
    {"squeezenet1_1", "features.12.expand3x3", KN_LAYER_CONV, 64, 256, 3, 1, 1, 1, 1, 1, 1, 0},
    {"squeezenet1_1", "classifier.1", KN_LAYER_CONV, 512, 10, 1, 1, 0, 1, 1, 1, 1, 0},
    {"mobilenet_v3_small", "features.0.0", KN_LAYER_CONV, 3, 16, 3, 2, 1, 1, 32, 32, 0, 0},
    {"mobilenet_v3_small", "features.1.block.0.0", KN_LAYER_CONV, 16, 16, 3, 2, 1, 16, 16, 16, 0,
     0},
    {"mobilenet_v3_small", "features.1.block.1.fc1", KN_LAYER_LINEAR, 16, 8, 0, 0, 0, 0, 0, 0, 1,
     0},
    {"mobilenet_v3_small", "features.1.block.1.fc2", KN_LAYER_LINEAR, 8, 16, 0, 0, 0, 0, 0, 0, 1,
     0},
    {"mobilenet_v3_small", "features.1.block.2.0", KN_LAYER_CONV, 16, 16, 1, 1, 0, 1, 8, 8, 0, 0},
    {"mobilenet_v3_small", "features.2.block.0.0", KN_LAYER_CONV, 16, 72, 1, 1, 0, 1, 8, 8, 0, 0},
    {"mobilenet_v3_small", "features.2.block.1.0", KN_LAYER_CONV, 72, 72, 3, 2, 1, 72, 8, 8, 0, 0},
    {"mobilenet_v3_small", "features.2.block.2.0", KN_LAYER_CONV, 72, 24, 1, 1, 0, 1, 4, 4, 0, 0},
    {"mobilenet_v3_small", "features.3.block.0.0", KN_LAYER_CONV, 24, 88, 1, 1, 0, 1, 4, 4, 0, 0},
    {"mobilenet_v3_small", "features.3.block.1.0", KN_LAYER_CONV, 88, 88, 3, 1, 1, 88, 4, 4, 0, 0},
    {"mobilenet_v3_small", "features.3.block.2.0", KN_LAYER_CONV, 88, 24, 1, 1, 0, 1, 4, 4, 0, 0},
    {"mobilenet_v3_small", "features.4.block.0.0", KN_LAYER_CONV, 24, 96, 1, 1, 0, 1, 4, 4, 0, 0},
    {"mobilenet_v3_small", "features.4.block.1.0", KN_LAYER_CONV, 96, 96, 5, 2, 2, 96, 4, 4, 0, 0},
    {"mobilenet_v3_small", "features.4.block.2.fc1", KN_LAYER_LINEAR, 96, 24, 0, 0, 0, 0, 0, 0, 1,
     0},
    {"mobilenet_v3_small", "features.4.block.2.fc2", KN_LAYER_LINEAR, 24, 96, 0, 0, 0, 0, 0, 0, 1,
     0},
    {"mobilenet_v3_small", "features.4.block.3.0", KN_LAYER_CONV, 96, 40, 1, 1, 0, 1, 2, 2, 0, 0},
    {"mobilenet_v3_small", "features.5.block.0.0", KN_LAYER_CONV, 40, 240, 1, 1, 0, 1, 2, 2, 0, 0},
    {"mobilenet_v3_small", "features.5.block.1.0", KN_LAYER_CONV, 240, 240, 5, 1, 2, 240, 2, 2, 0,
     0},
    {"mobilenet_v3_small", "features.5.block.2.fc1", KN_LAYER_LINEAR, 240, 64, 0, 0, 0, 0, 0, 0, 1,
     0},
    {"mobilenet_v3_small", "features.5.block.2.fc2", KN_LAYER_LINEAR, 64, 240, 0, 0, 0, 0, 0, 0, 1,
     0},
    {"mobilenet_v3_small", "features.5.block.3.0", KN_LAYER_CONV, 240, 40, 1, 1, 0, 1, 2, 2, 0, 0},
    {"mobilenet_v3_small", "features.6.block.0.0", KN_LAYER_CONV, 40, 240, 1, 1, 0, 1, 2, 2, 0, 0},
    {"mobilenet_v3_small", "features.6.block.1.0", KN_LAYER_CONV, 240, 240, 5, 1, 2, 240, 2, 2, 0,
     0},
    {"mobilenet_v3_small", "features.6.block.2.fc1", KN_LAYER_LINEAR, 240, 64, 0, 0, 0, 0, 0, 0, 1,
     0},
    {"mobilenet_v3_small", "features.6.block.2.fc2", KN_LAYER_LINEAR, 64, 240, 0, 0, 0, 0, 0, 0, 1,
     0},
    {"mobilenet_v3_small", "features.6.block.3.0", KN_LAYER_CONV, 240, 40, 1, 1, 0, 1, 2, 2, 0, 0},
    {"mobilenet_v3_small", "features.7.block.0.0", KN_LAYER_CONV, 40, 120, 1, 1, 0, 1, 2, 2, 0, 0},
    {"mobilenet_v3_small", "features.7.block.1.0", KN_LAYER_CONV, 120, 120, 5, 1, 2, 120, 2, 2, 0,
     0},
    {"mobilenet_v3_small", "features.7.block.2.fc1", KN_LAYER_LINEAR, 120, 32, 0, 0, 0, 0, 0, 0, 1,
     0},
    {"mobilenet_v3_small", "features.7.block.2.fc2", KN_LAYER_LINEAR, 32, 120, 0, 0, 0, 0, 0, 0, 1,
     0},
    {"mobilenet_v3_small", "features.7.block.3.0", KN_LAYER_CONV, 120, 48, 1, 1, 0, 1, 2, 2, 0, 0},
    {"mobilenet_v3_small", "features.8.block.0.0", KN_LAYER_CONV, 48, 144, 1, 1, 0, 1, 2, 2, 0, 0},
    {"mobilenet_v3_small", "features.8.block.1.0", KN_LAYER_CONV, 144, 144, 5, 1, 2, 144, 2, 2, 0,
     0},
    {"mobilenet_v3_small", "features.8.block.2.fc1", KN_LAYER_LINEAR, 144, 40, 0, 0, 0, 0, 0, 0, 1,
     0},
    {"mobilenet_v3_small", "features.8.block.2.fc2", KN_LAYER_LINEAR, 40, 144, 0, 0, 0, 0, 0, 0, 1,
     0},
    {"mobilenet_v3_small", "features.8.block.3.0", KN_LAYER_CONV, 144, 48, 1, 1, 0, 1, 2, 2, 0, 0},
    {"mobilenet_v3_small", "features.9.block.0.0", KN_LAYER_CONV, 48, 288, 1, 1, 0, 1, 2, 2, 0, 0},
    {"mobilenet_v3_small", "features.9.block.1.0", KN_LAYER_CONV, 288, 288, 5, 2, 2, 288, 2, 2, 0,
     0},
    {"mobilenet_v3_small", "features.9.block.2.fc1", KN_LAYER_LINEAR, 288, 72, 0, 0, 0, 0, 0, 0, 1,
     0},
    {"mobilenet_v3_small", "features.9.block.2.fc2", KN_LAYER_LINEAR, 72, 288, 0, 0, 0, 0, 0, 0, 1,
     0},
    {"mobilenet_v3_small", "features.9.block.3.0", KN_LAYER_CONV, 288, 96, 1, 1, 0, 1, 1, 1, 0, 0},
    {"mobilenet_v3_small", "features.10.block.0.0", KN_LAYER_CONV, 96, 576, 1, 1, 0, 1, 1, 1, 0, 0},
    {"mobilenet_v3_small", "features.10.block.1.0", KN_LAYER_CONV, 576, 576, 5, 1, 2, 576, 1, 1, 0,
     0},
    {"mobilenet_v3_small", "features.10.block.2.fc1", KN_LAYER_LINEAR, 576, 144, 0, 0, 0, 0, 0, 0,
     1, 0},
    {"mobilenet_v3_small", "features.10.block.2.fc2", KN_LAYER_LINEAR, 144, 576, 0, 0, 0, 0, 0, 0,
     1, 0},
    {"mobilenet_v3_small", "features.10.block.3.0", KN_LAYER_CONV, 576, 96, 1, 1, 0, 1, 1, 1, 0, 0},
    {"mobilenet_v3_small", "features.11.block.0.0", KN_LAYER_CONV, 96, 576, 1, 1, 0, 1, 1, 1, 0, 0},
    {"mobilenet_v3_small", "features.11.block.1.0", KN_LAYER_CONV, 576, 576, 5, 1, 2, 576, 1, 1, 0,
     0},
    {"mobilenet_v3_small", "features.11.block.2.fc1", KN_LAYER_LINEAR, 576, 144, 0, 0, 0, 0, 0, 0,
     1, 0},
    {"mobilenet_v3_small", "features.11.block.2.fc2", KN_LAYER_LINEAR, 144, 576, 0, 0, 0, 0, 0, 0,
     1, 0},
    {"mobilenet_v3_small", "features.11.block.3.0", KN_LAYER_CONV, 576, 96, 1, 1, 0, 1, 1, 1, 0, 0},
    {"mobilenet_v3_small", "features.12.0", KN_LAYER_CONV, 96, 576, 1, 1, 0, 1, 1, 1, 0, 0},
    {"mobilenet_v3_small", "classifier.0", KN_LAYER_LINEAR, 576, 1024, 0, 0, 0, 0, 0, 0, 1, 0},
    {"mobilenet_v3_small", "classifier.3", KN_LAYER_LINEAR, 1024, 10, 0, 0, 0, 0, 0, 0, 1, 0},

};
enum { NUM_LAYERS = (int)(sizeof layers / sizeof layers[0]) };

typedef struct {
  const char *model;
  int batch, threads, repeat, warmup, peak_n, csv, no_layers;
} kernels_config;

#define FIELD(name) offsetof(kernels_config, name)

static const mf_option kernel_options[] = {
    {"model", 'm', MF_OPT_STRING, FIELD(model), "NAME|all", "all", "model(s) to time", 0, 0, NULL,
     NULL, NULL},
    {"batch", 'b', MF_OPT_INT, FIELD(batch), "N", "64", "samples per step", 1, 65536, NULL, NULL,
     NULL},
    {"threads", 't', MF_OPT_INT, FIELD(threads), "T", "1", "OpenBLAS threads", 1, 1024, NULL, NULL,
     NULL},
    {"iterations", 'i', MF_OPT_INT, FIELD(repeat), "N", "5", "timed runs per row (median)", 1,
     100000, NULL, NULL, NULL},
    {"repeat", 'r', MF_OPT_INT, FIELD(repeat), "N", NULL, "alias of --iterations", 1, 100000, NULL,
     NULL, NULL},
    {"warmup", 'x', MF_OPT_INT, FIELD(warmup), "W", "1", "untimed runs before each row", 0, 100000,
     NULL, NULL, NULL},
    {"peak-n", 0, MF_OPT_INT, FIELD(peak_n), "N", "1024", "sgemm size for the peak", 64, 16384,
     NULL, NULL, NULL},
    {"csv", 0, MF_OPT_FLAG, FIELD(csv), NULL, NULL, "CSV: name,median_ms,gflops,peak_pct", 0, 0,
     NULL, NULL, NULL},
    {"no-layers", 0, MF_OPT_FLAG, FIELD(no_layers), NULL, NULL, "models only, no per-layer rows", 0,
     0, NULL, NULL, NULL},
};

static const mf_program kernels_program = {
    .name = "mayfly-kernels",
    .summary =
        "Times a training step of each model and forward+backward of each of its conv and "
        "linear layers; GFLOP/s and share of the measured sgemm peak.",
    .usage = "[OPTIONS]",
    .options = kernel_options,
    .count = MF_OPTION_COUNT(kernel_options),
    .epilogue =
        "Example:\n  mayfly-kernels --model squeezenet1_1 --batch 64 --threads 1 -i 7 --csv\n",
};

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int compare_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static double median(double *v, int n) {
  qsort(v, (size_t)n, sizeof *v, compare_double);
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static void fill(float *x, size_t n, unsigned seed) {
  uint64_t state = seed;
  for (size_t i = 0; i < n; i++)
    x[i] = (float)((double)(kn_splitmix64(&state) >> 40) / 16777216.0 - 0.5);
}

/* Forward + backward FLOPs of one layer at batch B (first: no input gradient); executed: the
 * FLOPs the model's kernels run (a repeated-feature Linear is in/repeats wide), else nominal. */
static double layer_flops(const layer_spec *l, int B, int first, int executed) {
  double macs;
  if (l->type == KN_LAYER_LINEAR) {
    macs = (double)B * l->in * l->out;
    if (executed && l->repeats > 1) macs /= l->repeats;
  } else {
    kn_conv2d c;
    if (kn_conv2d_init(&c, l->in, l->out, l->kernel, l->stride, l->padding, l->groups, l->h, l->w))
      return 0;
    macs = (double)B * l->out * c.out_h * c.out_w * (l->in / l->groups) * l->kernel * l->kernel;
    /* on a 1x1 map only the centre tap meets the input, and the kernels run only that one */
    if (executed && c.groups == 1 && c.in_h == 1 && c.in_w == 1 && c.out_h == 1 && c.out_w == 1)
      macs = l->padding < l->kernel ? (double)B * l->out * l->in : 0.0;
  }
  return 2.0 * macs * (first ? 2.0 : 3.0);
}

typedef struct {
  const char *name;
  double ms, gflops, peak_pct;
} row;

static void print_row(const kernels_config *c, const row *r) {
  if (c->csv)
    printf("%s,%.4f,%.3f,%.2f\n", r->name, r->ms, r->gflops, r->peak_pct);
  else
    printf("%-44s %12.3f %10.2f %8.1f\n", r->name, r->ms, r->gflops, r->peak_pct);
  fflush(stdout);
}

static double *alloc_times(const kernels_config *c) {
  return malloc((size_t)c->repeat * sizeof(double));
}

static int sgemm_peak(const kernels_config *c, row *r) {
  const int n = c->peak_n;
  float *a = malloc((size_t)n * n * sizeof(float)), *b = malloc((size_t)n * n * sizeof(float));
  float *out = malloc((size_t)n * n * sizeof(float));
  kernels_config more = *c;
  if (more.repeat < 20) more.repeat = 20;
  c = &more;
  double *t = alloc_times(c);
  if (!a || !b || !out || !t) return -1;
  fill(a, (size_t)n * n, 1), fill(b, (size_t)n * n, 2);
  for (int i = 0; i < c->warmup + c->repeat; i++) {
    double start = now_s();
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a, n, b, n, 0.0f, out, n);
    if (i >= c->warmup) t[i - c->warmup] = now_s() - start;
  }
  double s = t[0]; /* a peak is the best run: load on a shared box only ever slows it down */
  for (int i = 1; i < c->repeat; i++) s = t[i] < s ? t[i] : s;
  r->name = "sgemm_peak", r->ms = 1e3 * s, r->gflops = 2.0 * n * (double)n * n / s * 1e-9;
  r->peak_pct = 100.0;
  free(a), free(b), free(out), free(t);
  return 0;
}

static int time_layer(const kernels_config *c, const layer_spec *l, int first, double peak,
                      char *err, size_t errlen) {
  const int B = c->batch;
  kn_conv2d conv = {0};
  size_t nin, nout, nweight, ws = 0;
  const kn_model_kind *kind = kn_model_find(l->model);
  const int cnhw = kind && kind->cnhw; /* time the layer on the layout its model uses */
  if (l->type == KN_LAYER_CONV) {
    if (kn_conv2d_init(&conv, l->in, l->out, l->kernel, l->stride, l->padding, l->groups, l->h,
                       l->w)) {
      snprintf(err, errlen, "%s/%s: impossible conv geometry", l->model, l->layer);
      return -1;
    }
    nin = (size_t)B * l->in * l->h * l->w, nout = (size_t)B * l->out * conv.out_h * conv.out_w;
    nweight = (size_t)l->out * (l->in / l->groups) * l->kernel * l->kernel;
    ws = cnhw ? kn_conv2d_cnhw_workspace_floats(&conv, B) : kn_conv2d_workspace_floats(&conv, B);
  } else {
    nin = (size_t)B * l->in, nout = (size_t)B * l->out, nweight = (size_t)l->in * l->out;
    if (l->repeats > 1) { /* input (B, in/repeats); folded weight and its gradient */
      nin /= (size_t)l->repeats;
      ws = 2 * (size_t)l->out * (l->in / l->repeats);
    }
  }
  /* inp, out, weight, bias, dout, dinp, dweight, dbias, workspace from one arena (two passes:
   * measure, then take the real pointers). */
  kn_arena a = {0};
  float *p[9];
  const size_t sizes[9] = {nin,     nout,           nweight, (size_t)l->out, nout, nin,
                           nweight, (size_t)l->out, ws};
  for (int i = 0; i < 9; i++) kn_arena_take(&a, sizes[i]);
  if (kn_arena_allocate(&a) != 0) {
    snprintf(err, errlen, "%s/%s: out of memory", l->model, l->layer);
    return -1;
  }
  for (int i = 0; i < 9; i++) p[i] = kn_arena_take(&a, sizes[i]);
  fill(p[0], nin, 3), fill(p[2], nweight, 4), fill(p[3], (size_t)l->out, 5), fill(p[4], nout, 6);
  double *t = alloc_times(c);
  const float *bias = l->bias ? p[3] : NULL;
  float *dbias = l->bias ? p[7] : NULL, *dinp = first ? NULL : p[5];
  for (int i = 0; i < c->warmup + c->repeat; i++) {
    double start = now_s();
    if (l->type == KN_LAYER_CONV) {
      if (cnhw) {
        kn_conv2d_cnhw_forward(&conv, p[1], p[0], p[2], bias, B, p[8]);
        kn_conv2d_cnhw_backward(&conv, dinp, p[6], dbias, p[4], p[0], p[2], B, p[8]);
      } else {
        kn_conv2d_forward(&conv, p[1], p[0], p[2], bias, B, p[8]);
        kn_conv2d_backward(&conv, dinp, p[6], dbias, p[4], p[0], p[2], B, p[8]);
      }
    } else if (l->repeats > 1) {
      const int C = l->in / l->repeats;
      float *folded = p[8], *dfolded = p[8] + (size_t)l->out * C;
      kn_linear_repeated_forward(p[1], folded, p[0], p[2], bias, B, C, l->repeats, l->out);
      kn_linear_repeated_backward(dinp, p[6], dbias, p[4], p[0], folded, B, C, l->repeats, l->out,
                                  dfolded);
    } else {
      kn_linear_forward(p[1], p[0], p[2], bias, B, l->in, l->out);
      kn_linear_backward(dinp, p[6], dbias, p[4], p[0], p[2], B, l->in, l->out);
    }
    if (i >= c->warmup) t[i - c->warmup] = now_s() - start;
  }
  double s = median(t, c->repeat), flops = layer_flops(l, B, first, 1);
  char name[160];
  snprintf(name, sizeof name, "%s/%s", l->model, l->layer);
  row r = {name, 1e3 * s, flops / s * 1e-9, 100.0 * flops / s * 1e-9 / peak};
  print_row(c, &r);
  free(t);
  kn_arena_free(&a);
  return 0;
}

/* Checks the layer table against the model's state_dict: every row's weight exists with the
 * row's shape (a stale table would silently report wrong FLOPs). */
static int check_table(const kn_model *m, char *err, size_t errlen) {
  for (int i = 0; i < NUM_LAYERS; i++) {
    const layer_spec *l = &layers[i];
    if (strcmp(l->model, m->kind->name) != 0) continue;
    char name[128];
    snprintf(name, sizeof name, "%s.weight", l->layer);
    size_t want = (size_t)l->out * (l->in / (l->groups ? l->groups : 1)) *
                  (l->kernel ? l->kernel : 1) * (l->kernel ? l->kernel : 1);
    int found = 0;
    for (int t = 0; t < m->num_param_tensors; t++)
      if (strcmp(m->param_tensors[t].name, name) == 0) found = m->param_tensors[t].count == want;
    if (!found) {
      snprintf(err, errlen, "layer table out of date: %s has no %s of %zu values", m->kind->name,
               name, want);
      return -1;
    }
  }
  return 0;
}

static int time_model(const kernels_config *c, const kn_model_kind *kind, double peak, char *err,
                      size_t errlen) {
  const int B = c->batch;
  kn_model *m = kn_model_create(kind, B, 1, err, errlen);
  if (!m) return -1;
  if (check_table(m, err, errlen) != 0) {
    kn_model_free(m);
    return -1;
  }
  size_t nx = (size_t)B * kind->channels * kind->height * kind->width;
  float *x = malloc(nx * sizeof(float));
  int32_t *y = malloc((size_t)B * sizeof(int32_t));
  double *t = alloc_times(c);
  fill(x, nx, 7);
  for (int i = 0; i < B; i++) y[i] = i % kind->classes;
  for (int i = 0; i < c->warmup + c->repeat; i++) {
    double start = now_s();
    kn_model_loss_and_grad(m, x, y, B);
    if (i >= c->warmup) t[i - c->warmup] = now_s() - start;
  }
  double s = median(t, c->repeat), flops = 0, executed = 0;
  int first = 1;
  for (int i = 0; i < NUM_LAYERS; i++)
    if (strcmp(layers[i].model, kind->name) == 0) {
      flops += layer_flops(&layers[i], B, first, 0);
      executed += layer_flops(&layers[i], B, first, 1), first = 0;
    }
  row r = {kind->name, 1e3 * s, flops / s * 1e-9, 100.0 * flops / s * 1e-9 / peak};
  print_row(c, &r);
  if (!c->csv && executed < flops)
    printf(
        "# %s: effective rate above (nominal %.1f GFLOP); executed %.1f GFLOP -> %.2f GFLOP/s, "
        "%.1f %% of peak\n",
        kind->name, flops * 1e-9, executed * 1e-9, executed / s * 1e-9,
        100.0 * executed / s * 1e-9 / peak);
  free(x), free(y), free(t);
  kn_model_free(m);
  if (!c->no_layers) {
    first = 1;
    for (int i = 0; i < NUM_LAYERS; i++)
      if (strcmp(layers[i].model, kind->name) == 0) {
        if (time_layer(c, &layers[i], first, peak, err, errlen) != 0) return -1;
        first = 0;
      }
  }
  return 0;
}

int main(int argc, char **argv) {
  kernels_config c = {0};
  int status = mf_options_parse(&kernels_program, argc, argv, &c, 0);
  if (status != MF_OPTIONS_OK) return status == MF_OPTIONS_USAGE_ERROR ? 2 : 0;
  if (strcmp(c.model, "all") != 0 && !kn_model_find(c.model)) {
    mf_error(kernels_program.name, "--model: '%s' is not a model (see mayfly-train --help)",
             c.model);
    return 2;
  }
  kn_set_threads(c.threads);
  struct utsname u;
  uname(&u);
  char err[512];
  row peak;
  if (sgemm_peak(&c, &peak) != 0) {
    mf_error(kernels_program.name, "out of memory for the sgemm peak");
    return 1;
  }
  if (c.csv) {
    printf("name,median_ms,gflops,peak_pct\n");
  } else {
    printf("# mayfly-kernels %s (%s), host %s %s, threads %d, batch %d, iterations %d, warmup %d\n",
           mf_suite_version, mf_git_revision, u.nodename, u.machine, c.threads, c.batch, c.repeat,
           c.warmup);
    /* The kernel set decides the peak: on an AVX-512 CPU, OPENBLAS_CORETYPE=Haswell halves it */
    const char *coretype = getenv("OPENBLAS_CORETYPE");
    printf("# OpenBLAS kernels %s (OPENBLAS_CORETYPE %s)\n", openblas_get_corename(),
           coretype ? coretype : "unset: OpenBLAS's own CPU detection");
    printf(
        "# median of the timed runs; FLOPs of conv/linear layers only (fwd + bwd); model rows: "
        "nominal FLOPs (effective rate), layer rows: executed FLOPs\n");
    printf("%-44s %12s %10s %8s\n", "# name", "median_ms", "GFLOP/s", "peak_%");
  }
  print_row(&c, &peak);
  for (int i = 0; kn_model_kinds[i]; i++) {
    if (strcmp(c.model, "all") != 0 && strcmp(c.model, kn_model_kinds[i]->name) != 0) continue;
    if (time_model(&c, kn_model_kinds[i], peak.gflops, err, sizeof err) != 0) {
      mf_error(kernels_program.name, "%s", err);
      return 1;
    }
  }
  return 0;
}
