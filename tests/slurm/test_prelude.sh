# Sourced by the integration tests that use a test Slurm (the local cluster or the virtual
# cluster): their common start. Defines fail() for the test named by $test_name and
# await_job(), checks that Slurm is installed or can be (the cluster scripts install it as
# root) and that bin/ is built.
fail() { echo "$test_name: FAIL: $*" >&2; exit 1; }

if ! command -v sbatch >/dev/null || ! command -v slurmctld >/dev/null; then
  command -v apt-get >/dev/null ||
    fail "Slurm is not installed and there is no apt-get to install it (Debian 12 expected)"
  [ "$(id -u)" -eq 0 ] || fail "Slurm is not installed; run as root (or install slurmctld" \
    "slurmd slurm-client munge) so the local cluster can be set up"
fi
[ -x "${MAYFLY_BIN:-bin}/mayfly-train" ] || fail "${MAYFLY_BIN:-bin}/mayfly-train missing (make)"

# Waits until job $1 has left the queue (pending, running or completing), at most $2 seconds;
# past that the job is cancelled and the call fails.
await_job() { # job_id max_seconds
  local job=$1 i
  for ((i = 0; i < $2 * 5; i++)); do
    [ -z "$(squeue -h -j "$job" -t PD,R,CG 2>/dev/null)" ] && return 0
    sleep 0.2
  done
  scancel "$job" 2>/dev/null
  return 1
}
