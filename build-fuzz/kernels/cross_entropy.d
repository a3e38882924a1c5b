build-fuzz/kernels/cross_entropy.o: kernels/cross_entropy.c \
  kernels/layers.h kernels/rng.h

kernels/layers.h:

kernels/rng.h:
