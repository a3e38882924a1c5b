# Sourced by the integration tests that use the local Slurm (slurm_smoke, slurm_checks): their
# common start. Defines fail() for the test named by $test_name, checks that Slurm is
# installed or can be (local_cluster.sh installs it as root) and that bin/ is built.
fail() { echo "$test_name: FAIL: $*" >&2; exit 1; }

if ! command -v sbatch >/dev/null || ! command -v slurmctld >/dev/null; then
  command -v apt-get >/dev/null ||
    fail "Slurm is not installed and there is no apt-get to install it (Debian 12 expected)"
  [ "$(id -u)" -eq 0 ] || fail "Slurm is not installed; run as root (or install slurmctld" \
    "slurmd slurm-client munge) so the local cluster can be set up"
fi
[ -x "${MAYFLY_BIN:-bin}/mayfly-train" ] || fail "${MAYFLY_BIN:-bin}/mayfly-train missing (make)"
