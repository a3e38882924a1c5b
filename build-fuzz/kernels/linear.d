build-fuzz/kernels/linear.o: kernels/linear.c \
  /usr/include/x86_64-linux-gnu/openblas-pthread/cblas.h \
  /usr/include/x86_64-linux-gnu/openblas-pthread/openblas_config.h \
  kernels/layers.h kernels/rng.h

/usr/include/x86_64-linux-gnu/openblas-pthread/cblas.h:

/usr/include/x86_64-linux-gnu/openblas-pthread/openblas_config.h:

kernels/layers.h:

kernels/rng.h:
