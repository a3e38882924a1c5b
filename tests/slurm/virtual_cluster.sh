#!/usr/bin/env bash
# A real multi-node Slurm cluster on this one machine, for testing what only several nodes
# show (workers on other nodes, /tmp private to each node, mpirun starting its daemons on the
# other nodes through Slurm) without a cluster. Issue 12, part 5.
#
# Each node mfnode1..mfnodeN is a set of Linux namespaces of its own, made with ip netns and
# unshare (root only):
#   - network: a namespace "mfvc-nodeI" whose eth0 (10.213.0.I/24) is one end of a veth pair;
#     the other ends hang on a bridge in the namespace "mfvc-hub", where slurmctld listens on
#     10.213.0.254 (host name mfctl). No address, route or interface of the host's own
#     namespace is created or touched: all cluster traffic stays inside these namespaces.
#   - UTS: its own host name (mfnodeI), which is also its Slurm NodeName;
#   - mount: a private /tmp (a directory of the state dir bound over /tmp), a private /dev/shm
#     (tmpfs), an /etc/hosts naming every node (bound over /etc/hosts), its own /proc;
#   - PID: the node's slurmd and everything it starts (job steps, mpirun, orted, ranks) live in
#     the node's PID namespace, so stopping a node (SIGKILL to the namespace's init) ends all of
#     it, even an mpirun hung at exit.
# One munged (the system key, its own socket in the state dir: slurm.conf AuthInfo) serves all
# nodes through the file system; slurmctld runs in the hub the same way as a node.
# Clients (sbatch, srun, squeue, ...) must reach 10.213.0.254, i.e. run inside the hub's network
# namespace: `env` prints a PATH whose first directory holds wrappers that enter it
# (nsenter --net) and run the real command, plus SLURM_CONF.
#
# The state directory must be outside /tmp (default /var/tmp/mayfly-vcluster): every node has a
# /tmp of its own and would not see it. The same holds for job output: give sbatch --output and
# result paths on a shared file system (the repo, /var/tmp), as on a real cluster.
#
# Open MPI inside a job: mpirun on the batch node starts orted on the others with srun. Open MPI
# must be told which network to use (OMPI_MCA_oob_tcp_if_include and OMPI_MCA_btl_tcp_if_include
# = the cluster's subnet, printed by `env`); see results/cluster.md for what was measured.
#
# The two test clusters share ports and tests: hold /tmp/mayfly-local-slurm.lock while this one
# runs (tests/integration/virtual_cluster.sh does). `stop` (also run by a failed `start`) ends
# only what `start` made: the namespaces' processes, the namespaces (veths and bridge go with
# them), munged, the node directories.
set -u

state=${MAYFLY_VCLUSTER_DIR:-/var/tmp/mayfly-vcluster}
conf=$state/slurm.conf
pids=$state/started.pids # lines "name pid" of the processes this script started
net=${MAYFLY_VCLUSTER_NET:-10.213.0} # the cluster's /24 (first three octets)
hub=mfvc-hub                          # network namespace of the bridge and slurmctld
bridge=mfvcbr
cpus=${MAYFLY_VCLUSTER_CPUS:-4} # CPUs each node declares (they share the real cores)
nodes=3
cluster_name=virtual_cluster
# shellcheck source=tests/slurm/cluster_lib.sh
. "$(dirname "$0")/cluster_lib.sh"
# The daemons started here must not inherit a caller's lock descriptor (fd 9, see
# hold_slurm_lock): a cluster left running would hold the lock after its test ended.
exec 9>&-

usage() {
  cat <<USAGE
Usage: tests/slurm/virtual_cluster.sh start|stop|status|env [--nodes N]
  start   install Slurm/MUNGE if missing (root, apt-get), make N nodes (mfnode1..mfnodeN:
          network, UTS, mount and PID namespaces each), start munged, slurmctld and one slurmd
          per node, wait until every node is idle
  stop    end every process, namespace, interface and node directory start made (only those)
  status  show the processes, namespaces and sinfo
  env     print the export lines clients need (SLURM_CONF, PATH with the client wrappers, the
          Open MPI network settings)
Options: --nodes N   number of nodes for start [default: 3, at most 250]
Environment: MAYFLY_VCLUSTER_DIR (state directory, not under /tmp) [default: $state],
             MAYFLY_VCLUSTER_CPUS (CPUs each node declares) [default: 4],
             MAYFLY_VCLUSTER_NET (the /24 inside the namespaces) [default: 10.213.0].
USAGE
}

node_name() { echo "mfnode$1"; }
node_netns() { echo "mfvc-node$1"; }
client_commands=(sbatch srun salloc squeue sinfo scancel scontrol sattach sstat sprio sshare)

# The Open MPI settings jobs need here: the cluster's subnet for the out-of-band channel and
# for TCP between ranks (else Open MPI may offer its loopback address to the other nodes).
mca_env() {
  echo "export OMPI_MCA_oob_tcp_if_include=$net.0/24 OMPI_MCA_btl_tcp_if_include=$net.0/24"
}

env_lines() {
  echo "export SLURM_CONF=$conf PATH=$state/bin:\$PATH"
  mca_env
}

write_conf() {
  local i
  mkdir -p "$state/ctld" "$state/spool" "$state/log" "$state/run" || die "cannot write $state"
  {
    echo "# Written by tests/slurm/virtual_cluster.sh: $nodes nodes in Linux namespaces."
    echo "ClusterName=mayfly-virtual"
    echo "SlurmctldHost=mfctl($net.254)"
    conf_common
    cat <<CONF
AuthInfo=socket=$state/munge/munge.socket
StateSaveLocation=$state/ctld
SlurmdSpoolDir=$state/spool/%n
SlurmctldPidFile=$state/run/slurmctld.pid
SlurmdPidFile=$state/run/slurmd-%n.pid
SlurmctldLogFile=$state/log/slurmctld.log
SlurmdLogFile=$state/log/slurmd-%n.log
SlurmctldPort=6817
SlurmdPort=6818
SlurmdParameters=config_overrides
CONF
    for ((i = 1; i <= nodes; i++)); do
      echo "NodeName=$(node_name $i) NodeAddr=$net.$i CPUs=$cpus Boards=1 SocketsPerBoard=1" \
        "CoresPerSocket=$cpus ThreadsPerCore=1 RealMemory=1000 State=UNKNOWN"
    done
    echo "PartitionName=debug Nodes=mfnode[1-$nodes] Default=YES MaxTime=INFINITE State=UP" \
      "OverSubscribe=NO"
  } >"$conf"
  {
    echo "127.0.0.1 localhost"
    echo "$net.254 mfctl"
    for ((i = 1; i <= nodes; i++)); do echo "$net.$i $(node_name $i)"; done
  } >"$state/hosts"
}

# The program each node's PID namespace runs as its init (PID 1): its host name, its private
# mounts, then the daemon in the foreground. bash as PID 1 reaps the orphans the daemon leaves.
write_node_init() {
  cat >"$state/node-init.sh" <<'INIT'
# node-init.sh NAME STATE DAEMON ARGS...: run by virtual_cluster.sh as a PID namespace's init.
set -eu
name=$1 state=$2
shift 2
hostname "$name"
mount --bind "$state/hosts" /etc/hosts
mkdir -p "$state/nodes/$name/tmp" "$state/spool/$name"
chmod 1777 "$state/nodes/$name/tmp"
mount --bind "$state/nodes/$name/tmp" /tmp
mount -t tmpfs -o size=1g,mode=1777 tmpfs /dev/shm
"$@" &
wait
INIT
}

# Starts the init of one node in the network namespace $1 and records it; $2 is the host name.
start_node() { # netns hostname daemon args...
  local ns=$1 name=$2 log="$state/log/$2-init.log" i child
  shift 2
  # setsid: no controlling terminal, not in the caller's process group (a ^C to a test must
  # not reach the daemons before stop does).
  setsid nsenter --net="/run/netns/$ns" -- unshare --uts --mount --pid --fork --mount-proc \
    --propagation private --kill-child=KILL bash "$state/node-init.sh" "$name" "$state" "$@" \
    </dev/null >>"$log" 2>&1 &
  local outer=$!
  # The namespace's init is the child of unshare; record it (SIGKILL to it ends the node).
  for ((i = 0; i < 50; i++)); do
    child=$(cat "/proc/$outer/task/$outer/children" 2>/dev/null)
    child=${child%% *}
    [ -n "$child" ] && pid_is "$child" bash && break
    child=""
    sleep 0.1
  done
  [ -n "$child" ] || { tail -n 5 "$log" >&2; die "node $name did not start (log: $log)"; }
  record unshare "$outer"
  record bash "$child"
  echo "$name $child" >>"$state/inits"
}

make_network() {
  local i ns
  [ -e "/run/netns/$hub" ] && die "namespace $hub exists (a virtual cluster runs or was left" \
    "behind): run $0 stop"
  echo "$hub" >>"$state/netns"
  ip netns add "$hub" || die "ip netns add $hub failed (root needed)"
  ip -n "$hub" link set lo up
  ip -n "$hub" link add "$bridge" type bridge || die "cannot create the bridge in $hub"
  ip -n "$hub" addr add "$net.254/24" dev "$bridge" || die "cannot give $bridge $net.254/24"
  ip -n "$hub" link set "$bridge" up
  for ((i = 1; i <= nodes; i++)); do
    ns=$(node_netns $i)
    [ -e "/run/netns/$ns" ] && die "namespace $ns exists (left behind?): run $0 stop"
    echo "$ns" >>"$state/netns"
    ip netns add "$ns" || die "ip netns add $ns failed"
    ip -n "$ns" link set lo up
    ip -n "$hub" link add "vn$i" type veth peer name eth0 netns "$ns" ||
      die "cannot create the veth pair of node $i"
    ip -n "$hub" link set "vn$i" master "$bridge" up
    ip -n "$ns" addr add "$net.$i/24" dev eth0 || die "cannot give node $i $net.$i/24"
    ip -n "$ns" link set eth0 up
  done
}

write_wrappers() {
  local c
  mkdir -p "$state/bin"
  for c in "${client_commands[@]}"; do
    command -v "$c" >/dev/null || continue
    printf '#!/bin/sh\n# virtual_cluster.sh: %s inside the cluster network (namespace %s).\n%s\n' \
      "$c" "$hub" "exec nsenter --net=/run/netns/$hub -- $(command -v "$c") \"\$@\"" \
      >"$state/bin/$c"
    chmod +x "$state/bin/$c"
  done
}

# True while the init of every node (and of the hub) runs.
inits_alive() {
  local name pid
  while read -r name pid; do
    pid_is "$pid" bash || { note "node $name stopped (log: $state/log/$name-init.log)"; return 1; }
  done <"$state/inits"
}

start() {
  local t0=$SECONDS i pid
  [ "$(id -u)" -eq 0 ] || die "needs root (network, UTS, mount and PID namespaces)"
  case "$state" in /tmp | /tmp/*) die "MAYFLY_VCLUSTER_DIR=$state is under /tmp, which every" \
    "node has of its own: choose a shared directory (e.g. /var/tmp/...)" ;; esac
  [[ "$net" =~ ^[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}$ ]] ||
    die "MAYFLY_VCLUSTER_NET: '$net' is not three octets (e.g. 10.213.0)"
  [[ "$cpus" =~ ^[1-9][0-9]*$ ]] || die "MAYFLY_VCLUSTER_CPUS: '$cpus' is not a positive count"
  mkdir -p "$state" || die "cannot create $state"
  install_packages
  for c in ip unshare nsenter setsid; do
    command -v $c >/dev/null || die "$c missing (iproute2, util-linux)"
  done
  refuse_if_running
  [ -s "$state/netns" ] && die "namespaces of an earlier start are left ($state/netns): run $0 stop"
  rm -rf "$state/ctld" "$state/spool" "$state/nodes" "$state/run" "$state/inits"
  # From here on a failure undoes everything made so far.
  trap 'rc=$?; [ $rc -ne 0 ] && { note "start failed; cleaning up"; stop >/dev/null 2>&1; }; exit $rc' EXIT
  trap 'exit 143' TERM INT HUP # so that the EXIT trap runs when start is interrupted
  write_conf
  write_node_init
  make_network

  [ -s /etc/munge/munge.key ] || die "no /etc/munge/munge.key (reinstall the munge package)"
  install -d -o munge -g munge -m 0755 "$state/munge"
  runuser -u munge -- test -w "$state/munge" ||
    die "the munge user cannot reach $state/munge (make $state and its parents searchable: chmod o+x)"
  runuser -u munge -- munged --socket="$state/munge/munge.socket" \
    --pid-file="$state/munge/munged.pid" --log-file="$state/munge/munged.log" \
    --seed-file="$state/munge/munged.seed" || die "munged did not start ($state/munge/munged.log)"
  pid=$(await_pidfile munged "$state/munge/munged.pid" 50) || die "munged wrote no pid file"
  record munged "$pid"

  start_node "$hub" mfctl slurmctld -D -i -f "$conf"
  for ((i = 1; i <= nodes; i++)); do
    start_node "$(node_netns $i)" "$(node_name $i)" slurmd -D -f "$conf"
  done
  write_wrappers

  export SLURM_CONF=$conf
  local idle=0 states=""
  for ((i = 0; i < 300; i++)); do # 30 s
    states=$("$state/bin/sinfo" -h -N -o '%t' 2>/dev/null | sort | uniq -c | tr -s ' \n' ' ')
    idle=$("$state/bin/sinfo" -h -N -t idle -o '%N' 2>/dev/null | wc -l)
    [ "$idle" -eq "$nodes" ] && break
    inits_alive || break
    sleep 0.1
  done
  if [ "$idle" -ne "$nodes" ]; then
    tail -n 5 "$state/log/slurmctld.log" "$state"/log/slurmd-*.log >&2
    die "$idle of $nodes nodes idle after $((SECONDS - t0)) s (states:${states:- none})"
  fi
  trap - EXIT TERM INT HUP
  note "up in $((SECONDS - t0)) s: $nodes nodes ($(node_name 1)..$(node_name "$nodes")," \
    "$cpus CPUs each), slurmctld on mfctl ($net.254)"
  note "submit with:"
  env_lines | sed 's/^/  /' >&2
}

# Kills every process still inside one of our network namespaces (what survived its node's
# init, or a start whose bookkeeping was lost), then deletes the namespaces.
remove_namespaces() {
  local ns i left
  [ -f "$state/netns" ] || return 0
  while read -r ns; do
    [ -e "/run/netns/$ns" ] || continue
    for ((i = 0; i < 50; i++)); do
      left=$(ip netns pids "$ns" 2>/dev/null)
      [ -z "$left" ] && break
      # shellcheck disable=SC2086 # a list of pids
      kill -KILL $left 2>/dev/null
      sleep 0.1
    done
    [ -n "$left" ] && note "processes $left in $ns did not end"
    ip netns del "$ns" || note "could not delete namespace $ns"
  done <"$state/netns"
  rm -f "$state/netns"
}

stop() {
  local t0=$SECONDS name pid i
  if [ ! -f "$pids" ] && [ ! -f "$state/netns" ]; then
    note "nothing to stop (no $pids)"
    return 0
  fi
  if [ -f "$pids" ]; then
    # SIGKILL to a PID namespace's init ends every process of that namespace (the kernel's
    # rule), whatever state the daemons and jobs are in.
    while read -r name pid; do
      [ "$name" = bash ] && pid_is "$pid" bash && kill -KILL "$pid"
      # munged takes ~1.5 s to end: let it start now (nothing needs it once the nodes are gone)
      [ "$name" = munged ] && pid_is "$pid" munged && kill -TERM "$pid"
    done <"$pids"
    for ((i = 0; i < 50; i++)); do
      local alive=0
      while read -r name pid; do
        [ "$name" = munged ] && continue
        pid_is "$pid" "$name" && alive=1
      done <"$pids"
      [ $alive -eq 0 ] && break
      sleep 0.1
    done
    stop_recorded unshare munged
  fi
  remove_namespaces
  rm -f "$pids" "$state/inits"
  rm -rf "${state:?}/nodes" "${state:?}/spool" "${state:?}/run" "${state:?}/bin" "${state:?}/munge"
  note "stopped in $((SECONDS - t0)) s"
}

status() {
  local rc=0 ns
  status_recorded || rc=1
  if [ -f "$state/netns" ]; then
    while read -r ns; do
      [ -e "/run/netns/$ns" ] && echo "namespace $ns: $(ip netns pids "$ns" | wc -l) processes"
    done <"$state/netns"
  fi
  [ -x "$state/bin/sinfo" ] && SLURM_CONF=$conf "$state/bin/sinfo" 2>/dev/null
  return $rc
}

command=${1:-}
[ $# -gt 0 ] && shift
while [ $# -gt 0 ]; do
  case "$1" in
    --nodes)
      [ $# -ge 2 ] || die "--nodes needs a value"
      nodes=$2
      shift 2
      ;;
    --nodes=*) nodes=${1#--nodes=}; shift ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; exit 2 ;;
  esac
done
if ! [[ "$nodes" =~ ^[1-9][0-9]*$ ]] || [ "$nodes" -gt 250 ]; then
  die "--nodes: '$nodes' is not a node count from 1 to 250"
fi

case "$command" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  env) env_lines ;;
  -h | --help) usage ;;
  *) usage >&2; exit 2 ;;
esac
