bin-fuzz/fuzz_cifar: tests/fuzz/fuzz_cifar.c datasets/datasets.h \
  tests/fuzz/fuzz_common.h

datasets/datasets.h:

tests/fuzz/fuzz_common.h:
