build-fuzz/kernels/rng.o: kernels/rng.c kernels/rng.h

kernels/rng.h:
