#!/usr/bin/env bash
# `make run`: the main job on the embedded default. Fashion-MNIST (Debian's
# dataset-fashion-mnist), 2 peers, the MLP; first the baseline (peers compute their own
# minibatch gradients), then cold (each peer spawns 2 fresh workers every round), same seed;
# then the comparison. Results land in results/default-{baseline,cold}.h5.
# MAYFLY_RUN_ROUNDS overrides the round count (300: ~86 % test accuracy).
# A spawn that stalls (Open MPI 4.1.4, see README) ends that attempt after 30 s; the launcher
# then runs it again from the start, up to 3 more times.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${MAYFLY_RUN_ROUNDS:-300}
common=(--model mlp --dataset fashion-mnist --batch 64 --tasks 8 --workers 2 --rounds "$rounds"
        --lr 0.1 --momentum 0.9 --seed 1234 --eval-every 50 --spawn-timeout 30 --force)
mkdir -p results
for mode in baseline cold; do
  echo "== mayfly-train --mode $mode (2 peers) -> results/default-$mode.h5"
  bench/launch.sh -n 2 -t 1800 -r 3 -- bin/mayfly-train --mode "$mode" "${common[@]}" \
      -o "results/default-$mode.h5"
done
echo "== mayfly-compare"
bin/mayfly-compare results/default-baseline.h5 results/default-cold.h5
