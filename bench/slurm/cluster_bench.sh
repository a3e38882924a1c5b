#!/usr/bin/env bash
# bench/slurm/cluster_bench.sh: what workers on other nodes cost, measured on the virtual
# multi-node Slurm (tests/slurm/virtual_cluster.sh), and whether concurrent cross-node spawns
# survive (issue 12, results/cluster.md).
#
# Why it exists: on one machine the "network" between the virtual nodes is a veth pair, so the
# numbers are overheads and failure rates, not a cluster's speeds; but they are measured the
# same way a user measures a real cluster, by mayfly-train's own phase timers, so this script
# is also the recipe for a real one (run the job part in an sbatch -N 3 allocation).
#
# One job, sbatch -N 3 --ntasks-per-node=4, both peers on mfnode1:
#   1. spawn turns: cold, --placement remote (or --placement P), 2 workers per peer, R repetitions of ROUNDS
#      rounds with --spawn-turns on and with off (no retry of a failed run: the failure rate is
#      what is measured);
#   2. transfers: cold and warm, --placement local (the workers on mfnode1) and remote
#      (mfnode2/3), 1 worker per peer doing all 4 tasks, the model given (default cnn):
#      spawn, dispatch (weights to the worker), send (a gradient back), startup.
# Prints one table (and writes it to OUT/summary.txt). Needs root; holds the test clusters'
# lock (/tmp/mayfly-local-slurm.lock) for the whole run.
set -euo pipefail
cd "$(dirname "$0")/../.."

usage() {
  cat <<'EOF'
Usage: bench/slurm/cluster_bench.sh [--reps R] [--rounds N] [--placement P] [--model M] [--out DIR]
  --reps R     repetitions of each spawn-turns setting [default: 3]
  --rounds N   rounds of each spawn-turns run [default: 30]
  --placement P  placement of the spawn-turns runs: remote, any or local [default: remote]
  --model M    model of the transfer runs [default: cnn]
  --out DIR    where results and logs go, not under /tmp [default: /var/tmp/mayfly-cluster-bench]
EOF
}
reps=3 rounds=30 placement=remote model=cnn out=/var/tmp/mayfly-cluster-bench
while [ $# -gt 0 ]; do
  case $1 in
    --reps) reps=${2:?}; shift 2 ;;
    --rounds) rounds=${2:?}; shift 2 ;;
    --placement) placement=${2:?}; shift 2 ;;
    --model) model=${2:?}; shift 2 ;;
    --out) out=${2:?}; shift 2 ;;
    -h | --help) usage; exit 0 ;;
    *) echo "cluster_bench: error: unknown argument '$1' (--help)" >&2; exit 2 ;;
  esac
done
for v in "$reps" "$rounds"; do
  [[ "$v" =~ ^[1-9][0-9]{0,3}$ ]] || { echo "cluster_bench: error: '$v' is not a count 1-9999" >&2; exit 2; }
done
case $placement in remote | any | local) ;; *) echo "cluster_bench: error: --placement '$placement': remote, any or local" >&2; exit 2 ;; esac
[[ "$out" == /tmp/* ]] && { echo "cluster_bench: error: --out $out: every virtual node has its own /tmp; use a shared path" >&2; exit 2; }
[ "$(id -u)" -eq 0 ] || { echo "cluster_bench: error: needs root (the virtual cluster's namespaces)" >&2; exit 2; }
bin=$(cd "${MAYFLY_BIN:-bin}" && pwd)
[ -x "$bin/mayfly-train" ] || { echo "cluster_bench: error: $bin/mayfly-train missing (make)" >&2; exit 2; }

vc=tests/slurm/virtual_cluster.sh
cluster_name=cluster_bench test_name=cluster_bench
. tests/slurm/cluster_lib.sh
. tests/slurm/test_prelude.sh
hold_slurm_lock 900
mkdir -p "$out"
rm -rf "${out:?}"/*.h5 "$out"/*.log
chmod 0755 "$out"
export MAYFLY_VCLUSTER_DIR=$out/cluster
trap 'timeout 30 bash "$vc" stop >/dev/null 2>&1 || true' EXIT
timeout 60 bash "$vc" start --nodes 3 >"$out/start.log" 2>&1 ||
  { cat "$out/start.log"; echo "cluster_bench: error: the virtual cluster did not start" >&2; exit 1; }
eval "$(bash "$vc" env)"

cat >"$out/job.sh" <<JOB
#!/usr/bin/env bash
cd "$PWD"
run() { # name, mayfly-train options...
  local name=\$1 t0=\$SECONDS; shift
  bench/scripts/launch.sh -q -n 2 -t 300 -r 0 -- "$bin/mayfly-train" --seed 5 --eval-every 0 \
      --spawn-timeout 60 --task-timeout 10 --max-retries 1 -o "$out/\$name.h5" "\$@" \
      >"$out/\$name.log" 2>&1
  echo "\$name exit \$? \$((SECONDS - t0)) s"
}
for ((r = 1; r <= $reps; r++)); do
  for turns in on off; do
    run turns_\${turns}_r\$r --mode cold --model mlp --dataset synthetic:1024:256 --batch 64 \
        --tasks 4 --workers 2 --rounds $rounds --placement $placement --spawn-turns \$turns
  done
done
for mode in cold warm; do
  for placement in local remote; do
    run transfer_\${mode}_\$placement --mode \$mode --model $model --dataset synthetic:2048:256 \
        --batch 64 --tasks 4 --workers 1 --rounds 10 --placement \$placement
  done
done
JOB
minutes=$((2 + reps * rounds / 10))
job=$(sbatch --parsable -N 3 --ntasks-per-node=4 -t "$minutes" -o "$out/job.out" "$out/job.sh")
echo "cluster_bench: job $job (at most $minutes min); results in $out"
await_job "$job" $((minutes * 60 + 60)) || echo "cluster_bench: job $job did not end in time (cancelled)" >&2
cat "$out/job.out"

/usr/bin/python3 - "$out" "$placement" <<'PY' | tee "$out/summary.txt"
import glob, os, re, sys
import h5py, numpy as np
out = sys.argv[1]
exits = dict(re.findall(r"^(\S+) exit (\d+)", open(f"{out}/job.out").read(), re.M))
def rounds_done(f):
    r = f["/timing/round"][:]
    return int((r.max(axis=1) > 0).sum())
print(f"## spawn turns: cold, --placement {sys.argv[2]}, 2 peers on mfnode1, 2 workers each")
print(f"{'run':<16} {'exit':>4} {'rounds':>7} {'spawn ms':>9} {'wait ms':>8}  note")
for path in sorted(glob.glob(f"{out}/turns_*.h5")):
    name = os.path.basename(path)[:-3]
    with h5py.File(path, "r") as f:
        done = rounds_done(f)
        spawn = np.median(f["/timing/spawn"][:done].max(axis=1)) * 1e3 if done else float("nan")
        wait = np.median(f["/timing/spawn_wait"][:done].max(axis=1)) * 1e3 if done else float("nan")
        planned = int(f["/config"].attrs["resolved_rounds"])
    log = open(f"{out}/{name}.log", errors="replace").read()
    note = "PML add procs failed" if "PML add procs failed" in log else ""
    print(f"{name:<16} {exits.get(name, '?'):>4} {done:>4}/{planned:<3} {spawn:9.0f} {wait:8.0f}  {note}")
print()
print("## transfers: 1 worker per peer, 4 tasks per round, medians over rounds 2-10 (ms)")
print(f"{'run':<22} {'exit':>4} {'spawn':>7} {'dispatch':>9} {'send/task':>10} {'fwd+bwd':>8} {'startup':>8} {'compute':>8}  hosts")
for path in sorted(glob.glob(f"{out}/transfer_*.h5")):
    name = os.path.basename(path)[:-3]
    with h5py.File(path, "r") as f:
        t = f["/timing"]
        med = lambda k: np.median(t[k][1:].max(axis=1)) * 1e3 if k in t else float("nan")
        tasks = t["tasks"][:]
        later = tasks[tasks["round"] >= 1]
        hosts = sorted({h.decode() for h in tasks["host"]})
        startup = tasks["startup"][tasks["startup"] > 0]
        print(f"{name:<22} {exits.get(name, '?'):>4} {med('spawn'):7.0f} {med('dispatch'):9.1f} "
              f"{np.median(later['send']) * 1e3:10.2f} {np.median(later['forward_backward']) * 1e3:8.1f} "
              f"{np.median(startup) * 1e3 if len(startup) else float('nan'):8.0f} {med('compute'):8.0f}  {','.join(hosts)}")
PY
