#!/usr/bin/env bash
# Placement (issue 4, item 3; bench/harness/binding.h), checked in /environment on this 2-core
# machine:
#   1 peer + 2 warm workers, --bind cores: peer on core 0, worker slot 0 on core 1, slot 1
#     unbound and recorded as sharing the node;
#   2 peers: peers on cores 0 and 1, every worker unbound and recorded as such;
#   --bind none: nothing bound, recorded;
#   cold rounds reuse the worker slots (a worker frees its slot when it stops);
# and the placement never changes the mathematics: every run's model equals the baseline's
# (mayfly-compare). A bad --bind value is one error line and exit 2. Report directories of
# finished and of killed runs are removed.
set -euo pipefail
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
# Workers report into $TMPDIR/mayfly-bind.<peer pid>.XXXXXX; a run removes the directories of
# peers that no longer exist (killed runs) and its own at the end.
export TMPDIR=$out/tmp
mkdir -p "$TMPDIR"
sleep 0 &
dead=$!
wait "$dead"
mkdir "$TMPDIR/mayfly-bind.$dead.stale" "$TMPDIR/mayfly-bind.$$.alive"
touch "$TMPDIR/mayfly-bind.$dead.stale/worker-0" "$TMPDIR/mayfly-bind.$dead.stale/worker-0.lock"
cores=$(hwloc-calc --number-of core machine:0 2>/dev/null || echo 0)
if [ "$cores" != 2 ]; then
  echo "binding: this test is written for the 2-core machines (found $cores cores); skipped"
  exit 0
fi
args=(--model mlp --dataset synthetic:1200:200 --batch 64 --tasks 4 --workers 2 --rounds 3
      --seed 11 --eval-every 0)
run() { # name peers extra args...
  local name=$1 np=$2 start=$SECONDS rc=0
  shift 2
  bench/scripts/launch.sh -q -n "$np" -t 90 -- "$MAYFLY_BIN/mayfly-train" "${args[@]}" "$@" \
      -o "$out/$name.h5" > "$out/$name.log" 2> "$out/$name.err" || rc=$?
  echo "run $name ($np peers, $*): exit $rc, $((SECONDS - start)) s" # where a slow run stalled
  [ "$rc" -eq 0 ] || { tail -n 5 "$out/$name.err"; exit 1; }
}
run base1 1 --mode baseline
run base1none 1 --mode baseline --bind none
run warm1 1 --mode warm --bind cores
run none1 1 --mode warm --bind none
run cold1 1 --mode cold
run base2 2 --mode baseline
run warm2 2 --mode warm
grep -q "^# placement (--bind cores): rank 0 .*:cores=0:cpus=0:bound" "$out/warm1.log"
# (mayfly-compare treats --bind as part of the configuration: compare like with like)
for pair in base1:warm1 base1none:none1 base1:cold1 base2:warm2; do
  "$MAYFLY_BIN/mayfly-compare" "$out/${pair%%:*}.h5" "$out/${pair##*:}.h5" > "$out/compare.log"
  grep -q "model check: VALID" "$out/compare.log" || { echo "FAIL: $pair models differ"; exit 1; }
done

left=$(cd "$TMPDIR" && echo mayfly-bind.*)
[ "$left" = "mayfly-bind.$$.alive" ] || { echo "FAIL: report directories left: $left"; exit 1; }

set +e
bench/scripts/launch.sh -q -n 2 -t 60 -- "$MAYFLY_BIN/mayfly-train" --bind foo -o "$out/bad.h5" \
    > "$out/bad.out" 2> "$out/bad.err"
rc=$?
set -e
[ "$rc" -eq 2 ] || { echo "FAIL: --bind foo exited $rc, expected 2"; exit 1; }
if [ "$(grep -c '^mayfly-train: error: --bind' "$out/bad.err")" -ne 1 ] ||
   [ "$(grep -c 'error' "$out/bad.err")" -ne 1 ]; then
  echo "FAIL: --bind foo: expected one error line:"; cat "$out/bad.err"; exit 1
fi
[ ! -e "$out/bad.h5" ] || { echo "FAIL: --bind foo left a results file"; exit 1; }

/usr/bin/python3 - "$out" <<'PY'
import sys, h5py
d = sys.argv[1]
def env(name):
    e = h5py.File(f"{d}/{name}.h5", "r")["/environment"]
    text = lambda v: v.decode() if isinstance(v, bytes) else v
    return {k: [text(x) for x in e[k][()].flat] for k in
            ("peer_binding_plan", "peer_bindings", "worker_binding_plan", "rank_bindings")
            if k in e}, e

# 1 peer, 2 warm workers: peer on core 0, worker slot 0 on core 1, slot 1 shares the node
r, e = env("warm1")
assert r["peer_binding_plan"][0].endswith(":cores=0:cpus=0:bound"), r
assert r["peer_bindings"][0].endswith(":cpus=0:bound"), r
assert r["rank_bindings"][0].endswith(":cpus=0"), r
plan = r["worker_binding_plan"][0]
assert "workers 0-0 on cores 1 (cpus 1), bound" in plan, plan
assert "workers 1 and up unbound: no free core" in plan and "shares" in plan, plan
w = [[x.decode() for x in row] for row in e["worker_bindings"][()]]
assert len(w) == 1 and len(w[0]) == 2, w
assert w[0][0].endswith(":cpus=1:bound"), w
assert w[0][1].endswith(":cpus=0-1:unbound: no free core, shares the node's cores"), w
assert e.attrs["worker_placement"] in (b"Open MPI default mapping (1 node)",
                                       "Open MPI default mapping (1 node)"), e.attrs["worker_placement"]

# cold: a new pool every round, the same two slots (a stopped worker frees its slot)
r, e = env("cold1")
w = [[x.decode() for x in row] for row in e["worker_bindings"][()]]
assert len(w[0]) == 2 and w[0][0].endswith(":cpus=1:bound"), w

# 2 peers on 2 cores: peers on cores 0 and 1, no core left for any worker
r, e = env("warm2")
assert [p.split(":", 1)[1] for p in r["peer_binding_plan"]] == [
    "cores=0:cpus=0:bound", "cores=1:cpus=1:bound"], r
assert [p.split(":", 1)[1] for p in r["peer_bindings"]] == ["cpus=0:bound", "cpus=1:bound"], r
for plan in r["worker_binding_plan"]:
    assert "workers 0 and up unbound: no free core" in plan, plan
w = [[x.decode() for x in row] for row in e["worker_bindings"][()]]
assert len(w) == 2 and all(len(row) == 2 for row in w), w
assert all(x.endswith(":cpus=0-1:unbound: no free core, shares the node's cores")
           for row in w for x in row), w

# --bind none: nothing bound, and every record says so
r, e = env("none1")
assert r["peer_binding_plan"][0].endswith(":cores=none:unbound: --bind none"), r
assert r["peer_bindings"][0].endswith(":cpus=0-1:unbound: --bind none"), r
assert "unbound: --bind none" in r["worker_binding_plan"][0], r
w = [[x.decode() for x in row] for row in e["worker_bindings"][()]]
assert all(x.endswith(":unbound: --bind none") for x in w[0]) and len(w[0]) == 2, w

# baseline: the peer is bound, there are no workers to record
r, e = env("base1")
assert r["peer_bindings"][0].endswith(":cpus=0:bound"), r
assert "worker_bindings" not in e and r["worker_binding_plan"][0].endswith(":no workers"), r
print("binding: peers on their own cores, one worker per free core, the rest recorded as "
      "sharing; --bind none records nothing bound; models equal the baseline's")
PY
