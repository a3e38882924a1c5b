#!/usr/bin/env bash
# Offloading side by side: baseline and warm runs of the same configuration, alternated, for the
# two regimes of the study's trade-off on one node: one peer whose workers have cores of their
# own ("free"), and as many peers as cores, so the workers compete with the peers ("busy").
# Prints the median gradient-computation time per round of every run, the improvement
# 100 x (1 - warm / baseline) per alternated pair and its median, and the warm workers' per-task
# dispatch overhead (task time at the peer minus the worker's fetch, forward+backward and result
# send). results/warm.md records what it printed.
#
# Why a script: a single pair of runs on a shared machine says little; alternating A/B/A/B and
# taking medians is the measurement, and it has to be repeatable with one command.
set -euo pipefail

usage() {
  cat <<'EOF'
Usage: bench/scripts/offload_pair.sh [-o DIR] [-p PAIRS] [-n ROUNDS] [--model M] [--batch B] [--tasks K]
                             [--workers W] [free|busy|all]
Runs baseline and warm mayfly-train alternately and compares their gradient-computation time.
  free   1 peer, W warm workers (workers get the node's other cores)
  busy   as many peers as cores, W warm workers each (no core is free for a worker)
  all    both [default]
Options:
  -o DIR        where the results files go [default: /tmp/mayfly-offload]
  -p PAIRS      baseline/warm pairs per regime [default: 3]
  -n ROUNDS     rounds per run (the first is warm-up) [default: 30]
  --model M     [default: mlp]    --batch B [default: 1024]
  --tasks K     [default: 4]      --workers W [default: 2]
  -h, --help    this help
EOF
}

out=/tmp/mayfly-offload pairs=3 rounds=30 model=mlp batch=1024 tasks=4 workers=2 which=all
die() { echo "offload_pair.sh: error: $*" >&2; exit 2; }
value_of() { [ $# -ge 2 ] && [ -n "$2" ] || die "$1: missing value (see --help)"; }
while [ $# -gt 0 ]; do
  case "$1" in
    -o | -p | -n | --model | --batch | --tasks | --workers) value_of "$@" ;;&
    -o) out=$2; shift 2 ;;
    -p) pairs=$2; shift 2 ;;
    -n) rounds=$2; shift 2 ;;
    --model) model=$2; shift 2 ;;
    --batch) batch=$2; shift 2 ;;
    --tasks) tasks=$2; shift 2 ;;
    --workers) workers=$2; shift 2 ;;
    free | busy | all) which=$1; shift ;;
    -h | --help) usage; exit 0 ;;
    *) die "$1: unknown argument (see --help)" ;;
  esac
done
for value in "$pairs" "$rounds" "$batch" "$tasks" "$workers"; do
  [[ $value =~ ^[1-9][0-9]*$ ]] || die "'$value' is not a positive integer"
done
here=$(cd "$(dirname "$0")/../.." && pwd)
bin=${MAYFLY_BIN:-$here/bin}
mkdir -p "$out"
cores=$(nproc)

run() { # regime peers mode pair
  local file="$out/$1-$3-$4.h5"
  timeout 900 "$here/bench/scripts/launch.sh" -q -n "$2" -t 800 -- "$bin/mayfly-train" --mode "$3" \
    --workers "$workers" --model "$model" --batch "$batch" --tasks "$tasks" --rounds "$rounds" \
    --warmup 1 --eval-every 0 -o "$file" --force >"$out/$1-$3-$4.log" 2>&1 ||
    { echo "offload_pair.sh: error: $file: run failed (see $out/$1-$3-$4.log)" >&2; exit 1; }
}

regime() { # name peers
  echo "# $1: $2 peer(s), $workers warm workers each, $model batch $batch, $tasks tasks, $rounds rounds; $cores cores; $(uptime | sed 's/.*load/load/')"
  for pair in $(seq 1 "$pairs"); do
    run "$1" "$2" baseline "$pair"
    run "$1" "$2" warm "$pair"
  done
  /usr/bin/python3 - "$out" "$1" "$pairs" <<'EOF'
import sys, h5py, numpy as np
out, name, pairs = sys.argv[1], sys.argv[2], int(sys.argv[3])
def compute(path):
    with h5py.File(path, "r") as f:
        w = int(f["/timing"].attrs["warmup_rounds"])
        return float(np.median(f["/timing/compute"][w:].max(axis=1)))
gains = []
for p in range(1, pairs + 1):
    b, w = compute(f"{out}/{name}-baseline-{p}.h5"), compute(f"{out}/{name}-warm-{p}.h5")
    gains.append(100 * (1 - w / b))
    print(f"  pair {p}: baseline {b*1e3:8.1f} ms  warm {w*1e3:8.1f} ms  improvement {gains[-1]:6.1f} %")
print(f"  median improvement {np.median(gains):.1f} % (pairs: {', '.join(f'{g:.1f}' for g in gains)})")
over, send = [], []
for p in range(1, pairs + 1):
    with h5py.File(f"{out}/{name}-warm-{p}.h5", "r") as f:
        t = f["/timing/tasks"][:]
        w = int(f["/timing"].attrs["warmup_rounds"])
        t = t[(t["round"] >= w) & (t["startup"] == 0) & (t["status"] == 0)]
        over.extend(t["end"] - t["start"] - t["fetch"] - t["forward_backward"] - t["send"])
        send.extend(t["send"])
print(f"  warm dispatch overhead per task (peer-side task time - fetch - forward_backward - send): "
      f"median {np.median(over)*1e3:.3f} ms, p90 {np.percentile(over, 90)*1e3:.3f} ms over {len(over)} tasks; "
      f"result send median {np.median(send)*1e3:.3f} ms")
EOF
  echo "# after: $(uptime | sed 's/.*load/load/')"
}

case "$which" in
  free) regime free 1 ;;
  busy) regime busy "$cores" ;;
  all) regime free 1; regime busy "$cores" ;;
esac
