# mayfly build. One rule set for every module: a new .c file in a module folder joins its
# library (bench/harness/ and bench/modes/ make one library: the harness looks modes up in the
# table of bench/modes/mode_registry.c), a new bench/mayfly-*.c becomes a program, a new .c file
# in bench/<name>/ is linked into bin/mayfly-<name> only (bench/exchange/ for mayfly-exchange),
# and a new tests/test_*.c becomes a unit test.
# Objects live in build/, programs in bin/, test binaries in bin/tests/.

SHELL    := /bin/bash
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
HARNESS_SRC  := $(wildcard bench/harness/*.c bench/modes/*.c)
PROGRAM_SRC  := $(wildcard bench/mayfly-*.c)
# A program's own parts: bench/<name>/*.c of bin/mayfly-<name> (e.g. bench/exchange/).
program_parts = $(call obj,$(wildcard bench/$(1)/*.c))
TEST_SRC     := $(wildcard tests/test_*.c)

obj = $(patsubst %.c,$(BUILD)/%.o,$(1))
LIBS := $(BUILD)/libmayfly_bench.a $(BUILD)/libmayfly_comm.a \
        $(BUILD)/libmayfly_kernels.a $(BUILD)/libmayfly_datasets.a

PROGRAMS := $(patsubst bench/%.c,$(BIN)/%,$(PROGRAM_SRC))
TESTS    := $(patsubst tests/%.c,$(BIN)/tests/%,$(TEST_SRC))

.PHONY: all deps run check asan clean format tests FORCE
# Keep program and test objects (make would delete them as intermediates and rebuild them).
.SECONDARY:
all: $(PROGRAMS) $(TESTS)

GIT_REVISION := $(shell git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)$(shell git diff --quiet HEAD 2>/dev/null || echo -dirty)
$(BUILD)/bench/harness/version.o: CFLAGS += -DMAYFLY_GIT_REVISION='"$(GIT_REVISION)"' \
    -DMAYFLY_BUILD_FLAGS='"-std=c11 $(strip $(OPT) $(SANITIZE))"'
$(BUILD)/bench/harness/version.o: FORCE
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

.SECONDEXPANSION:
$(BIN)/mayfly-%: $(BUILD)/bench/mayfly-%.o $$(call program_parts,$$*) $(LIBS)
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
	@./bench/scripts/run_default.sh

# Every unit and integration test, bounded in time, ending with "N passed, N failed".
check: deps
	@$(MAKE) --no-print-directory all WERROR=-Werror
	@./tests/run.sh

# The same tests built with AddressSanitizer and UndefinedBehaviorSanitizer. Two passes: the
# unit tests with leak checking, the integration tests (MPI programs under mpirun) without it -
# tests/asan.supp explains why. Any sanitizer report fails the test (UBSan does not recover).
# The last line counts both passes plus "no sanitizer reports" as one more test.
# Reports also land in build-asan/sanitizer-logs/ (log_path), so that an error in a spawned
# worker whose task was retried elsewhere, or in output a test discards, still fails the target.
# fuzz_short (already ASan-built) and the Slurm tests slurm_smoke, slurm_checks, slurm_requeue,
# virtual_cluster, placement_cluster and sweep_cluster (orchestration; the placement code runs
# under the sanitizers in placement_hostfile and results_contract) run in `make check` alone.
ASAN_LOGS = $(CURDIR)/build-asan/sanitizer-logs
ASAN_RUN = MAYFLY_BIN=bin-asan UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1:log_path=$(ASAN_LOGS)/ubsan \
    LSAN_OPTIONS=suppressions=$(CURDIR)/tests/asan.supp:print_suppressions=0
asan: deps
	@$(MAKE) --no-print-directory all BUILD=build-asan BIN=bin-asan OPT=-O1 \
	    SANITIZE="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined"
	@rm -rf $(ASAN_LOGS) && mkdir -p $(ASAN_LOGS)
	@set -o pipefail; status=0; summaries=$(ASAN_LOGS)/../summaries; : > $$summaries; \
	  $(ASAN_RUN) ASAN_OPTIONS=detect_leaks=1:log_path=$(ASAN_LOGS)/asan MAYFLY_TESTS='^test_' \
	    ./tests/run.sh | tee -a $$summaries || status=1; \
	  names=$$(cd tests/integration && ls *.sh | sed 's/\.sh$$//' | \
	    grep -vxE 'fuzz_short|slurm_smoke|slurm_checks|slurm_requeue|virtual_cluster|placement_cluster|sweep_cluster' | paste -sd'|' -); \
	  $(ASAN_RUN) ASAN_OPTIONS=detect_leaks=0:log_path=$(ASAN_LOGS)/asan \
	    MAYFLY_TESTS="^($$names)$$" ./tests/run.sh | tee -a $$summaries || status=1; \
	  reports=0; if [ -n "$$(ls $(ASAN_LOGS))" ]; then \
	    echo "sanitizer reports in $(ASAN_LOGS):"; head -n 30 $(ASAN_LOGS)/*; reports=1; status=1; \
	  else echo "no sanitizer reports"; fi; \
	  awk -v reports=$$reports '/^[0-9]+ passed, [0-9]+ failed$$/ { p += $$1; f += $$3 } \
	    END { if (reports) f++; else p++; printf "asan: %d passed, %d failed\n", p, f }' $$summaries; \
	  exit $$status

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf build build-asan bin bin-asan

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)

# Figures and summary.md from every results file under RESULTS (results/README.md).
figures: ; /usr/bin/python3 results/tools/figures.py $(or $(RESULTS),results)
.PHONY: figures

# A calibrated projection to the study's scale from the runs under RESULTS
# (results/tools/projection.py; PROJECTION_ARGS passes --spawn/--exchange/--kernels calibration
# files). Writes RESULTS/projection.
projection: ; /usr/bin/python3 results/tools/projection.py $(or $(RESULTS),results) --out $(or $(RESULTS),results)/projection $(PROJECTION_ARGS)
.PHONY: projection

# ---- Fuzzing (tests/fuzz/): libFuzzer targets for the dataset readers and the option parser,
# built with clang plus ASan and UBSan into build-fuzz/ and bin-fuzz/. `make fuzz` builds them
# and fuzzes each for FUZZ_SECONDS (tests/fuzz/run.sh; crashers land in build-fuzz/artifacts/).
FUZZ_CC       ?= clang
FUZZ_BUILD    ?= build-fuzz
FUZZ_BIN      ?= bin-fuzz
FUZZ_SANITIZE  = -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
FUZZ_LIBS      = $(patsubst $(BUILD)/%,$(FUZZ_BUILD)/%,$(LIBS))
FUZZ_TARGETS  := $(patsubst tests/fuzz/%.c,$(FUZZ_BIN)/%,$(wildcard tests/fuzz/fuzz_*.c))

.PHONY: fuzz fuzz-build
fuzz-build:
	@$(MAKE) --no-print-directory CC=$(FUZZ_CC) BUILD=$(FUZZ_BUILD) BIN=$(FUZZ_BIN) OPT=-O1 \
	    SANITIZE="$(FUZZ_SANITIZE) -fsanitize=fuzzer-no-link" $(FUZZ_TARGETS)

$(FUZZ_BIN)/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/fuzz_common.h $(FUZZ_LIBS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -fsanitize=fuzzer $< $(FUZZ_LIBS) $(LDLIBS) -o $@

fuzz:
	@./tests/fuzz/run.sh $(FUZZ_SECONDS)
