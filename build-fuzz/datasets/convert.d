build-fuzz/datasets/convert.o: datasets/convert.c datasets/internal.h \
  datasets/datasets.h

datasets/internal.h:

datasets/datasets.h:
