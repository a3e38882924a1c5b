#!/usr/bin/env bash
# Bad input never crashes and never leaves a result that claims to be complete (DESIGN.md,
# "Failure model"). Every case runs a program on one kind of broken input (dataset files,
# options, output paths, result files) and asserts:
#   - the exit code: 2 for usage errors (options), 1 for runtime errors (files, data);
#     mayfly-compare documents 2 for every bad input (its 1 means "models differ");
#   - exactly one "PROGRAM: error:" line, and it names the option or file at fault;
#   - no crash: no signal exit, no "Segmentation"/"Aborted"/sanitizer report;
#   - no result file with complete=1 (h5dump -a /complete).
# mayfly-train runs through bench/scripts/launch.sh (-n 1 mostly, -n 2 where one line per peer would
# show up). Broken datasets are written here by python3 as tiny idx / CIFAR files.
set -uo pipefail
cd "${MAYFLY_ROOT:-$(dirname "$0")/../..}"
bin=${MAYFLY_BIN:-bin}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cases=0 failures=0

fail() { # case message
  echo "FAIL [$1] $2"
  failures=$((failures + 1))
}

# check NAME EXPECTED_RC PROGRAM NEEDLE OUTPUT_FILE LOG RC: the assertions above.
check() {
  local name=$1 expected=$2 program=$3 needle=$4 output=$5 log=$6 rc=$7 lines ok=1
  cases=$((cases + 1))
  if [ "$rc" -ne "$expected" ]; then fail "$name" "exit $rc, expected $expected"; ok=0; fi
  lines=$(grep -c "^$program: error:" "$log")
  if [ "$lines" -ne 1 ]; then fail "$name" "$lines '$program: error:' lines, expected 1"; ok=0; fi
  if ! grep "^$program: error:" "$log" | grep -qF -- "$needle"; then
    fail "$name" "the error line does not name '$needle'"
    ok=0
  fi
  if grep -qE 'Segmentation|Aborted|AddressSanitizer|LeakSanitizer|runtime error:|exited on signal|core dumped' "$log"; then
    fail "$name" "crash or sanitizer report in the output"
    ok=0
  fi
  if [ -n "$output" ] && [ -f "$output" ] && h5dump -a /complete "$output" 2>/dev/null |
      grep -q '(0): 1'; then
    fail "$name" "$output claims to be complete"
    ok=0
  fi
  if [ $ok -eq 1 ]; then
    echo "ok   [$name] $(grep "^$program: error:" "$log")"
  else
    sed 's/^/     | /' "$log" | tail -n 12
  fi
}

# The mayfly-train cases run up to $jobs at a time (mpirun start-up dominates); each writes
# its log and exit code, and finish_cases checks them in order.
jobs=${MAYFLY_BAD_INPUT_JOBS:-3}
pending=()

# launch LOG OUTPUT NP ARGS...: one mayfly-train run in the background.
launch() {
  local log=$1 output=$2 np=$3
  shift 3
  while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do sleep 0.2; done
  (bench/scripts/launch.sh -q -n "$np" -t 60 -r 0 -- "$bin/mayfly-train" -o "$output" "$@" >"$log" 2>&1
   echo $? >"$log.rc") &
}

# train NAME EXPECTED_RC NEEDLE NP ARGS...: one mayfly-train case on its own output file.
train() {
  local name=$1 expected=$2 needle=$3 np=$4
  shift 4
  launch "$work/logs/$name.log" "$work/out/$name.h5" "$np" --stage-dir "$work/stage" "$@"
  pending+=("$name|$expected|$needle|$work/out/$name.h5")
}

# train_to NAME EXPECTED_RC NEEDLE OUTPUT ARGS...: like train, with the output path given.
train_to() {
  local name=$1 expected=$2 needle=$3 output=$4
  shift 4
  launch "$work/logs/$name.log" "$output" 1 "$@"
  pending+=("$name|$expected|$needle|$output")
}

finish_cases() {
  wait
  local entry name expected needle output
  for entry in "${pending[@]}"; do
    IFS='|' read -r name expected needle output <<<"$entry"
    check "$name" "$expected" mayfly-train "$needle" "$output" "$work/logs/$name.log" \
        "$(cat "$work/logs/$name.log.rc" 2>/dev/null || echo 255)"
  done
  pending=()
}

# compare NAME NEEDLE ARGS...: mayfly-compare on bad input (always exit 2, see above).
compare() {
  local name=$1 needle=$2 rc
  shift 2
  local log=$work/logs/$name.log
  timeout 60 "$bin/mayfly-compare" "$@" >"$log" 2>&1
  rc=$?
  check "$name" 2 mayfly-compare "$needle" "" "$log" "$rc"
}

mkdir -p "$work/out" "$work/logs" "$work/data"

# ---- broken datasets (one directory per case; the good files are a valid tiny idx set) ----
/usr/bin/python3 - "$work/data" <<'PY'
import gzip, os, shutil, struct, sys
root = sys.argv[1]
TRAIN, TEST, SIDE = 256, 64, 28

def images(count, rows=SIDE, cols=SIDE, magic=0x803, payload=None):
    data = bytes((i * 7) % 256 for i in range(count * rows * cols)) if payload is None else payload
    return struct.pack(">IIII", magic, count, rows, cols) + data

def labels(count, magic=0x801, values=None):
    data = bytes(i % 10 for i in range(count)) if values is None else values
    return struct.pack(">II", magic, count) + data

def split_files(train_images=None, train_labels=None, test_images=None, test_labels=None):
    return {
        "train-images-idx3-ubyte": images(TRAIN) if train_images is None else train_images,
        "train-labels-idx1-ubyte": labels(TRAIN) if train_labels is None else train_labels,
        "t10k-images-idx3-ubyte": images(TEST) if test_images is None else test_images,
        "t10k-labels-idx1-ubyte": labels(TEST) if test_labels is None else test_labels,
    }

def write(case, files, gzip_names=()):
    d = os.path.join(root, case)
    os.makedirs(d, exist_ok=True)
    for name, data in files.items():
        if data is None:
            continue
        if name in gzip_names:
            with gzip.open(os.path.join(d, name + ".gz"), "wb") as f:
                f.write(data)
        else:
            with open(os.path.join(d, name), "wb") as f:
                f.write(data)
    return d

good = split_files()
write("good", good)
write("empty_dir", {})
write("missing_labels", {**good, "train-labels-idx1-ubyte": None})
write("empty_file", {**good, "train-images-idx3-ubyte": b""})
write("truncated_header", {**good, "train-images-idx3-ubyte": images(TRAIN)[:10]})
write("truncated_data", {**good, "train-images-idx3-ubyte": images(TRAIN)[:-100]})
write("trailing_garbage", {**good, "train-labels-idx1-ubyte": labels(TRAIN) + b"xyz"})
write("wrong_magic", {**good, "train-images-idx3-ubyte": images(TRAIN, magic=0x804)})
write("zero_rows", {**good, "train-images-idx3-ubyte": images(TRAIN, rows=0, payload=b"")})
write("zero_count", {**good, "train-images-idx3-ubyte": images(0, payload=b""),
                     "train-labels-idx1-ubyte": labels(0, values=b"")})
write("absurd_dims", {**good, "train-images-idx3-ubyte": images(TRAIN, rows=100000, cols=100000,
                                                                payload=b"\0" * 4096)})
write("absurd_count", {**good, "train-images-idx3-ubyte": images(4000000000, payload=b"\0" * 784)})
write("count_mismatch", {**good, "train-labels-idx1-ubyte": labels(TRAIN - 1)})
write("label_out_of_range", {**good, "train-labels-idx1-ubyte":
                             labels(TRAIN, values=bytes([3] * 100 + [10] + [3] * (TRAIN - 101)))})
write("test_split_broken", {**good, "t10k-images-idx3-ubyte": images(TEST)[:-1]})
write("split_geometry_differs", {**good, "t10k-images-idx3-ubyte": images(TEST, cols=27)})

# gzip: valid, corrupt in the middle, cut short, and a .gz name over plain data.
d = write("gzip_corrupt", good, gzip_names=good.keys())
path = os.path.join(d, "train-images-idx3-ubyte.gz")
raw = bytearray(open(path, "rb").read())
for i in range(len(raw) // 2, len(raw) // 2 + 32):
    raw[i] ^= 0x5A
open(path, "wb").write(raw)
d = write("gzip_cut", good, gzip_names=good.keys())
path = os.path.join(d, "train-images-idx3-ubyte.gz")
raw = open(path, "rb").read()
open(path, "wb").write(raw[: len(raw) // 2])
d = write("gzip_not_gzip", good, gzip_names=good.keys())
open(os.path.join(d, "train-labels-idx1-ubyte.gz"), "wb").write(labels(TRAIN))

# CIFAR-10 binary: 1 label byte + 3072 pixels per record.
def cifar(count, bad_label_at=None, cut=0):
    out = bytearray()
    for i in range(count):
        out.append(10 if i == bad_label_at else i % 10)
        out += bytes([i % 256]) * 3072
    return bytes(out[: len(out) - cut])

def cifar_dir(case, test=None, first=None):
    d = os.path.join(root, case)
    os.makedirs(d, exist_ok=True)
    for b in range(1, 6):
        data = first if (b == 1 and first is not None) else cifar(32)
        open(os.path.join(d, "data_batch_%d.bin" % b), "wb").write(data)
    open(os.path.join(d, "test_batch.bin"), "wb").write(cifar(32) if test is None else test)

cifar_dir("cifar_good")
cifar_dir("cifar_bad_length", first=cifar(32, cut=5))
cifar_dir("cifar_bad_label", test=cifar(32, bad_label_at=7))
os.makedirs(os.path.join(root, "cifar_missing"), exist_ok=True)
open(os.path.join(root, "cifar_missing", "data_batch_1.bin"), "wb").write(cifar(2))
PY
d=$work/data
small=(--batch 32 --tasks 2 --rounds 2 --eval-every 0)

# ---- dataset directories ----
train missing_dir 1 "$d/nope/train-images" 1 --dataset "idx:$d/nope" "${small[@]}"
train empty_dir 1 "$d/empty_dir/train-images-idx3-ubyte" 2 --dataset "idx:$d/empty_dir" "${small[@]}"
train missing_labels 1 "train-labels-idx1-ubyte" 1 --dataset "idx:$d/missing_labels" "${small[@]}"
train empty_file 1 "$d/empty_file/train-images-idx3-ubyte: empty file" 1 \
    --dataset "idx:$d/empty_file" "${small[@]}"
train truncated_header 1 "train-images-idx3-ubyte: truncated header" 2 \
    --dataset "idx:$d/truncated_header" "${small[@]}"
train truncated_data 1 "train-images-idx3-ubyte: truncated" 1 \
    --dataset "idx:$d/truncated_data" "${small[@]}"
train trailing_garbage 1 "train-labels-idx1-ubyte: trailing garbage" 1 \
    --dataset "idx:$d/trailing_garbage" "${small[@]}"
train wrong_magic 1 "train-images-idx3-ubyte: bad magic" 2 --dataset "idx:$d/wrong_magic" "${small[@]}"
train zero_rows 1 "train-images-idx3-ubyte: zero dimension" 1 --dataset "idx:$d/zero_rows" "${small[@]}"
train zero_count 1 "train-images-idx3-ubyte: zero dimension" 1 \
    --dataset "idx:$d/zero_count" "${small[@]}"
train absurd_dims 1 "train-images-idx3-ubyte: image size" 1 --dataset "idx:$d/absurd_dims" "${small[@]}"
train absurd_count 1 "train-images-idx3-ubyte: count" 1 --dataset "idx:$d/absurd_count" "${small[@]}"
train count_mismatch 1 "train-labels-idx1-ubyte: 255 labels" 2 \
    --dataset "idx:$d/count_mismatch" "${small[@]}"
train label_out_of_range 1 "label 10 at index 100" 1 \
    --dataset "idx:$d/label_out_of_range" "${small[@]}"
train test_split_broken 1 "t10k-images-idx3-ubyte: truncated" 1 \
    --dataset "idx:$d/test_split_broken" "${small[@]}"
train split_geometry_differs 1 "test samples are 1x28x27, training samples 1x28x28" 1 \
    --dataset "idx:$d/split_geometry_differs" "${small[@]}"
train gzip_corrupt 1 "train-images-idx3-ubyte.gz: corrupt gzip" 1 \
    --dataset "idx:$d/gzip_corrupt" "${small[@]}"
train gzip_cut 1 "train-images-idx3-ubyte.gz: corrupt gzip data: unexpected end" 1 --dataset "idx:$d/gzip_cut" "${small[@]}"
train gzip_not_gzip 1 "train-labels-idx1-ubyte.gz: not a gzip file" 1 \
    --dataset "idx:$d/gzip_not_gzip" "${small[@]}"
train cifar_missing 1 "$d/cifar_missing/data_batch_2.bin: missing" 1 \
    --dataset "cifar10:$d/cifar_missing" "${small[@]}"
train cifar_bad_length 1 "data_batch_1.bin: length" 1 \
    --dataset "cifar10:$d/cifar_bad_length" "${small[@]}"
train cifar_bad_label 1 "test_batch.bin: label 10 at index 7" 1 \
    --dataset "cifar10:$d/cifar_bad_label" "${small[@]}"

# ---- options ----
train unknown_option 2 "--bogus" 1 --bogus
train unknown_short_option 2 "-Z" 1 -Z
train missing_value 2 "--rounds" 1 --dataset "idx:$d/good" --rounds
train non_numeric 2 "--batch: 'abc'" 1 --batch abc
train trailing_text 2 "--batch: '12x'" 1 --batch 12x
train zero_batch 2 "--batch: 0" 1 --batch 0
train negative_rounds 2 "--rounds: -3" 2 --rounds -3
train overflow_rounds 2 "--rounds: '99999999999'" 1 --rounds 99999999999
train overflow_seed 2 "--seed" 1 --seed 99999999999999999999999
train nan_lr 2 "--lr: 'nan'" 1 --lr nan
train negative_lr 2 "--lr" 1 --lr -0.1
train zero_tasks 2 "--tasks: '0'" 1 --tasks 0
train unknown_model 2 "--model: 'resnet9000'" 1 --model resnet9000
train unknown_mode 2 "--mode: 'lukewarm'" 1 --mode lukewarm
train unknown_exchange 2 "--exchange: 'carrier-pigeon'" 1 --exchange carrier-pigeon
train bad_dataset_spec 2 "--dataset: --dataset mnist-ish" 1 --dataset mnist-ish
train bad_synthetic_spec 2 "--dataset: --dataset synthetic:12:ab" 1 --dataset synthetic:12:ab
train empty_dataset_dir 2 "--dataset: --dataset idx:" 1 --dataset idx:
train empty_output 2 "--output: empty value" 1 --dataset "idx:$d/good" -o ""
train stray_argument 2 "'extra': unexpected argument" 1 --dataset "idx:$d/good" extra
# Values that are valid alone but impossible for the data: runtime errors, one line for 2 peers.
train too_many_tasks 1 "--tasks: 99" 2 --dataset "idx:$d/good" --batch 32 --tasks 99 --rounds 2
train batch_exceeds_shard 1 "--batch: 200" 2 --dataset "idx:$d/good" --batch 200 --tasks 1 --rounds 2
# A placement the allocation cannot satisfy: one node, both peers on it (usage error, at start-up).
train placement_remote_one_node 2 "--placement remote: every node of the allocation holds a peer" \
    2 --dataset "idx:$d/good" --mode cold "${small[@]}" --placement remote
train placement_bad_value 2 "--placement: 'elsewhere'" 1 --dataset "idx:$d/good" --placement elsewhere

finish_cases

# ---- output paths and existing results ----
train_to output_in_proc 1 "/proc/x.h5" /proc/x.h5 --dataset "idx:$d/good" "${small[@]}"
train_to output_missing_dir 1 "$work/no/such/dir/r.h5" "$work/no/such/dir/r.h5" \
    --dataset "idx:$d/good" "${small[@]}"
finish_cases

complete_run=$work/out/complete.h5
bench/scripts/launch.sh -q -n 1 -t 60 -- "$bin/mayfly-train" --dataset "idx:$d/good" "${small[@]}" \
    -o "$complete_run" >"$work/logs/complete_run.log" 2>&1 ||
  fail complete_run "a valid tiny run failed: $(tail -n 3 "$work/logs/complete_run.log")"
before=$(md5sum <"$complete_run")
log=$work/logs/existing_complete.log
bench/scripts/launch.sh -q -n 1 -t 60 -r 0 -- "$bin/mayfly-train" --dataset "idx:$d/good" "${small[@]}" \
    --seed 99 -o "$complete_run" >"$log" 2>&1
rc=$?
# check() would flag the (pre-existing, untouched) complete file; test it without output.
check existing_complete 1 mayfly-train "$complete_run: a complete result file exists" "" "$log" "$rc"
[ "$(md5sum <"$complete_run")" = "$before" ] || fail existing_complete "the file was modified"

# --force overwrites a complete result (not an error: the documented way out).
cases=$((cases + 1))
other_run=$work/out/other_seed.h5
if bench/scripts/launch.sh -q -n 1 -t 60 -- "$bin/mayfly-train" --dataset "idx:$d/good" "${small[@]}" \
    --seed 99 -o "$other_run" >"$work/logs/other_seed.log" 2>&1 && cp "$other_run" "$work/o2.h5" &&
    bench/scripts/launch.sh -q -n 1 -t 60 -- "$bin/mayfly-train" --dataset "idx:$d/good" "${small[@]}" \
    --seed 99 --force -o "$work/o2.h5" >"$work/logs/force.log" 2>&1; then
  echo "ok   [force_overwrites] --force replaced a complete result"
else
  fail force_overwrites "exit non-zero: $(tail -n 3 "$work/logs/force.log")"
fi

# ---- mayfly-compare ----
echo "not an HDF5 file" >"$work/out/text.h5"
incomplete=$work/out/incomplete.h5
cp "$complete_run" "$incomplete"
/usr/bin/python3 -c 'import sys, h5py; h5py.File(sys.argv[1], "r+").attrs["complete"] = 0' \
    "$incomplete"
compare compare_no_arguments "expected two result files"
compare compare_missing_file "$work/out/absent.h5" "$complete_run" "$work/out/absent.h5"
compare compare_not_hdf5 "$work/out/text.h5: not a readable HDF5 file" "$complete_run" \
    "$work/out/text.h5"
compare compare_incomplete "$incomplete: the run is not complete" "$complete_run" "$incomplete"
compare compare_configs_differ "configurations differ in seed" "$complete_run" "$other_run"
compare compare_summary_odd "--summary: expected pairs of result files" --summary "$complete_run"
compare compare_summary_pair_differs "configurations differ in seed" --summary "$complete_run" \
    "$complete_run" "$complete_run" "$other_run"
compare compare_label_alone "--label: only with --summary" --label x "$complete_run" "$complete_run"
compare compare_too_many_labels "--label: 2 labels for 1 pair(s)" --summary --label x --label y \
    "$complete_run" "$complete_run"
compare compare_unknown_option "--sumary: unknown option" --sumary "$complete_run" "$complete_run"

echo "$cases cases, $failures failed"
[ "$failures" -eq 0 ] && [ "$cases" -ge 30 ]
