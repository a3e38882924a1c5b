#!/usr/bin/env bash
# mayfly-soak: the soak and load runs of issue 7 (item 4), each bounded, each with checks.
#
# Why it exists: unit and integration tests run for seconds; leaks, descriptor growth, slow
# drift and the rare Open MPI 4.1.4 spawn stall only show over hundreds of spawns or thousands
# of rounds, and oversubscription only under many peers. Three runs, raw data kept under -o:
#   spawn   N spawn/disconnect cycles of bin/mayfly-spawn: no hang; cycle-time, parent RSS and
#           open-descriptor drift from the file's /drift datasets.
#   load    P peers x W workers oversubscribed: baseline, cold and warm mayfly-train runs
#           complete (complete=1) and give the baseline's model (mayfly-compare VALID).
#   memory  a long warm run (and a cold one of --memory-cold-rounds) with the peers', workers'
#           and mpirun's RSS sampled from /proc every second into a CSV; RSS slope per 100
#           rounds after the first 10 % of the run, /timing/tasks peak_rss_bytes over rounds.
# Every mpirun goes through bench/scripts/launch.sh with a time limit (-r 0: this script re-runs a
# failed attempt itself and keeps the failed attempt's log and file, so nothing is hidden).
# `uptime` is recorded before and after every run: the box is shared.
set -u

usage() {
  cat <<'EOF'
Usage: bench/scripts/soak.sh [OPTIONS] [spawn|load|memory|all ...]
Soak and load runs of mayfly (issue 7 item 4); raw data under the output directory, a summary
at the end. Exit 0 when every check passed, 1 when one failed, 2 on bad usage.

  -o, --output DIR          output directory [default: /tmp/mayfly-soak]
  -q, --quick               short CI variant: 20 spawn cycles, 4 peers x 2 workers x 2 rounds,
                            200 warm rounds (synthetic data, RSS every 0.2 s); RSS slopes are
                            reported, not checked
      --bin DIR             mayfly binaries [default: $MAYFLY_BIN or bin/ next to bench/]
      --attempts N          attempts per run when one fails or hangs [default: 2]
      --cycles N            spawn: spawn/disconnect cycles [default: 500]
      --spawn-timeout S     spawn: watchdog of one spawn or disconnect, seconds [default: 60]
      --max-spawn-rss KIB   spawn: fail above this parent RSS slope, kiB/cycle [default: 512]
      --load-peers N        load: peers [default: 8]
      --load-workers N      load: workers per peer [default: 2]
      --load-rounds N       load: rounds [default: 5]
      --memory-peers N      memory: peers [default: 2]
      --memory-rounds N     memory: rounds of the warm run [default: 8000]
      --memory-cold-rounds N  memory: rounds of the cold run (0: skip) [default: 200]
      --max-warm-slope KIB  memory: fail when a warm worker's or a peer's (other than rank 0)
                            RSS grows faster, kiB per 100 rounds [default: 16]
      --max-writer-slope KIB  memory: the same for rank 0, which also writes the results file
                            and keeps per-round summaries (O(rounds) by design) [default: 128]
      --dataset SPEC        mayfly-train --dataset [default: fashion-mnist; quick: synthetic]
  -h, --help                this help
Runs: spawn, load, memory (default: all three, in that order).
Files: DIR/summary.txt (checks and numbers), DIR/uptime.log, DIR/NAME.{log,err,h5},
DIR/memory-*.rss.csv and spawn.rss.csv (t_seconds,pid,comm,rank,rss_kib,fds),
DIR/*.report (per-run numbers), DIR/soak-snapshot/bin (the binaries used, copied at the start).
EOF
}

die() { echo "mayfly-soak: error: $*" >&2; exit 2; }

here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$(dirname "$here")")
out=/tmp/mayfly-soak quick=0 bin=${MAYFLY_BIN:-$repo/bin} attempts=2
cycles=500 spawn_timeout=60 max_spawn_rss=512
load_peers=8 load_workers=2 load_rounds=5 load_tasks=2
memory_peers=2 memory_rounds=8000 memory_cold_rounds=200 max_warm_slope=16 max_writer_slope=128
dataset=
runs=()
numeric=(attempts cycles spawn_timeout max_spawn_rss load_peers load_workers load_rounds
         memory_peers memory_rounds memory_cold_rounds max_warm_slope max_writer_slope)
declare -A given=()
while [ $# -gt 0 ]; do
  case "$1" in
    -o|--output) [ $# -ge 2 ] || die "$1: missing value"; out=$2; shift 2 ;;
    -q|--quick) quick=1; shift ;;
    --bin) [ $# -ge 2 ] || die "$1: missing value"; bin=$2; shift 2 ;;
    --dataset) [ $# -ge 2 ] || die "$1: missing value"; dataset=$2; shift 2 ;;
    --attempts|--cycles|--spawn-timeout|--max-spawn-rss|--load-peers|--load-workers|\
    --load-rounds|--memory-peers|--memory-rounds|--memory-cold-rounds|--max-warm-slope|\
    --max-writer-slope)
      [ $# -ge 2 ] || die "$1: missing value"
      name=${1#--}; name=${name//-/_}
      printf -v "$name" '%s' "$2"; given[$name]=1; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    spawn|load|memory) runs+=("$1"); shift ;;
    all) runs+=(spawn load memory); shift ;;
    *) die "$1: unknown option or run (see --help)" ;;
  esac
done
if [ "$quick" -eq 1 ]; then # quick defaults, unless given explicitly
  [ -n "${given[cycles]:-}" ] || cycles=20
  [ -n "${given[load_peers]:-}" ] || load_peers=4
  [ -n "${given[load_rounds]:-}" ] || load_rounds=2
  [ -n "${given[memory_rounds]:-}" ] || memory_rounds=200
  [ -n "${given[memory_cold_rounds]:-}" ] || memory_cold_rounds=0
  [ -n "${given[attempts]:-}" ] || attempts=1
  [ -n "$dataset" ] || dataset=synthetic:2000:500
fi
[ -n "$dataset" ] || dataset=fashion-mnist
for name in "${numeric[@]}"; do
  value=${!name}
  [[ "$value" =~ ^[0-9]+$ ]] || die "--${name//_/-}: '$value' is not a non-negative integer"
done
for name in attempts cycles load_peers load_workers load_rounds memory_peers memory_rounds; do
  [ "${!name}" -ge 1 ] || die "--${name//_/-}: must be at least 1"
done
[ ${#runs[@]} -gt 0 ] || runs=(spawn load memory)
python=/usr/bin/python3
"$python" -c 'import h5py, numpy' 2>/dev/null || die "$python: needs h5py and numpy (python3-h5py)"
[ -d "$bin" ] || die "$bin: no such directory (--bin)"
mkdir -p "$out" 2>/dev/null || die "$out: cannot create the output directory"
out=$(cd "$out" && pwd)
bin=$(cd "$bin" && pwd)
# Snapshot of the binaries (and the price tables they look up next to them): other people
# rebuild bin/ while a soak runs, and a worker exec'ed from a half-written file fails.
# A rebuild in progress is waited out (up to 30 s); a binary that stays missing is an error.
# Its own subdirectory, so that -o pointing at a tree with a bin/ or results/ never touches them.
snapshot=$out/soak-snapshot/bin
rm -rf "$out/soak-snapshot"
mkdir -p "$snapshot" "$out/soak-snapshot/results" ||
    die "$out/soak-snapshot: cannot create the snapshot directory"
for program in mayfly-spawn mayfly-train mayfly-worker mayfly-compare; do
  for try in $(seq 15); do # a file not written to for 2 s and unchanged by the copy is whole
    stamp=$(stat -c '%s %Y' "$bin/$program" 2>/dev/null)
    if [ -x "$bin/$program" ] && [ $(($(date +%s) - ${stamp#* })) -ge 2 ] &&
       cp "$bin/$program" "$snapshot/" 2>/dev/null &&
       [ "$(stat -c '%s %Y' "$bin/$program" 2>/dev/null)" = "$stamp" ]; then
      break
    fi
    [ "$try" -eq 15 ] && die "$bin/$program: missing, or still being written (build it, or --bin)"
    sleep 2
  done
done
[ -d "$repo/results/prices" ] && cp -r "$repo/results/prices" "$out/soak-snapshot/results/"
binaries_from=$bin
bin=$snapshot
launch=$repo/bench/scripts/launch.sh
summary=$out/summary.txt
: > "$summary"
failures=0

say() { echo "soak: $*" >&2; }
record() { echo "$*" | tee -a "$summary" >&2; } # a line of the final summary
check() { # ok|FAIL WHAT...: counts failures
  local status=$1
  shift
  [ "$status" = ok ] || failures=$((failures + 1))
  record "check $status: $*"
}
load_now() { cut -d' ' -f1-3 /proc/loadavg; }

# run_bounded NAME NP LIMIT ARGS...: one launch.sh run of bin/ARGS[0] with the rest, stdout to
# NAME.log, stderr to NAME.err, uptime before/after into uptime.log, wall seconds into $wall.
# A sampler (sample_rss) runs beside it when $sample_csv is set. Sets $rc.
run_bounded() {
  local name=$1 np=$2 limit=$3 start lp sampler=
  shift 3
  echo "$(date -u +%FT%TZ) before $name: $(uptime)" >> "$out/uptime.log"
  say "$name: $(date -u +%T) starting (np $np, limit ${limit}s, load $(load_now))"
  start=$(date +%s.%N)
  "$launch" -n "$np" -t "$limit" -r 0 -- "$bin/$1" "${@:2}" > "$out/$name.log" \
      2> "$out/$name.err" &
  lp=$!
  if [ -n "${sample_csv:-}" ]; then
    sample_rss "$lp" "$sample_csv" "${sample_interval:-1}" &
    sampler=$!
  fi
  wait "$lp"
  rc=$?
  [ -n "$sampler" ] && wait "$sampler"
  wall=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
  echo "$(date -u +%FT%TZ) after $name (exit $rc, ${wall}s): $(uptime)" >> "$out/uptime.log"
  say "$name: $(date -u +%T) exit $rc after ${wall}s (load $(load_now))"
}

# attempt_run NAME NP LIMIT H5 ARGS...: run_bounded up to $attempts times; a failed attempt's
# files are kept as NAME.attemptK.*; the last attempt keeps the plain names. Sets $rc.
attempt_run() {
  local name=$1 np=$2 limit=$3 h5=$4 k ext
  shift 4
  for ((k = 1; k <= attempts; k++)); do
    rm -f "$h5"
    run_bounded "$name" "$np" "$limit" "$@"
    [ "$rc" -eq 0 ] && return 0
    record "$name: attempt $k of $attempts failed with exit $rc ($(grep -hiE \
      'error|watchdog|stall|did not finish' "$out/$name.err" | tail -n 2 | tr '\n' ' '))"
    [ "$k" -lt "$attempts" ] || return 0
    for ext in log err h5 rss.csv; do
      [ -e "$out/$name.$ext" ] && mv "$out/$name.$ext" "$out/$name.attempt$k.$ext"
    done
  done
}

# sample_rss LAUNCHER_PID CSV [INTERVAL]: RSS and descriptor count of every mayfly-train,
# mayfly-worker, mayfly-spawn and mpirun process under that launcher's mpirun (its descendants
# only: other people's runs on the same box are not counted); a progress line every minute.
sample_rss() {
  "$python" - "$1" "$2" "${3:-1}" "$(basename "$2" .rss.csv)" <<'PY'
import os, sys, time
launcher, path, interval, name = int(sys.argv[1]), sys.argv[2], float(sys.argv[3]), sys.argv[4]
wanted = {"mayfly-train", "mayfly-worker", "mayfly-spawn", "mpirun"}

def read(p):
    try:
        with open(p) as f:
            return f.read()
    except OSError:
        return ""

def children(pid):
    kids = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return kids
    for t in tasks:
        kids += [int(c) for c in read(f"/proc/{pid}/task/{t}/children").split()]
    return kids

start = time.monotonic()
next_note, pids, last = 60.0, {}, {}
with open(path, "w") as out:
    out.write("t_seconds,pid,comm,rank,rss_kib,fds\n")
    while os.path.exists(f"/proc/{launcher}"):
        t = time.monotonic() - start
        # only the subtree of launch.sh's mpirun
        todo = [p for p in children(launcher) if read(f"/proc/{p}/comm").strip() == "mpirun"]
        while todo:
            pid = todo.pop()
            comm = read(f"/proc/{pid}/comm").strip()
            todo += children(pid)
            if comm == "mpirun" and read(f"/proc/{pid}/stat").split(")")[-1].split()[1:2] != [str(launcher)]:
                continue  # mpirun's own fork before it execs a rank: not a process of interest
            if comm in wanted:
                rss = [l.split()[1] for l in read(f"/proc/{pid}/status").splitlines()
                       if l.startswith("VmRSS:")]
                try:
                    fds = len(os.listdir(f"/proc/{pid}/fd"))
                except OSError:
                    fds = -1
                # the rank tells the peer that writes the results file (rank 0) from the others
                env = read(f"/proc/{pid}/environ").split("\0")
                rank = [e.split("=", 1)[1] for e in env if e.startswith("OMPI_COMM_WORLD_RANK=")]
                if rss:
                    out.write(f"{t:.2f},{pid},{comm},{rank[0] if rank else -1},{rss[0]},{fds}\n")
                    pids.setdefault(comm, set()).add(pid)
                    last[comm] = int(rss[0])
        out.flush()
        if t >= next_note:
            next_note += 60.0
            seen = ", ".join(f"{c} {len(p)} seen (last RSS {last[c]} kiB)" for c, p in sorted(pids.items()))
            print(f"soak: {name}: {t:.0f}s: {seen}", file=sys.stderr, flush=True)
        time.sleep(max(0.0, interval - (time.monotonic() - start - t)))
PY
}

# --- spawn -----------------------------------------------------------------------------------
run_spawn() {
  local h5=$out/spawn.h5 limit=$((cycles * 4 + 120))
  say "spawn: $cycles spawn/disconnect cycles of 1 child"
  # Sampled every 0.25 s: progress, and a lower bound of the cycles reached if one hangs
  # (mayfly-spawn writes /drift only at the end).
  sample_csv=$out/spawn.rss.csv sample_interval=0.25
  attempt_run spawn 1 "$limit" "$h5" mayfly-spawn --cycles "$cycles" -c 1 -i 1 -m 0 \
      --timeout "$spawn_timeout" -o "$h5" -f
  sample_csv='' sample_interval=''
  local k failed=("$out"/spawn.attempt*.rss.csv)
  [ "$rc" -ne 0 ] && failed+=("$out/spawn.rss.csv")
  for k in "${failed[@]}"; do
    [ -e "$k" ] || continue
    record "  failed attempt $(basename "$k"): $(awk -F, '$3 == "mayfly-spawn" { p[$2] = 1 }
      END { n = length(p) - 1; if (n < 0) n = 0
            printf "%d children seen (sampled every 0.25 s: a lower bound of the cycles" \
            " started)", n }' "$k")"
  done
  if [ "$rc" -ne 0 ]; then
    check FAIL "spawn: $cycles cycles did not complete (exit $rc; see $out/spawn.err)"
    return
  fi
  check ok "spawn: $cycles cycles completed, no hang (${wall}s)"
  "$python" - "$h5" "$cycles" "$max_spawn_rss" > "$out/spawn.report" \
      <<'PY' || echo "check_report=FAIL (could not analyse $h5)" >> "$out/spawn.report"
import sys, h5py, numpy as np
f = h5py.File(sys.argv[1], "r")
n, limit = int(sys.argv[2]), float(sys.argv[3])
sec = f["/drift/cycle_seconds"][:]
rss = f["/drift/rss_bytes"][:] / 1024.0
fds = f["/drift/open_fds"][:]
w = min(50, max(1, n // 10))
first, last = np.median(sec[:w]), np.median(sec[-w:])
cyc = np.arange(len(rss))
slope = np.polyfit(cyc, rss, 1)[0] if len(rss) > 1 else 0.0
s10 = len(rss) // 10
slope_late = np.polyfit(cyc[s10:], rss[s10:], 1)[0] if len(rss) - s10 > 1 else slope
print(f"cycles_recorded={len(sec)}")
print(f"cycle_ms_first{w}_median={1e3 * first:.1f}")
print(f"cycle_ms_last{w}_median={1e3 * last:.1f}")
print(f"cycle_time_ratio_last_first={last / first:.3f}")
print(f"cycle_ms_p50={1e3 * np.median(sec):.1f} cycle_ms_p95={1e3 * np.percentile(sec, 95):.1f} cycle_ms_max={1e3 * sec.max():.1f}")
print(f"parent_rss_kib_first={rss[0]:.0f} parent_rss_kib_last={rss[-1]:.0f}")
print(f"parent_rss_slope_kib_per_cycle={slope:.1f}")
print(f"parent_rss_slope_after_10pct_kib_per_cycle={slope_late:.1f}")
print(f"open_fds_first={fds[0]} open_fds_last={fds[-1]} open_fds_max={fds.max()}")
ok = len(sec) == n
print(f"check_cycles={'ok' if ok else 'FAIL'}")
print(f"check_fds={'ok' if fds[-1] <= fds[0] + 2 else 'FAIL'}")
print(f"check_rss={'ok' if slope <= limit else 'FAIL'}")
print(f"note_time_ratio={'ok' if last / first <= 2 else 'WARN (slower at the end; a shared box?)'}")
PY
  sed 's/^/  /' "$out/spawn.report" | tee -a "$summary" >&2
  local v
  v=$(grep -c 'FAIL' "$out/spawn.report")
  check "$([ "$v" -eq 0 ] && echo ok || echo FAIL)" \
      "spawn: recorded every cycle, open fds +<=2, parent RSS slope <= $max_spawn_rss kiB/cycle"
}

# --- load ------------------------------------------------------------------------------------
# h5_summary H5: one python start (slow on a loaded box) for "complete=N" and the phase medians;
# prints "missing" when the file cannot be read.
h5_summary() {
  "$python" - "$1" 2>/dev/null <<'PY' || echo missing
import sys, h5py, numpy as np
f = h5py.File(sys.argv[1], "r")
t = f["/timing"]
skip = int(t.attrs.get("warmup_rounds", 0))
parts = []
for name in ("spawn", "dispatch", "compute", "exchange", "update", "eval", "teardown", "round"):
    if name in t:
        v = t[name][:].max(axis=1)[skip:]
        parts.append(f"{name}={1e3 * np.median(v):.1f}" if len(v) else f"{name}=nan")
print(int(f.attrs["complete"]), "median_ms(max over peers, after warm-up) " + " ".join(parts))
PY
}

# completed LABEL H5 ERR: after attempt_run, fails LABEL's check unless the run exited 0 and the
# file says complete=1; else records LABEL's wall time and phase medians. 0 when complete.
completed() {
  local info complete
  info=$(h5_summary "$2")
  complete=${info%% *}
  if [ "$rc" -ne 0 ] || [ "$complete" != 1 ]; then
    check FAIL "$1: exit $rc, complete=$complete (see $3)"
    return 1
  fi
  record "  $1: wall ${wall}s; ${info#* }"
}

run_load() {
  local mode h5 base=$out/load-baseline.h5 limit=$((load_rounds * load_peers * 30 + 300))
  local args=(--workers "$load_workers" --model mlp --batch 64 --tasks "$load_tasks"
              --rounds "$load_rounds" --dataset "$dataset" --seed 7 -f)
  say "load: $load_peers peers x $load_workers workers on $(nproc) cores, $load_rounds rounds"
  for mode in baseline cold warm; do
    h5=$out/load-$mode.h5
    attempt_run "load-$mode" "$load_peers" "$limit" "$h5" mayfly-train --mode "$mode" \
        "${args[@]}" -o "$h5"
    completed "load $mode" "$h5" "$out/load-$mode.err" || continue
    if [ "$mode" = baseline ]; then
      check ok "load baseline: $load_peers peers completed, complete=1"
    elif "$bin/mayfly-compare" "$base" "$h5" > "$out/load-compare-$mode.log" 2>&1 &&
         grep -q "model check: VALID" "$out/load-compare-$mode.log"; then
      check ok "load $mode: $load_peers peers x $load_workers workers completed, complete=1," \
          "model equals the baseline's (VALID)"
    else
      check FAIL "load $mode: model differs from the baseline's or compare failed" \
          "($out/load-compare-$mode.log)"
    fi
  done
}

# --- memory ----------------------------------------------------------------------------------
memory_report() { # NAME ROUNDS MAXSLOPE(0: none) -> NAME.report
  "$python" - "$out/$1.rss.csv" "$out/$1.h5" "$2" "$3" "$max_writer_slope" > "$out/$1.report" \
      <<'PY' || echo "check_report=FAIL (could not analyse $1)" >> "$out/$1.report"
import sys, csv, h5py, numpy as np
path, h5, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3])
limit, writer_limit = float(sys.argv[4]), float(sys.argv[5])
rows = list(csv.DictReader(open(path)))
by_pid = {}
for r in rows:
    comm = r["comm"]
    if comm == "mayfly-train":  # rank 0 writes the results file: its own role
        comm = "mayfly-train-0" if r["rank"] == "0" else "mayfly-train"
    by_pid.setdefault((comm, int(r["pid"])), []).append((float(r["t_seconds"]), int(r["rss_kib"]), int(r["fds"])))
peers = [v for (c, _), v in by_pid.items() if c.startswith("mayfly-train")]
workers = [v for (c, _), v in by_pid.items() if c == "mayfly-worker"]
if not peers or not workers:
    print("check_samples=FAIL (no mayfly-train or no mayfly-worker process was sampled)")
    sys.exit(0)
# The training window: from the first to the last sample that saw a worker (before it, the
# peers start and load data; after it, they write results and finalize), less 1 s at the end.
w0 = min(s[0][0] for s in workers)
w1 = max(s[-1][0] for s in workers) - 1.0
if w1 - w0 < 3:
    w1 = max(s[-1][0] for s in workers)
sec_per_round = (w1 - w0) / rounds
cut = w0 + 0.1 * (w1 - w0)  # the first 10 % of the run is left out of every slope
print(f"training_window_seconds={w1 - w0:.1f} rounds={rounds} seconds_per_round={sec_per_round:.4f} samples={len(rows)}")

def steady(samples):  # also without the process's own last 2 s (its teardown)
    end = min(w1, samples[-1][0] - 2.0)
    return [x for x in samples if cut <= x[0] <= end]

def slope(samples):  # kiB per 100 rounds
    s = steady(samples)
    if len(s) < 3:
        return None
    t = np.array([x[0] for x in s]); k = np.array([x[1] for x in s], float)
    return np.polyfit(t, k, 1)[0] * sec_per_round * 100

fails = []
roles = (("mayfly-train-0", "writer_peer", writer_limit), ("mayfly-train", "other_peer", limit),
         ("mayfly-worker", "worker", limit), ("mpirun", "mpirun", 0))
for comm, role, role_limit in roles:
    procs = {pid: v for (c, pid), v in by_pid.items() if c == comm}
    # slopes only of processes that lived through most of the run (not cold workers)
    long = {pid: v for pid, v in procs.items()
            if len(steady(v)) >= 3 and steady(v)[-1][0] - steady(v)[0][0] >= 0.5 * (w1 - cut)}
    slopes = {pid: slope(v) for pid, v in long.items()}
    slopes = {pid: s for pid, s in slopes.items() if s is not None}
    print(f"{role}_processes={len(procs)} {role}_processes_sampled_through_run={len(long)}")
    if slopes:
        vals = np.array(list(slopes.values()))
        first = np.mean([steady(v)[0][1] for v in long.values()])
        last = np.mean([steady(v)[-1][1] for v in long.values()])
        late = [x for v in long.values() for x in steady(v)]
        kmin = min(x[1] for x in late); kmax = max(x[1] for x in late)
        print(f"{role}_rss_kib_steady_first_mean={first:.0f} {role}_rss_kib_steady_last_mean={last:.0f} {role}_rss_kib_range_after_10pct={kmin}..{kmax}")
        print(f"{role}_rss_slope_kib_per_100_rounds max={vals.max():.2f} mean={vals.mean():.2f} min={vals.min():.2f}")
        fds = [x[2] for v in long.values() for x in v if x[2] >= 0]
        fd_first = [steady(v)[0][2] for v in long.values()]
        fd_last = [steady(v)[-1][2] for v in long.values()]
        print(f"{role}_fds_first={fd_first} {role}_fds_last={fd_last} {role}_fds_max={max(fds) if fds else -1}")
        if limit > 0 and role_limit > 0 and vals.max() > role_limit:
            fails.append(f"{role} RSS slope {vals.max():.1f} > {role_limit:g} kiB/100 rounds")
    if role == "worker":  # short-lived (cold) workers: RSS of all workers early vs late
        early = [x[1] for v in procs.values() for x in v if cut <= x[0] < cut + 0.1 * (w1 - w0)]
        late = [x[1] for v in procs.values() for x in v if w1 - 0.1 * (w1 - w0) <= x[0] <= w1]
        if early and late:
            print(f"worker_rss_kib_median_all_workers first_decile={np.median(early):.0f} last_decile={np.median(late):.0f}")

f = h5py.File(h5, "r")
print(f"complete={int(f.attrs['complete'])} rounds_completed={int(f.attrs['rounds_completed'])}")
tasks = f["/timing/tasks"][:]
wk = tasks[tasks["worker"] >= 0]
if len(wk):
    r = wk["round"]; p = wk["peak_rss_bytes"] / 1024.0
    per_round = np.array([p[r == i].max() for i in np.unique(r)])
    rr = np.unique(r)
    keep = rr >= rr.max() * 0.1
    s = np.polyfit(rr[keep], per_round[keep], 1)[0] * 100 if keep.sum() > 2 else float("nan")
    print(f"tasks_worker_peak_rss_kib first_round={per_round[0]:.0f} round_10pct={per_round[keep][0]:.0f} last_round={per_round[-1]:.0f} slope_after_10pct_kib_per_100_rounds={s:.2f}")
pk = tasks[tasks["worker"] < 0]
if len(pk):
    print(f"tasks_peer_peak_rss_kib first={pk['peak_rss_bytes'][0] / 1024:.0f} last={pk['peak_rss_bytes'][-1] / 1024:.0f}")
if "spawn" in f["/timing"]:
    sp = f["/timing/spawn"][:]
    print(f"spawn_calls_per_peer={(sp > 0).sum(axis=0).tolist()}")
print("check_flat=" + ("ok" if not fails else "FAIL (" + "; ".join(fails) + ")"))
PY
}

run_memory_one() { # MODE ROUNDS MAXSLOPE
  local mode=$1 rounds=$2 maxslope=$3 name=memory-$1 h5 limit
  h5=$out/$name.h5
  limit=$([ "$mode" = warm ] && echo $((rounds / 5 + 600)) || echo $((rounds * 10 + 600)))
  # quick: a few seconds of training or less, so sample often enough to see the workers at all
  sample_csv=$out/$name.rss.csv sample_interval=$([ "$quick" -eq 1 ] && echo 0.2 || echo 1)
  say "memory: $mode, $memory_peers peers x $load_workers workers, $rounds rounds," \
      "RSS every $sample_interval s"
  attempt_run "$name" "$memory_peers" "$limit" "$h5" mayfly-train --mode "$mode" \
      --workers "$load_workers" --model mlp --batch 64 --tasks "$load_tasks" --rounds "$rounds" \
      --eval-every 0 --dataset "$dataset" --seed 7 -o "$h5" -f
  sample_csv='' sample_interval=''
  completed "memory $mode" "$h5" "$out/$name.err" || return 0
  memory_report "$name" "$rounds" "$maxslope"
  sed 's/^/  /' "$out/$name.report" | tee -a "$summary" >&2
  if grep -q 'FAIL' "$out/$name.report"; then
    check FAIL "memory $mode: $(grep -h FAIL "$out/$name.report" | tr '\n' ' ')"
  elif [ "$maxslope" -gt 0 ]; then
    check ok "memory $mode: $rounds rounds complete, RSS slopes of workers and peers <=" \
        "$maxslope kiB/100 rounds (rank 0, the writer: <= $max_writer_slope)"
  else
    check ok "memory $mode: $rounds rounds complete, RSS sampled (slopes reported, not checked)"
  fi
  # a quick run is too short for "through the run": there, one sample of a worker is enough
  local sampled='worker_processes_sampled_through_run=[1-9]'
  [ "$quick" -eq 1 ] && sampled='^worker_processes=[1-9]'
  if [ "$mode" = warm ] && ! grep -q "$sampled" "$out/$name.report"; then
    check FAIL "memory $mode: no worker process was sampled through the run"
  fi
}

run_memory() {
  local limit_slope=$max_warm_slope
  [ "$quick" -eq 1 ] && limit_slope=0 # 50 rounds are too short for a slope: report it only
  run_memory_one warm "$memory_rounds" "$limit_slope"
  [ "$memory_cold_rounds" -gt 0 ] && run_memory_one cold "$memory_cold_rounds" 0
  return 0
}

# One brace group, parsed whole before it runs: editing this file during a long soak cannot
# change what the running soak does.
{
  {
    echo "# mayfly-soak $(date -u +%FT%TZ) on $(hostname): $(nproc) cores," \
         "$(lscpu | sed -n 's/^Model name: *//p' | head -n 1)," \
         "$(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo)"
    echo "# runs: ${runs[*]}; quick=$quick; binaries: $binaries_from" \
         "($("$bin/mayfly-train" --version 2>&1 | head -n 1)), copied to $bin;" \
         "dataset=$dataset; output=$out"
  } | tee -a "$summary" >&2
  for run in "${runs[@]}"; do
    "run_$run"
  done
  record "summary: $(grep -c '^check ok' "$summary") checks passed, $failures failed" \
      "(details: $summary)"
  [ "$failures" -eq 0 ]
  exit
}
