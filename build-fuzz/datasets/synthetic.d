build-fuzz/datasets/synthetic.o: datasets/synthetic.c datasets/internal.h \
  datasets/datasets.h

datasets/internal.h:

datasets/datasets.h:
