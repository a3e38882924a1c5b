#!/usr/bin/env bash
# An interrupted run leaves a trustworthy partial result (DESIGN.md, "Failure model"):
#   - SIGTERM to mpirun (what Slurm's time limit and `kill` do; mpirun forwards it to the ranks)
#     and SIGINT to one peer only: every peer finishes the round it is in, the file gets
#     complete=0, interrupted=<signal>, rounds_completed = the rounds in /train/loss, and the
#     run exits non-zero within seconds, with one "mayfly-train: error: interrupted" line;
#   - SIGKILL to the peer that writes (rank 0): no handler runs, yet h5dump opens the file,
#     complete=0, and every round printed before the kill is in it with all its task rows.
# Baseline mode on synthetic data: the rounds are short, so the signal lands mid-run.
set -uo pipefail
cd "${MAYFLY_ROOT:-$(dirname "$0")/../..}"
bin=${MAYFLY_BIN:-bin}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# A signalled mpirun sends SIGCONT, sleeps, SIGTERM, sleeps, SIGKILL, each sleep being
# odls_base_sigkill_timeout (1 s by default: too short for a round on a loaded 2-core box), so it
# exits about twice that after the signal; the ranks themselves stop within a round.
export OMPI_MCA_odls_base_sigkill_timeout=5
failures=0
fail() {
  echo "FAIL [$1] $2"
  failures=$((failures + 1))
}

peers=2 tasks=4
args=(--mode baseline --dataset synthetic:20000:500 --batch 64 --tasks $tasks --rounds 1000000
      --eval-every 5)

# start NAME: launches a long run in the background, waits for 3 printed rounds; sets run_pid.
start() {
  local name=$1
  bench/scripts/launch.sh -q -n $peers -t 120 -r 0 -- "$bin/mayfly-train" "${args[@]}" \
      -o "$work/$name.h5" >"$work/$name.out" 2>"$work/$name.err" &
  run_pid=$!
  for _ in $(seq 600); do
    [ "$(grep -cE '^ +[0-9]+ ' "$work/$name.out")" -ge 3 ] && return 0
    sleep 0.1
  done
  fail "$name" "no 3 rounds within 60 s"
  return 1
}

# rank_pid NAME RANK: the pid of that rank of the run writing $work/NAME.h5.
rank_pid() {
  local p
  for p in $(pgrep -f "mayfly-train .*$work/$1.h5"); do
    [ "$(cat "/proc/$p/comm" 2>/dev/null)" = mayfly-train ] || continue
    if tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null | grep -qx "OMPI_COMM_WORLD_RANK=$2"; then
      echo "$p"
      return 0
    fi
  done
  return 1
}

# finish NAME: waits for the run; sets run_rc and run_seconds (since the signal).
finish() {
  local signalled=$SECONDS
  wait "$run_pid"
  run_rc=$?
  run_seconds=$((SECONDS - signalled))
}

# check_file NAME SIGNAL_NAME|- : the partial result's invariants (SIGNAL_NAME - for SIGKILL).
check_file() {
  local name=$1 signal=$2 printed reported
  printed=$(grep -cE '^ +[0-9]+ ' "$work/$name.out")
  reported=$(sed -n 's/^mayfly-train: error: interrupted by .* after round \([0-9]*\) of.*/\1/p' \
      "$work/$name.err")
  if ! h5dump -A "$work/$name.h5" >/dev/null 2>&1; then
    fail "$name" "h5dump cannot read $work/$name.h5"
    return
  fi
  /usr/bin/python3 - "$work/$name.h5" "$signal" "$printed" "${reported:--1}" $peers $tasks <<'PY' ||
import sys, h5py
path, signal, printed, reported, peers, tasks = sys.argv[1], sys.argv[2], *map(int, sys.argv[3:])
f = h5py.File(path, "r")
attrs = f.attrs
rounds = f["/train/loss"].shape[0]
assert attrs["complete"] == 0, "complete=%r" % attrs["complete"]
assert rounds >= 3, "only %d rounds in the file" % rounds
assert rounds >= printed, "%d rounds printed, %d in the file" % (printed, rounds)
assert f["/timing/round"].shape == (rounds, peers), f["/timing/round"].shape
assert len(f["/timing/tasks"]) == rounds * peers * tasks, (len(f["/timing/tasks"]), rounds)
assert max(f["/timing/tasks"]["round"]) == rounds - 1
if signal == "-":
    assert "interrupted" not in attrs, attrs["interrupted"]
else:
    note = attrs["interrupted"]
    note = note.decode() if isinstance(note, bytes) else note
    assert note == signal, note
    assert attrs["rounds_completed"] == rounds, (attrs["rounds_completed"], rounds)
    # The error line's "after round N" is the writer's own count; the printed rows may miss
    # the last one (stdout turns non-blocking on a stop signal; signals.c says why).
    assert reported == rounds, "error line says round %d, %d in the file" % (reported, rounds)
print("%s: %d rounds kept, complete=0, interrupted=%s" % (path.split("/")[-1], rounds,
      attrs.get("interrupted", b"-")))
PY
    fail "$name" "the partial result breaks the contract"
}

# check_exit NAME: a graceful stop: non-zero, quick, one error line naming the signal.
check_exit() {
  local name=$1 signal=$2 lines
  [ "$run_rc" -ne 0 ] || fail "$name" "exit 0 after $signal"
  [ "$run_seconds" -le 25 ] || fail "$name" "took ${run_seconds}s to stop after $signal"
  lines=$(grep -c '^mayfly-train: error:' "$work/$name.err")
  [ "$lines" -eq 1 ] || fail "$name" "$lines error lines, expected 1"
  grep -q "^mayfly-train: error: interrupted by $signal after round" "$work/$name.err" ||
    fail "$name" "no 'interrupted by $signal' line: $(head -n 3 "$work/$name.err")"
  echo "$name: exit $run_rc ${run_seconds}s after the signal: $(grep '^mayfly-train: error' \
"$work/$name.err")"
}

# 1. SIGTERM to mpirun, which forwards it to both ranks.
if start term; then
  mpirun_pid=$(pgrep -f "^mpirun .*$work/term.h5")
  if [ -n "$mpirun_pid" ]; then
    kill -TERM "$mpirun_pid"
    finish term
    check_exit term SIGTERM
    check_file term SIGTERM
  else
    fail term "mpirun not found"
    kill -- "$run_pid"
    wait "$run_pid"
  fi
fi

# 2. SIGINT to rank 1 only: rank 0 (the writer) must stop too, after the same round.
if start int; then
  pid=$(rank_pid int 1)
  if [ -n "$pid" ]; then
    kill -INT "$pid"
    finish int
    check_exit int SIGINT
    check_file int SIGINT
  else
    fail int "rank 1 not found"
    kill -- "$run_pid"
    wait "$run_pid"
  fi
fi

# 3. SIGKILL to rank 0 mid-run: only the per-round flushes protect the file.
if start kill; then
  pid=$(rank_pid kill 0)
  if [ -n "$pid" ]; then
    kill -KILL "$pid"
    finish kill
    [ "$run_rc" -ne 0 ] || fail kill "exit 0 after SIGKILL"
    sleep 1 # the other rank and mpirun's clean-up may still hold the file briefly
    check_file kill -
  else
    fail kill "rank 0 not found"
    kill -- "$run_pid"
    wait "$run_pid"
  fi
fi

echo "$failures failed"
[ "$failures" -eq 0 ]
