#!/usr/bin/env bash
# A one-node Slurm cluster on this machine, for testing run_slurm.sh and the sweeps without a
# real cluster (tests/integration/slurm_smoke.sh uses it).
#
# Why it exists: CI and development machines are plain Debian 12 boxes without systemd, so the
# packaged services never start by themselves. This script installs Slurm and MUNGE when
# missing, writes a minimal slurm.conf (no accounting, linuxproc process tracking, no cgroups)
# into a state directory of its own, starts munged, slurmctld and slurmd directly, and waits
# until the node is idle. `stop` ends exactly the daemons `start` started (their PIDs are
# recorded and checked against /proc/PID/comm), never a daemon someone else runs.
#
# The node may declare more CPUs than the machine has (MAYFLY_SLURM_CPUS, default: the larger
# of the real count and 16), so jobs sized for a real cluster (peers x (1 + workers) tasks)
# still fit; they then share the real cores, which is fine for testing the plumbing but not
# for timing.
set -u

state=${MAYFLY_SLURM_DIR:-${TMPDIR:-/tmp}/mayfly-slurm}
conf=$state/slurm.conf
pids=$state/started.pids # lines "name pid" of the daemons this script started

usage() {
  cat <<USAGE
Usage: tests/slurm/local_cluster.sh start|stop|status|env
  start   install slurmctld/slurmd/slurm-client/munge if missing (root, apt-get), write
          $conf, start munged, slurmctld, slurmd, wait for the node to be idle
  stop    stop the daemons that start started (only those)
  status  show the daemons and sinfo
  env     print the export line clients need (SLURM_CONF=...)
Environment: MAYFLY_SLURM_DIR (state directory) [default: $state],
             MAYFLY_SLURM_CPUS (CPUs the node declares) [default: max(nproc, 16)].
USAGE
}

port_in_use() { [ -n "$(ss -Hltn "sport = :$1" 2>/dev/null)" ]; }
cluster_name=local_cluster
# shellcheck source=tests/slurm/cluster_lib.sh
. "$(dirname "$0")/cluster_lib.sh"
# The daemons started here must not inherit a caller's lock descriptor (fd 9, see
# hold_slurm_lock): a cluster left running would hold the lock after its test ended.
exec 9>&-

write_conf() {
  local host node cpus real name
  host=$(hostname -s)
  node=$(slurmd -C | head -n 1) || die "slurmd -C failed"
  [[ "$node" == NodeName=* ]] || die "unexpected slurmd -C output: $node"
  name=${node%% *}
  name=${name#NodeName=}
  real=$(nproc)
  cpus=${MAYFLY_SLURM_CPUS:-$((real > 16 ? real : 16))}
  [[ "$cpus" =~ ^[1-9][0-9]*$ ]] || die "MAYFLY_SLURM_CPUS: '$cpus' is not a positive count"
  local overrides=""
  if [ "$cpus" -ne "$real" ]; then
    # Declare CPUs as one socket of plain cores so cons_tres hands out $cpus tasks.
    node=$(printf '%s\n' "$node" | sed -E "s/ CPUs=[0-9]+/ CPUs=$cpus/; s/ Boards=[0-9]+//;
      s/ SocketsPerBoard=[0-9]+/ SocketsPerBoard=1/; s/ CoresPerSocket=[0-9]+/ CoresPerSocket=$cpus/;
      s/ ThreadsPerCore=[0-9]+/ ThreadsPerCore=1/")
    overrides="SlurmdParameters=config_overrides"
  fi
  mkdir -p "$state/ctld" "$state/d" "$state/log"
  cat >"$conf" <<CONF
# Written by tests/slurm/local_cluster.sh: a one-node test cluster (no accounting, no cgroups).
ClusterName=mayfly-local
SlurmctldHost=$host(127.0.0.1)
$(conf_common)
StateSaveLocation=$state/ctld
SlurmdSpoolDir=$state/d
SlurmctldPidFile=$state/slurmctld.pid
SlurmdPidFile=$state/slurmd.pid
SlurmctldLogFile=$state/log/slurmctld.log
SlurmdLogFile=$state/log/slurmd.log
SlurmctldPort=6817
SlurmdPort=6818
# A requeued job may start again only cred_expire s later (default 120): 10 here, so that
# tests/integration/slurm_requeue.sh sees signal, requeue and resume within a minute.
AuthInfo=cred_expire=10
$overrides
$node NodeAddr=127.0.0.1 State=UNKNOWN
PartitionName=debug Nodes=$name Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
CONF
}

start() {
  mkdir -p "$state" || die "cannot create $state"
  install_packages
  refuse_if_running
  write_conf
  export SLURM_CONF=$conf
  local pid
  # Only the system munged (socket under /run/munge) counts: other clusters on this machine
  # (tests/slurm/virtual_cluster.sh) run munged daemons of their own on other sockets.
  if pid_is "$(cat /run/munge/munged.pid 2>/dev/null)" munged; then
    note "munged already runs (not started by this script; left alone)"
  else
    [ -s /etc/munge/munge.key ] || die "no /etc/munge/munge.key (reinstall the munge package)"
    install -d -o munge -g munge -m 0755 /run/munge
    rm -f /run/munge/munged.pid
    runuser -u munge -- munged || die "munged did not start"
    pid=$(await_pidfile munged /run/munge/munged.pid 50) || die "munged wrote no pid file"
    record munged "$pid"
  fi
  # Daemons in other network namespaces (the virtual cluster) do not hold these ports.
  port_in_use 6817 && die "port 6817 is in use (a slurmctld already runs here?); stop it first"
  port_in_use 6818 && die "port 6818 is in use (a slurmd already runs here?); stop it first"
  rm -f "$state/slurmctld.pid" "$state/slurmd.pid"
  slurmctld -f "$conf" -i || die "slurmctld did not start (log: $state/log/slurmctld.log)"
  pid=$(await_pidfile slurmctld "$state/slurmctld.pid" 100) ||
    die "slurmctld did not come up (log: $state/log/slurmctld.log)"
  record slurmctld "$pid"
  slurmd -f "$conf" || die "slurmd did not start (log: $state/log/slurmd.log)"
  pid=$(await_pidfile slurmd "$state/slurmd.pid" 100) ||
    die "slurmd did not come up (log: $state/log/slurmd.log)"
  record slurmd "$pid"
  local i node_state
  for ((i = 0; i < 300; i++)); do # 30 s
    node_state=$(sinfo -h -N -o '%t' 2>/dev/null | head -n 1)
    case "$node_state" in idle | mix | alloc) break ;; esac
    sleep 0.1
  done
  case "$node_state" in
    idle | mix | alloc) ;;
    *) tail -n 5 "$state/log/slurmctld.log" "$state/log/slurmd.log" >&2
       die "node not idle after 30 s (state '${node_state:-none}')" ;;
  esac
  note "up: $(sinfo -h -o '%P %D %c %t' | head -n 1) (SLURM_CONF=$conf)"
}

stop() {
  [ -f "$pids" ] || { note "nothing to stop (no $pids)"; return 0; }
  stop_recorded slurmd slurmctld munged
  rm -f "$pids"
}

status() {
  local rc=0
  status_recorded || rc=1
  [ -f "$conf" ] && SLURM_CONF=$conf sinfo 2>/dev/null
  return $rc
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  env) echo "export SLURM_CONF=$conf" ;;
  -h | --help) usage ;;
  *) usage >&2; exit 2 ;;
esac
