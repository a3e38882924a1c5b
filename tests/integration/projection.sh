#!/usr/bin/env bash
# results/tools/projection.py (issue 6, item 5) on a tiny calibration set made here: 2 peers, mlp
# on a synthetic dataset, baseline + cold + warm for 4 rounds, a mayfly-kernels CSV and a short
# mayfly-spawn file. Checks that the projection writes its outputs, validates one row per run with
# finite positive predictions, reproduces every run's /cost attributes with the Python
# re-implementation of bench/harness/cost.c (1e-9 relative), labels itself a projection, and that
# bad input (empty directory, a non-HDF5 results file, a non-HDF5 --spawn file) ends with one
# "projection: error:" line and a non-zero exit.
set -euo pipefail
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
mkdir -p "$out/runs" "$out/proj" "$out/empty" "$out/junk"
args=(--model mlp --dataset synthetic:2000:500 --batch 64 --tasks 3 --workers 2 --rounds 4
      --warmup 1 --seed 7 --eval-every 0)
for mode in baseline cold warm; do
  bench/scripts/launch.sh -q -n 2 -t 90 -- "$MAYFLY_BIN/mayfly-train" "${args[@]}" --mode "$mode" \
      -o "$out/runs/mlp-$mode.h5" > "$out/$mode.log"
done
"$MAYFLY_BIN/mayfly-kernels" --model mlp --batch 64 --repeat 2 --no-layers --csv \
    > "$out/kernels-mlp-b64.csv"
bench/scripts/launch.sh -q -n 1 -t 90 -- "$MAYFLY_BIN/mayfly-spawn" -c 1,2 -i 2 -x 0 --cycles 0 -m 20 \
    -o "$out/spawn.h5" > "$out/spawn.log"

/usr/bin/python3 results/tools/projection.py "$out/runs" --spawn "$out/spawn.h5" \
    --kernels "$out/kernels-mlp-b64.csv" --models mlp --peers 2,4 --batches 64,128 \
    --train-samples 2000 --out "$out/proj" > "$out/projection.log"

/usr/bin/python3 - "$out" <<'PY'
import csv, math, os, sys
d = sys.argv[1]
p = os.path.join(d, "proj")
for name in ("projection.md", "validation.csv", "projection.csv", "validation.png",
             "improvement.png", "cost_ratio.png"):
    path = os.path.join(p, name)
    assert os.path.isfile(path) and os.path.getsize(path) > 0, path
val = list(csv.DictReader(open(os.path.join(p, "validation.csv"))))
files = sorted(r["file"] for r in val)
assert files == ["mlp-baseline.h5", "mlp-cold.h5", "mlp-warm.h5"], files
for r in val:
    for key in ("measured_s", "predicted_s"):
        v = float(r[key])
        assert math.isfinite(v) and v > 0, (r["file"], key, v)
    assert math.isfinite(float(r["error_pct"])), r
    err = float(r["cost_max_rel_err"])
    assert err <= 1e-9, ("/cost not reproduced", r["file"], err)
proj = list(csv.DictReader(open(os.path.join(p, "projection.csv"))))
# 2 peer counts x 2 batches x 2 transfer variants, tasks = floor(floor(2000/P)/batch) >= 1
assert len(proj) == 8, len(proj)
for r in proj:
    assert int(r["tasks"]) == (2000 // int(r["peers"])) // int(r["batch"]), r
    for key in ("baseline_s", "cold_s", "warm_s", "baseline_usd", "cold_usd", "warm_usd",
                "cold_cost_ratio", "warm_cost_ratio"):
        v = float(r[key])
        assert math.isfinite(v) and v > 0, (key, v)
    # improvement % is 100 x (1 - t_mode / t_baseline), consistently with the times
    for mode in ("cold", "warm"):
        imp = 100 * (1 - float(r[mode + "_s"]) / float(r["baseline_s"]))
        assert abs(imp - float(r[mode + "_improvement"])) <= 1e-6 * max(1, abs(imp)), (mode, r)
md = open(os.path.join(p, "projection.md")).read()
assert md.startswith("# PROJECTION"), md[:80]
assert "## Validation" in md and "## Calibration inputs" in md and "spawn.h5" in md
assert md.count("| mlp-") == 3, "validation table rows"
print("projection: %d runs validated, %d projected rows" % (len(val), len(proj)))
PY

# Bad input: one clear error line, non-zero exit.
expect_error() { # what, args...
  local what=$1 rc=0
  shift
  /usr/bin/python3 results/tools/projection.py "$@" --out "$out/bad" > "$out/bad.out" 2> "$out/bad.err" \
      || rc=$?
  if [ "$rc" -eq 0 ] || [ "$(wc -l < "$out/bad.err")" -ne 1 ] ||
     ! grep -q '^projection: error: ' "$out/bad.err"; then
    echo "FAIL: $what: exit $rc, stderr:" >&2
    cat "$out/bad.err" >&2
    exit 1
  fi
  echo "ok: $what -> $(cat "$out/bad.err")"
}
expect_error "empty directory" "$out/empty"
echo "not hdf5" > "$out/junk/run.h5"
expect_error "non-HDF5 results file" "$out/junk"
expect_error "non-HDF5 --spawn file" "$out/runs" --spawn "$out/junk/run.h5"
[ ! -e "$out/bad" ] || { echo "FAIL: output written for bad input" >&2; exit 1; }
echo "projection: all checks passed"
