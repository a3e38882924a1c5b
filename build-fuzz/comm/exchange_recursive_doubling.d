build-fuzz/comm/exchange_recursive_doubling.o: \
  comm/exchange_recursive_doubling.c comm/exchange.h \
  /usr/lib/x86_64-linux-gnu/openmpi/include/mpi.h \
  /usr/lib/x86_64-linux-gnu/openmpi/include/mpi_portable_platform.h \
  comm/exchange_step.h

comm/exchange.h:

/usr/lib/x86_64-linux-gnu/openmpi/include/mpi.h:

/usr/lib/x86_64-linux-gnu/openmpi/include/mpi_portable_platform.h:

comm/exchange_step.h:
