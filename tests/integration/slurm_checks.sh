#!/usr/bin/env bash
# run_slurm.sh's checks against the cluster and the sbatch template, on a local one-node Slurm
# whose node declares 2 CPUs (one cluster start for every case):
#   - the smoke sweep's cold arrays (6 tasks) are refused before submission, one clear line
#     each (needs, has, what fits), nothing queued, nothing created; --dry-run shows the same
#     checks; --oversubscribe fits;
#   - a job pending for a reason that cannot clear (PartitionConfig: what sbatch accepts for
#     6 tasks on 2 CPUs) is reported and cancelled by the bounded wait within seconds;
#   - a job submitted while the node is drained passes the check (the node may come back),
#     pends (ReqNodeNotAvail) and is reported and cancelled after --node-wait;
#   - bench/slurm/mayfly.sbatch, submitted with 2 tasks, runs with workers sharing cores
#     and completes (complete=1); with MAYFLY_OVERSUBSCRIBE=0 it refuses to start.
# Use of the local cluster: hold /tmp/mayfly-local-slurm.lock (tests/run.sh runs one test at
# a time; by hand: flock /tmp/mayfly-local-slurm.lock env MAYFLY_TESTS=slurm_checks tests/run.sh).
set -euo pipefail
cd "${MAYFLY_ROOT:-$(dirname "$0")/../..}"
start=$SECONDS
test_name=slurm_checks
. tests/slurm/test_prelude.sh

state=$(mktemp -d "${TMPDIR:-/tmp}/mayfly-slurm-checks.XXXXXX")
out=$state/results
export MAYFLY_SLURM_DIR=$state/cluster MAYFLY_SLURM_CPUS=2
export SLURM_CONF=$MAYFLY_SLURM_DIR/slurm.conf
cleanup() {
  local rc=$?
  [ -f "$SLURM_CONF" ] && timeout 20 scancel -u "$(id -un)" 2>/dev/null
  tests/slurm/local_cluster.sh stop || true
  if [ $rc -eq 0 ]; then rm -rf "$state"; else echo "slurm_checks: kept $state for inspection" >&2; fi
}
trap cleanup EXIT

timeout 120 tests/slurm/local_cluster.sh start || fail "local cluster did not start"
node=$(sinfo -h -N -o %N | head -n 1)
[ "$(sinfo -h -N -o %c | head -n 1)" = 2 ] || fail "the node does not declare 2 CPUs"
echo "cluster up (node $node, 2 CPUs) after $((SECONDS - start)) s"

# Polls until no job of ours is queued, at most $1 seconds.
queue_empty_within() {
  local i
  for ((i = 0; i < $1 * 2; i++)); do
    [ -z "$(squeue -h -u "$(id -un)" -t PD,R,CG)" ] && return 0
    sleep 0.5
  done
  return 1
}
# The bounded wait of run_slurm.sh on job ids, as a function of its own.
wait_jobs() { # max_seconds node_grace label=jobid...
  bash -c '. bench/slurm/submit_checks.sh; note() { echo "run_slurm: $*" >&2; }
    slurm_wait_jobs "$@"; echo "worst=$slurm_wait_worst"' _ "$@"
}

# The template with 2 tasks (its cold configuration needs 6): runs while the checks below
# run, its workers sharing the peers' cores.
template=$(sbatch --parsable --ntasks=2 --time=10 --output="$state/template-%j.out" \
  --export=ALL,MAYFLY_DATASET=synthetic:1024:256,MAYFLY_BATCH=32,MAYFLY_TASKS=2,MAYFLY_ROUNDS=3,MAYFLY_RESULTS="$state/template.h5" \
  bench/slurm/mayfly.sbatch)

# 1. Impossible arrays: refused before submission, one line each, nothing queued or created.
set +e
timeout 60 ./run_slurm.sh --sweep bench/sweeps/smoke --output "$out" --wait >"$state/refused.log" 2>&1
rc=$?
set -e
cat "$state/refused.log"
[ $rc -eq 2 ] || fail "impossible sweep: exit code $rc, expected 2"
line="run_slurm: error: array 6x10 (2 runs: cnn-cold mlp-cold): needs 6 tasks (2 peers x (1 + 2 workers)) for 10 min; partition debug has 1 node(s), 2 CPUs for one job; fits with: --oversubscribe (2 tasks: workers share the peers' cores), or more nodes (a partition with 3 nodes of 2 CPUs)"
grep -qxF "$line" "$state/refused.log" || fail "impossible sweep: no line '$line'"
[ "$(grep -c '^run_slurm: error: array' "$state/refused.log")" -eq 1 ] ||
  fail "impossible sweep: expected exactly one refused array (2x10 fits)"
grep -q '^check: array 2x10 (2 runs: [a-z -]*): fits partition debug' "$state/refused.log" ||
  fail "impossible sweep: the baseline array's check outcome is missing"
grep -q '^run_slurm: error: 1 request(s) cannot run on this cluster (see above); nothing submitted$' \
  "$state/refused.log" || fail "impossible sweep: no final refusal line"
[ "$(squeue -h -u "$(id -un)" | grep -vc "^ *$template ")" -eq 0 ] || fail "impossible sweep: something was submitted"
[ ! -e "$out/smoke" ] || fail "impossible sweep: created $out/smoke"

# --dry-run runs the same checks; with --oversubscribe the cold arrays need 2 tasks and fit.
set +e
./run_slurm.sh --sweep bench/sweeps/smoke --output "$out" --dry-run >"$state/dry.log" 2>"$state/dry.err"
rc=$?
set -e
[ $rc -eq 2 ] && grep -qxF "$line" "$state/dry.err" || fail "dry run: exit $rc, or no refusal line"
grep -q '^would run: sbatch ' "$state/dry.log" || fail "dry run: no plan printed"
./run_slurm.sh --sweep bench/sweeps/smoke --output "$out" --dry-run --oversubscribe >"$state/dry2.log" ||
  fail "dry run with --oversubscribe was refused"
[ "$(grep -c '^check: array 2x10 (4 runs: .*): fits partition debug' "$state/dry2.log")" -eq 1 ] ||
  fail "dry run with --oversubscribe: expected one fitting 2-task array"
set +e
./run_slurm.sh --dry-run --peers 3 --mode baseline --time 5 >"$state/peers.log" 2>&1
rc=$?
set -e
grep -qF 'run_slurm: error: job (baseline, 3 peers): needs 3 tasks (3 peers) for 5 min; partition debug has 1 node(s), 2 CPUs for one job; fits with: peers=2 or fewer, or more nodes' \
  "$state/peers.log" && [ $rc -eq 2 ] || { cat "$state/peers.log"; fail "3 baseline peers on 2 CPUs not refused"; }
echo "refusals checked after $((SECONDS - start)) s"

# 2. What sbatch itself accepts (6 tasks on 2 CPUs) pends for ever: the wait cancels it.
raw=$(sbatch --parsable --ntasks=6 --time=5 --output=/dev/null --wrap=true)
t0=$SECONDS
wait_jobs 60 300 "raw=$raw" >"$state/hopeless.log" 2>&1 || true
cat "$state/hopeless.log"
grep -qF "run_slurm: error: job $raw (raw) is pending with reason 'PartitionConfig', and it cannot clear: cancelled" \
  "$state/hopeless.log" || fail "PartitionConfig job not reported"
grep -qx 'worst=1' "$state/hopeless.log" || fail "a cancelled job must count as failed"
[ $((SECONDS - t0)) -le 20 ] || fail "the PartitionConfig job was cancelled after $((SECONDS - t0)) s"
[ -z "$(squeue -h -j "$raw" -t PD 2>/dev/null)" ] || fail "job $raw still pending"

# 3. The template's run (started above): complete results, workers sharing cores.
wait_jobs 150 300 "template=$template" >"$state/template-wait.log" 2>&1 ||
  { cat "$state/template-wait.log" "$state"/template-*.out; fail "template job failed"; }
grep -q '^# mayfly job .*: 2 tasks for 6, cores shared: yes$' "$state/template-$template.out" ||
  fail "the template did not say its workers share cores"
/usr/bin/python3 - "$state/template.h5" "$template" <<'PY' || fail "template results check failed"
import sys, h5py
with h5py.File(sys.argv[1], "r") as f:
    assert f.attrs["complete"] == 1, "complete != 1"
    job = f["/environment"].attrs["slurm_job_id"]
    job = job.decode() if isinstance(job, bytes) else str(job)
    assert job == sys.argv[2], "slurm_job_id %r, expected %s" % (job, sys.argv[2])
    mode = f["/config"].attrs["mode"]
    assert (mode.decode() if isinstance(mode, bytes) else mode) == "cold", mode
    assert f["/timing/compute"].shape == (3, 2), f["/timing/compute"].shape
print("template: complete=1, job %s, cold, 3 rounds x 2 peers" % sys.argv[2])
PY
strict=$(sbatch --parsable --ntasks=2 --time=5 --output="$state/strict-%j.out" \
  --export=ALL,MAYFLY_OVERSUBSCRIBE=0 bench/slurm/mayfly.sbatch)
wait_jobs 60 300 "strict=$strict" >/dev/null 2>&1 || true
grep -qxF 'mayfly.sbatch: error: the allocation has 2 tasks, cold with 2 peers x (1 + 2 workers) needs 6 (sbatch --ntasks=6, or MAYFLY_OVERSUBSCRIBE=1)' \
  "$state/strict-$strict.out" || { cat "$state/strict-$strict.out"; fail "MAYFLY_OVERSUBSCRIBE=0 with 2 tasks not refused"; }
echo "template checked after $((SECONDS - start)) s"

# 4. A drained node: the request fits the partition, so it is submitted; it pends
#    (ReqNodeNotAvail) and is cancelled once the node has stayed unavailable for --node-wait.
queue_empty_within 30 || fail "jobs still queued before the drain case"
scontrol update nodename="$node" state=drain reason=slurm_checks
t0=$SECONDS
set +e
timeout 90 ./run_slurm.sh --wait --node-wait 4 --mode baseline --rounds 1 --time 5 \
  -o "$state/drained.h5" >"$state/drained.log" 2>&1
rc=$?
set -e
scontrol update nodename="$node" state=resume
cat "$state/drained.log"
[ $rc -ne 0 ] && [ $rc -ne 124 ] || fail "drained node: exit code $rc"
grep -q '^check: job (baseline, 2 peers): fits partition debug, but only 0 of its CPUs are up now' \
  "$state/drained.log" || fail "drained node: the check did not say the nodes are down"
grep -qE "^run_slurm: error: job [0-9]+ \(baseline run\) is pending with reason '(ReqNodeNotAvail|Nodes required for job are DOWN)[^']*', and partition debug has had 0 usable CPUs \(state UP\) for 4 s, the job needs 2: cancelled$" \
  "$state/drained.log" || fail "drained node: the pending job was not reported and cancelled"
[ $((SECONDS - t0)) -le 40 ] || fail "drained node: took $((SECONDS - t0)) s"
queue_empty_within 10 || fail "drained node: a job is still queued"
[ ! -e "$state/drained.h5" ] || fail "drained node: a results file appeared"
echo "total $((SECONDS - start)) s"
