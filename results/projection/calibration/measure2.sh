#!/usr/bin/env bash
# Second calibration pass: spawn with the parent<->child ping-pong (transfer alpha/beta), and a
# repeat of the kernel timings (the projection takes, per model and batch, the fastest of the
# repeated medians: the least disturbed by other load on the shared box).
set -u
D=${D:-results/projection/calibration}
cd /work/main
load() { echo "$(date -u +%FT%TZ) $1 $(cut -d' ' -f1-3 /proc/loadavg)" >> $D/load.txt; }
load "spawn2-start"
bench/scripts/launch.sh -n 1 -t 300 -- bin/mayfly-spawn -c 1,2,4,8 -i 5 -x 1 --cycles 0 -m 200 -f -o $D/spawn2.h5 > $D/spawn2.txt 2>&1
echo "spawn2 rc=$?" >> $D/load.txt
load "spawn2-end"
for b in 64 128 256 512 1024; do
  for m in squeezenet1_1 mobilenet_v3_small mlp cnn; do
    load "kernels2-$m-b$b-start"
    timeout 600 bin/mayfly-kernels --model $m --batch $b --threads 1 --repeat 5 --no-layers --csv > $D/kernels2-$m-b$b.csv 2>>$D/kernels.err
    echo "kernels2 $m b$b rc=$?" >> $D/load.txt
  done
done
for b in 64 128 256; do
  load "kernels2-vgg11-b$b-start"
  timeout 900 bin/mayfly-kernels --model vgg11 --batch $b --threads 1 --repeat 3 --no-layers --csv > $D/kernels2-vgg11-b$b.csv 2>>$D/kernels.err
  echo "kernels2 vgg11 b$b rc=$?" >> $D/load.txt
done
load "all2-end"
