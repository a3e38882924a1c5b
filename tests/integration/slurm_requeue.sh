#!/usr/bin/env bash
# A run whose Slurm time limit is too short finishes through Slurm's warning signal and a
# requeue (issue 14), on the local one-node Slurm: run_slurm.sh --time 1 with
# MAYFLY_SIGNAL_SECONDS=10 submits the job with --signal=B:TERM@10; the run is held after
# round 2 (test hook) so it cannot finish before the signal; on the signal the peers finish
# the round, checkpoint and exit 75, the job requeues itself, the second attempt adds --resume
# by itself and completes. Checked: the first attempt's hold, exit 75 and requeue in the job's
# log (Slurm's output, appended across attempts), one signal checkpoint and one resume at the
# same round in the results file, complete=1, Restarts=1, and /model/parameters,
# /model/buffers, /train/loss and /train/test_accuracy bit-identical to one long job of the
# same configuration (5-minute limit, no hold). Beside it, a job with MAYFLY_MAX_REQUEUES=0
# shows the bound: it checkpoints and exits 75 but is not requeued (Restarts=0, complete=0).
#
# Why the test is fast: Slurm holds a requeued job for AuthInfo cred_expire seconds (default
# 120, Reason=BeginTime) before it may start again; the local cluster sets 10
# (tests/slurm/local_cluster.sh). slurmctld checks time limits every 30 s (not configurable)
# and sends the warning signal once the time left is at most the warning time + 30 s, so with
# a 1-minute limit and 10 s the signal comes 20 to 50 s after a job starts: about 30 s after
# the cluster starts for the first attempt; the second attempt (a few seconds of work) starts
# about 12 s after the requeue and is done long before its own signal. About 55 s in all.
# Use of the local cluster: holds /tmp/mayfly-local-slurm.lock itself (waits for it at most
# 5 minutes), unless a parent process (flock ... tests/run.sh) already holds it.
set -euo pipefail
cd "${MAYFLY_ROOT:-$(dirname "$0")/../..}"
start=$SECONDS
test_name=slurm_requeue
. tests/slurm/test_prelude.sh

# The lock: taken here unless an ancestor of this shell holds it already (else: deadlock).
lock=/tmp/mayfly-local-slurm.lock
exec 9>>"$lock"
if ! flock -n 9; then
  inode=$(stat -c %i "$lock")
  holder=$(awk -v i=":$inode" '$2 == "FLOCK" && substr($6, length($6) - length(i) + 1) == i {print $5}' /proc/locks | head -n 1)
  p=$$ mine=0
  while [ -n "$holder" ] && [ "${p:-0}" -gt 1 ]; do
    [ "$p" = "$holder" ] && { mine=1; break; }
    p=$(awk '/^PPid:/ {print $2}' "/proc/$p/status" 2>/dev/null)
  done
  if [ "$mine" -eq 0 ]; then
    echo "$test_name: waiting for $lock (held by pid ${holder:-?})"
    flock -w 300 9 || fail "$lock still held after 5 minutes"
  fi
fi

state=$(mktemp -d "${TMPDIR:-/tmp}/mayfly-slurm-requeue.XXXXXX")
export MAYFLY_SLURM_DIR=$state/cluster
export SLURM_CONF=$MAYFLY_SLURM_DIR/slurm.conf
cleanup() {
  local rc=$?
  [ -f "$SLURM_CONF" ] && timeout 20 scancel -u "$(id -un)" 2>/dev/null
  tests/slurm/local_cluster.sh stop || true
  if [ $rc -eq 0 ]; then rm -rf "$state"; else echo "$test_name: kept $state for inspection" >&2; fi
}
trap cleanup EXIT

# (9>&-: the daemons must not inherit the lock, it would outlive a test that left one behind)
timeout 120 tests/slurm/local_cluster.sh start 9>&- || fail "local cluster did not start"
grep -q '^AuthInfo=cred_expire=10$' "$SLURM_CONF" || fail "the local cluster lacks cred_expire=10"
echo "cluster up after $((SECONDS - start)) s"

args=(--peers 2 --mode baseline --model mlp --dataset synthetic:2000:500 --batch 64 --tasks 3
      --rounds 10 --seed 7 --eval-every 4 --checkpoint-every 0)
# submit NAME MINUTES ENV...: run_slurm.sh --wait in the background; job id in NAME.id.
submit() {
  local name=$1 minutes=$2
  shift 2
  env "$@" timeout 150 ./run_slurm.sh --wait --time "$minutes" "${args[@]}" -o "$state/$name.h5" \
    >"$state/$name.id" 2>"$state/$name.err" &
}
# The run that is too long for its limit (held after round 2 until the signal), the bound
# (no requeue allowed), and the reference: one long job (5 minutes, no hold).
submit short 1 MAYFLY_TEST_HOLD_AFTER_ROUND=2 MAYFLY_SIGNAL_SECONDS=10 MAYFLY_MAX_REQUEUES=1
short_pid=$!
submit bound 1 MAYFLY_TEST_HOLD_AFTER_ROUND=2 MAYFLY_SIGNAL_SECONDS=10 MAYFLY_MAX_REQUEUES=0
bound_pid=$!
submit long 5 -u MAYFLY_TEST_HOLD_AFTER_ROUND -u MAYFLY_SIGNAL_SECONDS -u MAYFLY_MAX_REQUEUES
long_pid=$!
rc_short=0 rc_bound=0 rc_long=0
wait "$long_pid" || rc_long=$?
wait "$short_pid" || rc_short=$?
wait "$bound_pid" || rc_bound=$?
echo "jobs done after $((SECONDS - start)) s (run_slurm.sh --wait: short $rc_short, bound $rc_bound, long $rc_long)"
[ "$rc_long" -eq 0 ] || fail "the long job: exit $rc_long: $(cat "$state/long.err")"
[ "$rc_short" -eq 0 ] || fail "the requeued job: exit $rc_short: $(cat "$state/short.err")"
[ "$rc_bound" -eq 75 ] || fail "the job without requeues: exit $rc_bound, expected 75: $(cat "$state/bound.err")"

job_id() { grep -xE '[0-9]+' "$state/$1.id" | tail -n 1; } # run_slurm.sh printed it
# job_field NAME FIELD: a field of scontrol show job (MinJobAge=300 keeps ended jobs).
job_field() {
  scontrol show job "$(job_id "$1")" | tr ' ' '\n' | sed -n "s/^$2=//p" | head -n 1
}
for f in "short JobState COMPLETED" "short Restarts 1" "short ExitCode 0:0" \
         "bound JobState FAILED" "bound Restarts 0" "bound ExitCode 75:0" "long Restarts 0"; do
  read -r name field want <<<"$f"
  got=$(job_field "$name" "$field")
  [ "$got" = "$want" ] || fail "$name job: $field=$got, expected $want"
done

echo "requeued job (last attempt): SubmitTime=$(job_field short SubmitTime)" \
  "EligibleTime=$(job_field short EligibleTime) StartTime=$(job_field short StartTime)" \
  "EndTime=$(job_field short EndTime)"

# The job's log (Slurm's output file, appended across attempts): attempt 1 stopped with 75 and
# requeued itself, attempt 2 resumed by itself and succeeded.
job=$(job_id short)
log=$state/short-slurm-$job.out
attempts=$(grep -c "^# slurm job $job " "$log" || true)
[ "$attempts" -eq 2 ] || fail "$attempts attempts in $log, expected 2: $(cat "$log")"
grep -qx '# test hook: holding after round 2' "$log" || fail "the first attempt was not held"
grep -qx '# launch.sh exit code 75' "$log" || fail "no exit 75 in $log: $(cat "$log")"
grep -qx "# checkpointed before the time limit: requeued job $job (1 of 1)" "$log" ||
  fail "no requeue in $log"
grep -qx "# $state/short.h5 has a checkpoint: --resume" "$log" || fail "no --resume in $log"
grep -qx '# launch.sh exit code 0' "$log" || fail "the second attempt did not succeed: $log"
blog=$state/bound-slurm-$(job_id bound).out
grep -qx '# checkpointed before the time limit; not requeued (0 of 0 requeues used): resubmit to continue' \
  "$blog" || fail "the bound job's log does not say it was not requeued: $(cat "$blog")"
[ -e "$state/bound.h5.ckpt" ] || fail "the bound job left no checkpoint to resubmit from"

/usr/bin/python3 - "$state" "$job" <<'PY' || fail "results check failed"
import sys, h5py
state, job = sys.argv[1], sys.argv[2]
ref, run, bound = (h5py.File("%s/%s.h5" % (state, n), "r") for n in ("long", "short", "bound"))
assert ref.attrs["complete"] == 1 and run.attrs["complete"] == 1, "complete != 1"
assert "writes" not in ref.get("/checkpoint", {}), "the long job wrote a checkpoint"
w = run["/checkpoint/writes"][:]
r = run["/checkpoint/resumes"][:]
assert len(w) == 1 and w[0]["reason"] == b"signal", w
assert len(r) == 1 and r[0]["round"] == w[0]["round"], (w, r)
assert 1 <= w[0]["round"] < 10, w
env = run["/environment"].attrs["slurm_job_id"]
assert (env.decode() if isinstance(env, bytes) else str(env)) == job, env
for name in ("/model/parameters", "/model/buffers", "/train/loss", "/train/test_accuracy"):
    a, b = ref[name][:], run[name][:]
    assert a.shape == b.shape and a.tobytes() == b.tobytes(), name + " differs from the long job"
assert run["/train/loss"].shape == (10,)
bw = bound["/checkpoint/writes"][:]
assert bound.attrs["complete"] == 0 and len(bw) == 1 and bw[0]["reason"] == b"signal", bw
assert "resumes" not in bound["/checkpoint"]
print("requeued job %s: signal checkpoint after round %d, resumed there, complete=1, model "
      "bit-identical to the long job; bound job: stopped after round %d, not requeued"
      % (job, w[0]["round"], bw[0]["round"]))
PY
echo "total $((SECONDS - start)) s"
