/* Mode "warm": each peer spawns its pool of workers once and reuses it across rounds, sending
 * new weights every round (workers reload when the version changes): a cloud function kept
 * warm. A pool that sat idle longer than --keep-alive since its last tasks is retired and the
 * round spawns a fresh one (a cold start), as a provider reclaims idle instances; a pool that
 * lost workers (abandoned after a task timeout) is replaced the same way.
 *
 * Cold and warm rounds are told apart in the results by /timing/spawn: > 0 exactly in the
 * rounds that spawned (the first, and after every expiry or replacement), 0 in warm rounds;
 * /timing/tasks rows carry the worker's startup time only on a fresh worker's first task. The
 * time to retire an expired pool is booked as teardown, outside the compute phase. The last
 * round retires the pool, so every worker's lifetime is known before /cost is written. */
#include "bench/train.h"

static int warm_compute(mf_train *t, int round, char *err, size_t errlen) {
  double idle = mf_engine_idle_seconds(t);
  int expired = idle >= 0 && idle > t->config.keep_alive;
  int retire_before = expired || mf_engine_degraded(t);
  int last = round == t->rounds - 1;
  return mf_engine_round(t, round, retire_before, last, err, errlen);
}

const mf_mode mf_mode_warm = {
    .name = "warm",
    .summary =
        "one pool of spawned workers per peer, kept across rounds while idle at most "
        "--keep-alive seconds",
    .phases = MF_PHASES_COMMON | MF_PHASE_BIT(MF_PHASE_SPAWN) | MF_PHASE_BIT(MF_PHASE_SPAWN_WAIT) |
              MF_PHASE_BIT(MF_PHASE_DISPATCH) | MF_PHASE_BIT(MF_PHASE_TEARDOWN),
    .setup = mf_engine_setup,
    .compute = warm_compute,
    .teardown = mf_engine_teardown,
};
