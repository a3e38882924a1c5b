#!/usr/bin/env bash
# The one-way dependencies of DESIGN.md, checked on the sources: kernels/ uses OpenBLAS only,
# datasets/ zlib only, comm/ MPI only (none of them includes another module or bench/), and
# no module but bench/ touches HDF5 or hwloc.
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
[ $failures -eq 0 ] && echo "dependencies point one way"
[ $failures -eq 0 ]
