/* libFuzzer target: the idx reader (datasets/idx.c, file.c, stage.c) on fuzzed files.
 * Input: byte 0 picks the split (bit 4) and how each file is written (bits 0-1 images, 2-3
 * labels: plain, gzip-compressed, raw bytes under a .gz name); bytes 1-2 (little endian) are the
 * length of the images file; the rest splits into images and labels files. Besides "no crash, no
 * leak, no sanitizer report" it checks the readers agree with each other: a split that loads
 * must probe to the same geometry, fetch record by record to the same bytes (also from its
 * staged plain copy), and refuse an index past the end. Both splits are written with the same
 * files (ds_stage needs all four); byte 0 bit 4 only picks the split that is loaded. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "datasets/datasets.h"
#include "tests/fuzz/fuzz_common.h"

static void check_fetch(const ds_source *src, ds_split split, const ds_set *set) {
  const size_t sample = (size_t)set->channels * set->height * set->width;
  int64_t picks[4] = {0, set->count - 1, set->count / 2, 0}; /* repeats on purpose */
  uint8_t *pixels = malloc(4 * sample), labels[4];
  char err[DS_ERROR_MAX];
  FUZZ_ASSERT(pixels);
  FUZZ_ASSERT(ds_fetch(src, split, picks, 4, pixels, labels, err, sizeof err) == 0);
  for (int k = 0; k < 4; k++) {
    FUZZ_ASSERT(labels[k] == set->labels[picks[k]]);
    FUZZ_ASSERT(memcmp(pixels + k * sample, set->pixels + picks[k] * sample, sample) == 0);
  }
  int64_t past_end = set->count;
  FUZZ_ASSERT(ds_fetch(src, split, &past_end, 1, pixels, labels, err, sizeof err) != 0);
  free(pixels);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 3) return 0;
  const int images_how = data[0] & 3, labels_how = (data[0] >> 2) & 3;
  const ds_split split = (data[0] >> 4) & 1 ? DS_TEST : DS_TRAIN;
  if (images_how > 2 || labels_how > 2) return 0;
  size_t images_len = (size_t)data[1] | (size_t)data[2] << 8;
  data += 3;
  size -= 3;
  if (images_len > size) images_len = size;
  const char *images = split == DS_TRAIN ? "train-images-idx3-ubyte" : "t10k-images-idx3-ubyte";
  const char *labels = split == DS_TRAIN ? "train-labels-idx1-ubyte" : "t10k-labels-idx1-ubyte";
  /* Both splits get the same files: ds_stage copies all four, whichever split is loaded. */
  const char *names[4] = {"train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                          "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"};
  for (int f = 0; f < 4; f += 2) {
    fuzz_write(names[f], data, images_len, images_how);
    fuzz_write(names[f + 1], data + images_len, size - images_len, labels_how);
  }

  ds_source src;
  char err[DS_ERROR_MAX], spec[128];
  snprintf(spec, sizeof spec, "idx:%s", fuzz_dir());
  FUZZ_ASSERT(ds_source_parse(spec, &src, err, sizeof err) == 0);
  ds_set set, geometry;
  if (ds_load(&src, split, &set, err, sizeof err) != 0) {
    FUZZ_ASSERT(err[0] != '\0'); /* every failure says why */
    return 0;
  }
  FUZZ_ASSERT(set.count > 0 && set.pixels && set.labels);
  FUZZ_ASSERT(ds_probe(&src, split, &geometry, err, sizeof err) == 0);
  FUZZ_ASSERT(geometry.count == set.count && geometry.height == set.height &&
              geometry.width == set.width && geometry.channels == set.channels);
  check_fetch(&src, split, &set);

  if (images_how == FUZZ_GZIP || labels_how == FUZZ_GZIP) {
    char stage_dir[128];
    ds_source staged;
    snprintf(stage_dir, sizeof stage_dir, "%s/stage", fuzz_dir());
    /* A copy staged from an earlier input must not be reused for this one. */
    char path[256];
    snprintf(path, sizeof path, "%s/%s", stage_dir, images);
    unlink(path);
    snprintf(path, sizeof path, "%s/%s", stage_dir, labels);
    unlink(path);
    int staged_rc = ds_stage(&src, stage_dir, &staged, err, sizeof err);
    if (staged_rc != 0) fprintf(stderr, "ds_stage: %s\n", err);
    FUZZ_ASSERT(staged_rc == 0);
    check_fetch(&staged, split, &set);
  }
  ds_free(&set);
  return 0;
}
