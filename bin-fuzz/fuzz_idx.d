bin-fuzz/fuzz_idx: tests/fuzz/fuzz_idx.c datasets/datasets.h \
  tests/fuzz/fuzz_common.h

datasets/datasets.h:

tests/fuzz/fuzz_common.h:
