build-fuzz/kernels/mobilenet_v3.o: kernels/mobilenet_v3.c \
  kernels/layers.h kernels/rng.h kernels/model.h

kernels/layers.h:

kernels/rng.h:

kernels/model.h:
