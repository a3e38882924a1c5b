#!/usr/bin/env bash
# A truncated, wrong-magic or out-of-range-label dataset given as --dataset idx:DIR is refused
# by mayfly-train with one error line naming the file, a non-zero exit, and no result file that
# claims to be complete. The files are built from a small valid idx set written here.
set -uo pipefail
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
/usr/bin/python3 - "$out" <<'PY'
import os, struct, sys, random
root = sys.argv[1]
def write_set(d, n_train=600, n_test=100, mutate=None):
    os.makedirs(d, exist_ok=True)
    rng = random.Random(1)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        labels = bytes(rng.randrange(10) for _ in range(n))
        images = bytes(rng.randrange(256) for _ in range(n * 28 * 28))
        img = struct.pack(">IIII", 0x803, n, 28, 28) + images
        lab = struct.pack(">II", 0x801, n) + labels
        if mutate and prefix == "train":
            img, lab = mutate(img, lab)
        open(f"{d}/{prefix}-images-idx3-ubyte", "wb").write(img)
        open(f"{d}/{prefix}-labels-idx1-ubyte", "wb").write(lab)
write_set(f"{root}/good")
write_set(f"{root}/truncated", mutate=lambda i, l: (i[:len(i) // 2], l))
write_set(f"{root}/magic", mutate=lambda i, l: (struct.pack(">I", 0x804) + i[4:], l))
write_set(f"{root}/label", mutate=lambda i, l: (i, l[:20] + bytes([12]) + l[21:]))
PY
failures=0
check() { # name expected-file-substring
  local name=$1 needle=$2 log="$out/$1.log" rc
  bench/scripts/launch.sh -q -n 2 -t 60 -r 0 -- "$MAYFLY_BIN/mayfly-train" --dataset "idx:$out/$name" \
      --rounds 2 --tasks 1 --batch 32 -o "$out/$name.h5" > "$log" 2>&1
  rc=$?
  local lines
  lines=$(grep -c '^mayfly-train: error: ' "$log")
  if [ "$name" = good ]; then
    [ $rc -eq 0 ] || { echo "good set failed (exit $rc)"; cat "$log"; failures=$((failures+1)); }
    return
  fi
  if [ $rc -eq 0 ] || [ $rc -ge 128 ]; then echo "$name: exit $rc"; failures=$((failures+1)); fi
  # both peers read the same file and may both report it; each report is one line
  if [ "$lines" -lt 1 ] || ! grep '^mayfly-train: error: ' "$log" | grep -q "$needle"; then
    echo "$name: no error line naming $needle:"; cat "$log"; failures=$((failures+1))
  fi
  if grep -qE 'Segmentation|Aborted|AddressSanitizer|core dumped' "$log"; then
    echo "$name: crashed"; failures=$((failures+1))
  fi
  if [ -f "$out/$name.h5" ] && /usr/bin/python3 -c 'import h5py,sys; sys.exit(0 if h5py.File(sys.argv[1])["/"].attrs.get("complete") == 1 else 1)' "$out/$name.h5" 2>/dev/null; then
    echo "$name: a complete result file was written"; failures=$((failures+1))
  fi
  echo "$name: refused (exit $rc): $(grep -m1 '^mayfly-train: error: ' "$log")"
}
check good ""
check truncated train-images-idx3-ubyte
check magic train-images-idx3-ubyte
check label train-labels-idx1-ubyte
[ $failures -eq 0 ]
