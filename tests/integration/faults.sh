#!/usr/bin/env bash
# Fault injection (issue 4): task attempts that fail (--inject-failures) or hang past the task
# timeout (--inject-stalls) are retried on the pool and the run still yields the fault-free
# model (mayfly-compare VALID vs the baseline), with the failed attempts recorded in
# /timing/tasks (status 1 failed, -1 timed out; retries = attempt number), each retry on another
# worker than the failed attempt. A stalled worker is
# abandoned, keeps its process alive, and the launcher must still exit 0 in bounded time.
# Killed workers (launch.sh -w) are replaced by fresh ones, again with the same model.
set -euo pipefail
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
args=(--model mlp --dataset synthetic:2000:500 --batch 64 --tasks 3 --workers 2 --rounds 6
      --seed 7 --eval-every 0)
run() { # name, extra args...
  local name=$1
  shift
  bench/scripts/launch.sh -q -n 2 -t 60 -- "$MAYFLY_BIN/mayfly-train" "${args[@]}" "$@" \
      -o "$out/$name.h5" > "$out/$name.log"
}
run baseline --mode baseline
run baseline40 --mode baseline --rounds 40
run warm_failing --mode warm --inject-failures 0.3 --failure-seed 3
run cold_failing --mode cold --inject-failures 0.1 --failure-seed 5
start=$SECONDS
run warm_stalling --mode warm --inject-stalls 0.15 --failure-seed 3 --task-timeout 2
stall_seconds=$((SECONDS - start))
# Every worker killed after round 2 (a lost node, on one machine): with launch.sh -w (mpirun
# --enable-recovery) each peer abandons its dead workers when they neither take the weights nor
# answer within the task timeout, spawns fresh ones, and the run ends with the same model.
bench/scripts/launch.sh -q -n 2 -t 60 -w -- "$MAYFLY_BIN/mayfly-train" "${args[@]}" --mode warm --force \
    --rounds 40 --task-timeout 2 --spawn-timeout 20 -o "$out/warm_killed.h5" > "$out/warm_killed.log" 2>&1 &
launcher=$!
for _ in $(seq 300); do grep -qE '^ +2 ' "$out/warm_killed.log" && break; sleep 0.1; done
mpirun_pid=$(pgrep -P "$launcher" -x mpirun) || { echo "warm_killed: no mpirun to kill under" >&2; exit 1; }
pkill -KILL -P "$mpirun_pid" -x mayfly-worker || # this run's workers only (mpirun's children)
  { echo "warm_killed: no worker to kill" >&2; exit 1; }
wait "$launcher" || { rc=$?; cat "$out/warm_killed.log"; echo "warm_killed: exit $rc" >&2; exit 1; }
grep -q "every worker of the pool was lost" "$out/warm_killed.log" ||
  { cat "$out/warm_killed.log"; echo "warm_killed: the pools were not refilled" >&2; exit 1; }
"$MAYFLY_BIN/mayfly-compare" "$out/baseline40.h5" "$out/warm_killed.h5" > "$out/compare-warm_killed.log"
grep -q "model check: VALID" "$out/compare-warm_killed.log"
for other in warm_failing cold_failing warm_stalling; do
  "$MAYFLY_BIN/mayfly-compare" "$out/baseline.h5" "$out/$other.h5" > "$out/compare-$other.log"
  grep -q "model check: VALID" "$out/compare-$other.log"
done
[ "$stall_seconds" -lt 55 ] || { echo "stalling run took ${stall_seconds}s" >&2; exit 1; }
/usr/bin/python3 - "$out" <<'PY'
import sys, h5py, numpy as np
d = sys.argv[1]
base = h5py.File(f"{d}/baseline.h5", "r")["/train/loss"][:]
base40 = h5py.File(f"{d}/baseline40.h5", "r")["/train/loss"][:]
for name, failed_status in (("warm_failing", 1), ("cold_failing", 1), ("warm_stalling", -1)):
    f = h5py.File(f"{d}/{name}.h5", "r")
    assert f.attrs["complete"] == 1, name
    assert np.array_equal(base, f["/train/loss"][:]), name
    t = f["/timing/tasks"][:]
    failed = t[t["status"] == failed_status]
    ok = t[t["status"] == 0]
    assert len(failed) > 0, (name, "no failed attempts recorded")
    assert len(ok) == 6 * 2 * 3, (name, len(ok))      # every task succeeded exactly once
    assert (ok["retries"] <= 2).all()
    # every failed attempt is followed by a successful retry of the same task, and the next
    # attempt ran on the other worker of the pool (a failed worker does not get its task back)
    for r in failed:
        key = (t["round"] == r["round"]) & (t["peer"] == r["peer"]) & (t["task"] == r["task"])
        same = ok[(ok["round"] == r["round"]) & (ok["peer"] == r["peer"]) & (ok["task"] == r["task"])]
        assert len(same) == 1 and same[0]["retries"] > r["retries"], (name, r)
        following = t[key & (t["retries"] == r["retries"] + 1)]
        assert len(following) == 1 and following[0]["worker"] != r["worker"], (name, r, following)
    print(name, ":", len(failed), "failed attempts retried; model identical")
f = h5py.File(f"{d}/warm_killed.h5", "r")
assert f.attrs["complete"] == 1 and np.array_equal(base40, f["/train/loss"][:])
t = f["/timing/tasks"][:]
assert set(t["status"]) <= {0, -1} and (t["status"] == 0).sum() == 40 * 2 * 3, t["status"]
print("warm_killed :", (t["status"] == -1).sum(), "lost attempts; pools refilled; model identical")
PY
