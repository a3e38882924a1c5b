#!/usr/bin/env bash
# The Slurm path end to end on a local one-node cluster: start it (installing Slurm if
# needed), submit bench/sweeps/smoke as job arrays with run_slurm.sh --wait, check that every
# configuration left a complete results file, draw the figures from them, stop the cluster.
# Catches what unit tests cannot: sbatch option and quoting mistakes, mpirun inside an
# allocation (spawn needs slots), array task -> configuration mapping, the figure pipeline on
# real files; the sbatch template (bench/slurm/mayfly.sbatch) submitted as it is, beside.
# Bounded: the sweep by `timeout`, the whole test well under 4 minutes.
set -euo pipefail
cd "${MAYFLY_ROOT:-$(dirname "$0")/../..}"
start=$SECONDS
test_name=slurm_smoke
. tests/slurm/test_prelude.sh

state=$(mktemp -d "${TMPDIR:-/tmp}/mayfly-slurm-smoke.XXXXXX")
out=$state/results
export MAYFLY_SLURM_DIR=$state/cluster
export SLURM_CONF=$MAYFLY_SLURM_DIR/slurm.conf
cleanup() {
  local rc=$?
  [ -n "${SLURM_CONF:-}" ] && [ -f "$SLURM_CONF" ] && scancel --name=mayfly-smoke 2>/dev/null
  tests/slurm/local_cluster.sh stop || true
  if [ $rc -eq 0 ]; then rm -rf "$state"; else echo "slurm_smoke: kept $state for inspection" >&2; fi
}
trap cleanup EXIT

timeout 120 tests/slurm/local_cluster.sh start || fail "local cluster did not start"
echo "cluster up after $((SECONDS - start)) s"

# A bad sweep file: every bad line named with file:line, exit 2, nothing submitted.
bad=$state/bad
# shellcheck disable=SC2016 # the $(...) is data, it must not expand
printf 'default: peers=2\nok: model=mlp\nok: model=cnn\nx: modle=mlp\ny: model=$(touch%s)\nno colon\n' \
  "$state/pwned" >"$bad"
set +e
./run_slurm.sh --sweep "$bad" --output "$out" >"$state/bad.log" 2>&1
rc=$?
set -e
[ $rc -eq 2 ] || fail "bad sweep: exit code $rc, expected 2"
for line in 3 4 5 6; do
  grep -q "^$bad:$line: error: " "$state/bad.log" || fail "bad sweep: no error for line $line"
done
[ -z "$(squeue -h)" ] || fail "bad sweep: something was submitted"
[ ! -e "$out/bad" ] || fail "bad sweep: created $out/bad"

# Option values travel as data: a command substitution reaches mayfly-train as a string.
marker=$state/pwned
set +e
timeout 60 ./run_slurm.sh --wait --rounds 1 --model "\$(touch $marker)" -o "$state/inject.h5" \
  >"$state/inject.log" 2>&1
rc=$?
set -e
[ $rc -ne 0 ] || fail "a job with model '\$(touch ...)' succeeded"
[ ! -e "$marker" ] || fail "shell injection: $marker was created"
grep -qF "'\$(touch $marker)' is not a model" "$state"/inject-slurm-*.out ||
  fail "the job did not pass the value through literally (see $state/inject-slurm-*.out)"
echo "bad sweep and injection checks passed after $((SECONDS - start)) s"

# The sbatch template as users submit it (its default request: 6 tasks, no oversubscription
# needed on this node), a short run; it runs beside the sweep and is checked after it.
template=$(sbatch --parsable --output="$state/template-%j.out" \
  --export=ALL,MAYFLY_DATASET=synthetic:1024:256,MAYFLY_ROUNDS=2,MAYFLY_RESULTS="$state/template.h5" \
  bench/slurm/mayfly.sbatch)

sweep_start=$SECONDS
timeout 170 ./run_slurm.sh --sweep bench/sweeps/smoke --output "$out" --wait ||
  { for f in "$out"/smoke/logs/*.log; do echo "== $f"; tail -n 5 "$f"; done; fail "sweep failed"; }
echo "smoke sweep took $((SECONDS - sweep_start)) s"

expected=$(grep -cE '^[[:space:]]*[A-Za-z0-9_.-]+[[:space:]]*:' bench/sweeps/smoke)
expected=$((expected - $(grep -cE '^[[:space:]]*default[[:space:]]*:' bench/sweeps/smoke)))
/usr/bin/python3 - "$out/smoke" "$expected" <<'PY' || fail "results check failed"
import glob, os, sys, h5py
directory, expected = sys.argv[1], int(sys.argv[2])
files = sorted(glob.glob(os.path.join(directory, "*.h5")))
assert len(files) == expected, "expected %d results files, found %d: %s" % (expected, len(files), files)
seen = set()
for path in files:
    with h5py.File(path, "r") as f:
        assert f.attrs["complete"] == 1, path + ": complete != 1"
        assert f.attrs["suite"] in (b"mayfly", "mayfly"), path
        job = f["/environment"].attrs["slurm_job_id"]
        job = job.decode() if isinstance(job, bytes) else str(job)
        assert job, path + ": not run inside a Slurm job (empty slurm_job_id)"
        config = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in f["/config"].attrs.items()}
        name = os.path.basename(path)[:-len("-r1.h5")]
        assert name.startswith(config["model"] + "-") and name.endswith(config["mode"]), \
            "%s holds model=%s mode=%s" % (path, config["model"], config["mode"])
        assert f["/timing/compute"].shape == (3, 2), f["/timing/compute"].shape
        seen.add((config["model"], config["mode"]))
assert len(seen) == expected, seen
print("%d complete results files: %s" % (len(files), sorted(seen)))
PY

await_job "$template" 60 || true # the template's job: at most a minute more (checked below)
grep -q "^# mayfly job $template .*: 6 tasks for 6, cores shared: no$" "$state/template-$template.out" &&
  grep -q '(launch.sh exit code 0)$' "$state/template-$template.out" ||
  { cat "$state/template-$template.out"; fail "the sbatch template's job failed"; }
/usr/bin/python3 -c 'import sys, h5py; f = h5py.File(sys.argv[1], "r"); assert f.attrs["complete"] == 1' \
  "$state/template.h5" || fail "the sbatch template's results are not complete"
echo "sbatch template: complete=1 (job $template)"

make --no-print-directory figures RESULTS="$out" || fail "make figures failed"
pngs=$(find "$out/figures" -name '*.png' -size +1k | wc -l)
[ "$pngs" -ge 3 ] || fail "only $pngs PNG files in $out/figures"
[ -s "$out/figures/summary.md" ] || fail "no summary.md"
grep -q 'cold w2' "$out/figures/summary.md" || fail "summary.md lacks the cold runs"
echo "$pngs figures; total $((SECONDS - start)) s"
