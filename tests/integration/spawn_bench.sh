#!/usr/bin/env bash
# mayfly-spawn (issue 4): the spawn microbenchmark runs end to end on 2 ranks, prints a CSV
# table (header, one row per children count) and writes every raw sample to HDF5; a bad
# children list is one error line and exit 2.
set -euo pipefail
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
bench/scripts/launch.sh -q -n 2 -t 90 -- "$MAYFLY_BIN/mayfly-spawn" -c 1,2 -i 2 -x 0 --cycles 3 -m 20 \
    --csv -o "$out/spawn.h5" > "$out/spawn.csv"
cat "$out/spawn.csv"
/usr/bin/python3 - "$out" <<'PY'
import sys, csv, math, h5py
d = sys.argv[1]
rows = list(csv.DictReader(open(f"{d}/spawn.csv")))
assert [int(r["children"]) for r in rows] == [1, 2], rows
for r in rows:
    assert float(r["spawn_median_ms"]) > 0 and float(r["spawn_min_ms"]) <= float(r["spawn_median_ms"])
    assert float(r["init_cpu_median_ms"]) > 0 and float(r["exec_median_ms"]) > 0
f = h5py.File(f"{d}/spawn.h5", "r")
assert f.attrs["complete"] == 1
assert list(f["/spawn/children"][:]) == [1, 2]
assert f["/spawn/spawn_seconds"].shape == (2, 2)
assert (f["/spawn/spawn_seconds"][:] > 0).all()
assert (f["/drift/rss_bytes"][:] > 0).all() and (f["/drift/open_fds"][:] > 0).all()
p = f["/pingpong"].attrs
for k in ("intercomm_8B_seconds", "world_8B_seconds", "intercomm_1MiB_seconds", "world_1MiB_seconds"):
    assert math.isfinite(p[k]) and p[k] > 0, (k, p[k])
print("spawn_bench: ok")
PY
set +e
bench/scripts/launch.sh -q -n 1 -t 30 -- "$MAYFLY_BIN/mayfly-spawn" --children 0 > /dev/null 2> "$out/err"
code=$?
set -e
[ "$code" -eq 2 ] || { echo "bad --children gave exit $code" >&2; exit 1; }
grep -q "mayfly-spawn: error: --children" "$out/err"
