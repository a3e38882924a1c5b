/* Seeded synthetic data: 1x28x28 images in 10 classes, so every benchmark can run without any
 * dataset installed and tests can use data of any size. Sample i of a split is a function of
 * (seed, split, i) alone, which lets a worker produce exactly the records of its minibatch
 * without generating the rest, just as it would read them from a file.
 *
 * The data is learnable: each class has a prototype (a random on/off pattern on a 7x7 grid of
 * 4x4-pixel cells, drawn from the seed, shared by both splits), and a sample is its class's
 * prototype with a few cells flipped, shifted by up to 3 pixels, plus per-pixel noise. Neither
 * trivial nor hopeless: on the default 6000/1000 split a 784-128-10 MLP (PyTorch, SGD 0.1,
 * batch 64) reaches ~69% test accuracy after one epoch and ~89% after five; nearest class mean
 * ~80%. Only integer arithmetic is used, so the bytes are identical on every machine. */
#include <stdlib.h>
#include <string.h>

#include "datasets/internal.h"

#define SYN_SIDE 28
#define SYN_GRID 7
#define SYN_CELL (SYN_SIDE / SYN_GRID)
#define SYN_MAX_SHIFT 3
#define SYN_ON 170
#define SYN_OFF 40

/* The split is mixed into every sample's key, so train and test samples differ. */
static uint64_t sample_key(uint64_t seed, ds_split split, int64_t index) {
  return ds_hash2(ds_hash2(seed, 0x747261696e000000ULL + (uint64_t)split), (uint64_t)index);
}

static int prototype_on(uint64_t seed, int label, int gy, int gx) {
  uint64_t h =
      ds_hash2(ds_hash2(seed, 0x70726f746f000000ULL), (uint64_t)(label * 64 + gy * 8 + gx));
  return (int)(h >> 63);
}

static void synthetic_sample(uint64_t seed, ds_split split, int64_t index, uint8_t *pixels,
                             uint8_t *label) {
  uint64_t state = sample_key(seed, split, index);
  uint64_t first = ds_splitmix64(&state);
  int cls = (int)(first % DS_CLASSES);
  int dy = (int)((first >> 8) % (2 * SYN_MAX_SHIFT + 1)) - SYN_MAX_SHIFT;
  int dx = (int)((first >> 16) % (2 * SYN_MAX_SHIFT + 1)) - SYN_MAX_SHIFT;
  int on[SYN_GRID][SYN_GRID];
  /* Each cell of the prototype is flipped with probability 1/8: samples of a class vary in
   * shape, not just in pixel noise, so the task is not solved by a single template. */
  for (int gy = 0; gy < SYN_GRID; gy++)
    for (int gx = 0; gx < SYN_GRID; gx++) {
      uint64_t r = ds_splitmix64(&state);
      on[gy][gx] = prototype_on(seed, cls, gy, gx) ^ ((r & 7) == 0);
    }
  for (int y = 0; y < SYN_SIDE; y++)
    for (int x = 0; x < SYN_SIDE; x++) {
      int sy = y - dy, sx = x - dx; /* prototype pixel that lands here */
      int base = SYN_OFF;
      if (sy >= 0 && sy < SYN_SIDE && sx >= 0 && sx < SYN_SIDE && on[sy / SYN_CELL][sx / SYN_CELL])
        base = SYN_ON;
      /* Sum of four uniform bytes: a bell-shaped noise (sd ~55 after scaling), integer only. */
      uint64_t r = ds_splitmix64(&state);
      int noise = (int)((r & 255) + ((r >> 8) & 255) + ((r >> 16) & 255) + ((r >> 24) & 255));
      int v = base + (noise - 510) * 3 / 8;
      pixels[y * SYN_SIDE + x] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
    }
  *label = (uint8_t)cls;
}

static int64_t split_count(const ds_source *src, ds_split split) {
  return split == DS_TRAIN ? src->synthetic_train : src->synthetic_test;
}

static void synthetic_geometry(int64_t count, ds_set *set) {
  memset(set, 0, sizeof(*set));
  set->count = count;
  set->channels = 1;
  set->height = SYN_SIDE;
  set->width = SYN_SIDE;
  set->classes = DS_CLASSES;
}

static int check_count(const ds_source *src, ds_split split, char *err, size_t errlen) {
  int64_t count = split_count(src, split);
  if (count < 1 || count > DS_MAX_COUNT)
    return ds_fail(err, errlen, "synthetic: %s count %lld is out of range (1..%lld)",
                   split == DS_TRAIN ? "train" : "test", (long long)count, DS_MAX_COUNT);
  return 0;
}

int ds_synthetic_probe(const ds_source *src, ds_split split, ds_set *geometry, char *err,
                       size_t errlen) {
  if (check_count(src, split, err, errlen) != 0) return -1;
  synthetic_geometry(split_count(src, split), geometry);
  return 0;
}

int ds_synthetic_load(const ds_source *src, ds_split split, ds_set *out, char *err, size_t errlen) {
  memset(out, 0, sizeof(*out));
  if (check_count(src, split, err, errlen) != 0) return -1;
  int64_t count = split_count(src, split);
  uint8_t *pixels = malloc((size_t)(count * SYN_SIDE * SYN_SIDE));
  uint8_t *labels = malloc((size_t)count);
  if (!pixels || !labels) {
    free(pixels);
    free(labels);
    return ds_fail(err, errlen, "synthetic: out of memory for %lld samples", (long long)count);
  }
  for (int64_t i = 0; i < count; i++)
    synthetic_sample(src->synthetic_seed, split, i, pixels + i * SYN_SIDE * SYN_SIDE, labels + i);
  synthetic_geometry(count, out);
  out->pixels = pixels;
  out->labels = labels;
  return 0;
}

int ds_synthetic_fetch(const ds_source *src, ds_split split, const int64_t *indices, int n,
                       uint8_t *pixels, uint8_t *labels, char *err, size_t errlen) {
  if (n < 0) return ds_fail(err, errlen, "ds_fetch: negative sample count %d", n);
  if (check_count(src, split, err, errlen) != 0) return -1;
  int64_t count = split_count(src, split);
  for (int k = 0; k < n; k++)
    if (indices[k] < 0 || indices[k] >= count)
      return ds_fail(err, errlen, "synthetic (%s, seed %llu): index %lld is out of range (0..%lld)",
                     split == DS_TRAIN ? "train" : "test", (unsigned long long)src->synthetic_seed,
                     (long long)indices[k], (long long)count - 1);
  for (int k = 0; k < n; k++)
    synthetic_sample(src->synthetic_seed, split, indices[k],
                     pixels + (int64_t)k * SYN_SIDE * SYN_SIDE, labels + k);
  return 0;
}
