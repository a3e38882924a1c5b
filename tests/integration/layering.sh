#!/usr/bin/env bash
# The one-way dependencies of DESIGN.md, checked on the sources: kernels/ uses OpenBLAS only,
# datasets/ zlib only, comm/ MPI only (none of them includes another module or bench/), and
# no module but bench/ touches HDF5 or hwloc. Inside bench/ (README.md, Contributing): the
# harness (bench/harness/) includes neither a mode, a program's own parts nor a program; a mode
# (bench/modes/) may use the harness but no program or program part; a program's parts
# (bench/exchange/) may use the harness but no mode or program; the programs bench/mayfly-*.c
# may use everything. bench/ itself holds programs only, and every file of the new folders
# opens with a comment that says why it exists.
set -uo pipefail
failures=0
forbid() { # folder regex why
  local hits
  hits=$(grep -nE "^[[:space:]]*#[[:space:]]*include[[:space:]]*[<\"]($2)" "$1"/*.[ch] 2>/dev/null)
  if [ -n "$hits" ]; then echo "FAIL: $1/ $3:"; echo "$hits"; failures=$((failures + 1)); fi
}
forbid kernels 'mpi\.h|hdf5|hwloc|zlib|datasets/|comm/|bench/' "may use OpenBLAS only"
forbid datasets 'mpi\.h|hdf5|hwloc|cblas|kernels/|comm/|bench/' "may use zlib only"
forbid comm 'hdf5|hwloc|zlib|cblas|kernels/|datasets/|bench/' "may use MPI only"
forbid bench/harness 'bench/(modes|exchange)/|bench/mayfly-' "may not use a mode or a program"
forbid bench/modes 'bench/exchange/|bench/mayfly-' "may use the harness only"
forbid bench/exchange 'bench/modes/|bench/mayfly-' "may use the harness only"

stray=$(cd bench && ls -- *.c *.h 2>/dev/null | grep -vE '^mayfly-[a-z0-9_-]+\.c$')
if [ -n "$stray" ]; then
  echo "FAIL: bench/ holds programs only (bench/mayfly-*.c); these belong in a sub-folder:"
  echo "$stray"
  failures=$((failures + 1))
fi
for f in bench/harness/*.[ch] bench/modes/*.c bench/exchange/*.[ch]; do
  [ -f "$f" ] || continue
  if ! head -c 2 "$f" | grep -q '^/\*'; then
    echo "FAIL: $f does not open with a comment saying why it exists"
    failures=$((failures + 1))
  fi
done
[ $failures -eq 0 ] && echo "dependencies point one way"
[ $failures -eq 0 ]
