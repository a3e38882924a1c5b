#!/usr/bin/env bash
# Checkpoint and resume (issue 14): a run killed with SIGKILL (the whole job: launcher, mpirun,
# peers, workers) at three seeded rounds and continued each time with --resume ends with the
# same /model/parameters, /model/buffers and every /train/loss value, bit for bit, as the
# uninterrupted run: baseline, cold and warm on 2 peers, and warm with injected faults. A kill
# in the middle of a checkpoint write (test hook) falls back to the checkpoint before. Every
# bad input (truncated or corrupted checkpoint, one of another model or options, other options
# on the command line, another git revision, no checkpoint, a complete file, starting over a
# resumable file) is one error line, a non-zero exit, and leaves both files untouched.
set -uo pipefail
cd "${MAYFLY_ROOT:-$(dirname "$0")/../..}"
bin=${MAYFLY_BIN:-bin}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failures=0
fail() {
  echo "FAIL [$1] $2"
  failures=$((failures + 1))
}

args=(--model mlp --dataset synthetic:2000:500 --batch 64 --tasks 3 --workers 2 --rounds 10
      --seed 7 --eval-every 4 --checkpoint-every 3)

# train NAME EXTRA...: one bounded run writing $work/NAME.h5; sets rc.
train() {
  local name=$1
  shift
  bench/scripts/launch.sh -q -g 1 -n 2 -t 60 -r 0 -- "$bin/mayfly-train" "${args[@]}" "$@" \
      -o "$work/$name.h5" >>"$work/$name.out" 2>>"$work/$name.err"
  rc=$?
}

# kill_at NAME ROUND EXTRA...: runs until rank 0 holds after ROUND (test hook), then SIGKILLs
# the launcher, mpirun and every process mpirun started (each is its own process group).
kill_at() {
  local name=$1 round=$2
  shift 2
  MAYFLY_TEST_HOLD_AFTER_ROUND=$round bench/scripts/launch.sh -q -g 1 -n 2 -t 60 -r 0 -- "$bin/mayfly-train" \
      "${args[@]}" "$@" -o "$work/$name.h5" >>"$work/$name.out" 2>>"$work/$name.err" &
  local launcher=$! held=0
  for _ in $(seq 400); do
    if grep -q "^# test hook: holding after round $round\$" "$work/$name.out"; then
      held=1
      break
    fi
    sleep 0.1
  done
  local mpirun_pid
  mpirun_pid=$(pgrep -f "^mpirun .*$work/$name.h5" | head -n 1)
  if [ -n "$mpirun_pid" ]; then
    # shellcheck disable=SC2046
    kill -KILL "$launcher" "$mpirun_pid" $(pgrep -P "$mpirun_pid") 2>/dev/null
  else
    kill -KILL "$launcher" 2>/dev/null
  fi
  wait "$launcher" 2>/dev/null
  [ "$held" -eq 1 ] || fail "$name" "never held after round $round"
}

# same_model REFERENCE NAME: final model and every loss bit-identical, complete, one record.
same_model() {
  /usr/bin/python3 - "$work/$1.h5" "$work/$2.h5" "$3" <<'PY' || fail "$2" "differs from $1"
import sys, h5py, numpy as np
ref, run, resumes = h5py.File(sys.argv[1], "r"), h5py.File(sys.argv[2], "r"), int(sys.argv[3])
assert run.attrs["complete"] == 1
for name in ("/model/parameters", "/model/buffers", "/train/loss", "/train/test_accuracy",
             "/train/eval_round"):
    a, b = ref[name][:], run[name][:]
    assert a.shape == b.shape and a.tobytes() == b.tobytes(), (name, a, b)
assert run["/train/loss"].shape == (10,)
assert run["/timing/round"].shape == (10, 2)
t = run["/timing/tasks"][:]
ok = t[t["status"] == 0]
assert len(ok) == 10 * 2 * 3, len(ok)              # every task of every round once
assert (np.diff(t["round"]) >= 0).all()            # one continuous record, in round order
r = run["/checkpoint/resumes"][:] if resumes else []
assert len(r) == resumes, (len(r), resumes)
print(sys.argv[2].split("/")[-1], "== reference; resumes at rounds",
      [int(x) for x in (r["round"] if resumes else [])])
PY
}

# 1. Three seeded kills, then a resume to the end, per mode.
RANDOM=14
for mode in baseline cold warm; do
  train "ref_$mode" --mode "$mode"
  [ "$rc" -eq 0 ] || fail "ref_$mode" "exit $rc"
  # three distinct rounds in 4..9, ascending, a kill after each; checkpoints every 3 rounds,
  # so every kill but one right after a checkpoint loses rounds that are redone
  rounds=$(for _ in 1 2 3 4 5 6; do echo $((RANDOM % 6 + 4)); done | sort -nu | head -n 3)
  [ "$(echo "$rounds" | wc -l)" -eq 3 ] || rounds=$'4\n6\n8'
  first=1
  for r in $rounds; do
    if [ "$first" -eq 1 ]; then
      kill_at "$mode" "$r" --mode "$mode"
      first=0
    else
      kill_at "$mode" "$r" --mode "$mode" --resume
    fi
  done
  train "$mode" --mode "$mode" --resume
  [ "$rc" -eq 0 ] || fail "$mode" "final --resume exit $rc: $(grep error "$work/$mode.err")"
  same_model "ref_$mode" "$mode" 3
  [ -e "$work/$mode.h5.ckpt" ] && fail "$mode" "checkpoint left after the complete run"
  echo "$mode: killed after rounds $(echo $rounds)"
done

# 2. Injected faults (warm, failing attempts retried): still the fault-free model.
kill_at faults 7 --mode warm --inject-failures 0.3 --failure-seed 3
train faults --mode warm --inject-failures 0.3 --failure-seed 3 --resume
[ "$rc" -eq 0 ] || fail faults "resume exit $rc"
same_model ref_baseline faults 1
/usr/bin/python3 -c "
import h5py, sys; t = h5py.File('$work/faults.h5', 'r')['/timing/tasks'][:]
sys.exit(0 if (t['status'] != 0).sum() > 0 else 1)" || fail faults "no failed attempt recorded"

# 3. A kill in the middle of the second checkpoint's write: the first one (round 3) is used.
MAYFLY_TEST_CHECKPOINT_KILL=2 train midwrite --mode baseline
[ "$rc" -ne 0 ] || fail midwrite "the hook did not kill"
[ -e "$work/midwrite.h5.ckpt.tmp" ] || fail midwrite "no half-written checkpoint left"
train midwrite --mode baseline --resume
grep -q "^# resumed from .* at round 3 " "$work/midwrite.out" ||
  fail midwrite "did not resume at round 3: $(grep '^# resumed' "$work/midwrite.out")"
same_model ref_baseline midwrite 1

# 4. SIGTERM (Slurm's warning signal before the time limit, --signal=B:TERM to the job shell of
# run_slurm.sh): the peers finish the round, checkpoint, and the job exits 75 (resumable); the
# job run again on the unfinished file resumes by itself (here without round checkpoints:
# those options may differ between attempts) and completes.
job=(./run_slurm.sh --job-single "$PWD" 2 60 "$work/term.h5" -- "${args[@]}" --mode baseline
     --checkpoint-every 0)
MAYFLY_TEST_HOLD_AFTER_ROUND=4 "${job[@]}" >"$work/term.out" 2>"$work/term.err" &
job_shell=$!
for _ in $(seq 400); do
  grep -q "^# test hook: holding after round 4$" "$work/term.out" && break
  kill -0 "$job_shell" 2>/dev/null || break
  sleep 0.1
done
kill -TERM "$job_shell"
wait "$job_shell"
rc=$?
[ "$rc" -eq 75 ] || fail term "exit $rc after SIGTERM, expected 75: $(cat "$work/term.err")"
# (stdout and stderr turn non-blocking on a stop signal and may drop lines: read the file)
/usr/bin/python3 - "$work/term.h5" <<'PY' || fail term "no signal checkpoint recorded"
import sys, h5py
f = h5py.File(sys.argv[1], "r")
w = f["/checkpoint/writes"][:]
assert len(w) == 1 and w[0]["round"] == 5 and w[0]["reason"] == b"signal", w
assert f.attrs["complete"] == 0 and f.attrs["interrupted"] in (b"SIGTERM", "SIGTERM")
assert f["/train/loss"].shape == (5,)
PY
"${job[@]}" >>"$work/term.out" 2>>"$work/term.err"
rc=$?
[ "$rc" -eq 0 ] || fail term "the second job exit $rc: $(grep error "$work/term.err")"
grep -q "has a checkpoint: --resume" "$work/term.out" || fail term "the second job did not resume"
same_model ref_baseline term 1

# 5. Bad input. refused NAME PATTERN EXTRA...: a --resume (or plain) run on $work/bad.h5
# fails with exactly one error line matching PATTERN and changes neither file.
kill_at bad 5 --mode baseline # bad.h5: 5 rounds, checkpoint at round 3
cp "$work/bad.h5" "$work/bad.h5.orig"
cp "$work/bad.h5.ckpt" "$work/bad.ckpt.orig"
refused() {
  local name=$1 pattern=$2
  shift 2
  local before
  before=$(cat "$work/bad.h5" "$work/bad.h5.ckpt" 2>/dev/null | md5sum)
  : >"$work/bad.err"
  train bad --mode baseline "$@"
  local lines
  lines=$(grep -c '^mayfly-train: error:' "$work/bad.err")
  [ "$rc" -ne 0 ] || fail "$name" "exit 0"
  [ "$lines" -eq 1 ] || fail "$name" "$lines error lines"
  grep -qE "^mayfly-train: error: .*$pattern" "$work/bad.err" ||
    fail "$name" "no '$pattern' line: $(grep error "$work/bad.err" | head -n 2)"
  [ "$(cat "$work/bad.h5" "$work/bad.h5.ckpt" 2>/dev/null | md5sum)" = "$before" ] ||
    fail "$name" "a file changed"
  echo "$name: $(grep '^mayfly-train: error:' "$work/bad.err" | cut -c1-150)"
}
restore() { cp "$work/bad.h5.orig" "$work/bad.h5"; cp "$work/bad.ckpt.orig" "$work/bad.h5.ckpt"; }

refused start_over "has a checkpoint .*--resume continues the run, --force starts it over"
refused other_options "was written with other options: --lr 0.05 \(now 0.1\)" --resume --lr 0.1
size=$(stat -c %s "$work/bad.h5.ckpt")
truncate -s $((size / 2)) "$work/bad.h5.ckpt"
refused truncated "checkpoint .* is truncated or not an HDF5 file" --resume
restore
# one flipped byte inside the stored weights: HDF5 reads it, the CRC-32 does not match
/usr/bin/python3 - "$work/bad.h5.ckpt" <<'PY'
import sys, h5py
with h5py.File(sys.argv[1], "r") as f:
    d = f["0.weight"] if "0.weight" in f else f[sorted(k for k in f if k.endswith("weight"))[0]]
    offset = d.id.get_offset() + 1001
with open(sys.argv[1], "r+b") as raw:
    raw.seek(offset)
    b = raw.read(1)
    raw.seek(offset)
    raw.write(bytes([b[0] ^ 0x40]))
PY
refused corrupted "fails its CRC-32 check" --resume
restore
kill_at other_model 4 --mode baseline --model cnn
cp "$work/other_model.h5.ckpt" "$work/bad.h5.ckpt"
refused other_model "is of model 'cnn', the run trains 'mlp'" --resume
kill_at other_run 4 --mode baseline
cp "$work/other_run.h5.ckpt" "$work/bad.h5.ckpt"
refused other_run "belongs to another run" --resume
kill_at other_opts 4 --mode baseline --lr 0.1
cp "$work/other_opts.h5.ckpt" "$work/bad.h5.ckpt"
refused other_ckpt_options "checkpoint .* was written with other options: --lr 0.1 \(now 0.05\)" \
    --resume
restore
/usr/bin/python3 -c "
import h5py, numpy as np; f = h5py.File('$work/bad.h5.ckpt', 'r+'); f.attrs['git_revision'] = np.bytes_('abc123')"
refused other_revision "git revision abc123.*--resume-any-revision" --resume
train bad --mode baseline --resume --resume-any-revision
[ "$rc" -eq 0 ] || fail any_revision "--resume-any-revision exit $rc"
same_model ref_baseline bad 1
refused complete "is complete: nothing to resume" --resume
restore
rm "$work/bad.h5.ckpt"
refused no_checkpoint "has no checkpoint .*is missing" --resume

echo "$failures failed"
[ "$failures" -eq 0 ]
