#!/usr/bin/env bash
# A short fuzzing pass in the regular suite: replays every kept crasher and fuzzes each
# libFuzzer target (idx reader, CIFAR-10 reader, option parser) for MAYFLY_FUZZ_SECONDS
# (default 10) from its seed corpus. Cost: ~35 s once bin-fuzz/ is built; the first run also
# builds the libraries with clang (build-fuzz/, a few minutes on a busy 2-core machine).
# The long run is `make fuzz` (FUZZ_SECONDS=N). Needs clang with libFuzzer.
set -euo pipefail
cd "${MAYFLY_ROOT:-$(dirname "$0")/../..}"
command -v clang >/dev/null || { echo "fuzz_short: clang is not installed"; exit 1; }
tests/fuzz/run.sh "${MAYFLY_FUZZ_SECONDS:-10}"
