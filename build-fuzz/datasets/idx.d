build-fuzz/datasets/idx.o: datasets/idx.c datasets/internal.h \
  datasets/datasets.h

datasets/internal.h:

datasets/datasets.h:
