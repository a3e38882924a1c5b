#!/usr/bin/env bash
# Installs the Debian packages mayfly needs to build, run and test, non-interactively when run as
# root; otherwise prints the exact apt-get command. Cheap when everything is present already.
set -euo pipefail
packages=(gcc make pkg-config openmpi-bin libopenmpi-dev libhdf5-openmpi-dev hdf5-tools
          libopenblas-dev libhwloc-dev hwloc zlib1g-dev dataset-fashion-mnist
          python3 python3-h5py python3-numpy python3-matplotlib procps iproute2
          clang libclang-rt-14-dev)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
cmd=(apt-get -o DPkg::Lock::Timeout=600 install -y --no-install-recommends "${missing[@]}")
if [ "$(id -u)" -ne 0 ]; then
  echo "mayfly: missing Debian packages; run as root: apt-get update && ${cmd[*]}" >&2
  exit 1
fi
echo "mayfly: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get -o DPkg::Lock::Timeout=600 update -q >/dev/null
"${cmd[@]}" >/dev/null
