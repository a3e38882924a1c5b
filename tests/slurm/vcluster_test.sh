# Sourced by the integration tests that run jobs on the virtual multi-node Slurm
# (tests/slurm/virtual_cluster.sh): placement_cluster, sweep_cluster, and bench/slurm/
# worker_loss.sh. Their common start, so that each file holds only its job and its checks.
# Before sourcing: test_name. The test skips (exit 0, "SKIP") without the cluster script
# ($MAYFLY_VCLUSTER_SCRIPT, default tests/slurm/virtual_cluster.sh).
# vcluster_test_start NODES then: checks root and bin/, holds the Slurm test lock
# (/tmp/mayfly-local-slurm.lock: the test clusters share ports), makes state (a fresh
# directory under /var/tmp, not /tmp, which every node has of its own; removed when the test
# passes, kept when it fails), starts NODES nodes and puts their client environment (SLURM_CONF,
# PATH) into this shell; the cluster stops when the test exits, however it exits.
vc=${MAYFLY_VCLUSTER_SCRIPT:-tests/slurm/virtual_cluster.sh}
if [ ! -f "$vc" ]; then
  echo "SKIP: $test_name: $vc is not in this tree (the multi-node test cluster)"
  exit 0
fi
. tests/slurm/test_prelude.sh

vcluster_test_cleanup() {
  local rc=$?
  timeout 30 bash "$vc" stop >/dev/null 2>&1 || true
  if [ $rc -eq 0 ]; then rm -rf "$state"; else echo "$test_name: kept $state for inspection" >&2; fi
}

vcluster_test_start() { # nodes
  [ "$(id -u)" -eq 0 ] || fail "needs root (the virtual cluster's namespaces)"
  bin=$(cd "${MAYFLY_BIN:-bin}" && pwd)
  cluster_name=$test_name
  . tests/slurm/cluster_lib.sh
  hold_slurm_lock 300 # unless an ancestor (flock ... tests/run.sh) already holds it
  echo "holding $slurm_lock after $((SECONDS - start)) s"
  state=$(mktemp -d "/var/tmp/mayfly-$test_name.XXXXXX")
  chmod 0755 "$state" # munged runs as the munge user
  export MAYFLY_VCLUSTER_DIR=$state/cluster
  trap vcluster_test_cleanup EXIT
  timeout 30 bash "$vc" start --nodes "$1" >"$state/start.log" 2>&1 ||
    { cat "$state/start.log"; fail "the virtual cluster did not start"; }
  eval "$(bash "$vc" env)"
}

# Fails unless mayfly-compare finds the model of results file $2 bit-identical to $1's.
same_model() { # base.h5 other.h5
  local log=$state/compare-$(basename "$2" .h5).log
  "$bin/mayfly-compare" "$1" "$2" >"$log" || { cat "$log"; fail "mayfly-compare $1 $2 failed"; }
  grep -q "model check: VALID" "$log" || { cat "$log"; fail "the models of $1 and $2 differ"; }
}
