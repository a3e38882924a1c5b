build-fuzz/kernels/pool.o: kernels/pool.c kernels/layers.h kernels/rng.h

kernels/layers.h:

kernels/rng.h:
