build-fuzz/datasets/partition.o: datasets/partition.c datasets/internal.h \
  datasets/datasets.h

datasets/internal.h:

datasets/datasets.h:
