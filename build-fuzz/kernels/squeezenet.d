build-fuzz/kernels/squeezenet.o: kernels/squeezenet.c kernels/layers.h \
  kernels/rng.h kernels/model.h

kernels/layers.h:

kernels/rng.h:

kernels/model.h:
