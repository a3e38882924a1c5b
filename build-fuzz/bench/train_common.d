build-fuzz/bench/train_common.o: bench/train_common.c bench/train.h \
  comm/worker_pool.h /usr/lib/x86_64-linux-gnu/openmpi/include/mpi.h \
  /usr/lib/x86_64-linux-gnu/openmpi/include/mpi_portable_platform.h \
  comm/protocol.h datasets/datasets.h kernels/model.h kernels/sgd.h

bench/train.h:

comm/worker_pool.h:

/usr/lib/x86_64-linux-gnu/openmpi/include/mpi.h:

/usr/lib/x86_64-linux-gnu/openmpi/include/mpi_portable_platform.h:

comm/protocol.h:

datasets/datasets.h:

kernels/model.h:

kernels/sgd.h:
