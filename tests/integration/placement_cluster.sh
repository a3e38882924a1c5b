#!/usr/bin/env bash
# Worker placement on a real multi-node Slurm (tests/slurm/virtual_cluster.sh, 3 nodes, each
# with its own host name and private /tmp), one sbatch -N 3 --ntasks-per-node=2 job with both
# peers on mfnode1 (mpirun -np 2 fills the first node's slots):
#   - --placement remote, cold and warm, on fashion-mnist (gzip, staged into each node's own
#     /tmp by the first worker there: the staged files are found on mfnode2 and mfnode3):
#     every task row's host is mfnode2 or mfnode3, never the peers' mfnode1, and baseline, cold
#     and warm give bit-identical models (mayfly-compare);
#   - data only in mfnode1's private /tmp (idx:/tmp/fm): the remote workers cannot stage it and
#     the run ends (exit 1) with an error line per peer naming the worker's node and the path;
#   - --placement any, --workers auto: no free slot is left beside the peers, so every worker
#     runs on mfnode2/mfnode3, on at least two hosts, and no host runs more workers in a round
#     than /pool/host_slots gives it.
# Skips (exit 0, "SKIP") when the virtual cluster is not in this tree. Holds
# /tmp/mayfly-local-slurm.lock (the test clusters share ports). Every wait is bounded.
set -euo pipefail
cd "${MAYFLY_ROOT:-$(dirname "$0")/../..}"
start=$SECONDS
test_name=placement_cluster
. tests/slurm/vcluster_test.sh
vcluster_test_start 3

cat >"$state/job.sh" <<JOB
#!/usr/bin/env bash
cd "$PWD"
run() { # name, mayfly-train options...
  local name=\$1 t0=\$SECONDS; shift
  bench/scripts/launch.sh -q -n 2 -t 60 -r 1 -- "$bin/mayfly-train" --model mlp --dataset fashion-mnist \
      --batch 64 --tasks 4 --rounds 3 --seed 11 --eval-every 0 --spawn-timeout 30 \
      --task-timeout 30 -o "$state/\$name.h5" "\$@" >"$state/\$name.log" 2>&1
  local rc=\$?
  echo "\$name exit \$rc"
  echo "\$name took \$((SECONDS - t0)) s"
}
echo "batch \$(hostname)"
run baseline --mode baseline
run remote_cold --mode cold --placement remote --workers 2
run remote_warm --mode warm --placement remote --workers 2
run any_auto --mode cold --placement any --workers auto
# data only in the peers' node's private /tmp: the remote workers cannot stage it, and the run
# stops with the worker's node and the path in its error
mkdir -p /tmp/fm && cp /usr/share/datasets/fashion-mnist/*.gz /tmp/fm/
run private_data --mode cold --placement remote --workers 2 --max-retries 1 --dataset idx:/tmp/fm
# each worker node staged its own copy of the gzip dataset into its private /tmp (--overlap: the
# steps of the earlier mpiruns may still hold the nodes for a while, which cost ~2 min here)
srun --overlap -N 2 -n 2 -w mfnode2,mfnode3 bash -c 'echo "stage \$(hostname) \$(ls /tmp/mayfly-stage | sort | tr "\n" " ")"'
JOB
job=$(sbatch --parsable -N 3 --ntasks-per-node=2 -t 4 -o "$state/job.out" "$state/job.sh") ||
  fail "sbatch failed"
await_job "$job" 180 || fail "job $job did not end within 180 s"
cat "$state/job.out"
grep -qx "batch mfnode1" "$state/job.out" || fail "the batch script did not run on mfnode1"
for name in baseline remote_cold remote_warm any_auto; do
  grep -qx "$name exit 0" "$state/job.out" || { tail -n 20 "$state/$name.log"; fail "$name failed"; }
done
grep -qx "private_data exit 1" "$state/job.out" || fail "private_data: exit 1 expected"
grep "^mayfly-train: error:" "$state/private_data.log" || true
# one line per peer (each peer's round fails on its own), every one naming node and path
errors=$(grep -c "^mayfly-train: error:" "$state/private_data.log" || true)
named=$(grep "^mayfly-train: error:" "$state/private_data.log" |
  grep -cE "node mfnode[23]: staging idx:/tmp/fm into /tmp/mayfly-stage failed: /tmp/fm/" || true)
[ "$errors" -ge 1 ] && [ "$named" -eq "$errors" ] && [ "$errors" -le 2 ] ||
  { cat "$state/private_data.log"; fail "private_data: the errors do not name the node and path"; }
staged="t10k-images-idx3-ubyte t10k-labels-idx1-ubyte train-images-idx3-ubyte train-labels-idx1-ubyte "
for node in mfnode2 mfnode3; do
  grep -qxF "stage $node $staged" "$state/job.out" || fail "$node has no staged copy of its own"
done
for mode in remote_cold remote_warm; do
  same_model "$state/baseline.h5" "$state/$mode.h5"
done

/usr/bin/python3 - "$state" <<'PY'
import sys, collections, h5py
state = sys.argv[1]
def text(v): return v.decode() if isinstance(v, bytes) else str(v)
def load(name): return h5py.File(f"{state}/{name}.h5", "r")
base = load("baseline")
assert {text(h) for h in base["/timing/tasks"]["host"]} == {"mfnode1"}   # the peers' node
for name in ("remote_cold", "remote_warm", "any_auto"):
    f = load(name)
    peers = [text(b).split(":")[0] for b in f["/environment/rank_bindings"][:]]
    assert peers == ["mfnode1", "mfnode1"], peers
    tasks = f["/timing/tasks"][:]
    assert len(tasks) == 3 * 2 * 4 and (tasks["status"] == 0).all(), name
    hosts = [text(h) for h in tasks["host"]]
    assert all(h != peers[p] for h, p in zip(hosts, tasks["peer"])), (name, hosts)
    assert set(hosts) == {"mfnode2", "mfnode3"}, (name, set(hosts))
    slots = f["/pool/host_slots"]
    names = text(slots.attrs["hosts"]).split(",")
    assert names == ["mfnode1", "mfnode2", "mfnode3"], names
    assert (slots[:] == [0, 2, 2]).all(), slots[:]          # 2 tasks per node, 2 peers on node 1
    # no host runs more workers in a round than its free slots
    for r in range(3):
        per_host = collections.Counter()
        for row, h in zip(tasks, hosts):
            if row["round"] == r: per_host[(h, row["peer"], row["worker"])] += 1
        load_by_host = collections.Counter(h for h, _, _ in per_host)
        for h, n in load_by_host.items():
            assert n <= slots[r][names.index(h)], (name, r, h, n)
    placed = [text(x) for row in f["/environment/worker_placements"][:] for x in row if x]
    assert placed and all(p.split(": ", 1)[1].split(":")[0] in ("mfnode2", "mfnode3")
                          for p in placed), placed
    assert "remote" in text(f["/environment"].attrs["placement"]) or name == "any_auto"
a = load("any_auto")
assert (a["/pool/target"][:] == 2).all(), a["/pool/target"][:]
print("placement checks passed")
PY
echo "$test_name: passed in $((SECONDS - start)) s"
