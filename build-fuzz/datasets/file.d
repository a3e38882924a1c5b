build-fuzz/datasets/file.o: datasets/file.c datasets/internal.h \
  datasets/datasets.h

datasets/internal.h:

datasets/datasets.h:
