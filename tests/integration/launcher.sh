#!/usr/bin/env bash
# bench/scripts/launch.sh, the bound around every mpirun: exit codes pass through; a run that
# outlives its time limit is killed, retried, and reported (124); and when every rank has reported
# its exit code but mpirun lingers (Open MPI 4.1's exit hang) the launcher kills mpirun and returns
# the ranks' worst code. The hang is imitated by ranks that report and then keep running.
set -uo pipefail
failures=0
logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT
expect() { # description expected actual
  if [ "$2" = "$3" ]; then echo "ok: $1 ($3)"; else echo "FAIL: $1: expected $2, got $3"; failures=$((failures+1)); fi
}
bench/scripts/launch.sh -q -n 2 -t 30 -- /bin/true; expect "plain success" 0 $?
bench/scripts/launch.sh -q -n 2 -t 30 -- bash -c 'exit 3'; expect "exit code passes through" 3 $?

start=$SECONDS
bench/scripts/launch.sh -n 1 -t 2 -r 1 -- sleep 60 2> "$logs/timeout.log"
rc=$?
expect "time limit" 124 $rc
expect "two attempts" 1 "$(grep -c retrying "$logs/timeout.log")"
[ $((SECONDS - start)) -lt 20 ] || { echo "FAIL: timeout took $((SECONDS - start)) s"; failures=$((failures+1)); }

start=$SECONDS
bench/scripts/launch.sh -n 2 -t 60 -g 1 -- bash -c \
  'echo 0 > "$MAYFLY_STATUS_DIR/rank-$OMPI_COMM_WORLD_RANK"; exec sleep 60' 2> "$logs/stuck.log"
expect "finished, launcher stuck -> success" 0 $?
grep -q "did not exit" "$logs/stuck.log" || { echo "FAIL: no note about the stuck launcher"; failures=$((failures+1)); }
[ $((SECONDS - start)) -lt 20 ] || { echo "FAIL: stuck launcher took $((SECONDS - start)) s"; failures=$((failures+1)); }

bench/scripts/launch.sh -q -n 2 -t 60 -g 1 -- bash -c \
  'echo $((OMPI_COMM_WORLD_RANK + 4)) > "$MAYFLY_STATUS_DIR/rank-$OMPI_COMM_WORLD_RANK"; exec sleep 60'
expect "stuck launcher keeps the ranks' worst code" 5 $?

bench/scripts/launch.sh -n 0 -- /bin/true 2> "$logs/bad.log"
expect "bad option is a usage error" 2 $?
grep -q "mayfly-launch: error: --np" "$logs/bad.log" || { echo "FAIL: no error line"; failures=$((failures+1)); }
[ $failures -eq 0 ]
