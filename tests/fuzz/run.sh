#!/usr/bin/env bash
# Builds the libFuzzer targets (make fuzz-build: clang, ASan, UBSan) and fuzzes each one for
# SECONDS seconds (default 20) from its seed corpus tests/fuzz/corpus/<target>/. Before fuzzing,
# every kept crasher in tests/fuzz/regressions/<target>/ is replayed, so a fixed bug stays
# fixed. New interesting inputs go to a scratch corpus (not into the tree); a crash leaves its
# input in build-fuzz/artifacts/ - fix the bug, then copy the input into regressions/.
# Usage: tests/fuzz/run.sh [SECONDS] [TARGET...]   (targets: idx cifar options)
# Exit: 0 when no target crashed.
set -uo pipefail
cd "$(dirname "$0")/../.."
seconds=${1:-20}
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  for f in tests/fuzz/fuzz_*.c; do t=$(basename "$f" .c); targets+=("${t#fuzz_}"); done
fi
mkdir -p build-fuzz
make --no-print-directory fuzz-build >build-fuzz/build.log 2>&1 || {
  tail -n 20 build-fuzz/build.log
  echo "fuzz: build failed (build-fuzz/build.log)"
  exit 1
}
artifacts=$PWD/build-fuzz/artifacts
scratch=$(mktemp -d)
mkdir -p "$artifacts"
# The targets make their own /tmp/mayfly-fuzz.* scratch directories; remove the ones made now.
trap 'rm -rf "$scratch"; find /tmp -maxdepth 1 -name "mayfly-fuzz.*" -newer "$scratch/.start" \
  -exec rm -rf {} + 2>/dev/null' EXIT
touch "$scratch/.start"
failed=0
for target in "${targets[@]}"; do
  binary=bin-fuzz/fuzz_$target
  [ -x "$binary" ] || { echo "fuzz: no target $target"; failed=1; continue; }
  regressions=(tests/fuzz/regressions/"$target"/*)
  if [ -e "${regressions[0]}" ]; then
    if ! "$binary" "${regressions[@]}" >"$scratch/$target.replay.log" 2>&1; then
      echo "FAIL fuzz_$target: a kept crasher crashes again"
      tail -n 30 "$scratch/$target.replay.log"
      failed=1
      continue
    fi
  fi
  mkdir -p "$scratch/$target"
  # -timeout: one input may not take seconds; -rss_limit_mb: the readers must not balloon.
  "$binary" "$scratch/$target" "tests/fuzz/corpus/$target" -max_total_time="$seconds" \
      -timeout=10 -rss_limit_mb=1024 -max_len=65536 -print_final_stats=1 \
      -artifact_prefix="$artifacts/${target}-" >"$scratch/$target.log" 2>&1
  rc=$?
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$scratch/$target.log")
  if [ $rc -eq 0 ]; then
    printf 'PASS fuzz_%-8s %ss, %s inputs, %s regression inputs replayed\n' "$target" \
        "$seconds" "${runs:-?}" "$(ls tests/fuzz/regressions/"$target" 2>/dev/null | wc -l)"
  else
    echo "FAIL fuzz_$target (exit $rc); input saved under $artifacts/"
    grep -E 'ERROR|SUMMARY|fuzz property|runtime error|Test unit written' "$scratch/$target.log" |
        head -n 10
    failed=1
  fi
done
exit $failed
