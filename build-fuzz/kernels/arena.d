build-fuzz/kernels/arena.o: kernels/arena.c kernels/layers.h \
  kernels/rng.h

kernels/layers.h:

kernels/rng.h:
