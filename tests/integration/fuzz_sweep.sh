#!/usr/bin/env bash
# Fuzzes run_slurm.sh's sweep parser: the sweep files of bench/sweeps, mutated (bytes flipped,
# lines cut, duplicated or swapped, tokens replaced by hostile or absurd values), go through
# `run_slurm.sh --sweep FILE --dry-run`. Every mutant must either be accepted (exit 0) or be
# refused cleanly (exit 2, every stderr line a `FILE:LINE: error:` or `run_slurm: error:` line);
# bash itself must never complain (syntax errors, unbound variables, bad arithmetic), and no
# value may ever be executed (a `$(touch ...)` canary). Crashers found are kept as
# tests/fuzz/regressions/sweep/ and replayed every run.
#
# Why not libFuzzer: the sweep parser is bash (run_slurm.sh), so this is the equivalent for it:
# seeded, reproducible mutants of the smoke and quick sweeps (the paper sweep is left out: one
# dry run of it takes ~10 s), MAYFLY_FUZZ_SWEEPS of them (default 40), MAYFLY_FUZZ_SEED.
set -euo pipefail
cd "$(dirname "$0")/../.."
count=${MAYFLY_FUZZ_SWEEPS:-40}
seed=${MAYFLY_FUZZ_SEED:-20261123}
work=$(mktemp -d /tmp/mayfly-fuzz-sweep.XXXXXX)
trap 'rm -rf "$work"' EXIT
canary="$work/pwned"

/usr/bin/python3 - "$work" "$count" "$seed" "$canary" bench/sweeps/smoke bench/sweeps/quick <<'EOF'
import random, sys
work, count, seed, canary = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
sources = [open(p, "rb").read() for p in sys.argv[5:]]
hostile = [b"$(touch %s)" % canary.encode(), b"`touch %s`" % canary.encode(), b"'", b'"',
           b"\\", b";", b"|", b"&&", b"-1", b"0", b"99999999999999999999", b"1e9", b"nan",
           b"", b"=", b"==", b"batch", b"mode=", b"=cold", b"\t", b"\x00", b"\xff\xfe",
           b"x" * 300, b"*", b"../../etc/passwd", b"reps=0", b"peers=-3", b"model=vgg11"]
rng = random.Random(seed)
for i in range(count):
    data = bytearray(rng.choice(sources))
    for _ in range(rng.randint(1, 4)):
        kind = rng.randrange(5)
        lines = data.split(b"\n")
        if kind == 0 and data:  # flip a byte
            data[rng.randrange(len(data))] = rng.randrange(256)
        elif kind == 1 and len(lines) > 1:  # drop a line
            del lines[rng.randrange(len(lines))]
            data = bytearray(b"\n".join(lines))
        elif kind == 2:  # duplicate a line
            j = rng.randrange(len(lines))
            lines.insert(j, lines[j])
            data = bytearray(b"\n".join(lines))
        elif kind == 3:  # replace a token
            j = rng.randrange(len(lines))
            tokens = lines[j].split(b" ")
            tokens[rng.randrange(len(tokens))] = rng.choice(hostile)
            lines[j] = b" ".join(tokens)
            data = bytearray(b"\n".join(lines))
        else:  # replace a value after '='
            j = rng.randrange(len(lines))
            if b"=" in lines[j]:
                key, _, rest = lines[j].partition(b"=")
                tail = rest.split(b" ", 1)
                lines[j] = key + b"=" + rng.choice(hostile) + (b" " + tail[1] if len(tail) > 1 else b"")
                data = bytearray(b"\n".join(lines))
    open("%s/mutant%03d" % (work, i), "wb").write(bytes(data))
EOF

failures=0 accepted=0 refused=0
for file in "$work"/mutant* tests/fuzz/regressions/sweep/*; do # + every sweep crasher found so far
  rc=0
  timeout 30 ./run_slurm.sh --sweep "$file" --dry-run --output "$work/out" >"$work/stdout" 2>"$work/stderr" || rc=$?
  name=$(basename "$file")
  if [ "$rc" -eq 0 ]; then
    accepted=$((accepted + 1))
  elif [ "$rc" -eq 2 ]; then
    refused=$((refused + 1))
    if grep -qv -e "^.*:[0-9]*: error: " -e "^run_slurm: error: " "$work/stderr"; then
      echo "FAIL $name: unexpected stderr line(s):"; grep -v -e ": error: " "$work/stderr" | head -3
      failures=$((failures + 1))
    fi
  else
    echo "FAIL $name: exit $rc"; head -3 "$work/stderr"; failures=$((failures + 1))
  fi
  if grep -qi -e "syntax error" -e "unbound variable" -e "command not found" -e "integer expression" \
      -e "bad substitution" "$work/stderr"; then
    echo "FAIL $name: bash complained:"; head -3 "$work/stderr"; failures=$((failures + 1))
  fi
  if [ -e "$canary" ]; then
    echo "FAIL $name: a sweep value was executed"; failures=$((failures + 1)); rm -f "$canary"
  fi
  if [ -n "$(find "$work/out" -name '*.h5' 2>/dev/null)" ]; then
    echo "FAIL $name: --dry-run wrote results"; failures=$((failures + 1))
  fi
done
echo "fuzz_sweep: $count mutants (seed $seed): $accepted accepted, $refused refused cleanly, $failures failures"
[ "$failures" -eq 0 ]
