/* Unit tests of the datasets module: small idx and CIFAR-10 files written here (plain and
 * gzip via zlib) are read back exactly, record-level fetching agrees with whole loads, staging
 * produces valid plain copies, the partition is a deterministic permutation, synthetic data is
 * deterministic and learnable, ds_to_input pads and replicates correctly, and every kind of
 * broken file is refused with a message naming the file and the fault, without crashing or
 * allocating what a lying header asks for. Also checks the installed Fashion-MNIST if present
 * (reference values computed with Python's gzip module). */
#define _XOPEN_SOURCE 700
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "datasets/datasets.h"
#include "tests/check.h"

static char tmp_root[256];

/* ---- file builders ---- */

static uint8_t test_pixel(int split, int64_t index, int64_t p) {
  return (uint8_t)((index * 31 + p * 7 + split * 13 + (p * p) / 5) & 255);
}
static uint8_t test_label(int split, int64_t index) {
  return (uint8_t)((index * 3 + split) % 10);
}

typedef struct {
  uint8_t *bytes;
  size_t len;
} blob;

static void put_be32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)(v >> 24), p[1] = (uint8_t)(v >> 16), p[2] = (uint8_t)(v >> 8), p[3] = (uint8_t)v;
}

/* An images file whose header says (magic, count, rows, cols) and whose payload holds
 * `records` records (may differ from count to build broken files). */
static blob images_blob(uint32_t magic, uint32_t count, uint32_t rows, uint32_t cols,
                        int64_t records, int split) {
  int64_t rec = (int64_t)rows * cols;
  blob b = {NULL, (size_t)(16 + records * rec)};
  b.bytes = malloc(b.len);
  put_be32(b.bytes, magic);
  put_be32(b.bytes + 4, count);
  put_be32(b.bytes + 8, rows);
  put_be32(b.bytes + 12, cols);
  for (int64_t i = 0; i < records; i++)
    for (int64_t p = 0; p < rec; p++) b.bytes[16 + i * rec + p] = test_pixel(split, i, p);
  return b;
}

static blob labels_blob(uint32_t magic, uint32_t count, int64_t records, int split) {
  blob b = {NULL, (size_t)(8 + records)};
  b.bytes = malloc(b.len);
  put_be32(b.bytes, magic);
  put_be32(b.bytes + 4, count);
  for (int64_t i = 0; i < records; i++) b.bytes[8 + i] = test_label(split, i);
  return b;
}

static void write_blob(const char *path, blob b, int gz) {
  if (gz) {
    gzFile f = gzopen(path, "wb6");
    if (b.len) gzwrite(f, b.bytes, (unsigned)b.len);
    gzclose(f);
  } else {
    FILE *f = fopen(path, "wb");
    if (b.len) fwrite(b.bytes, 1, b.len, f);
    fclose(f);
  }
  free(b.bytes);
}

static void path_in(char *out, const char *dir, const char *name) {
  if (snprintf(out, DS_PATH_MAX, "%s/%s", dir, name) >= DS_PATH_MAX) abort();
}

static const char *file_name(int split, int images, int gz) {
  static const char *names[2][2][2] = {{{"train-labels-idx1-ubyte", "train-labels-idx1-ubyte.gz"},
                                        {"train-images-idx3-ubyte", "train-images-idx3-ubyte.gz"}},
                                       {{"t10k-labels-idx1-ubyte", "t10k-labels-idx1-ubyte.gz"},
                                        {"t10k-images-idx3-ubyte", "t10k-images-idx3-ubyte.gz"}}};
  return names[split][images][gz];
}

/* A fresh directory with a valid idx dataset (train: ntrain, test: ntest, rows x cols). */
static void make_idx_dir(const char *dir, int gz, int ntrain, int ntest, int rows, int cols) {
  mkdir(dir, 0755);
  char path[DS_PATH_MAX];
  for (int split = 0; split < 2; split++) {
    int n = split ? ntest : ntrain;
    path_in(path, dir, file_name(split, 1, gz));
    write_blob(path, images_blob(0x803, n, rows, cols, n, split), gz);
    path_in(path, dir, file_name(split, 0, gz));
    write_blob(path, labels_blob(0x801, n, n, split), gz);
  }
}

static int unlink_one(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
  (void)st, (void)flag, (void)ftw;
  return remove(path);
}

static void source_for(ds_source *src, const char *kind, const char *dir) {
  char spec[DS_PATH_MAX + 16], err[DS_ERROR_MAX];
  snprintf(spec, sizeof(spec), "%s:%s", kind, dir);
  int rc = ds_source_parse(spec, src, err, sizeof(err));
  CHECK_MSG(rc == 0, "parse %s: %s", spec, err);
}

static int set_matches_builder(const ds_set *set, int split, int n, int rows, int cols) {
  if (set->count != n || set->channels != 1 || set->height != rows || set->width != cols ||
      set->classes != 10)
    return 0;
  for (int64_t i = 0; i < n; i++) {
    if (set->labels[i] != test_label(split, i)) return 0;
    for (int64_t p = 0; p < rows * cols; p++)
      if (set->pixels[i * rows * cols + p] != test_pixel(split, i, p)) return 0;
  }
  return 1;
}

/* ---- tests ---- */

static long image_sum(const uint8_t *p) {
  long s = 0;
  for (int i = 0; i < 784; i++) s += p[i];
  return s;
}

static void test_parse(void) {
  ds_source src;
  char err[DS_ERROR_MAX];
  CHECK(ds_source_parse("fashion-mnist", &src, err, sizeof(err)) == 0);
  CHECK(src.kind == DS_KIND_IDX && strcmp(src.dir, "/usr/share/datasets/fashion-mnist") == 0);
  CHECK(strcmp(src.name, "fashion-mnist") == 0);
  CHECK(ds_source_parse("idx:/data/mnist/", &src, err, sizeof(err)) == 0);
  CHECK(src.kind == DS_KIND_IDX && strcmp(src.dir, "/data/mnist") == 0);
  CHECK(ds_source_parse("cifar10:/data/c", &src, err, sizeof(err)) == 0);
  CHECK(src.kind == DS_KIND_CIFAR10 && strcmp(src.dir, "/data/c") == 0);
  CHECK(ds_source_parse("synthetic", &src, err, sizeof(err)) == 0);
  CHECK(src.kind == DS_KIND_SYNTHETIC && src.synthetic_train == 6000 &&
        src.synthetic_test == 1000 && src.synthetic_seed == 1);
  CHECK(ds_source_parse("synthetic:100:20:77", &src, err, sizeof(err)) == 0);
  CHECK(src.synthetic_train == 100 && src.synthetic_test == 20 && src.synthetic_seed == 77);
  CHECK(ds_source_parse("synthetic:100:20", &src, err, sizeof(err)) == 0);
  CHECK(src.synthetic_seed == 1);
  const char *bad[] = {"",
                       "mnist",
                       "idx",
                       "idx:",
                       "cifar10",
                       "synthetic:100",
                       "synthetic:0:10",
                       "synthetic:10:-1",
                       "synthetic:1x:2",
                       "synthetic:1:2:3:4"};
  for (size_t k = 0; k < sizeof(bad) / sizeof(*bad); k++) {
    err[0] = '\0';
    CHECK_MSG(ds_source_parse(bad[k], &src, err, sizeof(err)) == -1 && err[0],
              "spec '%s' should be refused", bad[k]);
  }
}

static void test_idx_read(int gz) {
  char dir[DS_PATH_MAX], err[DS_ERROR_MAX];
  snprintf(dir, sizeof(dir), "%s/idx_%s", tmp_root, gz ? "gz" : "plain");
  make_idx_dir(dir, gz, 37, 11, 5, 7);
  ds_source src;
  source_for(&src, "idx", dir);
  ds_set train, test, probe;
  CHECK_MSG(ds_load(&src, DS_TRAIN, &train, err, sizeof(err)) == 0, "%s", err);
  CHECK_MSG(ds_load(&src, DS_TEST, &test, err, sizeof(err)) == 0, "%s", err);
  CHECK(set_matches_builder(&train, 0, 37, 5, 7));
  CHECK(set_matches_builder(&test, 1, 11, 5, 7));
  CHECK(ds_probe(&src, DS_TRAIN, &probe, err, sizeof(err)) == 0);
  CHECK(probe.count == 37 && probe.height == 5 && probe.width == 7 && probe.channels == 1 &&
        probe.pixels == NULL);

  /* fetch == load: random indices, unsorted, with repeats, and both ends */
  int64_t indices[64];
  uint8_t pixels[64 * 35], labels[64];
  srand(gz ? 7 : 3);
  for (int k = 0; k < 64; k++) indices[k] = rand() % 37;
  indices[5] = 36, indices[6] = 0, indices[7] = indices[8];
  CHECK_MSG(ds_fetch(&src, DS_TRAIN, indices, 64, pixels, labels, err, sizeof(err)) == 0, "%s",
            err);
  int same = 1;
  for (int k = 0; k < 64; k++) {
    same &= labels[k] == train.labels[indices[k]];
    same &= memcmp(pixels + k * 35, train.pixels + indices[k] * 35, 35) == 0;
  }
  CHECK_MSG(same, "fetch differs from load (%s)", gz ? "gz" : "plain");
  int64_t test_indices[3] = {10, 0, 10};
  CHECK(ds_fetch(&src, DS_TEST, test_indices, 3, pixels, labels, err, sizeof(err)) == 0);
  CHECK(labels[0] == test.labels[10] && labels[1] == test.labels[0] && labels[2] == labels[0]);
  CHECK(memcmp(pixels, test.pixels + 10 * 35, 35) == 0);

  /* out-of-range indices name the index and the file */
  int64_t beyond[2] = {3, 37};
  CHECK(ds_fetch(&src, DS_TRAIN, beyond, 2, pixels, labels, err, sizeof(err)) == -1);
  CHECK_MSG(strstr(err, "index 37 is out of range (0..36)") && strstr(err, "train-images"), "%s",
            err);
  int64_t negative = -1;
  CHECK(ds_fetch(&src, DS_TRAIN, &negative, 1, pixels, labels, err, sizeof(err)) == -1);
  CHECK_MSG(strstr(err, "index -1 is out of range"), "%s", err);

  /* the reader (kept open across fetches, mapped for plain files) == ds_fetch, same errors */
  ds_reader *reader = NULL;
  CHECK_MSG(ds_reader_open(&src, DS_TRAIN, &reader, err, sizeof(err)) == 0, "%s", err);
  uint8_t again[64 * 35], again_labels[64];
  for (int round = 0; round < 2 && reader; round++) {
    CHECK_MSG(ds_reader_fetch(reader, indices, 64, again, again_labels, err, sizeof(err)) == 0,
              "%s", err);
    CHECK(ds_fetch(&src, DS_TRAIN, indices, 64, pixels, labels, err, sizeof(err)) == 0);
    CHECK_MSG(memcmp(again, pixels, sizeof again) == 0 && memcmp(again_labels, labels, 64) == 0,
              "reader differs from ds_fetch (%s, round %d)", gz ? "gz" : "plain", round);
  }
  if (reader) {
    CHECK(ds_reader_fetch(reader, beyond, 2, again, again_labels, err, sizeof(err)) == -1);
    CHECK_MSG(strstr(err, "index 37 is out of range (0..36)") && strstr(err, "train-images"), "%s",
              err);
    CHECK(ds_reader_fetch(reader, &negative, 1, again, again_labels, err, sizeof(err)) == -1);
  }
  ds_reader_close(reader);
  ds_free(&train);
  ds_free(&test);
}

static void test_plain_preferred(void) {
  char dir[DS_PATH_MAX], path[DS_PATH_MAX], err[DS_ERROR_MAX];
  snprintf(dir, sizeof(dir), "%s/both", tmp_root);
  make_idx_dir(dir, 1, 5, 3, 4, 4);
  path_in(path, dir, file_name(0, 1, 0));
  write_blob(path, images_blob(0x803, 5, 2, 2, 5, 0), 0); /* the plain copy is 2x2 */
  ds_source src;
  source_for(&src, "idx", dir);
  ds_set set;
  CHECK_MSG(ds_load(&src, DS_TRAIN, &set, err, sizeof(err)) == 0, "%s", err);
  CHECK(set.height == 2 && set.width == 2);
  ds_free(&set);
}

static void test_stage(void) {
  char src_dir[DS_PATH_MAX], stage_dir[DS_PATH_MAX], path[DS_PATH_MAX], err[DS_ERROR_MAX];
  snprintf(src_dir, sizeof(src_dir), "%s/stage_src", tmp_root);
  snprintf(stage_dir, sizeof(stage_dir), "%s/staged/a/b", tmp_root);
  make_idx_dir(src_dir, 1, 23, 9, 6, 6);
  ds_source src, staged;
  source_for(&src, "idx", src_dir);
  CHECK_MSG(ds_stage(&src, stage_dir, &staged, err, sizeof(err)) == 0, "%s", err);
  CHECK(staged.kind == DS_KIND_IDX && strcmp(staged.dir, stage_dir) == 0);
  struct stat st, st2;
  path_in(path, stage_dir, file_name(0, 1, 0));
  CHECK(stat(path, &st) == 0 && st.st_size == 16 + 23 * 36);
  path_in(path, stage_dir, file_name(1, 0, 0));
  CHECK(stat(path, &st2) == 0 && st2.st_size == 8 + 9);

  ds_set a, b;
  CHECK(ds_load(&src, DS_TRAIN, &a, err, sizeof(err)) == 0);
  CHECK_MSG(ds_load(&staged, DS_TRAIN, &b, err, sizeof(err)) == 0, "%s", err);
  CHECK(a.count == b.count && memcmp(a.pixels, b.pixels, 23 * 36) == 0 &&
        memcmp(a.labels, b.labels, 23) == 0);
  ds_free(&a);
  ds_free(&b);

  /* A valid copy is reused (same inode), a damaged one is replaced. */
  path_in(path, stage_dir, file_name(0, 1, 0));
  stat(path, &st);
  ds_source again;
  CHECK(ds_stage(&src, stage_dir, &again, err, sizeof(err)) == 0);
  stat(path, &st2);
  CHECK(st.st_ino == st2.st_ino);
  CHECK(truncate(path, 100) == 0);
  CHECK_MSG(ds_stage(&src, stage_dir, &again, err, sizeof(err)) == 0, "%s", err);
  CHECK(stat(path, &st2) == 0 && st2.st_size == 16 + 23 * 36);

  /* No temporary files left behind. */
  char cmd[DS_PATH_MAX + 64];
  snprintf(cmd, sizeof(cmd), "ls -A '%s' | grep -c tmp > /dev/null", stage_dir);
  CHECK(system(cmd) != 0);

  /* Plain and synthetic sources need no staging. */
  snprintf(path, sizeof(path), "%s/idx_plain", tmp_root);
  ds_source plain;
  source_for(&plain, "idx", path);
  CHECK(ds_stage(&plain, stage_dir, &again, err, sizeof(err)) == 0);
  CHECK(strcmp(again.dir, path) == 0);
  ds_source syn;
  CHECK(ds_source_parse("synthetic:10:5:3", &syn, err, sizeof(err)) == 0);
  CHECK(ds_stage(&syn, stage_dir, &again, err, sizeof(err)) == 0);
  CHECK(again.kind == DS_KIND_SYNTHETIC && again.synthetic_seed == 3);

  /* A broken gzip source fails staging and leaves no copy. */
  char bad_dir[DS_PATH_MAX], bad_stage[DS_PATH_MAX];
  snprintf(bad_dir, sizeof(bad_dir), "%s/stage_bad", tmp_root);
  snprintf(bad_stage, sizeof(bad_stage), "%s/staged_bad", tmp_root);
  make_idx_dir(bad_dir, 1, 10, 4, 3, 3);
  path_in(path, bad_dir, file_name(1, 0, 1));
  blob lab = labels_blob(0x801, 4, 4, 1);
  lab.bytes[8 + 2] = 10;
  write_blob(path, lab, 1);
  ds_source bad;
  source_for(&bad, "idx", bad_dir);
  CHECK(ds_stage(&bad, bad_stage, &again, err, sizeof(err)) == -1);
  CHECK_MSG(strstr(err, "label 10 at index 2 is out of range"), "%s", err);
  path_in(path, bad_stage, file_name(1, 0, 0));
  CHECK(stat(path, &st) != 0);
}

static void test_partition(void) {
  ds_partition p, q, r;
  char err[DS_ERROR_MAX];
  CHECK(ds_partition_make(1003, 4, 42, &p, err, sizeof(err)) == 0);
  CHECK(p.total == 1003 && p.peers == 4 && p.shard_size == 250);
  int *seen = calloc(1003, sizeof(int));
  int permutation = 1;
  for (int64_t i = 0; i < 1003; i++) {
    if (p.order[i] < 0 || p.order[i] >= 1003 || seen[p.order[i]]++) permutation = 0;
  }
  CHECK(permutation);
  int64_t identity = 0;
  for (int64_t i = 0; i < 1003; i++) identity += p.order[i] == i;
  CHECK(identity < 20); /* a shuffle, not the identity (expected ~1 fixed point) */

  /* Shards: disjoint, and minibatch i of peer k is the i-th group of its shard. */
  CHECK(ds_minibatch_count(&p, 32) == 7 && ds_minibatch_count(&p, 250) == 1 &&
        ds_minibatch_count(&p, 251) == 0);
  memset(seen, 0, 1003 * sizeof(int));
  int disjoint = 1, contiguous = 1;
  int64_t batch[32];
  for (int peer = 0; peer < 4; peer++)
    for (int64_t i = 0; i < 7; i++) {
      ds_minibatch_indices(&p, peer, 32, i, batch);
      for (int k = 0; k < 32; k++) {
        if (seen[batch[k]]++) disjoint = 0;
        if (batch[k] != p.order[peer * 250 + i * 32 + k]) contiguous = 0;
      }
    }
  CHECK(disjoint && contiguous);
  free(seen);

  CHECK(ds_partition_make(1003, 4, 42, &q, err, sizeof(err)) == 0);
  CHECK(memcmp(p.order, q.order, 1003 * sizeof(int64_t)) == 0);
  CHECK(ds_partition_make(1003, 4, 43, &r, err, sizeof(err)) == 0);
  CHECK(memcmp(p.order, r.order, 1003 * sizeof(int64_t)) != 0);
  ds_partition_free(&p);
  ds_partition_free(&q);
  ds_partition_free(&r);

  /* Pinned values: the permutation must be identical on every machine. Reference from an
   * independent Python transcription of splitmix64 + rejection sampling + Fisher-Yates. */
  static const int64_t seed1_order[10] = {4, 2, 8, 1, 9, 3, 0, 6, 7, 5};
  static const int64_t seed42_head[8] = {948, 627, 402, 902, 433, 946, 542, 254};
  CHECK(ds_partition_make(10, 1, 1, &p, err, sizeof(err)) == 0);
  CHECK(memcmp(p.order, seed1_order, sizeof(seed1_order)) == 0);
  ds_partition_free(&p);
  CHECK(ds_partition_make(1003, 4, 42, &p, err, sizeof(err)) == 0);
  CHECK(memcmp(p.order, seed42_head, sizeof(seed42_head)) == 0);
  ds_partition_free(&p);

  CHECK(ds_partition_make(3, 4, 1, &p, err, sizeof(err)) == -1 && strstr(err, "4 peers"));
  CHECK(ds_partition_make(10, 0, 1, &p, err, sizeof(err)) == -1 && strstr(err, "0 peers"));
  CHECK(ds_partition_make(0, 1, 1, &p, err, sizeof(err)) == -1);
}

static void test_synthetic(void) {
  ds_source src;
  char err[DS_ERROR_MAX];
  CHECK(ds_source_parse("synthetic:2000:500:5", &src, err, sizeof(err)) == 0);
  ds_set train, train2, test;
  CHECK(ds_load(&src, DS_TRAIN, &train, err, sizeof(err)) == 0);
  CHECK(ds_load(&src, DS_TRAIN, &train2, err, sizeof(err)) == 0);
  CHECK(ds_load(&src, DS_TEST, &test, err, sizeof(err)) == 0);
  CHECK(train.count == 2000 && train.channels == 1 && train.height == 28 && train.width == 28 &&
        train.classes == 10 && test.count == 500);
  CHECK(memcmp(train.pixels, train2.pixels, 2000 * 784) == 0 &&
        memcmp(train.labels, train2.labels, 2000) == 0);
  CHECK(memcmp(train.pixels, test.pixels, 500 * 784) != 0);
  int per_class[10] = {0}, in_range = 1;
  for (int i = 0; i < 2000; i++) {
    if (train.labels[i] >= 10)
      in_range = 0;
    else
      per_class[train.labels[i]]++;
  }
  CHECK(in_range);
  for (int k = 0; k < 10; k++) CHECK_MSG(per_class[k] > 120, "class %d: %d", k, per_class[k]);

  int64_t indices[5] = {1999, 0, 777, 777, 3};
  uint8_t pixels[5 * 784], labels[5];
  CHECK(ds_fetch(&src, DS_TRAIN, indices, 5, pixels, labels, err, sizeof(err)) == 0);
  int same = 1;
  for (int k = 0; k < 5; k++)
    same &= labels[k] == train.labels[indices[k]] &&
            memcmp(pixels + k * 784, train.pixels + indices[k] * 784, 784) == 0;
  CHECK(same);
  int64_t beyond = 2000;
  CHECK(ds_fetch(&src, DS_TRAIN, &beyond, 1, pixels, labels, err, sizeof(err)) == -1);
  CHECK_MSG(strstr(err, "index 2000 is out of range"), "%s", err);

  /* Another seed gives other data. */
  ds_source other;
  CHECK(ds_source_parse("synthetic:2000:500:6", &other, err, sizeof(err)) == 0);
  CHECK(ds_fetch(&other, DS_TRAIN, indices, 5, pixels, labels, err, sizeof(err)) == 0);
  CHECK(memcmp(pixels, train.pixels + 1999 * 784, 784) != 0);

  /* Pinned bytes of the default source, from an independent Python transcription of the
   * generator: the data must be identical on every machine. */
  ds_source defaults;
  CHECK(ds_source_parse("synthetic", &defaults, err, sizeof(err)) == 0);
  int64_t pinned[3] = {0, 5999, 1};
  CHECK(ds_fetch(&defaults, DS_TRAIN, pinned, 3, pixels, labels, err, sizeof(err)) == 0);
  CHECK(labels[0] == 7 && labels[1] == 0 && labels[2] == 2);
  CHECK(image_sum(pixels) == 73041 && image_sum(pixels + 784) == 80028 &&
        image_sum(pixels + 2 * 784) == 80526);
  CHECK(pixels[0] == 98 && pixels[1] == 74 && pixels[2] == 0);
  CHECK(ds_fetch(&defaults, DS_TEST, pinned, 1, pixels, labels, err, sizeof(err)) == 0);
  CHECK(labels[0] == 1 && image_sum(pixels) == 72337);

  /* Learnable: a nearest-class-mean classifier fitted on train scores far above chance on
   * test (an MLP does better; this is the cheapest learner that proves there is signal). */
  static double mean[10][784];
  memset(mean, 0, sizeof(mean));
  int n[10] = {0};
  for (int i = 0; i < 2000; i++) {
    n[train.labels[i]]++;
    for (int p = 0; p < 784; p++) mean[train.labels[i]][p] += train.pixels[i * 784 + p];
  }
  for (int k = 0; k < 10; k++)
    for (int p = 0; p < 784; p++) mean[k][p] /= n[k] ? n[k] : 1;
  int correct = 0;
  for (int i = 0; i < 500; i++) {
    int best = 0;
    double best_d = 1e300;
    for (int k = 0; k < 10; k++) {
      double d = 0;
      for (int p = 0; p < 784; p++) {
        double diff = test.pixels[i * 784 + p] - mean[k][p];
        d += diff * diff;
      }
      if (d < best_d) best_d = d, best = k;
    }
    correct += best == test.labels[i];
  }
  printf("synthetic: nearest-class-mean test accuracy %.3f (chance 0.100)\n", correct / 500.0);
  CHECK_MSG(correct > 250, "nearest-mean accuracy %d/500", correct);
  ds_free(&train);
  ds_free(&train2);
  ds_free(&test);
}

static void test_to_input(void) {
  /* 1x2x3 -> 3x4x5: replicate, pad one row above/below and one column left/right. */
  uint8_t pixels[2 * 6] = {0, 51, 102, 153, 204, 255, 255, 255, 255, 0, 0, 0};
  uint8_t labels[2] = {7, 3};
  float x[2 * 3 * 4 * 5];
  int32_t y[2];
  ds_to_input(pixels, labels, 2, 1, 2, 3, 3, 4, 5, x, y);
  CHECK(y[0] == 7 && y[1] == 3);
  int ok = 1;
  for (int s = 0; s < 2; s++)
    for (int c = 0; c < 3; c++)
      for (int r = 0; r < 4; r++)
        for (int col = 0; col < 5; col++) {
          float want = 0.0f;
          if (r >= 1 && r <= 2 && col >= 1 && col <= 3)
            want = pixels[s * 6 + (r - 1) * 3 + (col - 1)] / 255.0f;
          if (fabsf(x[((s * 3 + c) * 4 + r) * 5 + col] - want) > 1e-7f) ok = 0;
        }
  CHECK(ok);
  CHECK_NEAR(x[1 * 5 + 2], 0.2, 1e-7);           /* sample 0, channel 0, (1,2) = pixel 51 */
  CHECK_NEAR(x[(2 * 4 + 2) * 5 + 3], 1.0, 1e-7); /* channel 2, (2,3) = pixel 255 */

  /* 1x4x4 -> 1x2x2: centre crop. */
  uint8_t big[16];
  for (int i = 0; i < 16; i++) big[i] = (uint8_t)(i * 10);
  float crop[4];
  ds_to_input(big, labels, 1, 1, 4, 4, 1, 2, 2, crop, y);
  CHECK_NEAR(crop[0], 50 / 255.0, 1e-7);
  CHECK_NEAR(crop[1], 60 / 255.0, 1e-7);
  CHECK_NEAR(crop[2], 90 / 255.0, 1e-7);
  CHECK_NEAR(crop[3], 100 / 255.0, 1e-7);

  /* 1x28x28 -> 3x32x32 (Fashion-MNIST into a CIFAR-shaped model): 2-pixel border of zeros. */
  static uint8_t img[784];
  static float out[3 * 32 * 32];
  for (int i = 0; i < 784; i++) img[i] = (uint8_t)(i % 251);
  ds_to_input(img, labels, 1, 1, 28, 28, 3, 32, 32, out, y);
  CHECK(out[0] == 0.0f && out[1 * 32 + 1] == 0.0f && out[31 * 32 + 31] == 0.0f);
  CHECK_NEAR(out[2 * 32 + 2], img[0] / 255.0, 1e-7);
  CHECK_NEAR(out[2 * 1024 + 29 * 32 + 29], img[783] / 255.0, 1e-7);
}

/* ---- malformed files ---- */

static int case_number;

/* A fresh valid dataset dir for one broken-file case. */
static void new_case(char *dir, int gz) {
  snprintf(dir, DS_PATH_MAX, "%s/bad%02d", tmp_root, ++case_number);
  make_idx_dir(dir, gz, 12, 4, 4, 4);
}

static void expect_refused(const char *dir, ds_split split, const char *substring, const char *file,
                           const char *what) {
  ds_source src;
  source_for(&src, "idx", dir);
  ds_set set;
  char err[DS_ERROR_MAX] = "";
  int rc = ds_load(&src, split, &set, err, sizeof(err));
  if (getenv("MAYFLY_TEST_VERBOSE")) printf("  %-28s -> %s\n", what, err);
  CHECK_MSG(rc == -1 && strstr(err, substring) && strstr(err, file),
            "%s: rc %d, message '%s', expected '%s' naming %s", what, rc, err, substring, file);
  if (rc == 0) ds_free(&set);
  CHECK(rc != -1 || (set.pixels == NULL && set.labels == NULL));
  /* A worker's reader must refuse the same plain split: at open, or at the latest when it
   * fetches every record (gzip splits go through ds_fetch, which reads only up to the records
   * asked for; workers read validated plain copies, ds_stage). */
  if (strstr(file, ".gz")) return;
  ds_reader *reader = NULL;
  ds_set geometry;
  int refused = ds_reader_open(&src, split, &reader, err, sizeof(err)) != 0;
  if (!refused) {
    if (ds_probe(&src, split, &geometry, err, sizeof(err)) != 0) {
      refused = 1;
    } else {
      uint8_t pixels[4096], label;
      int64_t record = (int64_t)geometry.channels * geometry.height * geometry.width;
      for (int64_t i = 0; i < geometry.count && !refused && record <= 4096; i++)
        refused = ds_reader_fetch(reader, &i, 1, pixels, &label, err, sizeof(err)) != 0;
    }
  }
  ds_reader_close(reader);
  CHECK_MSG(refused, "%s: the reader served a split that ds_load refuses", what);
}

static void test_malformed_idx(void) {
  char dir[DS_PATH_MAX], path[DS_PATH_MAX];
  const char *tl = file_name(0, 0, 0), *ti = file_name(0, 1, 0);
  const char *tlz = file_name(0, 0, 1), *tiz = file_name(0, 1, 1);

  new_case(dir, 0);
  path_in(path, dir, tl);
  remove(path);
  expect_refused(dir, DS_TRAIN, "missing", tl, "missing file");

  new_case(dir, 0);
  path_in(path, dir, ti);
  write_blob(path, (blob){NULL, 0}, 0);
  expect_refused(dir, DS_TRAIN, "empty file", ti, "empty file");

  new_case(dir, 0);
  path_in(path, dir, ti);
  blob b = images_blob(0x803, 12, 4, 4, 12, 0);
  b.len = 9;
  write_blob(path, b, 0);
  expect_refused(dir, DS_TRAIN, "truncated header: expected 16 bytes, file has 9", ti,
                 "truncated header");

  new_case(dir, 0);
  path_in(path, dir, ti);
  write_blob(path, images_blob(0x803, 12, 4, 4, 10, 0), 0);
  expect_refused(dir, DS_TRAIN, "truncated: expected 208 bytes, file has 176", ti,
                 "truncated data");

  new_case(dir, 1);
  path_in(path, dir, tiz);
  write_blob(path, images_blob(0x803, 12, 4, 4, 10, 0), 1);
  expect_refused(dir, DS_TRAIN, "truncated: expected 208 bytes, file has 176 (decompressed)", tiz,
                 "truncated data (gz)");

  new_case(dir, 0);
  path_in(path, dir, ti);
  write_blob(path, images_blob(0x801, 12, 4, 4, 12, 0), 0);
  expect_refused(dir, DS_TRAIN, "bad magic 0x00000801, expected 0x00000803", ti, "wrong magic");

  new_case(dir, 0);
  path_in(path, dir, tl);
  write_blob(path, labels_blob(0x803, 12, 12, 0), 0);
  expect_refused(dir, DS_TRAIN, "bad magic", tl, "wrong magic (labels)");

  new_case(dir, 0);
  path_in(path, dir, ti);
  write_blob(path, images_blob(0x803, 12, 0, 4, 12, 0), 0);
  expect_refused(dir, DS_TRAIN, "zero dimension", ti, "zero rows");

  new_case(dir, 0);
  path_in(path, dir, ti);
  write_blob(path, images_blob(0x803, 1000000000u, 4, 4, 2, 0), 0);
  expect_refused(dir, DS_TRAIN, "count 1000000000 exceeds the limit", ti, "absurd count");

  new_case(dir, 0);
  path_in(path, dir, ti);
  write_blob(path, images_blob(0x803, 12, 5000, 4, 0, 0), 0);
  expect_refused(dir, DS_TRAIN, "exceeds the limit of 4096x4096", ti, "absurd rows");

  /* The largest header the limits allow (10^8 images of 4096x4096, 1.6 PB) in a tiny gzip file:
   * the reader must discover the truth by decompressing, not by allocating what it claims. */
  new_case(dir, 1);
  path_in(path, dir, tiz);
  write_blob(path, images_blob(0x803, 100000000u, 4096, 4096, 0, 0), 1);
  path_in(path, dir, tlz);
  write_blob(path, labels_blob(0x801, 100000000u, 100, 0), 1);
  expect_refused(dir, DS_TRAIN, "truncated: expected 1677721600000016 bytes, file has 16", tiz,
                 "huge header, tiny gz");
  new_case(dir, 0);
  path_in(path, dir, ti);
  write_blob(path, images_blob(0x803, 100000000u, 28, 28, 3, 0), 0);
  path_in(path, dir, tl);
  write_blob(path, labels_blob(0x801, 100000000u, 3, 0), 0);
  expect_refused(dir, DS_TRAIN, "truncated: expected 78400000016 bytes, file has 2368", ti,
                 "huge header, tiny plain file");

  new_case(dir, 0);
  path_in(path, dir, tl);
  write_blob(path, labels_blob(0x801, 11, 11, 0), 0);
  expect_refused(dir, DS_TRAIN, "11 labels, but", tl, "count mismatch");

  new_case(dir, 0);
  path_in(path, dir, tl);
  b = labels_blob(0x801, 12, 12, 0);
  b.bytes[8 + 7] = 12;
  write_blob(path, b, 0);
  expect_refused(dir, DS_TRAIN, "label 12 at index 7 is out of range (0..9)", tl,
                 "label out of range");
  ds_source src;
  source_for(&src, "idx", dir);
  int64_t seven = 7;
  uint8_t px[16], lab[1];
  char err[DS_ERROR_MAX];
  CHECK(ds_fetch(&src, DS_TRAIN, &seven, 1, px, lab, err, sizeof(err)) == -1);
  CHECK_MSG(strstr(err, "label 12 at index 7 is out of range"), "%s", err);

  new_case(dir, 0);
  path_in(path, dir, ti);
  b = images_blob(0x803, 12, 4, 4, 12, 0);
  b.bytes = realloc(b.bytes, b.len + 3);
  memcpy(b.bytes + b.len, "xyz", 3);
  b.len += 3;
  write_blob(path, b, 0);
  expect_refused(dir, DS_TRAIN, "trailing garbage: expected 208 bytes, file has 211", ti,
                 "trailing garbage");

  new_case(dir, 1);
  path_in(path, dir, tlz);
  write_blob(path, labels_blob(0x801, 12, 14, 0), 1);
  expect_refused(dir, DS_TRAIN, "trailing garbage: expected 20 bytes, file has 22", tlz,
                 "trailing garbage (gz)");

  new_case(dir, 1);
  path_in(path, dir, tiz);
  write_blob(path, images_blob(0x803, 12, 4, 4, 12, 0), 0); /* plain bytes under a .gz name */
  expect_refused(dir, DS_TRAIN, "not a gzip file", tiz, "gz name, plain content");

  /* Corrupt gzip: flip bytes in the middle of the compressed stream (zlib reports an invalid
   * block or a CRC mismatch), and a gzip file cut in half (unexpected end of file). */
  for (int variant = 0; variant < 2; variant++) {
    char big_dir[DS_PATH_MAX];
    snprintf(big_dir, sizeof(big_dir), "%s/corrupt%d", tmp_root, variant);
    make_idx_dir(big_dir, 1, 400, 4, 28, 28);
    path_in(path, big_dir, tiz);
    FILE *f = fopen(path, "r+b");
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    if (variant == 0) {
      fseek(f, size / 2, SEEK_SET);
      unsigned char junk[16];
      for (int k = 0; k < 16; k++) junk[k] = (unsigned char)(0xA5 ^ (k * 37));
      fwrite(junk, 1, sizeof(junk), f);
      fclose(f);
    } else {
      fclose(f);
      CHECK(truncate(path, size / 2) == 0);
    }
    expect_refused(big_dir, DS_TRAIN, "corrupt gzip data", tiz,
                   variant ? "gzip cut short" : "gzip bytes flipped");
    source_for(&src, "idx", big_dir);
    int64_t last = 399;
    uint8_t img[784];
    CHECK(ds_fetch(&src, DS_TRAIN, &last, 1, img, lab, err, sizeof(err)) == -1);
    CHECK_MSG(strstr(err, "corrupt gzip data") || strstr(err, "truncated"), "%s", err);
    /* staging refuses it too */
    char stage_dir[DS_PATH_MAX];
    snprintf(stage_dir, sizeof(stage_dir), "%s/corrupt_stage%d", tmp_root, variant);
    ds_source staged;
    CHECK(ds_stage(&src, stage_dir, &staged, err, sizeof(err)) == -1);
    CHECK_MSG(strstr(err, "corrupt gzip data"), "%s", err);
  }

  /* Header faults are caught by probe and fetch as well. */
  new_case(dir, 1);
  path_in(path, dir, tiz);
  write_blob(path, images_blob(0x803, 12, 4, 4, 12, 0), 1);
  path_in(path, dir, tlz);
  write_blob(path, labels_blob(0x801, 13, 13, 0), 1);
  source_for(&src, "idx", dir);
  ds_set geometry;
  CHECK(ds_probe(&src, DS_TRAIN, &geometry, err, sizeof(err)) == -1 && strstr(err, "13 labels"));
  int64_t zero = 0;
  CHECK(ds_fetch(&src, DS_TRAIN, &zero, 1, px, lab, err, sizeof(err)) == -1 &&
        strstr(err, "13 labels"));
}

/* ---- CIFAR-10 ---- */

static void write_cifar(const char *path, int records, int first, int bad_label_at) {
  blob b = {malloc((size_t)records * 3073), (size_t)records * 3073};
  for (int r = 0; r < records; r++) {
    b.bytes[r * 3073] = r == bad_label_at ? 10 : test_label(0, first + r);
    for (int p = 0; p < 3072; p++) b.bytes[r * 3073 + 1 + p] = test_pixel(0, first + r, p);
  }
  write_blob(path, b, 0);
}

static void make_cifar_dir(const char *dir) {
  static const int counts[5] = {3, 2, 4, 1, 2};
  char path[DS_PATH_MAX], name[32];
  mkdir(dir, 0755);
  for (int f = 0, first = 0; f < 5; first += counts[f], f++) {
    snprintf(name, sizeof(name), "data_batch_%d.bin", f + 1);
    path_in(path, dir, name);
    write_cifar(path, counts[f], first, -1);
  }
  path_in(path, dir, "test_batch.bin");
  write_cifar(path, 3, 0, -1);
}

static void test_cifar10(void) {
  char dir[DS_PATH_MAX], path[DS_PATH_MAX], err[DS_ERROR_MAX];
  snprintf(dir, sizeof(dir), "%s/cifar", tmp_root);
  make_cifar_dir(dir);
  ds_source src;
  source_for(&src, "cifar10", dir);
  ds_set train, test, geometry;
  CHECK_MSG(ds_load(&src, DS_TRAIN, &train, err, sizeof(err)) == 0, "%s", err);
  CHECK(train.count == 12 && train.channels == 3 && train.height == 32 && train.width == 32);
  int ok = 1;
  for (int i = 0; i < 12; i++) {
    ok &= train.labels[i] == test_label(0, i);
    for (int p = 0; p < 3072; p++) ok &= train.pixels[i * 3072 + p] == test_pixel(0, i, p);
  }
  CHECK(ok);
  CHECK(ds_load(&src, DS_TEST, &test, err, sizeof(err)) == 0 && test.count == 3);
  CHECK(ds_probe(&src, DS_TRAIN, &geometry, err, sizeof(err)) == 0 && geometry.count == 12);
  int64_t indices[6] = {11, 0, 5, 5, 3, 9};
  static uint8_t pixels[6 * 3072];
  uint8_t labels[6];
  CHECK_MSG(ds_fetch(&src, DS_TRAIN, indices, 6, pixels, labels, err, sizeof(err)) == 0, "%s", err);
  ok = 1;
  for (int k = 0; k < 6; k++)
    ok &= labels[k] == train.labels[indices[k]] &&
          memcmp(pixels + k * 3072, train.pixels + indices[k] * 3072, 3072) == 0;
  CHECK(ok);
  int64_t beyond = 12;
  CHECK(ds_fetch(&src, DS_TRAIN, &beyond, 1, pixels, labels, err, sizeof(err)) == -1);
  CHECK_MSG(strstr(err, "index 12 is out of range (0..11)"), "%s", err);
  ds_free(&train);
  ds_free(&test);

  /* Broken files. */
  path_in(path, dir, "data_batch_3.bin");
  write_cifar(path, 4, 5, 2);
  CHECK(ds_load(&src, DS_TRAIN, &train, err, sizeof(err)) == -1);
  CHECK_MSG(strstr(err, "data_batch_3.bin: label 10 at index 2 is out of range"), "%s", err);
  FILE *f = fopen(path, "ab");
  fputc(1, f);
  fclose(f);
  CHECK(ds_load(&src, DS_TRAIN, &train, err, sizeof(err)) == -1);
  CHECK_MSG(strstr(err, "data_batch_3.bin: length 12293 is not a multiple of the 3073-byte"), "%s",
            err);
  CHECK(ds_probe(&src, DS_TRAIN, &geometry, err, sizeof(err)) == -1);
  write_blob(path, (blob){NULL, 0}, 0);
  CHECK(ds_load(&src, DS_TRAIN, &train, err, sizeof(err)) == -1);
  CHECK_MSG(strstr(err, "data_batch_3.bin: empty file"), "%s", err);
  remove(path);
  CHECK(ds_load(&src, DS_TRAIN, &train, err, sizeof(err)) == -1);
  CHECK_MSG(strstr(err, "data_batch_3.bin: missing"), "%s", err);
}

/* ---- the real Fashion-MNIST (Debian's dataset-fashion-mnist), if installed ---- */

static double seconds_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void test_fashion_mnist(void) {
  struct stat st;
  if (stat("/usr/share/datasets/fashion-mnist", &st) != 0) {
    printf("fashion-mnist: not installed, skipped\n");
    return;
  }
  ds_source src;
  char err[DS_ERROR_MAX];
  CHECK(ds_source_parse("fashion-mnist", &src, err, sizeof(err)) == 0);
  ds_set train, test;
  double t0 = seconds_now();
  int rc = ds_load(&src, DS_TRAIN, &train, err, sizeof(err));
  double t1 = seconds_now();
  CHECK_MSG(rc == 0, "%s", err);
  if (rc != 0) return;
  printf("fashion-mnist: train split (gzip) loaded in %.3f s\n", t1 - t0);
  /* Reference values from Python: gzip.open(...).read() on the same files. */
  CHECK(train.count == 60000 && train.height == 28 && train.width == 28 && train.channels == 1);
  CHECK(train.labels[0] == 9 && train.labels[12345] == 8 && train.labels[59999] == 5);
  CHECK(image_sum(train.pixels) == 76247);
  CHECK(image_sum(train.pixels + 12345 * 784) == 97611);
  CHECK(image_sum(train.pixels + 59999L * 784) == 16684);
  int per_class[10] = {0};
  for (int i = 0; i < 60000; i++) per_class[train.labels[i] % 10]++;
  for (int k = 0; k < 10; k++) CHECK(per_class[k] == 6000);
  CHECK(ds_load(&src, DS_TEST, &test, err, sizeof(err)) == 0);
  CHECK(test.count == 10000 && test.labels[0] == 9 && image_sum(test.pixels) == 33456);

  int64_t indices[3] = {59999, 12345, 0};
  static uint8_t pixels[3 * 784];
  uint8_t labels[3];
  CHECK_MSG(ds_fetch(&src, DS_TRAIN, indices, 3, pixels, labels, err, sizeof(err)) == 0, "%s", err);
  for (int k = 0; k < 3; k++)
    CHECK(labels[k] == train.labels[indices[k]] &&
          memcmp(pixels + k * 784, train.pixels + indices[k] * 784, 784) == 0);
  ds_set geometry;
  CHECK(ds_probe(&src, DS_TRAIN, &geometry, err, sizeof(err)) == 0 && geometry.count == 60000);
  ds_free(&train);
  ds_free(&test);
}

int main(void) {
  snprintf(tmp_root, sizeof(tmp_root), "/tmp/mayfly_test_datasets_XXXXXX");
  if (!mkdtemp(tmp_root)) {
    perror("mkdtemp");
    return 1;
  }
  test_parse();
  test_idx_read(0);
  test_idx_read(1);
  test_plain_preferred();
  test_stage();
  test_partition();
  test_synthetic();
  test_to_input();
  test_malformed_idx();
  test_cifar10();
  test_fashion_mnist();
  nftw(tmp_root, unlink_one, 16, FTW_DEPTH | FTW_PHYS);
  return check_summary("test_datasets");
}
