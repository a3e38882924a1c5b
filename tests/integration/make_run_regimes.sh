#!/usr/bin/env bash
# `make run` (bench/scripts/run_default.sh) must show both regimes of the study (issue 13, item 4):
# its verdict table has one row for "A peers fill every core" (cold, one peer per core) and one for
# "B peers leave cores free" (warm, half the peers), each VALID against its own baseline, with the
# numbers mayfly-compare --summary derives from the files (checked here against h5py). Runs the
# real script in its quick size (MAYFLY_RUN_QUICK=1: 10 rounds a run, ~10-30 s on 2 cores); also
# checks its plan for other core counts, and that --summary reports a model that differs as INVALID
# with exit 1.
set -euo pipefail
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

# Plans: peers and workers follow the core count, batches shrink to fit the shards.
plan() { MAYFLY_RUN_CORES=$1 MAYFLY_RUN_PLAN=1 bench/scripts/run_default.sh >"$out/plan-$1.log"; }
plan 8 && plan 3 && plan 64
grep -q "^# A peers fill every core: 8 peer(s) + 16 workers on 8 core(s): --mode cold .*--batch 64 --tasks 8 --workers 2 " "$out/plan-8.log"
grep -q "^# B peers leave cores free: 4 peer(s) + 8 workers on 8 core(s): --mode warm .*--batch 2048 --tasks 4 --workers 2 " "$out/plan-8.log"
grep -q "^# B peers leave cores free: 1 peer(s) + 3 workers on 3 core(s): --mode warm .*--tasks 6 --workers 3 " "$out/plan-3.log"
grep -q "^# B peers leave cores free: 32 peer(s) .*--batch 256 --tasks 4 " "$out/plan-64.log"
if MAYFLY_RUN_CORES=0 bench/scripts/run_default.sh >"$out/bad.log" 2>&1; then
  echo "MAYFLY_RUN_CORES=0 was accepted"; exit 1
fi
grep -q "run_default.sh: error: MAYFLY_RUN_CORES: '0' is not a positive integer" "$out/bad.log"

# The quick run on 2 cores (the sizes this machine's make run uses, 10 rounds each).
MAYFLY_RUN_QUICK=1 MAYFLY_RUN_CORES=2 MAYFLY_RUN_DIR="$out/results" \
    timeout -k 5 150 bench/scripts/run_default.sh >"$out/run.log" 2>&1 || {
  tail -n 30 "$out/run.log"; exit 1; }
sed -n '/^== verdict/,$p' "$out/run.log"
row_a=$(grep "^A peers fill every core " "$out/run.log")
row_b=$(grep "^B peers leave cores free " "$out/run.log")
grep -q "^# label .*base_ms .*srvl_ms .*improvement .*cost_ratio .*model_check .*files" "$out/run.log"
/usr/bin/python3 - "$out/results" "$row_a" "$row_b" <<'PY'
import sys, h5py, numpy as np
results, rows = sys.argv[1], sys.argv[2:]
def compute_ms(f):
    w = int(f["/timing"].attrs["warmup_rounds"])
    return 1e3 * float(np.median(f["/timing/compute"][w:].max(axis=1)))
for row, base_name, srvl_name, mode, peers, workers in (
        (rows[0], "default-baseline.h5", "default-cold.h5", "cold", 2, "2"),
        (rows[1], "default-free-baseline.h5", "default-free-warm.h5", "warm", 1, "2")):
    fields = row.split()
    label, rest = fields[:5], fields[5:]
    m, p, w, model, batch, tasks, base_ms, srvl_ms, imp, pct, ratio, check, bf, sf = rest
    assert (m, int(p), w, model, pct) == (mode, peers, workers, "mlp", "%"), row
    assert check == "VALID", row
    assert bf == f"{results}/{base_name}" and sf == f"{results}/{srvl_name}", row
    with h5py.File(bf, "r") as b, h5py.File(sf, "r") as s:
        for f in (b, s):
            assert f.attrs["complete"] == 1 and f["/train/loss"].shape == (10,), f.filename
        assert (b["/config"].attrs["mode"], s["/config"].attrs["mode"]) == (b"baseline", mode.encode()), row
        assert int(s["/config"].attrs["peers"]) == peers
        assert np.array_equal(b["/model/parameters"][:], s["/model/parameters"][:])
        tb, ts = compute_ms(b), compute_ms(s)
        assert abs(float(base_ms) - tb) < 1e-3 and abs(float(srvl_ms) - ts) < 1e-3, (row, tb, ts)
        assert abs(float(imp) - 100 * (tb - ts) / tb) < 0.06, (row, tb, ts)
        cost = s["/cost"].attrs["usd_total"] / b["/cost"].attrs["usd_total"]
        assert ratio == f"{cost:.1f}x", (row, cost)
        assert ts > 0 and tb > 0
print("verdict rows match the files")
PY
grep -q "^# A: " "$out/run.log"
grep -q "^# B: " "$out/run.log"
grep -q "^# files: $out/results/default-baseline.h5 " "$out/run.log"

# A model that differs is INVALID in the summary, exit 1.
cp "$out/results/default-free-warm.h5" "$out/changed.h5"
/usr/bin/python3 -c 'import sys, h5py
with h5py.File(sys.argv[1], "r+") as f: f["/model/parameters"][0] += 1' "$out/changed.h5"
rc=0
"$MAYFLY_BIN/mayfly-compare" --summary "$out/results/default-free-baseline.h5" "$out/changed.h5" \
    >"$out/invalid.log" || rc=$?
[ "$rc" -eq 1 ] || { echo "--summary on a changed model: exit $rc, expected 1"; exit 1; }
grep -q "^1  .* INVALID(1/235146) " "$out/invalid.log"
echo "both regimes present, VALID; INVALID detected"
