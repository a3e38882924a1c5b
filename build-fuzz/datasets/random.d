build-fuzz/datasets/random.o: datasets/random.c datasets/internal.h \
  datasets/datasets.h

datasets/internal.h:

datasets/datasets.h:
