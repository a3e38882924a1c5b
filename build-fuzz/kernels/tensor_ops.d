build-fuzz/kernels/tensor_ops.o: kernels/tensor_ops.c kernels/layers.h \
  kernels/rng.h kernels/vec.h

kernels/layers.h:

kernels/rng.h:

kernels/vec.h:
