build-fuzz/kernels/batchnorm.o: kernels/batchnorm.c kernels/layers.h \
  kernels/rng.h kernels/vec.h

kernels/layers.h:

kernels/rng.h:

kernels/vec.h:
