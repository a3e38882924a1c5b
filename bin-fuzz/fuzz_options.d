bin-fuzz/fuzz_options: tests/fuzz/fuzz_options.c bench/options.h \
  bench/train.h comm/worker_pool.h \
  /usr/lib/x86_64-linux-gnu/openmpi/include/mpi.h \
  /usr/lib/x86_64-linux-gnu/openmpi/include/mpi_portable_platform.h \
  comm/protocol.h datasets/datasets.h kernels/model.h kernels/sgd.h \
  bench/train_options.h tests/fuzz/fuzz_common.h

bench/options.h:

bench/train.h:

comm/worker_pool.h:

/usr/lib/x86_64-linux-gnu/openmpi/include/mpi.h:

/usr/lib/x86_64-linux-gnu/openmpi/include/mpi_portable_platform.h:

comm/protocol.h:

datasets/datasets.h:

kernels/model.h:

kernels/sgd.h:

bench/train_options.h:

tests/fuzz/fuzz_common.h:
