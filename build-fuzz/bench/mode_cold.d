build-fuzz/bench/mode_cold.o: bench/mode_cold.c \
  /usr/lib/x86_64-linux-gnu/openmpi/include/mpi.h \
  /usr/lib/x86_64-linux-gnu/openmpi/include/mpi_portable_platform.h \
  bench/train.h comm/worker_pool.h comm/protocol.h datasets/datasets.h \
  kernels/model.h kernels/sgd.h

/usr/lib/x86_64-linux-gnu/openmpi/include/mpi.h:

/usr/lib/x86_64-linux-gnu/openmpi/include/mpi_portable_platform.h:

bench/train.h:

comm/worker_pool.h:

comm/protocol.h:

datasets/datasets.h:

kernels/model.h:

kernels/sgd.h:
