#!/usr/bin/env bash
# Calibration measurements for results/tools/projection.py (run from /work/main). Records the load
# average before and after each measurement in load.txt.
set -u
D=${D:-results/projection/calibration}
cd /work/main
load() { echo "$(date -u +%FT%TZ) $1 $(cut -d' ' -f1-3 /proc/loadavg)" >> $D/load.txt; }
load "spawn-start"
bench/scripts/launch.sh -n 1 -t 300 -- bin/mayfly-spawn -c 1,2,4,8 -i 5 -x 1 --cycles 0 -m 0 -f -o $D/spawn.h5 > $D/spawn.txt 2>&1
echo "spawn rc=$?" >> $D/load.txt
load "spawn-end"
load "exchange-start"
OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 timeout 300 mpirun --oversubscribe --mca pml ob1 -np 2 \
  bin/mayfly-exchange -a mpi,ring -m 4K:64M -i 10 -x 2 -o $D/exchange-p2.h5 > $D/exchange-p2.txt 2>&1
echo "exchange rc=$?" >> $D/load.txt
load "exchange-end"
for b in 64 128 256 512 1024; do
  for m in squeezenet1_1 mobilenet_v3_small mlp cnn; do
    load "kernels-$m-b$b-start"
    timeout 600 bin/mayfly-kernels --model $m --batch $b --threads 1 --repeat 3 --no-layers --csv > $D/kernels-$m-b$b.csv 2>>$D/kernels.err
    echo "kernels $m b$b rc=$?" >> $D/load.txt
  done
done
for b in 64 128 256; do
  load "kernels-vgg11-b$b-start"
  timeout 900 bin/mayfly-kernels --model vgg11 --batch $b --threads 1 --repeat 3 --no-layers --csv > $D/kernels-vgg11-b$b.csv 2>>$D/kernels.err
  echo "kernels vgg11 b$b rc=$?" >> $D/load.txt
done
load "all-end"
