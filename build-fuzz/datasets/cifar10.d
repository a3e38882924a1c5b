build-fuzz/datasets/cifar10.o: datasets/cifar10.c datasets/internal.h \
  datasets/datasets.h

datasets/internal.h:

datasets/datasets.h:
