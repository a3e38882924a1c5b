build-fuzz/kernels/sgd.o: kernels/sgd.c kernels/sgd.h

kernels/sgd.h:
