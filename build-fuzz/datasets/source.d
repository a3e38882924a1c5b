build-fuzz/datasets/source.o: datasets/source.c datasets/internal.h \
  datasets/datasets.h

datasets/internal.h:

datasets/datasets.h:
