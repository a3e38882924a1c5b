build-fuzz/kernels/cnn.o: kernels/cnn.c kernels/layers.h kernels/rng.h \
  kernels/model.h

kernels/layers.h:

kernels/rng.h:

kernels/model.h:
