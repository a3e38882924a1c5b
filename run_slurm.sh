#!/usr/bin/env bash
#SBATCH --job-name=mayfly
#SBATCH --ntasks=6
#SBATCH --time=01:00:00
#SBATCH --output=mayfly-%j.out
# run_slurm.sh: runs mayfly-train on a Slurm cluster, one configuration or a whole sweep.
#
# Why it exists: a study is dozens of configurations x repetitions; each must get the tasks it
# needs, a time limit that fits it, its own results file, and a launcher that survives Open
# MPI's exit hang after spawn (bench/scripts/launch.sh). Jobs start the peers with mpirun inside the
# allocation, never srun: Slurm's PMIx has no MPI_Comm_spawn (notes/platform.md).
#
# One file, two roles. Run from a shell it is the submitter:
#   ./run_slurm.sh [--peers N] [--nodes N] [--time MIN] [--wait] [--dry-run] [mayfly-train options]
#   ./run_slurm.sh --sweep FILE [--output DIR] [--repetitions N] [--nodes N] [--wait] [--dry-run] [--force]
# Run by sbatch (`sbatch run_slurm.sh [mayfly-train options]` from the repo root works too, with
# the #SBATCH defaults above) it is the job: it reads its configuration and calls
# bench/scripts/launch.sh. Option values are never evaluated by a shell: they travel as argv (single
# job) or NUL-separated files (sweeps), so `--model '$(touch /tmp/pwned)'` stays a string.
set -u

# Job side ---------------------------------------------------------------------------------

# Runs one configuration: launch.sh bounds mpirun and tells a stuck launcher from a failed run.
# An empty output leaves -o to the arguments; an empty log keeps Slurm's output file.
job_run() { # root np attempt_seconds output log [mayfly-train args...]
  local root=$1 np=$2 attempt=$3 output=$4 log=$5
  shift 5
  cd "$root" || { echo "mayfly job: cannot enter $root" >&2; return 2; }
  local bin=${MAYFLY_BIN:-bin}
  [[ "$bin" == /* ]] || bin=$root/$bin # mpirun under Slurm needs an absolute program path
  # nodes= with placement=local spreads the peers one node after another (layout_for)
  [ "${MAYFLY_MAP_BY:-}" = node ] && export MAYFLY_MPIRUN_ARGS="--map-by node ${MAYFLY_MPIRUN_ARGS:-}"
  local out_args=()
  if [ -n "$output" ]; then
    mkdir -p "$(dirname "$output")" || return 2
    out_args=(-o "$output")
  fi
  if [ -n "$log" ]; then
    mkdir -p "$(dirname "$log")" || return 2
    echo "mayfly job ${SLURM_JOB_ID:-?} task ${SLURM_ARRAY_TASK_ID:-0}: log $log"
    if [ "${SLURM_RESTART_COUNT:-0}" -gt 0 ]; then
      exec >>"$log" 2>&1 # a requeued attempt continues the log of the attempts before
    else
      exec >"$log" 2>&1
    fi
  fi
  echo "# slurm job ${SLURM_JOB_ID:-none} array task ${SLURM_ARRAY_TASK_ID:-none} on" \
       "$(hostname) (${SLURM_NTASKS:-?} tasks, ${SLURM_JOB_NODELIST:-?})"
  # An unfinished run with a checkpoint continues (issue 14) instead of starting over.
  local resume_args=() arg
  for arg in "$@"; do [ "$arg" = --force ] && output=""; done
  if [ -n "$output" ] && [ -e "$output.ckpt" ] && [ -e "$output" ]; then
    resume_args=(--resume)
    echo "# $output has a checkpoint: --resume"
  fi
  # Slurm's warning signal (--signal=B:TERM@..., sent to this shell) goes on to launch.sh,
  # which passes it to the ranks: they finish the round, checkpoint, and exit 75.
  bench/scripts/launch.sh -n "$np" -t "$attempt" -- "$bin/mayfly-train" "$@" "${resume_args[@]}" \
    "${out_args[@]}" &
  local launcher=$!
  trap 'kill -TERM "$launcher" 2>/dev/null' TERM INT
  wait "$launcher"
  local rc=$?
  while kill -0 "$launcher" 2>/dev/null; do # the trap interrupted wait: wait for the end
    wait "$launcher"
    rc=$?
  done
  trap - TERM INT
  echo "# launch.sh exit code $rc"
  # 75: stopped by the signal after a checkpoint. Requeue the job (it restarts here and
  # resumes), at most MAYFLY_MAX_REQUEUES times (Slurm counts them in SLURM_RESTART_COUNT).
  if [ "$rc" -eq 75 ] && [ -n "${SLURM_JOB_ID:-}" ]; then
    local restarts=${SLURM_RESTART_COUNT:-0} most=${MAYFLY_MAX_REQUEUES:-3}
    if [ "$restarts" -lt "$most" ] && scontrol requeue "$SLURM_JOB_ID"; then
      echo "# checkpointed before the time limit: requeued job $SLURM_JOB_ID ($((restarts + 1)) of $most)"
    else
      echo "# checkpointed before the time limit; not requeued ($restarts of $most requeues used): resubmit to continue"
    fi
  fi
  return $rc
}

# Array task: reads task-$SLURM_ARRAY_TASK_ID (fields NUL-separated: np, attempt seconds,
# output, log, then the mayfly-train arguments).
job_array() { # root spool
  local root=$1 spool=$2 fields
  local file=$spool/task-${SLURM_ARRAY_TASK_ID:?not an array task}
  # The binaries the submitter copied: a rebuild during the sweep cannot mix builds.
  [ -x "$spool/../bin/mayfly-train" ] && export MAYFLY_BIN=$spool/../bin
  mapfile -d '' -t fields <"$file" || { echo "mayfly job: cannot read $file" >&2; return 2; }
  [ ${#fields[@]} -ge 4 ] || { echo "mayfly job: $file is truncated" >&2; return 2; }
  job_run "$root" "${fields[0]}" "${fields[1]}" "${fields[2]}" "${fields[3]}" "${fields[@]:4}"
}

if [ "${1:-}" = "--job-array" ]; then
  job_array "$2" "$3"
  exit $?
elif [ "${1:-}" = "--job-single" ]; then # root np attempt output -- args
  root=$2 np=$3 attempt=$4 output=$5
  shift 6
  job_run "$root" "$np" "$attempt" "$output" "" "$@"
  exit $?
elif [ -n "${SLURM_JOB_ID:-}" ] && [ "$(basename "$0")" = slurm_script ]; then
  # Plain `sbatch run_slurm.sh [options]` from the repo root: the #SBATCH defaults apply,
  # MAYFLY_PEERS sets the peers (2), results go to results/slurm-<jobid>.h5 unless -o is given.
  out=results/slurm-$SLURM_JOB_ID.h5
  for arg in "$@"; do case "$arg" in -o | --output) out="" ;; esac; done
  job_run "${SLURM_SUBMIT_DIR:-$PWD}" "${MAYFLY_PEERS:-2}" 1500 "$out" "" "$@"
  exit $?
fi

# Submitter side ----------------------------------------------------------------------------

root=$(cd "$(dirname "$0")" && pwd)
self=$root/run_slurm.sh
bin=${MAYFLY_BIN:-bin}
[[ "$bin" == /* ]] || bin=$root/$bin
# shellcheck source=bench/slurm/submit_checks.sh
. "$root/bench/slurm/submit_checks.sh" # slurm_check_request, slurm_wait_jobs

usage() {
  cat <<'EOF'
Usage: ./run_slurm.sh [SUBMIT OPTIONS] [--] [mayfly-train options]
       ./run_slurm.sh --sweep FILE [--output DIR] [--repetitions N] [SUBMIT OPTIONS]
Submits mayfly-train runs to Slurm. Each job runs bench/scripts/launch.sh (mpirun inside the
allocation, bounded, exit-hang aware) and writes one HDF5 results file.

Submit options:
      --sweep FILE        submit every configuration of a sweep file (bench/sweeps/README.md)
                          as job arrays (one array task per configuration x repetition,
                          shuffled; one array per distinct task count and time limit)
      --output DIR        sweep results go to DIR/<sweep>/<config>-r<k>.h5 [default: results]
      --repetitions N     runs per sweep configuration [default: 3, or the line's reps=]
      --peers N           peers (MPI ranks) of a single configuration [default: 2]
      --nodes N           nodes of the job (a single configuration, or the sweep lines
                          without nodes=), laid out for its --placement (bench/sweeps/README.md):
                          remote needs N >= 2, local N <= peers [default: as many as Slurm
                          gives the tasks; remote: required]
      --time MIN          job time limit in minutes [default: derived from the configuration]
      --oversubscribe     request one task per peer only; spawned workers share the peers'
                          cores (default: peers x (1 + workers) tasks for cold/warm)
      --force             rerun sweep configurations whose results file is already complete
                          (default: skip them)
      --wait              block until the jobs end; exit with the worst job exit code. A job
                          pending for a reason that cannot clear (PartitionConfig,
                          BadConstraints, ...) is reported and cancelled
      --max-wait MIN      --wait gives up after MIN minutes, leaving the jobs queued (exit 124)
                          [default: every run's time limit one after another, plus 60]
      --node-wait SEC     --wait cancels a job whose partition has too few usable CPUs (nodes
                          down or drained) for SEC seconds in a row [default: 300]
      --dry-run           print what would be submitted and the checks' outcome, submit nothing
  -h, --help              this help
Before submitting, every request is checked against the cluster (partition state, time and
node limits, CPUs, sbatch --test-only); one impossible request and nothing is submitted.
Everything else is passed to mayfly-train (single configuration; -o FILE sets the results
file, default results/slurm-<UTC time>-<pid>.h5; Slurm's log lands next to it). sbatch reads SBATCH_PARTITION, SBATCH_ACCOUNT,
SBATCH_QOS ... from the environment; MAYFLY_MPIRUN_ARGS reaches mpirun.

Examples:
  ./run_slurm.sh --peers 4 --mode cold --model mlp --tasks 8 --rounds 50 -o results/c4.h5
  ./run_slurm.sh --sweep bench/sweeps/quick --output results --wait
  ./run_slurm.sh --sweep bench/sweeps/paper --repetitions 5 --dry-run
  ./run_slurm.sh --nodes 3 --mode cold --placement remote --model cnn -o results/remote.h5
EOF
}

die() { echo "run_slurm: error: $*" >&2; exit 2; }
note() { echo "run_slurm: $*" >&2; }

is_count() { [[ "$1" =~ ^[0-9]+$ ]] && [ "$1" -ge 1 ]; }

# Long options mayfly-train accepts (from its --help), so sweep keys are checked before
# anything is submitted.
train_options() {
  [ -x "$bin/mayfly-train" ] || die "$bin/mayfly-train not found: build it first (make)"
  "$bin/mayfly-train" --help 2>/dev/null | sed -nE 's/^ +(-[a-zA-Z], )?--([a-z][a-z-]*) [^ ].*/\2/p'
}

# Seconds one attempt of a configuration may take. A deliberately generous estimate from
# per-sample forward+backward costs measured on one core (notes/platform.md), so that the
# time limit grows with the work instead of being one number for every job.
estimate_seconds() { # model dataset batch tasks rounds epochs peers mode eval_every
  local model=$1 dataset=$2 batch=$3 tasks=$4 rounds=$5 epochs=$6 peers=$7 mode=$8 every=$9
  local us train=60000 test=10000 spec
  case "$model" in
    mlp) us=300 ;;
    cnn) us=12000 ;;
    squeezenet1_1) us=2000 ;;
    mobilenet_v3_small) us=6000 ;;
    vgg11) us=40000 ;;
    *) us=40000 ;;
  esac
  case "$dataset" in
    cifar10:*) train=50000 test=10000 ;;
    synthetic:*)
      spec=${dataset#synthetic:}
      [[ "${spec%%:*}" =~ ^[0-9]+$ ]] && train=${spec%%:*}
      spec=${spec#*:}
      [[ "${spec%%:*}" =~ ^[0-9]+$ ]] && test=${spec%%:*} ;;
  esac
  local minibatches=$(((train / peers + batch - 1) / batch)) per_round
  if [ "$tasks" = all ]; then per_round=$minibatches; else per_round=$tasks; fi
  [ "$per_round" -gt "$minibatches" ] && per_round=$minibatches
  [ "$per_round" -lt 1 ] && per_round=1
  if [ "$epochs" -gt 0 ]; then rounds=$((epochs * ((minibatches + per_round - 1) / per_round))); fi
  local overhead_ms=100
  case "$mode" in cold) overhead_ms=2000 ;; warm) overhead_ms=500 ;; esac
  local evals=1
  [ "$every" -gt 0 ] && evals=$((rounds / every + 1))
  local ms=$((rounds * (per_round * batch * us / 1000 + overhead_ms) + evals * test * us / 3000))
  local s=$((60 + 3 * ms / 1000))
  [ $s -lt 120 ] && s=120
  echo $s
}

# The job's time limit in minutes for an attempt bound: launch.sh tries twice, plus margin,
# rounded up to a few fixed steps so that a sweep needs few job arrays (one per limit).
limit_minutes() {
  local m=$(((2 * $1 + 120 + 59) / 60)) step
  for step in 5 10 15 20 30 45 60 90 120 180 240 360 480 720 960 1440; do
    [ "$m" -le "$step" ] && { echo "$step"; return; }
  done
  echo $(((m + 1439) / 1440 * 1440))
}

# The attempt bound launch.sh gets inside a job of MIN minutes (two attempts plus margin).
attempt_for() { local s=$((($1 * 60 - 120) / 2)); [ $s -lt 60 ] && s=60; echo $s; }

ntasks_for() { # peers mode workers
  if [ "$oversubscribe" -eq 1 ] || [ "$2" = baseline ]; then echo "$1"; else echo $(($1 * (1 + $3))); fi
}

# The Slurm resources of one configuration, matched to where its workers go (issue 12).
# Without nodes: the tasks alone (ntasks_for) and Slurm picks the nodes. With nodes=N: N nodes
# of T tasks each; mpirun places the peers by slot (node 1 first) unless said otherwise:
#   remote  T = max(peers, ceil(peers x workers / (N - 1))): every peer on node 1, the other
#           N - 1 nodes hold the workers (N >= 2);
#   local   T = ceil(peers / N) x (1 + workers), peers one per node in turn (mpirun --map-by
#           node), each node holding its peers' workers (N <= peers);
#   any     T = ceil(peers x (1 + workers) / N): peers from node 1 on, workers in every free slot.
# Baseline asks for the nodes its peers occupy in that same layout and no more, so that both
# sides of a comparison exchange gradients across the same nodes. --oversubscribe counts no
# worker slots. Sets layout ("TASKS", or "NnT" for N nodes of T tasks, "+node" appended when
# the peers go by node), layout_tasks and layout_peer_nodes; returns 1 with layout_error.
layout_for() { # peers mode workers nodes placement
  local peers=$1 mode=$2 workers=$3 nodes=$4 placement=$5 w=$3 per
  [ "$oversubscribe" -eq 1 ] && w=0
  layout_error="" layout_peer_nodes=1
  if [ -z "$nodes" ]; then
    if [ "$placement" = remote ] && [ "$mode" != baseline ]; then
      layout_error="placement=remote needs nodes=N (N >= 2): its workers run only on nodes"
      layout_error+=" that hold no peer"
      return 1
    fi
    layout_tasks=$(ntasks_for "$peers" "$mode" "$workers") layout=$layout_tasks
    return 0
  fi
  local by=""
  case "$placement" in
    remote)
      if [ "$nodes" -lt 2 ]; then
        layout_error="placement=remote needs nodes >= 2, not $nodes: its workers run only on"
        layout_error+=" nodes that hold no peer"
        return 1
      fi
      per=$(((peers * w + nodes - 2) / (nodes - 1)))
      [ "$per" -lt "$peers" ] && per=$peers ;;
    local)
      if [ "$nodes" -gt "$peers" ]; then
        layout_error="placement=local with nodes=$nodes and $peers peers leaves nodes without a"
        layout_error+=" peer, whose cores no worker would use (nodes <= peers, or placement=any or remote)"
        return 1
      fi
      per=$((((peers + nodes - 1) / nodes) * (1 + w)))
      [ "$nodes" -gt 1 ] && by=+node ;;
    any) per=$(((peers * (1 + w) + nodes - 1) / nodes)) ;;
    *) layout_error="placement: '$placement' is not local, remote or any"; return 1 ;;
  esac
  if [ -n "$by" ]; then
    layout_peer_nodes=$nodes
  else
    layout_peer_nodes=$(((peers + per - 1) / per))
  fi
  if [ "$mode" = baseline ]; then
    local used=$layout_peer_nodes
    [ -n "$by" ] && per=$(((peers + used - 1) / used))
    [ "$used" -eq 1 ] && per=$peers
    layout="${used}n$per$by" layout_tasks=$((used * per))
  else
    layout="${nodes}n$per$by" layout_tasks=$((nodes * per))
  fi
}

# A layout (layout_for) read back: lay_nodes (empty: Slurm picks), lay_per (tasks per node),
# lay_tasks (in all), lay_by_node (1: the peers go by node).
layout_parse() {
  local spec=${1%+node}
  lay_by_node=0 lay_nodes="" lay_per="" lay_tasks=$spec
  [ "$spec" = "$1" ] || lay_by_node=1
  if [[ "$spec" == *n* ]]; then
    lay_nodes=${spec%n*} lay_per=${spec#*n} lay_tasks=$((${spec%n*} * ${spec#*n}))
  fi
}

# "6 tasks", "3 nodes x 2 tasks", "2 nodes x 3 tasks, peers by node" for a layout.
layout_words() {
  layout_parse "$1"
  local words="$lay_tasks tasks"
  [ -z "$lay_nodes" ] || words="$lay_nodes nodes x $lay_per tasks"
  [ "$lay_by_node" -eq 0 ] || words+=", peers by node"
  echo "$words"
}

# The resource options of one submission (a single job when COUNT is empty, else an array of
# COUNT tasks): the pre-submission check passes exactly these to sbatch --test-only.
request_options() { # layout minutes [count] -> sets request_opts (layout: layout_for)
  # The warning signal: SIGTERM to the job shell before the time limit (300 s, at most a
  # quarter of the limit), so the run can finish its round, checkpoint and requeue (job_run).
  # Appending: a requeued job's Slurm output keeps the lines of its earlier attempts.
  local lead=$(($2 * 60 / 4))
  [ "$lead" -gt 300 ] && lead=300
  layout_parse "$1"
  request_opts=(--ntasks="$lay_tasks") # with nodes too: it overrides this script's #SBATCH line
  [ -z "$lay_nodes" ] || request_opts+=(--nodes="$lay_nodes" --ntasks-per-node="$lay_per")
  [ "$lay_by_node" -eq 0 ] || request_opts+=(--export=ALL,MAYFLY_MAP_BY=node)
  request_opts+=(--time="$2" --signal=B:TERM@"${MAYFLY_SIGNAL_SECONDS:-$lead}" --open-mode=append)
  [ -z "${3:-}" ] || request_opts+=(--array=0-$(($3 - 1)))
}

# Pre-submission checks (bench/slurm/submit_checks.sh): check_begin, then check_request per
# job or array, then check_end, which refuses the whole submission if any request is
# impossible. A dry run without a reachable cluster says so and skips them.
check_begin() {
  check_failures=0 check_live=0
  if slurm_reachable; then check_live=1; return; fi
  [ "$dry" -eq 1 ] || die "no Slurm cluster answers ($slurm_unreachable); nothing submitted"
  echo "check: skipped, no Slurm cluster answers ($slurm_unreachable)"
}
check_request() { # label layout minutes peers sbatch-args...
  [ "$check_live" -eq 1 ] || return 0
  local label=$1
  layout_parse "$2"
  shift 2
  slurm_check_nodes=""
  [ -z "$lay_nodes" ] || slurm_check_nodes="$lay_nodes $lay_per"
  if slurm_check_request "$label" "$lay_tasks" "$@"; then echo "check: $slurm_check_outcome"; else check_failures=$((check_failures + 1)); fi
}
check_end() {
  [ "$check_failures" -eq 0 ] && return 0
  die "$check_failures request(s) cannot run on this cluster (see above); nothing submitted"
}

# --wait: bounded (--max-wait, default SECONDS_OF_RUNS + 60 min), hopeless jobs cancelled.
wait_for_jobs() { # seconds_of_runs label=jobid...
  local bound=$(($1 + 3600))
  shift
  [ -n "$max_wait" ] && bound=$((max_wait * 60))
  slurm_wait_jobs "$bound" "$node_wait" "$@"
  return "$slurm_wait_worst"
}

sweep="" outdir=results reps="" peers=2 nodes="" time_min="" oversubscribe=0 force=0 wait=0 dry=0
max_wait="" node_wait=300
train_args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --sweep) [ $# -ge 2 ] || die "--sweep needs a file"; sweep=$2; shift 2 ;;
    --output) [ $# -ge 2 ] || die "--output needs a directory"; outdir=$2; shift 2 ;;
    --repetitions) [ $# -ge 2 ] || die "--repetitions needs a count"; reps=$2; shift 2 ;;
    --peers) [ $# -ge 2 ] || die "--peers needs a count"; peers=$2; shift 2 ;;
    --nodes) [ $# -ge 2 ] || die "--nodes needs a count"; nodes=$2; shift 2 ;;
    --time) [ $# -ge 2 ] || die "--time needs minutes"; time_min=$2; shift 2 ;;
    --oversubscribe) oversubscribe=1; shift ;;
    --force) force=1; shift ;;
    --wait) wait=1; shift ;;
    --max-wait) [ $# -ge 2 ] || die "--max-wait needs minutes"; max_wait=$2; shift 2 ;;
    --node-wait) [ $# -ge 2 ] || die "--node-wait needs seconds"; node_wait=$2; shift 2 ;;
    --dry-run) dry=1; shift ;;
    -h | --help) usage; exit 0 ;;
    --) shift; train_args+=("$@"); break ;;
    *) train_args+=("$1"); shift ;;
  esac
done
is_count "$peers" || die "--peers: '$peers' is not a positive count"
[ -z "$nodes" ] || is_count "$nodes" || die "--nodes: '$nodes' is not a positive count"
[ -z "$time_min" ] || is_count "$time_min" || die "--time: '$time_min' is not a positive count"
[ -z "$reps" ] || is_count "$reps" || die "--repetitions: '$reps' is not a positive count"
[ -z "$max_wait" ] || is_count "$max_wait" || die "--max-wait: '$max_wait' is not a positive count"
[[ "$node_wait" =~ ^[0-9]+$ ]] || die "--node-wait: '$node_wait' is not a count of seconds"
if [ "$dry" -eq 0 ]; then
  command -v sbatch >/dev/null || die "sbatch not found (no Slurm here; tests/slurm/local_cluster.sh start sets one up)"
fi

# Single configuration ----------------------------------------------------------------------
if [ -z "$sweep" ]; then
  [ -z "$reps" ] || die "--repetitions only applies to --sweep"
  # The few values the task count and time limit depend on; mayfly-train checks them all.
  mode=baseline model=mlp dataset=fashion-mnist batch=64 tasks=4 workers=2 rounds=20 epochs=0
  every=10 output="" placement=any
  for ((i = 0; i < ${#train_args[@]}; i++)); do
    v=${train_args[i + 1]:-}
    case "${train_args[i]}" in
      --mode) mode=$v ;; --model) model=$v ;; --dataset) dataset=$v ;;
      -b | --batch) batch=$v ;; -k | --tasks) tasks=$v ;; -w | --workers) workers=$v ;;
      -n | --rounds) rounds=$v ;; -e | --epochs) epochs=$v ;; --eval-every) every=$v ;;
      -o | --output) output=$v ;; --placement) placement=$v ;;
      --*=*) die "write '${train_args[i]%%=*} ${train_args[i]#*=}' (mayfly-train takes values as separate words)" ;;
    esac
  done
  for pair in "batch:$batch" "workers:$workers" "rounds:$rounds" "epochs:$epochs" "eval-every:$every"; do
    [[ "${pair#*:}" =~ ^[0-9]+$ ]] || die "--${pair%%:*}: '${pair#*:}' is not a count"
  done
  [ "$tasks" = all ] || [[ "$tasks" =~ ^[0-9]+$ ]] || die "--tasks: '$tasks' is not a count or all"
  is_count "$batch" || die "--batch must be positive"
  attempt=$(estimate_seconds "$model" "$dataset" "$batch" "$tasks" "$rounds" "$epochs" "$peers" "$mode" "$every")
  minutes=${time_min:-$(limit_minutes "$attempt")}
  attempt=$(attempt_for "$minutes")
  if ! layout_for "$peers" "$mode" "$workers" "$nodes" "$placement"; then
    layout_error=${layout_error//nodes=/--nodes } && die "${layout_error//placement=/--placement }"
  fi
  # Drop -o/--output from the passed arguments: the job appends its own -o.
  args=()
  for ((i = 0; i < ${#train_args[@]}; i++)); do
    case "${train_args[i]}" in -o | --output) i=$((i + 1)) ;; *) args+=("${train_args[i]}") ;; esac
  done
  [ -n "$output" ] || output=$root/results/slurm-$(date -u +%Y%m%dT%H%M%SZ)-$$.h5
  [[ "$output" == /* ]] || output=$PWD/$output
  request_options "$layout" "$minutes"
  cmd=(sbatch --parsable --job-name=mayfly-"$mode" "${request_opts[@]}"
       --chdir="$root" --output="${output%.h5}-slurm-%j.out")
  cmd+=("$self" --job-single "$root" "$peers" "$attempt" "$output" -- "${args[@]}")
  check_begin
  check_request "job ($mode, $peers peers)" "$layout" "$minutes" "$peers" "${cmd[@]:2}"
  if [ "$dry" -eq 1 ]; then
    printf 'would run:'; printf ' %q' "${cmd[@]}"; printf '\n'
    check_end
    exit 0
  fi
  check_end
  mkdir -p "$(dirname "$output")" || die "cannot create the directory of $output"
  job=$("${cmd[@]}") || exit 1 # sbatch said why on stderr
  job=${job%%;*}
  echo "$job"
  [ "$wait" -eq 1 ] || exit 0
  wait_for_jobs $((minutes * 60)) "$mode run=$job"
  rc=$?
  note "job $job finished with exit code $rc; results: $output"
  exit $rc
fi

# Sweep -------------------------------------------------------------------------------------
if ! [ -f "$sweep" ] || ! [ -r "$sweep" ]; then die "$sweep: no such readable sweep file"; fi
[ ${#train_args[@]} -eq 0 ] || die "with --sweep, put every mayfly-train option into the sweep file (got '${train_args[0]}')"
sweep_name=$(basename "$sweep")
sweep_name=${sweep_name%.*}
[[ "$sweep_name" =~ ^[A-Za-z0-9_.-]+$ ]] || die "$sweep: the file name must be [A-Za-z0-9_.-]"
[ -x "$bin/mayfly-train" ] || die "$bin/mayfly-train not found: build it first (make)"
known=" $(train_options | tr '\n' ' ') peers nodes time reps "
value_re='^[A-Za-z0-9_.:/,+@%-]+$'

# Parses the sweep into parallel arrays: names, their arguments (one string per config with
# fields separated by \x1f) and their scheduling values.
names=() cfg_args=() cfg_np=() cfg_attempt=() cfg_minutes=() cfg_layout=() cfg_reps=()
declare -A seen=() defaults=()
lineno=0 errors=0
bad() { echo "$sweep:$lineno: error: $*" >&2; errors=$((errors + 1)); }
parse_pairs() { # text -> sets pairs (assoc) or reports errors; returns 1 on error
  local word key value ok=0
  local -a words
  read -r -a words <<<"$1"
  for word in "${words[@]}"; do
    if [[ "$word" != *=* ]]; then bad "'$word' is not key=value"; ok=1; continue; fi
    key=${word%%=*} value=${word#*=}
    if ! [[ "$key" =~ ^[a-z][a-z0-9-]*$ ]]; then bad "'$word': the key must be a lower-case option name"; ok=1; continue; fi
    if [[ " $known " != *" $key "* ]] || [ "$key" = output ] || [ "$key" = force ]; then
      bad "unknown key '$key' (mayfly-train long options without --, plus peers, nodes, time, reps)"
      ok=1; continue
    fi
    if ! [[ "$value" =~ $value_re ]]; then
      bad "$key: value '$value' has characters outside [A-Za-z0-9_.:/,+@%-]"; ok=1; continue
    fi
    case "$key" in
      peers | nodes | time | reps | batch) is_count "$value" || { bad "$key: '$value' is not a positive count"; ok=1; } ;;
      rounds | epochs | workers | eval-every | warmup) [[ "$value" =~ ^[0-9]+$ ]] || { bad "$key: '$value' is not a count"; ok=1; } ;;
      tasks) [ "$value" = all ] || is_count "$value" || { bad "tasks: '$value' is not a positive count or all"; ok=1; } ;;
    esac
    pairs[$key]=$value
  done
  return $ok
}

while IFS= read -r line || [ -n "$line" ]; do
  lineno=$((lineno + 1))
  line=${line%%#*}
  [[ "$line" =~ ^[[:space:]]*$ ]] && continue
  if ! [[ "$line" =~ ^[[:space:]]*([^:[:space:]]+)[[:space:]]*:(.*)$ ]]; then
    bad "expected 'name: key=value ...' or 'default: key=value ...'"; continue
  fi
  name=${BASH_REMATCH[1]} rest=${BASH_REMATCH[2]}
  declare -A pairs=()
  for k in "${!defaults[@]}"; do pairs[$k]=${defaults[$k]}; done
  if [ "$name" = default ]; then
    parse_pairs "$rest" && for k in "${!pairs[@]}"; do defaults[$k]=${pairs[$k]}; done
    unset pairs; continue
  fi
  [[ "$name" =~ ^[A-Za-z0-9_.-]+$ ]] || { bad "configuration name '$name' must be [A-Za-z0-9_.-]"; continue; }
  [ -n "${seen[$name]:-}" ] && { bad "configuration '$name' already defined on line ${seen[$name]}"; continue; }
  seen[$name]=$lineno
  parse_pairs "$rest" || { unset pairs; continue; }
  p=${pairs[peers]:-2} mode=${pairs[mode]:-baseline} workers=${pairs[workers]:-2}
  if ! layout_for "$p" "$mode" "$workers" "${pairs[nodes]:-$nodes}" "${pairs[placement]:-any}"; then
    bad "$layout_error"; unset pairs; continue
  fi
  attempt=$(estimate_seconds "${pairs[model]:-mlp}" "${pairs[dataset]:-fashion-mnist}" \
    "${pairs[batch]:-64}" "${pairs[tasks]:-4}" "${pairs[rounds]:-20}" "${pairs[epochs]:-0}" \
    "$p" "$mode" "${pairs[eval-every]:-10}")
  minutes=${time_min:-${pairs[time]:-}}
  [ -n "$minutes" ] || minutes=$(limit_minutes "$attempt")
  attempt=$(attempt_for "$minutes")
  packed=""
  for k in $(printf '%s\n' "${!pairs[@]}" | sort); do
    case "$k" in peers | nodes | time | reps) continue ;; esac
    packed+="--$k"$'\x1f'"${pairs[$k]}"$'\x1f'
  done
  names+=("$name") cfg_args+=("$packed") cfg_np+=("$p") cfg_attempt+=("$attempt")
  cfg_minutes+=("$minutes") cfg_layout+=("$layout")
  cfg_reps+=("${reps:-${pairs[reps]:-3}}")
  unset pairs
done <"$sweep"
lineno=0
[ "$errors" -eq 0 ] || die "$sweep: $errors error(s); nothing submitted"
[ ${#names[@]} -gt 0 ] || die "$sweep: no configurations; nothing submitted"

dest=$outdir/$sweep_name
[[ "$dest" == /* ]] || dest=$PWD/$dest

# Runs to do (config index, repetition), skipping complete results unless --force.
runs=()
for ((c = 0; c < ${#names[@]}; c++)); do
  for ((r = 1; r <= cfg_reps[c]; r++)); do runs+=("$c $r"); done
done
complete=""
python=/usr/bin/python3 # Debian's, with python3-h5py (a pyenv python3 on PATH may lack it)
[ -x "$python" ] || python=python3
if [ "$force" -eq 0 ] && [ -d "$dest" ] && command -v "$python" >/dev/null; then
  complete=$("$python" - "$dest" <<'PY' 2>/dev/null
import sys, glob, os
try:
    import h5py
except ImportError:
    sys.exit(0)
for path in glob.glob(os.path.join(sys.argv[1], "*.h5")):
    try:
        with h5py.File(path, "r") as f:
            if int(f.attrs.get("complete", 0)) == 1:
                print(os.path.basename(path))
    except OSError:
        pass
PY
)
fi
todo=() skipped=0
for run in "${runs[@]}"; do
  c=${run% *} r=${run#* }
  if [[ $'\n'"$complete"$'\n' == *$'\n'"${names[c]}-r$r.h5"$'\n'* ]]; then
    skipped=$((skipped + 1)); continue
  fi
  todo+=("$run")
done
[ "$skipped" -gt 0 ] && note "$skipped run(s) already complete in $dest (--force reruns them)"
if [ ${#todo[@]} -eq 0 ]; then note "nothing to do"; exit 0; fi
mapfile -t todo < <(printf '%s\n' "${todo[@]}" | shuf)

# One array per (layout, time limit): array tasks share one resource request.
declare -A group_runs=()
for run in "${todo[@]}"; do
  c=${run% *}
  key="${cfg_layout[c]}x${cfg_minutes[c]}"
  group_runs[$key]+="$run;"
done

# Every array checked against the cluster before anything is created or submitted.
check_begin
for key in $(printf '%s\n' "${!group_runs[@]}" | sort); do
  IFS=';' read -r -a members <<<"${group_runs[$key]}"
  most=0
  for run in "${members[@]}"; do
    c=${run% *}
    [ "${cfg_np[c]}" -gt "$most" ] && most=${cfg_np[c]}
  done
  labels=$(for run in "${members[@]}"; do printf ' %s\n' "${names[${run% *}]}"; done | sort -u | tr -d '\n')
  request_options "${key%x*}" "${key#*x}" "${#members[@]}"
  check_request "array $key (${#members[@]} runs:$labels)" "${key%x*}" "${key#*x}" "$most" \
    --job-name="mayfly-$sweep_name" "${request_opts[@]}" --chdir="$root" --output=/dev/null \
    "$self" --job-array "$root" "$dest/.spool/check"
done
[ "$dry" -eq 1 ] || check_end

stamp=$(date -u +%Y%m%dT%H%M%SZ)-$$
spool=$dest/.spool/$stamp
if [ "$dry" -eq 0 ]; then
  mkdir -p "$dest/logs" "$spool/bin" || die "cannot create $dest"
  # Jobs run these copies (mayfly-train finds mayfly-worker next to itself), so every run of
  # the sweep uses the build that was current at submission, whatever happens to bin/ later.
  cp -p "$bin/mayfly-train" "$bin/mayfly-worker" "$spool/bin/" ||
    die "cannot copy the binaries from $bin to $spool/bin"
fi
echo "sweep $sweep_name: ${#names[@]} configurations, ${#todo[@]} runs, ${#group_runs[@]} job array(s) -> $dest"
jobs=() seconds_of_runs=0
for key in $(printf '%s\n' "${!group_runs[@]}" | sort); do
  layout=${key%x*} minutes=${key#*x}
  IFS=';' read -r -a members <<<"${group_runs[$key]}"
  gdir=$spool/$key
  [ "$dry" -eq 0 ] && { mkdir -p "$gdir" || die "cannot create $gdir"; }
  for ((i = 0; i < ${#members[@]}; i++)); do
    c=${members[i]% *} r=${members[i]#* }
    IFS=$'\x1f' read -r -a a <<<"${cfg_args[c]}"
    [ "$force" -eq 1 ] && a+=(--force)
    out=$dest/${names[c]}-r$r.h5 log=$dest/logs/${names[c]}-r$r.log
    if [ "$dry" -eq 1 ]; then
      printf '  [%s] %d: %s-r%s: launch.sh -n %s -t %s -- mayfly-train' "$key" "$i" \
        "${names[c]}" "$r" "${cfg_np[c]}" "${cfg_attempt[c]}"
      printf ' %q' "${a[@]}" -o "$out"; printf '\n'
    else
      printf '%s\0' "${cfg_np[c]}" "${cfg_attempt[c]}" "$out" "$log" "${a[@]}" >"$gdir/task-$i" ||
        die "cannot write $gdir/task-$i"
    fi
  done
  request_options "$layout" "$minutes" "${#members[@]}"
  cmd=(sbatch --parsable --job-name="mayfly-$sweep_name" "${request_opts[@]}" --chdir="$root"
       --output="$dest/logs/slurm-%A_%a.out")
  cmd+=("$self" --job-array "$root" "$gdir")
  if [ "$dry" -eq 1 ]; then
    printf 'would run:'; printf ' %q' "${cmd[@]}"; printf '\n'
    continue
  fi
  glog=$spool/sbatch-$key.log
  "${cmd[@]}" >"$glog" 2>&1 || { cat "$glog" >&2; die "sbatch failed"; }
  job=$(head -n 1 "$glog")
  job=${job%%;*}
  jobs+=("array $key=$job") seconds_of_runs=$((seconds_of_runs + ${#members[@]} * minutes * 60))
  echo "array $key (${#members[@]} runs, $(layout_words "$layout"), $minutes min): job $job"
done
if [ "$dry" -eq 1 ]; then check_end; exit 0; fi
[ "$wait" -eq 1 ] || exit 0
wait_for_jobs "$seconds_of_runs" "${jobs[@]}"
worst=$?
n=$(find "$dest" -maxdepth 1 -name '*.h5' | wc -l)
echo "sweep $sweep_name done: exit code $worst, $n results file(s) in $dest (logs: $dest/logs)"
failed=$(grep -L '^# launch.sh exit code 0$' "$dest"/logs/*.log 2>/dev/null |
  xargs -r -n1 basename | tr '\n' ' ')
[ -z "$failed" ] || note "runs that failed (logs in $dest/logs): $failed"
exit $worst
