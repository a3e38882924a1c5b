#!/usr/bin/env bash
# The results file holds every group, dataset and attribute of the contract in DESIGN.md /
# results/SCHEMA.md, with the right shapes, for a small cold run on synthetic data.
set -euo pipefail
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
bench/scripts/launch.sh -q -n 2 -t 120 -r 2 -- "$MAYFLY_BIN/mayfly-train" --mode cold --model mlp \
    --dataset synthetic:2000:500:3 --batch 32 --tasks 3 --workers 2 --rounds 4 --eval-every 2 \
    --warmup 1 --spawn-timeout 30 --stage-dir "$out/stage" -o "$out/run.h5" > "$out/run.log"
h5dump -A "$out/run.h5" > /dev/null
/usr/bin/python3 - "$out/run.h5" <<'PY'
import sys, h5py
f = h5py.File(sys.argv[1], "r")
root = f.attrs
for key in ("suite", "schema_version", "suite_version", "git_revision", "created",
            "command_line", "complete"):
    assert key in root, key
assert root["suite"] == b"mayfly" or root["suite"] == "mayfly"
assert root["schema_version"] == 2 and root["complete"] == 1
config = f["/config"].attrs
for key in ("mode", "model", "dataset", "batch", "peers", "tasks", "workers", "worker-threads",
            "peer-threads", "rounds", "lr", "seed", "exchange", "exchange_selected"):
    assert key in config, key
def text(value):
    return value.decode() if isinstance(value, bytes) else str(value)
# The default exchange is auto; an mlp gradient (940,584 bytes) is above 512 KiB: the ring.
assert text(config["exchange"]) == "auto", config["exchange"]
assert text(config["exchange_selected"]) == "ring", config["exchange_selected"]
env = f["/environment"]
for key in ("mpi_library_version", "hostnames", "slurm_job_id", "openblas_config",
            "openblas_threads", "compiler"):
    assert key in env.attrs, key
assert b"<topology" in env["hwloc_topology"][()]
assert env["rank_bindings"].shape == (2,)
for phase in ("spawn", "dispatch", "compute", "exchange", "update", "eval", "teardown", "round"):
    assert f["/timing/" + phase].shape == (4, 2), phase
    assert f["/timing/" + phase].dtype == "float64"
assert f["/timing"].attrs["warmup_rounds"] == 1
tasks = f["/timing/tasks"]
for field in ("round", "peer", "task", "worker", "start", "end", "startup", "fetch",
              "forward_backward", "send", "retries", "peak_rss_bytes", "host"):
    assert field in tasks.dtype.names, field
assert len(tasks) == 4 * 2 * 3
# schema 2: every task row names the node it ran on (one node here), /pool the slots per node
import socket
host = socket.gethostname().encode()
assert set(tasks["host"]) == {host}, set(tasks["host"])
assert f["/config"].attrs["placement"] in (b"any", "any")
slots = f["/pool/host_slots"]
assert slots.shape == (4, 1) and slots.attrs["hosts"] in (host, host.decode())
assert b"any:" in env.attrs["placement"]
placements = env["worker_placements"][:]
assert placements.shape[0] == 2
for row in placements:   # per peer: "N workers: HOST:cpus=..:status"; cold: 2 workers x 4 rounds
    assert sum(int(x.split(b" ")[0]) for x in row if x) == 8, row
    assert all(x.split(b": ", 1)[1].startswith(host + b":cpus=") for x in row if x), row
assert (tasks["peak_rss_bytes"] > 0).all() and (tasks["end"] >= tasks["start"]).all()
assert f["/train/loss"].shape == (4,)
assert list(f["/train/eval_round"][:]) == [1, 3]
assert f["/train/test_accuracy"].shape == (2,)
assert f["/model/parameters"].shape == (235146,)
print("contract ok")
PY
