#!/usr/bin/env bash
# The modes must not change the mathematics: baseline and cold runs with the same seed give the
# same loss in every round and bit-identical final weights (mayfly-compare says VALID), and
# /timing/compute has one row per round and one column per peer. Real data, real spawn.
set -euo pipefail
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
args=(--model mlp --dataset fashion-mnist --batch 64 --tasks 2 --workers 2 --rounds 20
      --seed 7 --eval-every 10 --spawn-timeout 30)
for mode in baseline cold; do
  bench/scripts/launch.sh -q -n 2 -t 180 -r 2 -- "$MAYFLY_BIN/mayfly-train" --mode "$mode" "${args[@]}" \
      -o "$out/$mode.h5" > "$out/$mode.log"
done
"$MAYFLY_BIN/mayfly-compare" "$out/baseline.h5" "$out/cold.h5" | tee "$out/compare.log"
grep -q "model check: VALID" "$out/compare.log"
/usr/bin/python3 - "$out/baseline.h5" "$out/cold.h5" <<'PY'
import sys, h5py, numpy as np
base, cold = (h5py.File(p, "r") for p in sys.argv[1:])
lb, lc = base["/train/loss"][:], cold["/train/loss"][:]
assert lb.shape == (20,), lb.shape
assert np.array_equal(lb, lc), (lb, lc)
assert lb[-1] < lb[0], "loss did not decrease"
for f in (base, cold):
    assert f["/timing/compute"].shape == (20, 2), f["/timing/compute"].shape
    assert f.attrs["complete"] == 1
assert cold["/timing/spawn"].shape == (20, 2)
assert (cold["/timing/spawn"][:] > 0).all()
tasks = cold["/timing/tasks"][:]
assert len(tasks) == 20 * 2 * 2, len(tasks)          # rounds x peers x tasks
assert set(tasks["worker"]) == {0, 1}
assert (tasks["forward_backward"] > 0).all()
print("identical loss in all 20 rounds:", lb[0], "->", lb[-1])
PY
