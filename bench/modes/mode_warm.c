/* Mode "warm": each peer keeps its pool of spawned workers across rounds, sending new weights
 * every round (workers reload when the version changes): a cloud function kept warm. The pool
 * is sized every round by --workers (fixed, a per-round schedule, or auto): it grows by
 * spawning the missing workers as a new group (a cold start) and shrinks by retiring whole
 * surplus groups. A group that sat idle longer than --keep-alive since it last served is
 * retired, as a provider reclaims idle instances, and a worker lost to a task timeout
 * (abandoned) is replaced by growing the pool, not by respawning it.
 *
 * Cold and warm rounds are told apart in the results by /timing/spawn: > 0 exactly in the
 * rounds that spawned (the first, and after every growth, expiry or loss), 0 in warm rounds;
 * /pool records each round's decision; /timing/tasks rows carry the worker's startup time only
 * on a fresh worker's first task. Retiring groups is booked as teardown, outside the compute
 * phase. The last round retires the pool, so every worker's lifetime is known before /cost is
 * written. */
#include "bench/harness/train.h"

static int warm_compute(mf_train *t, int round, char *err, size_t errlen) {
  return mf_engine_round(t, round, t->config.keep_alive, round == t->rounds - 1, err, errlen);
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
