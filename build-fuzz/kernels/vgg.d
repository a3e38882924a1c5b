build-fuzz/kernels/vgg.o: kernels/vgg.c kernels/layers.h kernels/rng.h \
  kernels/model.h

kernels/layers.h:

kernels/rng.h:

kernels/model.h:
