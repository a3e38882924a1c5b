#!/usr/bin/env bash
# The CI variant of the soak and load runs (issue 7 item 4): bench/scripts/soak.sh --quick runs 20
# spawn/disconnect cycles, 4 peers x 2 workers oversubscribed (baseline, cold, warm: complete and
# bit-identical models) and 200 warm rounds with RSS sampling, and every one of its checks must
# pass; its raw data must be there (every drift cycle, RSS rows of peers and workers). A bad
# option must be one error line and exit 2. Bounded: the whole soak gets 90 s on this box.
set -euo pipefail
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
trap '[[ $- == *e* ]] && echo "soak_quick: check failed at line $LINENO" >&2' ERR
limit=${SOAK_QUICK_TIMEOUT:-90}
extra=()
if [[ "$MAYFLY_BIN" == *asan* ]]; then
  # Sanitized binaries start slower, and ASan's quarantine keeps freed memory, so the parent's
  # RSS per spawn cycle says nothing about leaks there (LeakSanitizer is the leak check).
  limit=${SOAK_QUICK_TIMEOUT:-300}
  extra=(--max-spawn-rss 1000000)
fi
set +e
timeout -k 10 "$limit" bench/scripts/soak.sh --quick --bin "$MAYFLY_BIN" -o "$out/soak" "${extra[@]}" \
    2> "$out/soak.err"
code=$?
set -e
cat "$out/soak.err"
[ "$code" -eq 0 ] || { echo "soak_quick: bench/scripts/soak.sh --quick exited $code" >&2; exit 1; }
summary=$out/soak/summary.txt
if grep '^check FAIL' "$summary"; then exit 1; fi
[ "$(grep -c '^check ok' "$summary")" -eq 6 ] # spawn x2, load x3, memory x1
grep -q '^summary: 6 checks passed, 0 failed' "$summary"
grep -qx 'cycles_recorded=20' "$out/soak/spawn.report"
grep -q '^open_fds_first=' "$out/soak/spawn.report"
for mode in baseline cold warm; do
  grep -q "load $mode: wall [0-9.]*s; median_ms" "$summary"
done
csv=$out/soak/memory-warm.rss.csv
head -n 1 "$csv" | grep -qx 't_seconds,pid,comm,rank,rss_kib,fds'
grep -q ',mayfly-train,0,' "$csv" # rank 0, the writer
grep -q ',mayfly-train,1,' "$csv"
[ "$(grep -c ',mayfly-worker,' "$csv")" -ge 4 ]
grep -q 'complete=1 rounds_completed=200' "$out/soak/memory-warm.report"
grep -q '^writer_peer_processes=1 ' "$out/soak/memory-warm.report"

set +e
bench/scripts/soak.sh --cycles zero > /dev/null 2> "$out/bad.err"
code=$?
set -e
[ "$code" -eq 2 ] || { echo "soak_quick: a bad option gave exit $code" >&2; exit 1; }
grep -qx "mayfly-soak: error: --cycles: 'zero' is not a non-negative integer" "$out/bad.err"
echo "soak_quick: ok"
