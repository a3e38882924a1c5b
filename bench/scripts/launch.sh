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
# machines; spawned workers need slots), the ob1 PML, and the cold-start settings below.
set -u

usage() {
  cat <<'EOF'
Usage: bench/scripts/launch.sh [-n NP] [-t SECONDS] [-r RETRIES] [-g SECONDS] [-w] -- PROGRAM [ARGS...]
Runs PROGRAM on NP MPI ranks with mpirun, bounded in time, handling Open MPI's exit hang.

  -n, --np NP          ranks in MPI_COMM_WORLD (peers) [default: 2]
  -t, --timeout S      wall-time bound of one attempt in seconds [default: $MAYFLY_TIMEOUT or 3600]
  -r, --retries N      attempts after one that timed out mid-run [default: 1]
  -g, --grace S        how long mpirun may linger after all ranks reported [default: 5]
  -w, --survive-worker-loss
                       a spawned worker that dies (its node's processes killed, out of memory)
                       does not end the job (mpirun --enable-recovery): its peer abandons it
                       after --task-timeout and retries its tasks on other or fresh workers.
                       Across nodes Open MPI 4.1.4 may still end a peer whose TCP write to a
                       dead worker fails first (results/cluster.md). The price: Open MPI then
                       keeps the job alive when a peer dies too, and the other peers wait for
                       it until this attempt's -t bound
  -q, --quiet          no notes on stderr
  -h, --help           this help
Environment: MAYFLY_MPIRUN_ARGS adds mpirun options (e.g. "--report-bindings"). Ranks are
started unbound (--bind-to none): mayfly-train binds its peers and workers itself (--bind);
a --bind-to in MAYFLY_MPIRUN_ARGS comes later and wins, mayfly-train --bind cores then rebinds.
Exit: the program's exit code; 124 when every attempt timed out, 70 when a watchdog fired.
EOF
}

np=2 limit=${MAYFLY_TIMEOUT:-3600} retries=1 grace=5 quiet=0 recovery=()
while [ $# -gt 0 ]; do
  case "$1" in
    -n|--np) np=${2:-}; shift 2 ;;
    -t|--timeout) limit=${2:-}; shift 2 ;;
    -r|--retries) retries=${2:-}; shift 2 ;;
    -g|--grace) grace=${2:-}; shift 2 ;;
    -q|--quiet) quiet=1; shift ;;
    -w|--survive-worker-loss) recovery=(--enable-recovery); shift ;;
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
# Cold start (results/spawn.md): every spawned worker pays Open MPI's start-up, mostly the
# kernel mapping and unmapping shared objects. Together the three settings below cut a spawned
# child's MPI_Init CPU from ~127 to ~68 ms (savings per child, medians of alternated runs).
# hwloc plugins dlopen X11, OpenCL, libpciaccess, libxml2+ICU+libstdc++; the built-in Linux
# backend finds the same cores, caches and PCI devices without them: -20 .so, ~-25 ms CPU.
export HWLOC_PLUGINS_BLACKLIST=${HWLOC_PLUGINS_BLACKLIST:-hwloc_gl,hwloc_opencl,hwloc_pci,hwloc_xml_libxml}
# Include lists: Open MPI dlopens only the named components (plus the ones each job needs), not
# every one installed; the lists hold what is selected by default here: -16 DSOs, ~-8 ms CPU.
export OMPI_MCA_shmem=${OMPI_MCA_shmem:-mmap}
export OMPI_MCA_reachable=${OMPI_MCA_reachable:-netlink}
export OMPI_MCA_schizo=${OMPI_MCA_schizo:-ompi,orte,slurm}
export OMPI_MCA_pmix=${OMPI_MCA_pmix:-ext3x}
export OMPI_MCA_state=${OMPI_MCA_state:-hnp,orted,app}
export OMPI_MCA_errmgr=${OMPI_MCA_errmgr:-default_hnp,default_orted,default_app}
export OMPI_MCA_coll=${OMPI_MCA_coll:-basic,inter,libnbc,self,tuned}
export OMPI_MCA_osc=${OMPI_MCA_osc:-sm,rdma,pt2pt}
# Children read the node's topology from an XML file (written once per boot and CPU set)
# instead of probing CPUID on every core and reading ~100 sysfs files: ~-12 ms CPU per child.
topology_file() {
  command -v lstopo-no-graphics >/dev/null 2>&1 || return 1
  local key file tmp
  key="$(id -u)-$(hostname)-$(cat /proc/sys/kernel/random/boot_id 2>/dev/null)"
  key="$key-$(sed -n 's/^Cpus_allowed_list:[[:space:]]*//p' /proc/self/status)"
  file="${TMPDIR:-/tmp}/mayfly-topology-${key//[^A-Za-z0-9.-]/_}.xml"
  if [ ! -s "$file" ]; then
    tmp=$(mktemp "$file.XXXXXX") || return 1
    if ! lstopo-no-graphics --of xml >"$tmp" 2>/dev/null || ! mv -f "$tmp" "$file"; then
      rm -f "$tmp"
      return 1
    fi
  fi
  echo "$file"
}
if [ -z "${OMPI_MCA_hwloc_base_topo_file:-}" ] && topology=$(topology_file); then
  export OMPI_MCA_hwloc_base_topo_file=$topology
fi
if [ -n "${SLURM_JOB_ID:-}" ] && [ "${SLURM_JOB_NUM_NODES:-1}" -gt 1 ]; then
  unset OMPI_MCA_btl_tcp_if_include OMPI_MCA_oob_tcp_if_include # real network between nodes
  unset OMPI_MCA_hwloc_base_topo_file # this node's topology; other nodes discover their own
fi

stop_run() { # pid status_dir
  kill -TERM -- -"$1" 2>/dev/null
  for _ in $(seq 20); do kill -0 "$1" 2>/dev/null || break; sleep 0.5; done
  kill -KILL -- -"$1" 2>/dev/null
  # When every rank stopped on its own, its exit code says how (mayfly-train: 75 = stopped
  # after a checkpoint, resumable); otherwise 143, "killed by SIGTERM".
  local reports=("$2"/rank-[0-9]*) code worst=143
  if [ -e "${reports[0]}" ] && [ "${#reports[@]}" -eq "$np" ]; then
    worst=0
    for f in "${reports[@]}"; do
      code=$(cat "$f" 2>/dev/null || echo 143)
      [[ "$code" =~ ^[0-9]+$ ]] || code=143
      [ "$code" -gt "$worst" ] && worst=$code
    done
  fi
  rm -rf "$2"
  note "interrupted; stopped the run (exit code $worst)"
  exit "$worst"
}

run_attempt() { # -> sets attempt_rc; 0 finished, 1 timed out
  local status_dir start pid code worst reported=0 lingering=0 reports
  status_dir=$(mktemp -d "${TMPDIR:-/tmp}/mayfly-status.XXXXXX")
  start=$SECONDS
  # --bind-to none: Open MPI binds each rank to a core by default when there are at most two ranks,
  # which would fight mayfly-train's own placement (bench/harness/binding.h) and its --bind none.
  # shellcheck disable=SC2086
  MAYFLY_STATUS_DIR=$status_dir setsid mpirun -np "$np" --bind-to none "${recovery[@]}" \
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
