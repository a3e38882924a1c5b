# shellcheck shell=bash disable=SC2154 # cluster_name, state, pids: set by the sourcing script
# Shared by tests/slurm/local_cluster.sh (one node) and tests/slurm/virtual_cluster.sh (N nodes
# in Linux namespaces), sourced, never run: installing Slurm and MUNGE, PID bookkeeping that
# tells our daemons from anyone else's, the slurm.conf lines both clusters have in common, and
# the lock that keeps the two clusters (and the tests that use them) from running at once.
# The sourcing script sets $cluster_name (message prefix), $state (its state directory) and
# $pids (its "name pid" bookkeeping file) before calling these.

die() { echo "$cluster_name: error: $*" >&2; exit 1; }
note() { echo "$cluster_name: $*" >&2; }

# True when PID is alive and runs the program NAME (comm is truncated to 15 characters).
pid_is() { # pid name
  [[ "$1" =~ ^[0-9]+$ ]] || return 1
  [ "$(cat "/proc/$1/comm" 2>/dev/null)" = "${2:0:15}" ]
}

install_packages() {
  local missing=()
  command -v slurmctld >/dev/null || missing+=(slurmctld)
  command -v slurmd >/dev/null || missing+=(slurmd)
  command -v sbatch >/dev/null || missing+=(slurm-client)
  command -v munged >/dev/null || missing+=(munge)
  [ ${#missing[@]} -eq 0 ] && return 0
  [ "$(id -u)" -eq 0 ] || die "${missing[*]} missing; install as root: apt-get install -y" \
    "--no-install-recommends slurmctld slurmd slurm-client munge"
  command -v apt-get >/dev/null || die "${missing[*]} missing and no apt-get to install them" \
    "(this script expects Debian 12)"
  note "installing ${missing[*]} (apt-get)"
  if ! DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y \
      --no-install-recommends slurmctld slurmd slurm-client munge >"$state/apt.log" 2>&1; then
    tail -n 5 "$state/apt.log" >&2
    die "apt-get could not install Slurm (log: $state/apt.log)"
  fi
}

record() { echo "$1 $2" >>"$pids"; }

# Waits up to $3 tenths of a second for the pid file $2 of daemon $1 to name a live process.
await_pidfile() { # name file tenths
  local i pid
  for ((i = 0; i < $3; i++)); do
    pid=$(cat "$2" 2>/dev/null)
    if pid_is "$pid" "$1"; then echo "$pid"; return 0; fi
    sleep 0.1
  done
  return 1
}

# Fails when $pids names a daemon that still runs (a cluster already started); forgets a
# bookkeeping file whose daemons are all gone.
refuse_if_running() {
  [ -s "$pids" ] || return 0
  local name pid alive=0
  while read -r name pid; do pid_is "$pid" "$name" && alive=1; done <"$pids"
  [ $alive -eq 1 ] && die "already running (see: $0 status; stop it first)"
  rm -f "$pids"
}

# Sends SIGTERM to each recorded daemon named in "$@" (in that order), SIGKILL after 10 s.
stop_recorded() { # names...
  local name pid want i
  for want in "$@"; do
    while read -r name pid; do
      [ "$name" = "$want" ] || continue
      if pid_is "$pid" "$name"; then
        kill -TERM "$pid"
        i=0
        while pid_is "$pid" "$name" && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
        if pid_is "$pid" "$name"; then kill -KILL "$pid"; note "killed $name $pid (SIGKILL)"; fi
        note "stopped $name ($pid)"
      fi
    done <"$pids"
  done
}

# Prints "name pid running|gone" for every recorded daemon; true when one of them runs.
status_recorded() {
  local name pid rc=1
  if [ -f "$pids" ]; then
    while read -r name pid; do
      if pid_is "$pid" "$name"; then echo "$name $pid running"; rc=0; else echo "$name $pid gone"; fi
    done <"$pids"
  else
    echo "not started by this script"
  fi
  return $rc
}

# The slurm.conf settings both test clusters share: no accounting, no cgroups (linuxproc
# process tracking, no task plugin), cons_tres by core, root daemons, quick scheduling.
conf_common() {
  cat <<CONF
AuthType=auth/munge
CredType=cred/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MpiDefault=none
MailProg=/bin/true
SlurmUser=root
SlurmdUser=root
ReturnToService=2
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=1
MinJobAge=300
CONF
}

# The lock that keeps the local and the virtual cluster (same ports, same tests) apart. A test
# takes it on fd 9 unless an ancestor already holds it (the documented way to run one test by
# hand is `flock /tmp/mayfly-local-slurm.lock ... tests/run.sh`, which passes its open lock file
# down): taking it again on a new open file would wait for ever on ourselves.
slurm_lock=/tmp/mayfly-local-slurm.lock
hold_slurm_lock() { # seconds to wait
  local fd
  for fd in "/proc/$$/fd"/*; do
    [ "$(readlink "$fd" 2>/dev/null)" = "$slurm_lock" ] && return 0
  done
  exec 9>>"$slurm_lock"
  flock -w "${1:-300}" 9 || die "could not take $slurm_lock within ${1:-300} s (another Slurm test runs?)"
}
