#!/usr/bin/env bash
# Warm mode (issue 4) must not change the mathematics and must reuse its workers: baseline, cold
# and warm runs with the same seed give bit-identical models (mayfly-compare exit 0 = VALID) and
# identical /train/loss; a warm run spawns only in its first round (/timing/spawn > 0 there
# only), while --keep-alive 0 retires the idle pool between rounds so every round is cold;
# --workers auto picks a pool size and says so. /cost counts the invocations and spawns.
set -euo pipefail
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
args=(--model mlp --dataset synthetic:2000:500 --batch 64 --tasks 3 --workers 2 --rounds 6
      --seed 7 --eval-every 0)
run() { # name, extra args...
  local name=$1
  shift
  bench/scripts/launch.sh -q -n 2 -t 90 -- "$MAYFLY_BIN/mayfly-train" "${args[@]}" "$@" \
      -o "$out/$name.h5" > "$out/$name.log"
}
run baseline --mode baseline
run cold --mode cold
run warm --mode warm --keep-alive 600
run expiring --mode warm --keep-alive 0
bench/scripts/launch.sh -q -n 2 -t 90 -- "$MAYFLY_BIN/mayfly-train" "${args[@]}" --mode warm \
    --workers auto -o "$out/auto.h5" > "$out/auto.log" 2> "$out/auto.err"
grep -q "note: --workers auto: [0-9]* worker" "$out/auto.err"
for other in cold warm expiring auto; do
  "$MAYFLY_BIN/mayfly-compare" "$out/baseline.h5" "$out/$other.h5" > "$out/compare-$other.log"
  grep -q "model check: VALID" "$out/compare-$other.log"
done
/usr/bin/python3 - "$out" <<'PY'
import sys, h5py, numpy as np
d = sys.argv[1]
f = {n: h5py.File(f"{d}/{n}.h5", "r") for n in ("baseline", "cold", "warm", "expiring")}
loss = f["baseline"]["/train/loss"][:]
assert loss.shape == (6,), loss.shape
for n in ("cold", "warm", "expiring"):
    assert np.array_equal(loss, f[n]["/train/loss"][:]), (n, loss, f[n]["/train/loss"][:])
    assert f[n].attrs["complete"] == 1
    assert f[n]["/timing/tasks"].shape == (6 * 2 * 3,), f[n]["/timing/tasks"].shape
spawn = f["warm"]["/timing/spawn"][:]
assert spawn.shape == (6, 2), spawn.shape
assert (spawn[0] > 0).all() and (spawn[1:] == 0).all(), spawn
tasks = f["warm"]["/timing/tasks"][:]
assert (tasks["startup"][tasks["round"] > 0] == 0).all(), "a warm round reported a fresh worker"
assert (f["expiring"]["/timing/spawn"][:] > 0).all(), f["expiring"]["/timing/spawn"][:]
assert (f["cold"]["/timing/spawn"][:] > 0).all()
# /cost: invocations are the task attempts; warm workers live longer per spawn than cold ones
for n in ("cold", "warm", "expiring"):
    c = f[n]["/cost"].attrs
    assert c["invocations"] == 6 * 2 * 3 and c["transitions"] == 2 * c["invocations"], n
    assert c["worker_gb_seconds"] > 0 and c["usd_serverless"] > 0 and c["prices"] in ("aws-us-east-1", b"aws-us-east-1")
assert f["warm"]["/cost"].attrs["pools"] == 2 and f["cold"]["/cost"].attrs["pools"] == 12
assert f["expiring"]["/cost"].attrs["pools"] == 12
assert f["baseline"]["/cost"].attrs["invocations"] == 0
assert f["baseline"]["/cost"].attrs["usd_serverless"] == 0
a = h5py.File(f"{d}/auto.h5", "r")
assert np.array_equal(loss, a["/train/loss"][:])
per_pool = a["/cost"].attrs["workers_spawned"] / a["/cost"].attrs["pools"]
assert 1 <= per_pool <= 3, per_pool          # min(tasks, free slots per peer), at least 1
assert a["/config"].attrs["workers"] in ("auto", b"auto")
print("warm_mode: identical loss", loss[0], "->", loss[-1], "; warm spawns only in round 1")
PY
