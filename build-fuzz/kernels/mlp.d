build-fuzz/kernels/mlp.o: kernels/mlp.c kernels/layers.h kernels/rng.h \
  kernels/model.h

kernels/layers.h:

kernels/rng.h:

kernels/model.h:
