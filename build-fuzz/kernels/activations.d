build-fuzz/kernels/activations.o: kernels/activations.c kernels/layers.h \
  kernels/rng.h kernels/vec.h

kernels/layers.h:

kernels/rng.h:

kernels/vec.h:
