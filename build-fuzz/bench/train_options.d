build-fuzz/bench/train_options.o: bench/train_options.c \
  bench/train_options.h bench/options.h bench/train.h comm/worker_pool.h \
  /usr/lib/x86_64-linux-gnu/openmpi/include/mpi.h \
  /usr/lib/x86_64-linux-gnu/openmpi/include/mpi_portable_platform.h \
  comm/protocol.h datasets/datasets.h kernels/model.h kernels/sgd.h \
  comm/exchange.h

bench/train_options.h:

bench/options.h:

bench/train.h:

comm/worker_pool.h:

/usr/lib/x86_64-linux-gnu/openmpi/include/mpi.h:

/usr/lib/x86_64-linux-gnu/openmpi/include/mpi_portable_platform.h:

comm/protocol.h:

datasets/datasets.h:

kernels/model.h:

kernels/sgd.h:

comm/exchange.h:
