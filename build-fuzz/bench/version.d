build-fuzz/bench/version.o: bench/version.c bench/options.h

bench/options.h:
