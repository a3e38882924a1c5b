build-fuzz/kernels/model_registry.o: kernels/model_registry.c \
  kernels/model.h

kernels/model.h:
