#!/usr/bin/env bash
# `make run`: the main job, both regimes of the study's trade-off on this machine, each run
# against its own baseline with the same seed, ending with one verdict table.
#   A "peers fill every core": as many peers as cores, each spawning 2 fresh workers every
#     round (cold): no core is free for a worker, every round pays its cold starts.
#   B "peers leave cores free": half as many peers (at least 1), each with warm workers that
#     together fill the cores: the workers run a peer's tasks side by side, the study's gain.
# Fashion-MNIST (Debian's dataset-fashion-mnist), the MLP, SGD lr 0.1 momentum 0.9, seed 1234.
# Results: results/default-{baseline,cold}.h5 (A), results/default-free-{baseline,warm}.h5 (B).
#
# Environment:
#   MAYFLY_RUN_ROUNDS  rounds of every run (default: 200 for A, 100 for B)
#   MAYFLY_RUN_QUICK=1 a tiny run (10 rounds each, ~30 s on 2 cores; tests use it)
#   MAYFLY_RUN_DIR     where the result files go (default: results)
#   MAYFLY_RUN_CORES   the core count to size the regimes for (default: hwloc's cores, at most
#                      the CPUs this process may use)
#   MAYFLY_RUN_PLAN=1  print the plan (peers, workers, sizes) and exit without running
#   MAYFLY_BIN         the programs' directory (default: bin)
# A spawn that stalls (Open MPI 4.1.4, see README) ends that attempt after 30 s; the launcher
# then runs it again from the start, up to 3 more times.
set -euo pipefail
cd "$(dirname "$0")/../.."
die() { echo "run_default.sh: error: $*" >&2; exit 2; }
positive() { [[ $2 =~ ^[1-9][0-9]*$ ]] || die "$1: '$2' is not a positive integer"; }

if [ -n "${MAYFLY_RUN_CORES:-}" ]; then
  cores=$MAYFLY_RUN_CORES
  positive MAYFLY_RUN_CORES "$cores"
else
  cores=$(hwloc-calc --number-of core all 2>/dev/null || true)
  usable=$(nproc)
  [[ $cores =~ ^[1-9][0-9]*$ ]] || cores=$usable
  if [ "$usable" -lt "$cores" ]; then cores=$usable; fi
fi
out=${MAYFLY_RUN_DIR:-results}
bin=${MAYFLY_BIN:-bin}
rounds_a=200 rounds_b=100 eval_every=50 limit=1800
if [ "${MAYFLY_RUN_QUICK:-0}" = 1 ]; then
  rounds_a=10 rounds_b=10 eval_every=5 limit=180
fi
if [ -n "${MAYFLY_RUN_ROUNDS:-}" ]; then
  positive MAYFLY_RUN_ROUNDS "$MAYFLY_RUN_ROUNDS"
  rounds_a=$MAYFLY_RUN_ROUNDS rounds_b=$MAYFLY_RUN_ROUNDS
fi

# fit_batch PEERS TASKS WANT: WANT, or the largest power of two that still gives each peer's
# shard of Fashion-MNIST's 60000 training samples TASKS minibatches (machines with many cores).
fit_batch() {
  local batch=$3
  while [ "$batch" -gt 1 ] && [ $((batch * $2 * $1)) -gt 60000 ]; do batch=$((batch / 2)); done
  echo "$batch"
}
# Regime A: one peer per core, 2 cold workers each, the small MLP tasks of the study's
# resource-constrained corner (batch 64, 8 tasks per round).
peers_a=$cores workers_a=2
mode_a=cold
args_a=(--model mlp --batch "$(fit_batch "$peers_a" 8 64)" --tasks 8 --workers "$workers_a"
        --rounds "$rounds_a")
# Regime B: half the cores' peers; each peer's warm workers take its share of the cores
# (cores / peers, at least 2), two tasks per worker per round, tasks large enough (batch 2048)
# that a worker's compute outweighs the dispatch of weights and results (results/warm.md).
peers_b=$((cores / 2)) && [ "$peers_b" -ge 1 ] || peers_b=1
workers_b=$((cores / peers_b)) && [ "$workers_b" -ge 2 ] || workers_b=2
mode_b=warm
tasks_b=$((2 * workers_b))
args_b=(--model mlp --batch "$(fit_batch "$peers_b" "$tasks_b" 2048)" --tasks "$tasks_b"
        --workers "$workers_b" --rounds "$rounds_b")
common=(--dataset fashion-mnist --lr 0.1 --momentum 0.9 --seed 1234 --eval-every "$eval_every"
        --spawn-timeout 30 --force)
label_a="A peers fill every core"
label_b="B peers leave cores free"

plan() { # label peers workers args...
  local label=$1 peers=$2 workers=$3
  shift 3
  echo "# $label: $peers peer(s) + $((peers * workers)) workers on $cores core(s): $*"
}
echo "# make run: both regimes of the serverless trade-off on $cores core(s), $(uptime | sed 's/.*load/load/')"
plan "$label_a" "$peers_a" "$workers_a" --mode "$mode_a" "${args_a[@]}"
plan "$label_b" "$peers_b" "$workers_b" --mode "$mode_b" "${args_b[@]}"
[ "${MAYFLY_RUN_PLAN:-0}" = 1 ] && exit 0

mkdir -p "$out"
train() { # peers file args...
  local peers=$1 file=$2
  shift 2
  echo "== mayfly-train $* ($peers peer(s)) -> $file"
  bench/scripts/launch.sh -n "$peers" -t "$limit" -r 3 -- "$bin/mayfly-train" "$@" "${common[@]}" -o "$file"
}
files_a=("$out/default-baseline.h5" "$out/default-$mode_a.h5")
files_b=("$out/default-free-baseline.h5" "$out/default-free-$mode_b.h5")
train "$peers_a" "${files_a[0]}" --mode baseline "${args_a[@]}"
train "$peers_a" "${files_a[1]}" --mode "$mode_a" "${args_a[@]}"
train "$peers_b" "${files_b[0]}" --mode baseline "${args_b[@]}"
train "$peers_b" "${files_b[1]}" --mode "$mode_b" "${args_b[@]}"

status=0
echo "== mayfly-compare, $label_a"
"$bin/mayfly-compare" "${files_a[@]}" || status=$?
echo "== mayfly-compare, $label_b"
"$bin/mayfly-compare" "${files_b[@]}" || status=$?
echo "== verdict: gradient computation per round (median ms), improvement of serverless over"
echo "   its baseline, total cost ratio (serverless / baseline), model check"
table=$("$bin/mayfly-compare" --summary --label "$label_a" "${files_a[@]}" \
        --label "$label_b" "${files_b[@]}") || status=$?
echo "$table"
[ -n "$table" ] || exit "$status"
# The reading of each row, from its improvement column ("-5155.8 %").
improvement() { grep -F "$1" <<<"$table" | grep -oE -- '-?[0-9]+\.[0-9] %' | cut -d' ' -f1; }
gain_a=$(improvement "$label_a") gain_b=$(improvement "$label_b")
if [[ $gain_a == -* ]]; then
  times=$(awk -v g="$gain_a" 'BEGIN { printf "%.1f", 1 - g / 100 }')
  echo "# A: serverless needs ${times}x the baseline's gradient time ($gain_a %): every core runs a"
  echo "#    peer, so each round waits for its cold starts and the workers take cores from the peers"
  echo "#    (the study's resource-constrained case)."
else
  echo "# A: serverless is $gain_a % faster even with every core running a peer: the workers'"
  echo "#    share of the tasks outweighed their cold starts here (see the spawn phase above)."
fi
if [[ $gain_b == -* || $gain_b == 0.0 ]]; then
  if [ "$cores" -lt 2 ]; then
    echo "# B: no gain: with $cores core there is no core to leave free; the workers share the peer's."
  else
    echo "# B: no gain measured ($gain_b %): the free cores were busy (load average $(cut -d' ' -f1-3 /proc/loadavg))"
    echo "#    or the tasks too small for the dispatch overhead; see the comparison above."
  fi
else
  echo "# B: serverless is $gain_b % faster: the warm workers run the tasks side by side on the cores"
  echo "#    the peers left free (ideal with $workers_b workers: $((100 - 100 / workers_b)) %), at the cost ratio shown."
fi
echo "# load average at the end: $(cut -d' ' -f1-3 /proc/loadavg) ($cores cores; other work on the machine takes the free cores)"
echo "# files: ${files_a[*]} ${files_b[*]}"
exit "$status"
