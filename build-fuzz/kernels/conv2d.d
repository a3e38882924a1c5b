build-fuzz/kernels/conv2d.o: kernels/conv2d.c \
  /usr/include/x86_64-linux-gnu/openblas-pthread/cblas.h \
  /usr/include/x86_64-linux-gnu/openblas-pthread/openblas_config.h \
  kernels/layers.h kernels/rng.h kernels/vec.h

/usr/include/x86_64-linux-gnu/openblas-pthread/cblas.h:

/usr/include/x86_64-linux-gnu/openblas-pthread/openblas_config.h:

kernels/layers.h:

kernels/rng.h:

kernels/vec.h:
