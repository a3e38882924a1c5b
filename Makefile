# mayfly build. One rule set for every module: a new .c file in a module folder joins its
# library, a new bench/mayfly-*.c becomes a program, a new tests/test_*.c becomes a unit test.
# Objects live in build/, programs in bin/, test binaries in bin/tests/.

CC       ?= gcc
MPICC    ?= mpicc
BUILD    ?= build
BIN      ?= bin
PKGS      = ompi-c hdf5-openmpi openblas hwloc zlib
OPT      ?= -O2
WERROR   ?=
CFLAGS   += -std=c11 $(OPT) -g -Wall -Wextra $(WERROR) -D_GNU_SOURCE -MMD -MP \
            -I. $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
LDLIBS   += $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lm -lpthread
SANITIZE ?=
CFLAGS   += $(SANITIZE)
LDFLAGS  += $(SANITIZE)

KERNELS_SRC  := $(wildcard kernels/*.c)
DATASETS_SRC := $(wildcard datasets/*.c)
COMM_SRC     := $(wildcard comm/*.c)
HARNESS_SRC  := $(filter-out bench/mayfly-%.c,$(wildcard bench/*.c))
PROGRAM_SRC  := $(wildcard bench/mayfly-*.c)
TEST_SRC     := $(wildcard tests/test_*.c)

obj = $(patsubst %.c,$(BUILD)/%.o,$(1))
LIBS := $(BUILD)/libmayfly_bench.a $(BUILD)/libmayfly_comm.a \
        $(BUILD)/libmayfly_kernels.a $(BUILD)/libmayfly_datasets.a

PROGRAMS := $(patsubst bench/%.c,$(BIN)/%,$(PROGRAM_SRC))
TESTS    := $(patsubst tests/%.c,$(BIN)/tests/%,$(TEST_SRC))

.PHONY: all deps run check asan clean format tests FORCE
all: $(PROGRAMS) $(TESTS)

GIT_REVISION := $(shell git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)$(shell git diff --quiet HEAD 2>/dev/null || echo -dirty)
$(BUILD)/bench/version.o: CFLAGS += -DMAYFLY_GIT_REVISION='"$(GIT_REVISION)"' \
    -DMAYFLY_BUILD_FLAGS='"-std=c11 $(strip $(OPT) $(SANITIZE))"'
$(BUILD)/bench/version.o: FORCE
FORCE:

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(BUILD)/libmayfly_kernels.a:  $(call obj,$(KERNELS_SRC))
$(BUILD)/libmayfly_datasets.a: $(call obj,$(DATASETS_SRC))
$(BUILD)/libmayfly_comm.a:     $(call obj,$(COMM_SRC))
$(BUILD)/libmayfly_bench.a:    $(call obj,$(HARNESS_SRC))
$(BUILD)/lib%.a:
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(BIN)/mayfly-%: $(BUILD)/bench/mayfly-%.o $(LIBS)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@

$(BIN)/tests/%: $(BUILD)/tests/%.o $(LIBS)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@

# Installs the Debian packages the suite needs (as root), or prints the command to run.
deps:
	@./tests/deps.sh

tests: $(PROGRAMS) $(TESTS)

# The main job: Fashion-MNIST, 2 peers, baseline then cold, then the comparison.
run: deps
	@$(MAKE) --no-print-directory all
	@./bench/run_default.sh

# Every unit and integration test, bounded in time, ending with "N passed, N failed".
check: deps
	@$(MAKE) --no-print-directory all WERROR=-Werror
	@./tests/run.sh

# The same tests built with AddressSanitizer and UndefinedBehaviorSanitizer.
asan: deps
	@$(MAKE) --no-print-directory all BUILD=build-asan BIN=bin-asan OPT=-O1 \
	    SANITIZE="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined"
	@MAYFLY_BIN=bin-asan ./tests/run.sh

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf build build-asan bin bin-asan

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
