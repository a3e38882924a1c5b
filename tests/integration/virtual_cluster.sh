#!/usr/bin/env bash
# The multi-node test cluster itself (tests/slurm/virtual_cluster.sh), as the tests of issue 12
# will use it: 3 nodes, one sbatch -N 3 --ntasks-per-node=2 job that checks
#   - mpirun across the allocation runs 2 ranks on each of 3 distinct host names;
#   - /tmp is private per node: a file written in mfnode1's /tmp is absent on mfnode2, mfnode3;
#   - MPI_Comm_spawn with info "host" = another node puts the child there (tests/slurm/
#     spawn_host.c: the child reports its host name back over the intercommunicator);
# then stop leaves no process, network namespace, interface or mount behind; and a start that
# fails half-way (an address the bridge cannot take) cleans up what it had made.
# Needs root (namespaces). Holds /tmp/mayfly-local-slurm.lock (the two test clusters share
# ports). Bounded: every step by `timeout`, the whole test well under 60 s.
set -euo pipefail
cd "${MAYFLY_ROOT:-$(dirname "$0")/../..}"
start=$SECONDS
test_name=virtual_cluster
. tests/slurm/test_prelude.sh
[ "$(id -u)" -eq 0 ] || fail "needs root (Linux namespaces for the nodes)"
command -v mpicc >/dev/null || fail "mpicc missing (libopenmpi-dev)"
cluster_name=$test_name
. tests/slurm/cluster_lib.sh
hold_slurm_lock 300
echo "holding $slurm_lock after $((SECONDS - start)) s"

# Not under /tmp: every node has a /tmp of its own.
state=$(mktemp -d /var/tmp/mayfly-vcluster-test.XXXXXX)
chmod 0755 "$state" # munged runs as the munge user
export MAYFLY_VCLUSTER_DIR=$state/cluster
vc=tests/slurm/virtual_cluster.sh
cleanup() {
  local rc=$?
  timeout 30 "$vc" stop >/dev/null 2>&1 || true
  if [ $rc -eq 0 ]; then rm -rf "$state"; else echo "$test_name: kept $state for inspection" >&2; fi
}
trap cleanup EXIT

# Lists the host's network namespaces, interfaces and mounts of the virtual cluster.
leftovers() {
  ip netns list 2>/dev/null | grep -E '^mfvc-' || true
  ip -o link show 2>/dev/null | grep -E ': (mfvcbr|vn[0-9]+)[@:]' || true
  grep -E "mfvc-|$state" /proc/mounts || true
}
[ -z "$(leftovers)" ] || fail "a virtual cluster is already up: $(leftovers | head -n 3)"

# A start that fails after the namespaces exist (300 is no octet): one error, nothing left.
set +e
MAYFLY_VCLUSTER_NET=10.213.300 timeout 30 "$vc" start >"$state/bad.log" 2>&1
rc=$?
set -e
[ $rc -ne 0 ] || fail "start with net 10.213.300 succeeded"
grep -q "error: cannot give mfvcbr 10.213.300.254/24" "$state/bad.log" ||
  { cat "$state/bad.log"; fail "the failed start did not say why"; }
[ -z "$(leftovers)" ] || fail "a failed start left: $(leftovers | tr '\n' ' ')"
echo "failed start cleaned up"

t0=$SECONDS
timeout 30 "$vc" start --nodes 3 || fail "the virtual cluster did not start"
eval "$("$vc" env)"
echo "cluster up in $((SECONDS - t0)) s"
[ "$(sinfo -h -N -o %N | sort | tr '\n' ' ')" = "mfnode1 mfnode2 mfnode3 " ] ||
  fail "sinfo lists $(sinfo -h -N -o %N | tr '\n' ' ')"

mpicc -std=c11 -Wall -Wextra -O2 -o "$state/spawn_host" tests/slurm/spawn_host.c ||
  fail "cannot compile tests/slurm/spawn_host.c"
cat >"$state/job.sh" <<JOB
#!/usr/bin/env bash
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 PMIX_MCA_gds=hash
export OMPI_MCA_pml=ob1 OMPI_MCA_btl=self,vader,tcp
echo "batch \$(hostname)"
timeout 20 mpirun hostname | sed 's/^/rank /'
echo "mpirun exit \${PIPESTATUS[0]}"
echo "marker of job \$SLURM_JOB_ID" >/tmp/mayfly-vcluster-marker
srun -N 3 -n 3 --ntasks-per-node=1 bash -c 'echo "tmp \$(hostname) \$(cat /tmp/mayfly-vcluster-marker 2>/dev/null || echo absent)"'
timeout 20 mpirun -np 1 "$state/spawn_host" mfnode3
echo "spawn exit \$?"
JOB
job=$(sbatch --parsable -N 3 --ntasks-per-node=2 -t 2 -o "$state/job.out" "$state/job.sh") ||
  fail "sbatch failed"
await_job "$job" 40 || fail "job $job did not end within 40 s"
out=$state/job.out
cat "$out"

grep -qx "batch mfnode1" "$out" || fail "the batch script did not run on mfnode1"
grep -qx "mpirun exit 0" "$out" || fail "mpirun hostname failed"
ranks=$(grep -c '^rank ' "$out")
[ "$ranks" -eq 6 ] || fail "mpirun ran $ranks ranks, expected 6"
[ "$(grep '^rank ' "$out" | sort | uniq -c | awk '{ print $1 ":" $3 }' | tr '\n' ' ')" = \
  "2:mfnode1 2:mfnode2 2:mfnode3 " ] || fail "ranks are not 2 on each of 3 distinct hosts"
grep -qx "tmp mfnode1 marker of job $job" "$out" || fail "mfnode1 does not read its own /tmp file"
grep -qx "tmp mfnode2 absent" "$out" || fail "mfnode2 sees mfnode1's /tmp"
grep -qx "tmp mfnode3 absent" "$out" || fail "mfnode3 sees mfnode1's /tmp"
grep -qx "parent mfnode1 child mfnode3" "$out" || fail "the spawned child did not run on mfnode3"
grep -qx "spawn exit 0" "$out" || fail "spawn_host failed"
[ ! -e /tmp/mayfly-vcluster-marker ] || fail "the node's /tmp file is in the host's /tmp"
echo "job checks passed after $((SECONDS - start)) s"

# Everything the cluster runs, before stop: munged and every process in its namespaces.
running=$(awk '{ print $2 }' "$MAYFLY_VCLUSTER_DIR/started.pids")
for ns in $(ip netns list | awk '/^mfvc-/ { print $1 }'); do running="$running $(ip netns pids "$ns")"; done
[ "$(echo "$running" | wc -w)" -ge 8 ] || fail "only $(echo "$running" | wc -w) processes found: $running"
t0=$SECONDS
timeout 30 "$vc" stop || fail "stop failed"
echo "cluster stopped in $((SECONDS - t0)) s"
for pid in $running; do
  [ ! -e "/proc/$pid" ] || [ "$(awk '{ print $3 }' "/proc/$pid/stat" 2>/dev/null)" = Z ] ||
    fail "process $pid ($(cat "/proc/$pid/comm" 2>/dev/null)) outlived stop"
done
[ -z "$(leftovers)" ] || fail "stop left: $(leftovers | tr '\n' ' ')"
echo "virtual_cluster: passed in $((SECONDS - start)) s"
