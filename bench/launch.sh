#!/usr/bin/env bash
# mayfly-launch: the one way mayfly starts mpirun (make targets, tests, Slurm jobs).
#
# Why it exists: Debian's Open MPI 4.1.4 (external PMIx) sometimes never lets mpirun exit after a
# job that spawned, although every rank has returned from MPI_Finalize (notes/platform.md). So
# every rank of a mayfly program writes its exit code into $MAYFLY_STATUS_DIR/rank-N after it
# has finalized; this script runs mpirun in its own process group and polls:
#   - mpirun exits                        -> its exit code;
#   - all ranks reported, mpirun lingers  -> "finished, launcher stuck": kill it, exit with the
#                                            ranks' worst code (0 when all succeeded);
#   - time limit reached, or a rank's     -> "failed or stuck mid-run": kill it, retry the run
#     watchdog fired (exit code 70)          up to --retries times, then exit 124 (or 70).
# It also sets what every run here needs: root variables when root, oversubscription (small
# machines; spawned workers need slots), the ob1 PML (spawn ~40 ms instead of ~250 ms).
set -u

usage() {
  cat <<'EOF'
Usage: bench/launch.sh [-n NP] [-t SECONDS] [-r RETRIES] [-g SECONDS] -- PROGRAM [ARGS...]
Runs PROGRAM on NP MPI ranks with mpirun, bounded in time, handling Open MPI's exit hang.

  -n, --np NP          ranks in MPI_COMM_WORLD (peers) [default: 2]
  -t, --timeout S      wall-time bound of one attempt in seconds [default: $MAYFLY_TIMEOUT or 3600]
  -r, --retries N      attempts after one that timed out mid-run [default: 1]
  -g, --grace S        how long mpirun may linger after all ranks reported [default: 5]
  -q, --quiet          no notes on stderr
  -h, --help           this help
Environment: MAYFLY_MPIRUN_ARGS adds mpirun options (e.g. "--bind-to core").
Exit: the program's exit code; 124 when every attempt timed out, 70 when a watchdog fired.
EOF
}

np=2 limit=${MAYFLY_TIMEOUT:-3600} retries=1 grace=5 quiet=0
while [ $# -gt 0 ]; do
  case "$1" in
    -n|--np) np=${2:-}; shift 2 ;;
    -t|--timeout) limit=${2:-}; shift 2 ;;
    -r|--retries) retries=${2:-}; shift 2 ;;
    -g|--grace) grace=${2:-}; shift 2 ;;
    -q|--quiet) quiet=1; shift ;;
    -h|--help) usage; exit 0 ;;
    --) shift; break ;;
    *) echo "mayfly-launch: error: $1: unknown option (see --help)" >&2; exit 2 ;;
  esac
done
for pair in "np:$np" "timeout:$limit" "retries:$retries" "grace:$grace"; do
  value=${pair#*:}
  if ! [[ "$value" =~ ^[0-9]+$ ]] || { [ "${pair%%:*}" = np ] && [ "$value" -lt 1 ]; }; then
    echo "mayfly-launch: error: --${pair%%:*}: '$value' is not a valid count" >&2
    exit 2
  fi
done
[ $# -ge 1 ] || { echo "mayfly-launch: error: no program given (see --help)" >&2; exit 2; }

note() { [ "$quiet" -eq 1 ] || echo "mayfly-launch: $*" >&2; }

if [ "$(id -u)" -eq 0 ]; then
  export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi
# Ranks' stderr is a pipe under mpirun: tell them whether the user is watching a terminal.
[ -t 2 ] && export MAYFLY_PROGRESS=${MAYFLY_PROGRESS:-1}
export OMPI_MCA_rmaps_base_oversubscribe=${OMPI_MCA_rmaps_base_oversubscribe:-1}
export OMPI_MCA_pml=${OMPI_MCA_pml:-ob1}
export OMPI_MCA_mpi_yield_when_idle=${OMPI_MCA_mpi_yield_when_idle:-1}
# PMIx's "gds" (global data store) component: with the default (shared memory) a freshly
# spawned worker now and then never completes PMIx_Init and MPI_Comm_spawn hangs (about 2 % of
# spawns here); with gds=hash no hang in 640 spawns (results/spawn_hang.md).
export PMIX_MCA_gds=${PMIX_MCA_gds:-hash}
# Time between mpirun forwarding SIGTERM and its SIGKILL: long enough to finish a round's record.
export OMPI_MCA_odls_base_sigkill_timeout=${OMPI_MCA_odls_base_sigkill_timeout:-5}
# Only TCP between processes that spawned each other; vader inside one world (platform.md).
export OMPI_MCA_btl=${OMPI_MCA_btl:-self,vader,tcp}
export OMPI_MCA_btl_tcp_if_include=${OMPI_MCA_btl_tcp_if_include:-lo}
export OMPI_MCA_oob_tcp_if_include=${OMPI_MCA_oob_tcp_if_include:-lo}
if [ -n "${SLURM_JOB_ID:-}" ] && [ "${SLURM_JOB_NUM_NODES:-1}" -gt 1 ]; then
  unset OMPI_MCA_btl_tcp_if_include OMPI_MCA_oob_tcp_if_include # real network between nodes
fi

stop_run() { # pid status_dir
  kill -TERM -- -"$1" 2>/dev/null
  for _ in $(seq 20); do kill -0 "$1" 2>/dev/null || break; sleep 0.5; done
  kill -KILL -- -"$1" 2>/dev/null
  rm -rf "$2"
  note "interrupted; stopped the run"
  exit 143
}

run_attempt() { # -> sets attempt_rc; 0 finished, 1 timed out
  local status_dir start pid code worst reported=0 lingering=0 reports
  status_dir=$(mktemp -d "${TMPDIR:-/tmp}/mayfly-status.XXXXXX")
  start=$SECONDS
  # shellcheck disable=SC2086
  MAYFLY_STATUS_DIR=$status_dir setsid mpirun -np "$np" --bind-to none \
      ${MAYFLY_MPIRUN_ARGS:-} "$@" &
  pid=$!
  # Slurm's time limit and Ctrl-C: pass SIGTERM on (mpirun forwards it to the ranks, which
  # mark their results interrupted), give them 10 s, then make sure nothing is left.
  trap 'stop_run "$pid" "$status_dir"' INT TERM
  while kill -0 "$pid" 2>/dev/null; do
    reports=("$status_dir"/rank-[0-9]*) # a glob, not a subprocess: this loop must stay cheap
    [ -e "${reports[0]}" ] && reported=${#reports[@]} || reported=0
    if [ "$reported" -lt "$np" ]; then
      lingering=0
    else
      lingering=$((lingering + 1))
      if [ "$lingering" -ge $((grace * 2)) ]; then
        worst=0
        for f in "$status_dir"/rank-*; do
          code=$(cat "$f" 2>/dev/null || echo 1)
          [[ "$code" =~ ^[0-9]+$ ]] || code=1
          [ "$code" -gt "$worst" ] && worst=$code
        done
        kill -KILL -- -"$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
        note "all $np ranks finished (worst exit code $worst) but mpirun did not exit" \
             "(Open MPI 4.1 exit hang after spawn); killed the launcher"
        attempt_rc=$worst
        rm -rf "$status_dir"
        trap - INT TERM
        return 0
      fi
    fi
    if [ "$limit" -gt 0 ] && [ $((SECONDS - start)) -ge "$limit" ]; then
      kill -KILL -- -"$pid" 2>/dev/null
      wait "$pid" 2>/dev/null
      note "error: run did not finish within ${limit}s ($reported of $np ranks had finished);" \
           "killed it"
      attempt_rc=124
      rm -rf "$status_dir"
      trap - INT TERM
      return 1
    fi
    sleep 0.5
  done
  wait "$pid"
  attempt_rc=$?
  rm -rf "$status_dir"
  trap - INT TERM
  return 0
}

attempt=0
while :; do
  if run_attempt "$@" && [ "$attempt_rc" -ne 70 ]; then exit "$attempt_rc"; fi
  [ "$attempt_rc" -eq 70 ] && note "a rank's watchdog ended a stalled MPI call"
  attempt=$((attempt + 1))
  [ "$attempt" -gt "$retries" ] && exit "$attempt_rc"
  note "retrying (attempt $((attempt + 1)) of $((retries + 1)))"
done
