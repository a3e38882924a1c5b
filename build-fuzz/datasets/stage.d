build-fuzz/datasets/stage.o: datasets/stage.c datasets/internal.h \
  datasets/datasets.h

datasets/internal.h:

datasets/datasets.h:
