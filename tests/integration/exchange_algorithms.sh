#!/usr/bin/env bash
# Every peer exchange algorithm is correct, deterministic and bit-identical on every peer, for 1 to
# 5 peers (powers of two and not) and awkward lengths: 0 floats, 1, 7 (fewer floats than peers per
# block), 12345 (not divisible by any peer count here) and 1 Mi floats (many pipelined segments).
# The validator is `mayfly-exchange -c` itself (the method: top of bench/mayfly-exchange.c; the
# code: bench/exchange/validate.c): exact results on inputs whose sums are exact in any order,
# bitwise equality with rank 0 on inputs where the order matters, and the float error bound against
# a double reference. A run with one deliberately flipped bit must be caught, so this test can
# fail. Also checks the CSV and HDF5 outputs and the option errors.
set -euo pipefail
cd "${MAYFLY_ROOT:-$(dirname "$0")/../..}"
bin=${MAYFLY_BIN:-bin}
program="$bin/mayfly-exchange"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
run() { # peers args...
  local peers=$1; shift
  timeout 120 mpirun --oversubscribe --mca pml ob1 -np "$peers" "$program" "$@"
}

[ -x "$program" ] || fail "$program not built"

# The algorithm list, from the error message that names them all (an unknown name must be a
# one-line usage error with exit status 2).
set +e
"$program" --algorithms no-such-algorithm >"$tmp/bad.out" 2>"$tmp/bad.err"
status=$?
set -e
[ $status -eq 2 ] || fail "unknown algorithm: exit $status, expected 2"
grep -q "^mayfly-exchange: error: --algorithms: 'no-such-algorithm' is not" "$tmp/bad.err" ||
  fail "unknown algorithm: unexpected message: $(cat "$tmp/bad.err")"
algorithms=$(sed -n "s/.*is not an exchange algorithm (\(.*\), or all).*/\1/p" "$tmp/bad.err" |
  tr -d ' ' | tr ',' ' ')
for expected in mpi ring recursive-doubling rabenseifner store; do
  [[ " $algorithms " == *" $expected "* ]] || fail "algorithm $expected is not registered"
done
echo "algorithms: $algorithms"

counts=0,1,7,12345,1048576
ncounts=5
for peers in 1 2 3 4 5; do
  out="$tmp/p$peers.csv"
  run "$peers" --algorithms all --counts $counts -c -i 2 -x 1 --csv >"$out" ||
    fail "$peers peers: mayfly-exchange exited with $?"
  header=$(head -n 1 "$out")
  [[ "$header" == algorithm,peers,bytes,count,*time_us*algbw_gbs,busbw_gbs,wrong ]] ||
    fail "$peers peers: unexpected CSV header: $header"
  for a in $algorithms; do
    rows=$(awk -F, -v a="$a" 'NR > 1 && $1 == a' "$out" | wc -l)
    [ "$rows" -eq $ncounts ] || fail "$peers peers: $a has $rows rows, expected $ncounts"
    for c in ${counts//,/ }; do
      awk -F, -v a="$a" -v c="$c" -v p="$peers" \
        'NR > 1 && $1 == a && $4 == c && $2 == p && $12 == "0" { found = 1 } END { exit !found }' \
        "$out" || fail "$peers peers: $a, $c floats: missing row or wrong values: $(grep "^$a," "$out")"
    done
  done
  echo "$peers peers: $(($(wc -l <"$out") - 1)) rows, 0 wrong values"
done

# One flipped bit on one peer must be caught: exit status 1, a non-zero wrong count per row.
set +e
run 3 --algorithms ring,store --counts 12345 -c -i 1 -x 0 --csv --corrupt-rank 2 \
  >"$tmp/corrupt.csv" 2>"$tmp/corrupt.err"
status=$?
set -e
[ $status -ne 0 ] || fail "a corrupted result was not reported (exit 0)"
awk -F, 'NR > 1 && $12 + 0 >= 2 { n++ } END { exit n != 2 }' "$tmp/corrupt.csv" ||
  fail "corrupted results: expected 2 rows with wrong >= 2: $(cat "$tmp/corrupt.csv")"
grep -q "WRONG: ring, 12345 floats: 1 not exact, 1 not bit-identical" "$tmp/corrupt.err" ||
  fail "corrupted results: no WRONG line naming the check: $(cat "$tmp/corrupt.err")"
echo "a flipped bit is caught"

# Table output, power-of-two sizes and the HDF5 file.
run 3 -m 4:64K -a mpi,ring,store -c -i 3 -x 1 -o "$tmp/exchange.h5" >"$tmp/table.out" ||
  fail "table run failed"
grep -q "^# mayfly-exchange .* peer gradient exchange" "$tmp/table.out" || fail "no header"
grep -q "^# wrong values: 0  OK$" "$tmp/table.out" || fail "no OK verdict"
grep -q "^# ring  *alpha = " "$tmp/table.out" || fail "no alpha-beta fit for ring"
# The system python3 has h5py (python3-h5py); a python3 earlier on PATH may not.
/usr/bin/python3 - "$tmp/exchange.h5" <<'EOF' || fail "HDF5 file check failed"
import sys, h5py
f = h5py.File(sys.argv[1], "r")
assert f.attrs["suite"] == b"mayfly" or f.attrs["suite"] == "mayfly", f.attrs["suite"]
assert int(f.attrs["schema_version"]) == 1
assert int(f.attrs["complete"]) == 1
assert int(f.attrs["peers"]) == 3
for a in ("mpi", "ring", "store"):
    g = f["algorithms"][a]
    n = g["bytes"].shape[0]
    assert n == 15, (a, n)  # the power-of-two sizes 4..64K
    assert g["time"].shape == (n, 3), g["time"].shape
    assert g["rank_time"].shape == (n, 9), g["rank_time"].shape
    assert g["warmup_time"].shape == (n, 1)
    assert (g["time"][:] > 0).all()
    # max over peers per iteration really is the max of the raw per-rank times
    assert (abs(g["rank_time"][:].reshape(n, 3, 3).max(axis=2) - g["time"][:]) == 0).all()
    assert (g["wrong_exact"][:] == 0).all() and (g["not_identical"][:] == 0).all()
    assert (g["out_of_tolerance"][:] == 0).all()
    assert g.attrs["beta_s_per_byte"] > 0
print("hdf5 ok")
EOF

# The model zoo's gradient sizes (the table's models, the study's as built-in fallbacks); no -c
# and no mpi here: vgg11's 129 M floats would take minutes to validate on 2 cores.
run 2 --counts 1 --models -a ring -i 1 -x 0 >"$tmp/models.out" || fail "--models run failed"
grep -qE "^  ring +940584 +235146 .* mlp" "$tmp/models.out" || fail "no mlp gradient size row"
for m in squeezenet1_1 mobilenet_v3_small vgg11; do
  grep -qE "^  ring +[0-9]+ +[0-9]+ .* $m" "$tmp/models.out" || fail "no $m gradient size row"
done
echo "model sizes present"
echo "exchange_algorithms: OK"
