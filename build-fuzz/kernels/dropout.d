build-fuzz/kernels/dropout.o: kernels/dropout.c kernels/layers.h \
  kernels/rng.h

kernels/layers.h:

kernels/rng.h:
