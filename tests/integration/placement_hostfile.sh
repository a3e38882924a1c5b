#!/usr/bin/env bash
# Outside Slurm, the allocation is the hostfile mpirun was given through the environment
# (OMPI_MCA_orte_default_hostfile, bench/harness/placement.h): its slots=N per node are what
# /pool/host_slots records (slots minus the peers on the node) and /environment names it; every
# task row carries the host it ran on. One node here (this machine), 2 peers, cold, auto.
set -euo pipefail
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
host=$(hostname)
printf '# the test allocation\n%s slots=6\n' "$host" >"$out/hosts"
OMPI_MCA_orte_default_hostfile=$out/hosts bench/scripts/launch.sh -q -n 2 -t 120 -r 2 -- \
    "$MAYFLY_BIN/mayfly-train" --mode cold --model mlp --dataset synthetic:2000:500:3 --batch 32 \
    --tasks 2 --workers auto --rounds 3 --eval-every 0 --spawn-timeout 30 --placement local \
    --stage-dir "$out/stage" -o "$out/run.h5" >"$out/run.log"
/usr/bin/python3 - "$out/run.h5" "$host" "$out/hosts" <<'PY'
import sys, h5py
f, host, hostfile = h5py.File(sys.argv[1], "r"), sys.argv[2], sys.argv[3]
def text(v): return v.decode() if isinstance(v, bytes) else str(v)
slots = f["/pool/host_slots"]
assert text(slots.attrs["hosts"]) == host, slots.attrs["hosts"]
assert slots.shape == (3, 1) and (slots[:] == 4).all(), slots[:]   # 6 slots - 2 peers
placement = text(f["/environment"].attrs["placement"])
assert placement.startswith("local: ") and f"hostfile {hostfile}" in placement, placement
assert f"{host}=6 slots (2 peers)" in placement, placement
# auto: the peer's share (4 / 2 = 2) is one bound; the node's hwloc cores another
free = f["/pool/free_slots"][:]
assert (free >= 0).all() and (free <= 2).all(), free
assert (f["/pool/target"][:] == max(1, min(2, int(free.min())))).all()
tasks = f["/timing/tasks"][:]
assert len(tasks) == 3 * 2 * 2 and {text(h) for h in tasks["host"]} == {host}
print("hostfile allocation:", placement)
PY
