#!/usr/bin/env bash
# Runs every unit test binary (bin/tests/test_*) and every integration test
# (tests/integration/*.sh), each under a time bound, and ends with the suite's summary line
# "N passed, N failed". A test counts once: passed when it exits 0, failed otherwise.
# MAYFLY_BIN selects the binaries (bin, or bin-asan for the sanitizer build);
# MAYFLY_TESTS=pattern runs only the tests whose name matches.
set -u
cd "$(dirname "$0")/.."
export MAYFLY_BIN=${MAYFLY_BIN:-bin}
export MAYFLY_ROOT=$PWD
unit_limit=${MAYFLY_UNIT_TIMEOUT:-300}
integration_limit=${MAYFLY_INTEGRATION_TIMEOUT:-600}
logdir=${MAYFLY_TEST_LOGS:-build/test-logs}
mkdir -p "$logdir"
passed=0 failed=0 failed_names=()

run_one() { # name limit command...
  local name=$1 limit=$2; shift 2
  local log="$logdir/$name.log" start=$SECONDS rc
  timeout -k 10 "$limit" "$@" >"$log" 2>&1
  rc=$?
  if [ $rc -eq 0 ]; then
    passed=$((passed + 1)); printf 'PASS %-40s %4ds\n' "$name" $((SECONDS - start))
  else
    failed=$((failed + 1)); failed_names+=("$name")
    [ $rc -eq 124 ] && echo "test timed out after ${limit}s" >>"$log"
    printf 'FAIL %-40s %4ds (exit %d, log %s)\n' "$name" $((SECONDS - start)) $rc "$log"
    tail -n 15 "$log" | sed 's/^/    | /'
  fi
}

for t in "$MAYFLY_BIN"/tests/test_*; do
  [ -x "$t" ] || continue
  name=$(basename "$t")
  [[ -n "${MAYFLY_TESTS:-}" && ! "$name" =~ ${MAYFLY_TESTS} ]] && continue
  run_one "$name" "$unit_limit" "$t"
done
for t in tests/integration/*.sh; do
  [ -f "$t" ] || continue
  name=$(basename "$t" .sh)
  [[ -n "${MAYFLY_TESTS:-}" && ! "$name" =~ ${MAYFLY_TESTS} ]] && continue
  run_one "$name" "$integration_limit" bash "$t"
done
[ ${#failed_names[@]} -gt 0 ] && echo "failed: ${failed_names[*]}"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
