"""Draws results/soak/soak.png from the raw files bench/scripts/soak.sh wrote (results/soak.md).

Why it exists: the memory numbers in soak.md are slopes; the picture shows whether the curves are
lines (a leak), steps (caches filling) or flat. Run: /usr/bin/python3 results/soak/plot.py DIR
where DIR holds spawn2/, memory-long/ as in soak.md.
"""
import csv
import sys

import h5py
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

root = sys.argv[1] if len(sys.argv) > 1 else "/tmp/mayfly-soak"


def series(path, keep):
    out = {}
    for r in csv.DictReader(open(path)):
        key = keep(r)
        if key:
            out.setdefault(key, []).append((float(r["t_seconds"]), int(r["rss_kib"]) / 1024))
    return out


fig, ax = plt.subplots(1, 3, figsize=(12, 3.4))
f = h5py.File(f"{root}/spawn2/spawn.h5", "r")
ax[0].plot(f["/drift/rss_bytes"][:] / 2**20, label="parent RSS (MiB)")
ax[0].plot(f["/drift/open_fds"][:], label="open fds")
ax[0].set(title="500 spawn/disconnect cycles", xlabel="cycle")
ax[0].legend(fontsize=8)


def role(r):
    if r["comm"] == "mayfly-train":
        return f"peer rank {r['rank']}" + (" (writer)" if r["rank"] == "0" else "")
    if r["comm"] == "mpirun":
        return "mpirun" if r["rank"] == "-1" else None
    return None


for i, (name, title) in enumerate((("memory-warm", "warm, 8000 rounds"),
                                    ("memory-cold", "cold, 200 rounds"))):
    s = series(f"{root}/memory-long/{name}.rss.csv", role)
    for label, v in sorted(s.items()):
        if len(v) > 10:
            ax[i + 1].plot([x[0] for x in v], [x[1] for x in v], label=label)
    if name == "memory-warm":
        w = series(f"{root}/memory-long/{name}.rss.csv",
                   lambda r: r["pid"] if r["comm"] == "mayfly-worker" else None)
        for j, v in enumerate(w.values()):
            ax[1].plot([x[0] for x in v], [x[1] for x in v], color="grey", lw=0.8,
                       label="workers" if j == 0 else None)
    ax[i + 1].set(title=title, xlabel="seconds", ylabel="RSS (MiB)")
    ax[i + 1].legend(fontsize=8)
fig.tight_layout()
fig.savefig(sys.argv[2] if len(sys.argv) > 2 else "results/soak/soak.png", dpi=70)
