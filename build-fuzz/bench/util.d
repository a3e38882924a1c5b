build-fuzz/bench/util.o: bench/util.c bench/util.h

bench/util.h:
