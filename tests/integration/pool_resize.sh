#!/usr/bin/env bash
# Dynamic worker pools (issue 4, item 2): --workers A,B,C sizes each peer's pool per round and
# --workers auto from the tasks and the free slots; the warm pool grows by a spawn group and
# shrinks by whole groups, a worker lost to a task timeout is replaced by growing, and every
# decision is in /pool. Checked here: /pool round by round against hand-computed values,
# /timing/spawn > 0 exactly in the rounds that spawned, the task rows' worker ids, /cost's pools
# and workers_spawned, and the final model equal to the baseline's whatever the pool size
# (mayfly-compare VALID). Malformed schedules are one error line and exit 2.
set -euo pipefail
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

# Bad input first: one error line each, exit 2, no MPI job needed for option errors.
for bad in "2,,1" "0,1" "2,x" "2," ",1" "0"; do
  set +e
  "$MAYFLY_BIN/mayfly-train" --workers "$bad" -o "$out/bad.h5" > "$out/bad.out" 2> "$out/bad.err"
  rc=$?
  set -e
  [ "$rc" -eq 2 ] || { echo "--workers '$bad': exit $rc, expected 2" >&2; exit 1; }
  [ "$(wc -l < "$out/bad.err")" -eq 1 ] || { cat "$out/bad.err" >&2; exit 1; }
  grep -q "^mayfly-train: error: --workers: '$bad'" "$out/bad.err" || {
    cat "$out/bad.err" >&2
    exit 1
  }
done

args=(--model mlp --dataset synthetic:2000:500 --batch 64 --tasks 3 --seed 7 --eval-every 0)
run() { # peers, name, extra args...
  local peers=$1 name=$2
  shift 2
  bench/scripts/launch.sh -q -n "$peers" -t 120 -- "$MAYFLY_BIN/mayfly-train" "${args[@]}" "$@" \
      -o "$out/$name.h5" > "$out/$name.log" 2> "$out/$name.err"
}
run 2 baseline --mode baseline --rounds 4
run 2 warm --mode warm --workers 2,1,2 --rounds 4
run 2 cold --mode cold --workers 2,1,2 --rounds 4
run 2 auto --mode warm --workers auto --rounds 4
SLURM_NTASKS=2 run 2 auto_slurm --mode cold --workers auto --rounds 4
run 2 stalling --mode warm --workers 2 --rounds 6 --inject-stalls 0.15 --failure-seed 3 \
    --task-timeout 2
run 2 baseline6 --mode baseline --rounds 6
run 1 baseline1 --mode baseline --rounds 5
run 1 steps --mode warm --workers 1,2,3,1,3 --rounds 5
for pair in baseline:warm baseline:cold baseline:auto baseline:auto_slurm baseline6:stalling \
    baseline1:steps; do
  "$MAYFLY_BIN/mayfly-compare" "$out/${pair%%:*}.h5" "$out/${pair#*:}.h5" > "$out/compare.log"
  grep -q "model check: VALID" "$out/compare.log" || { cat "$out/compare.log" >&2; exit 1; }
done
grep -q "note: --workers auto: [0-9]* worker" "$out/auto.err"

/usr/bin/python3 - "$out" <<'PY'
import sys, h5py, numpy as np
d = sys.argv[1]
def load(name):
    f = h5py.File(f"{d}/{name}.h5", "r")
    assert f.attrs["complete"] == 1, name
    return f
def text(v):
    return v.decode() if isinstance(v, bytes) else str(v)
def check_pool(name, peers, expected):
    """expected: field -> per-round values (the same on every peer)."""
    f = load(name)
    pool = f["/pool"]
    rounds = len(expected["target"])
    for field, values in expected.items():
        got = pool[field][:]
        assert got.dtype == np.int32 and got.shape == (rounds, peers), (name, field, got.shape)
        want = np.repeat(np.array(values, dtype=np.int32)[:, None], peers, axis=1)
        assert np.array_equal(got, want), (name, field, got.T.tolist(), values)
    # the pool's size carries over: workers_before(r+1) = before + spawned - retired (no losses)
    p = {k: pool[k][:] for k in ("workers_before", "spawned", "retired")}
    assert np.array_equal(p["workers_before"][1:],
                          (p["workers_before"] + p["spawned"] - p["retired"])[:-1]), name
    assert (p["workers_before"][-1] + p["spawned"][-1] - p["retired"][-1] == 0).all(), name
    # /timing/spawn > 0 exactly in the rounds that spawned, and /cost counts those spawns
    spawn = f["/timing/spawn"][:]
    assert np.array_equal(spawn > 0, p["spawned"] > 0), (name, spawn.T, p["spawned"].T)
    cost = f["/cost"].attrs
    assert cost["pools"] == (p["spawned"] > 0).sum(), (name, cost["pools"])
    assert cost["workers_spawned"] == p["spawned"].sum(), (name, cost["workers_spawned"])
    assert cost["invocations"] == len(f["/timing/tasks"]), name
    return f

base = load("baseline")["/train/loss"][:]
for name in ("warm", "cold", "auto", "auto_slurm"):
    assert np.array_equal(base, load(name)["/train/loss"][:]), name

# warm 2,1,2 (cycled over 4 rounds: 2,1,2,2), 3 tasks: one spawn group of 2 in round 1; round 2
# wants 1 but the group cannot be split, so it stays (one worker serves, one idles warm) and
# round 3 needs no spawn; the last round retires the pool.
warm = check_pool("warm", 2, {"target": [2, 1, 2, 2], "workers_before": [0, 2, 2, 2],
                              "spawned": [2, 0, 0, 0], "retired": [0, 0, 0, 2]})
assert text(warm["/pool"].attrs["policy"]) == "schedule 2,1,2"
t = warm["/timing/tasks"][:]
for r, ids in enumerate(({0, 1}, {0}, {0, 1}, {0, 1})):
    for peer in (0, 1):
        got = set(t["worker"][(t["round"] == r) & (t["peer"] == peer)].tolist())
        assert got == ids, ("warm", r, peer, got, ids)
# cold: every round spawns the round's target and retires it after
check_pool("cold", 2, {"target": [2, 1, 2, 2], "workers_before": [0, 0, 0, 0],
                       "spawned": [2, 1, 2, 2], "retired": [2, 1, 2, 2]})

# auto: the same target every round from the task count and the free slots (>= 1)
a = load("auto")
free = a["/pool/free_slots"][:]
assert (free == free[0]).all() and (free >= 0).all(), free
assert np.array_equal(a["/pool/target"][:], np.clip(np.minimum(free, 3), 1, None)), free
assert text(a["/pool"].attrs["policy"]) == "auto"
assert "MPI_UNIVERSE_SIZE" in text(a["/pool"].attrs["free_slot_sources"])
assert a["/cost"].attrs["pools"] == 2                      # one spawn per peer, kept warm
# SLURM_NTASKS=2 with 2 peers leaves no free slot: auto falls back to 1 worker
check_pool("auto_slurm", 2, {"target": [1] * 4, "free_slots": [0] * 4,
                             "workers_before": [0] * 4, "spawned": [1] * 4, "retired": [1] * 4})
assert "Slurm allocation 2 - 2 peers" in text(load("auto_slurm")["/pool"].attrs["free_slot_sources"])

# one peer, 1,2,3,1,3: grows by a group of 1 twice, shrinks by retiring the two newest groups
# (newest first), grows by a group of 2; worker ids are the lowest free ones.
steps = check_pool("steps", 1, {"target": [1, 2, 3, 1, 3], "workers_before": [0, 1, 2, 3, 1],
                                "spawned": [1, 1, 1, 0, 2], "retired": [0, 0, 0, 2, 3]})
assert np.array_equal(load("baseline1")["/train/loss"][:], steps["/train/loss"][:])
t = steps["/timing/tasks"][:]
for r, ids in enumerate(({0}, {0, 1}, {0, 1, 2}, {0}, {0, 1, 2})):
    assert set(t["worker"][t["round"] == r].tolist()) == ids, (r, t["worker"][t["round"] == r])
fresh = {(int(x["round"]), int(x["worker"])) for x in t if x["startup"] > 0}
assert fresh == {(0, 0), (1, 1), (2, 2), (4, 1), (4, 2)}, fresh  # each worker's first task
teardown = steps["/timing/teardown"][:, 0]
assert teardown[3] > 0 and teardown[4] > 0 and (teardown[:3] == 0).all(), teardown

# a worker abandoned after a task timeout is replaced by growing the pool by one
s = load("stalling")
assert np.array_equal(load("baseline6")["/train/loss"][:], s["/train/loss"][:])
t = s["/timing/tasks"][:]
before, spawned = s["/pool/workers_before"][:], s["/pool/spawned"][:]
replaced = 0
for r in range(1, 6):
    for peer in (0, 1):
        lost = int(((t["round"] == r - 1) & (t["peer"] == peer) & (t["status"] == -1)).sum())
        assert before[r, peer] == 2 - lost, (r, peer, before[r, peer], lost)
        assert spawned[r, peer] == lost, (r, peer, spawned[r, peer], lost)
        replaced += lost
assert replaced > 0, "no worker was lost before the last round: pick another failure seed"
assert (s["/timing/spawn"][:] > 0).sum() == s["/cost"].attrs["pools"]
print("pool_resize: schedules, auto and replacement recorded in /pool; models identical;",
      replaced, "lost workers replaced by growing")
PY
