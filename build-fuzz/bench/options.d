build-fuzz/bench/options.o: bench/options.c bench/options.h

bench/options.h:
