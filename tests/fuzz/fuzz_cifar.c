/* libFuzzer target: the CIFAR-10 reader (datasets/cifar10.c) on a fuzzed batch file.
 * Input: byte 0 bit 0 picks the split; the rest is test_batch.bin (test split) or
 * data_batch_1.bin (training split; batches 2-5 are one valid record each). A split that loads
 * must fetch record by record to the same bytes and refuse an index past the end. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "datasets/datasets.h"
#include "tests/fuzz/fuzz_common.h"

#define RECORD 3073

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  const ds_split split = data[0] & 1 ? DS_TEST : DS_TRAIN;
  static int have_other_batches = 0;
  if (!have_other_batches) {
    uint8_t record[RECORD];
    for (int i = 0; i < RECORD; i++) record[i] = (uint8_t)(i * 13);
    record[0] = 7; /* the label */
    for (int b = 2; b <= 5; b++) {
      char name[32];
      snprintf(name, sizeof name, "data_batch_%d.bin", b);
      fuzz_write(name, record, RECORD, FUZZ_PLAIN);
    }
    have_other_batches = 1;
  }
  fuzz_write(split == DS_TEST ? "test_batch.bin" : "data_batch_1.bin", data + 1, size - 1,
             FUZZ_PLAIN);

  ds_source src;
  char err[DS_ERROR_MAX], spec[128];
  snprintf(spec, sizeof spec, "cifar10:%s", fuzz_dir());
  FUZZ_ASSERT(ds_source_parse(spec, &src, err, sizeof err) == 0);
  ds_set set;
  if (ds_load(&src, split, &set, err, sizeof err) != 0) {
    FUZZ_ASSERT(err[0] != '\0');
    return 0;
  }
  const size_t sample = 3 * 32 * 32;
  FUZZ_ASSERT(set.channels == 3 && set.height == 32 && set.width == 32 && set.count > 0);
  int64_t picks[3] = {set.count - 1, 0, set.count / 2};
  uint8_t pixels[3 * 3072], labels[3];
  FUZZ_ASSERT(ds_fetch(&src, split, picks, 3, pixels, labels, err, sizeof err) == 0);
  for (int k = 0; k < 3; k++) {
    FUZZ_ASSERT(labels[k] == set.labels[picks[k]] && labels[k] < 10);
    FUZZ_ASSERT(memcmp(pixels + k * sample, set.pixels + picks[k] * sample, sample) == 0);
  }
  int64_t past_end = set.count;
  FUZZ_ASSERT(ds_fetch(&src, split, &past_end, 1, pixels, labels, err, sizeof err) != 0);
  ds_free(&set);
  return 0;
}
