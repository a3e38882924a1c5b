#!/usr/bin/env bash
# run_slurm.sh's sweeps on a real multi-node Slurm (tests/slurm/virtual_cluster.sh, 3 nodes of
# 4 CPUs, each with its own host name and /tmp): the `nodes=` and `placement=` keys give every
# configuration the resources its placement needs (issue 12, part 6).
#   - bad lines are refused before anything is submitted, one FILE:LINE error each, and a layout
#     the cluster cannot hold (4 nodes of 3) by the pre-submission check;
#   - a sweep with nodes=3 (baseline, cold and warm remote, cold any) and nodes=2 (cold local)
#     runs to the end: every results file complete; remote and any workers never on the peers'
#     mfnode1; local workers on their own peer's node, with the peers one per node; baseline on
#     one node; every serverless model bit-identical to the baseline's.
# Skips (exit 0, "SKIP") when the virtual cluster is not in this tree. Holds
# /tmp/mayfly-local-slurm.lock (the test clusters share ports). Every wait is bounded.
set -euo pipefail
cd "${MAYFLY_ROOT:-$(dirname "$0")/../..}"
start=$SECONDS
test_name=sweep_cluster
. tests/slurm/vcluster_test.sh
vcluster_test_start 3
sweeps=$state/sweeps # apart from the results: DIR/<sweep name>/ is a sweep's output
mkdir "$sweeps"

# Refused lines: every error listed, nothing submitted.
cat >"$sweeps/bad" <<'EOF'
default: peers=2 mode=cold workers=2
remote-one-node: placement=remote nodes=1
remote-no-nodes: placement=remote
local-too-many: placement=local nodes=3
zero-nodes: nodes=0
EOF
set +e
./run_slurm.sh --sweep "$sweeps/bad" --dry-run >"$state/bad.out" 2>&1
rc=$?
set -e
cat "$state/bad.out"
[ "$rc" -eq 2 ] || fail "bad sweep: exit $rc, 2 expected"
for expect in "bad:2: error: placement=remote needs nodes >= 2, not 1" \
              "bad:3: error: placement=remote needs nodes=N" \
              "bad:4: error: placement=local with nodes=3 and 2 peers leaves nodes without a peer" \
              "bad:5: error: nodes: '0' is not a positive count" \
              "4 error(s); nothing submitted"; do
  grep -qF "$expect" "$state/bad.out" || fail "bad sweep: no line '$expect'"
done

# A layout no partition of this cluster holds: the check refuses it, nothing is submitted.
echo "too-wide: peers=2 mode=cold workers=2 placement=remote nodes=4" >"$sweeps/wide"
set +e
timeout 60 ./run_slurm.sh --sweep "$sweeps/wide" --output "$state" >"$state/wide.out" 2>&1
rc=$?
set -e
cat "$state/wide.out"
[ "$rc" -eq 2 ] || fail "4-node sweep on 3 nodes: exit $rc, 2 expected"
grep -qF "needs 4 nodes of 2 tasks (2 peers and their workers)" "$state/wide.out" ||
  fail "4-node sweep: the refusal does not say what the layout needs"
[ ! -e "$state/wide/logs" ] || fail "4-node sweep: something was submitted"

cat >"$sweeps/nodes3" <<'EOF'
default: peers=2 dataset=synthetic:1024:256 batch=32 tasks=4 workers=2 rounds=3 eval-every=0 seed=7 reps=1 nodes=3 placement=remote spawn-timeout=30 task-timeout=30 time=5
base:        mode=baseline
cold-remote: mode=cold
warm-remote: mode=warm
cold-any:    mode=cold placement=any
cold-local:  mode=cold placement=local nodes=2
EOF
timeout 300 ./run_slurm.sh --sweep "$sweeps/nodes3" --output "$state" --wait --max-wait 4 \
  >"$state/sweep.out" 2>&1 || { cat "$state/sweep.out"; tail -n 20 "$state"/nodes3/logs/*.log; fail "the sweep failed"; }
cat "$state/sweep.out"
grep -qF "array 3n2x5 (3 runs, 3 nodes x 2 tasks, 5 min)" "$state/sweep.out" ||
  fail "remote and any at nodes=3 are not one array of 3 nodes x 2 tasks"
grep -qF "array 2n3+nodex5 (1 runs, 2 nodes x 3 tasks, peers by node, 5 min)" "$state/sweep.out" ||
  fail "local at nodes=2 is not 2 nodes x 3 tasks with the peers by node"
grep -qF "array 1n2x5 (1 runs, 1 nodes x 2 tasks, 5 min)" "$state/sweep.out" ||
  fail "baseline does not ask for the peers' node alone"

for name in cold-remote warm-remote cold-any cold-local; do
  same_model "$state/nodes3/base-r1.h5" "$state/nodes3/$name-r1.h5"
done

/usr/bin/python3 - "$state/nodes3" <<'PY'
import sys, h5py
out = sys.argv[1]
def text(v): return v.decode() if isinstance(v, bytes) else str(v)
def load(name): return h5py.File(f"{out}/{name}-r1.h5", "r")
def peer_hosts(f): return [text(b).split(":")[0] for b in f["/environment/rank_bindings"][:]]
for name in ("base", "cold-remote", "warm-remote", "cold-any", "cold-local"):
    f = load(name)
    assert int(f.attrs["complete"]) == 1, name
    tasks = f["/timing/tasks"][:]
    assert len(tasks) == 3 * 2 * 4 and (tasks["status"] == 0).all(), name
    hosts = [text(h) for h in tasks["host"]]
    peers = peer_hosts(f)
    if name in ("cold-local", "base"):   # 2 and 1 of the 3 nodes, whichever Slurm gives
        assert (peers[0] != peers[1]) == (name == "cold-local"), (name, peers)  # --map-by node
        assert all(h == peers[p] for h, p in zip(hosts, tasks["peer"])), (name, hosts)
        continue
    assert peers == ["mfnode1", "mfnode1"], (name, peers)         # by slot: node 1 first
    assert set(hosts) == {"mfnode2", "mfnode3"}, (name, set(hosts))
print("sweep layout checks passed")
PY
echo "$test_name: passed in $((SECONDS - start)) s"
