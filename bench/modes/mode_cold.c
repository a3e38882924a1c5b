/* Mode "cold": every round the peer spawns W fresh workers (MPI_Comm_spawn), sends them the
 * weights, hands out its K tasks, gathers the gradients in task order, and retires the
 * workers: a cloud function's cold start, every round. The gradient-computation phase spans
 * spawn -> averaged gradient in hand, as in the study.
 *
 * This file also holds the pool engine the serverless modes share (declared in train.h): the
 * worker command line, one pool per peer, the --workers sizing policy decided every round
 * (fixed, a per-round schedule, or auto from the tasks and the free slots), growing the pool
 * by a spawn group and shrinking it by whole groups, the /pool decision record, and the
 * accounting of worker lifetimes and invocations that the cost model (bench/harness/cost.h) prices,
 * and the spawn turns (--spawn-turns) that keep the peers' spawns apart on several nodes.
 * Cold and warm differ only in when they retire workers. */
#include <ctype.h>
#include <hwloc.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/harness/binding.h"
#include "bench/harness/placement.h"
#include "bench/harness/train.h"

const char *const mf_pool_field_names[MF_POOL_FIELDS] = {"target", "workers_before", "spawned",
                                                         "retired", "free_slots"};

typedef struct {
  float *weights; /* params | buffers, what workers receive */
  size_t weights_len;
  char *argv_storage[20];
  char *argv[21];
  cm_pool *pool;
  mf_slot_sources sources;
  int *last_targets; /* rank 0: [peers] the previous round's targets, for the resize notes */
  int32_t *gathered; /* [peers][MF_POOL_FIELDS] every peer's decisions of the round */
  int take_turns;    /* --spawn-turns resolved: the round's spawners go one after another */
  MPI_Comm turns;    /* the peers' own communicator for the turn messages */
} engine_state;

int mf_slurm_slots(const char *ntasks, const char *nprocs, const char *cpus_per_node) {
  const char *counts[] = {ntasks, nprocs};
  for (int i = 0; i < 2; i++) {
    if (!counts[i] || !*counts[i]) continue;
    char *end = NULL;
    long v = strtol(counts[i], &end, 10);
    if (*end == 0 && v > 0 && v <= 1 << 24) return (int)v;
  }
  if (!cpus_per_node || !*cpus_per_node) return -1;
  /* "72(x2),36": counts per node, runs of equal nodes compressed as (xN). */
  long total = 0;
  const char *p = cpus_per_node;
  while (*p) {
    char *end = NULL;
    long cpus = strtol(p, &end, 10), repeat = 1;
    if (end == p || cpus < 0) return -1;
    p = end;
    if (strncmp(p, "(x", 2) == 0) {
      repeat = strtol(p + 2, &end, 10);
      if (end == p + 2 || *end != ')' || repeat < 1) return -1;
      p = end + 1;
    }
    total += cpus * repeat;
    if (total > 1 << 24) return -1;
    if (*p == ',')
      p++;
    else if (*p)
      return -1;
  }
  return total > 0 ? (int)total : -1;
}

static int per_peer(int slots, int sharing) {
  if (slots < 0 || sharing < 1) return -1;
  int free_slots = slots - sharing;
  return free_slots > 0 ? free_slots / sharing : 0;
}

int mf_free_slots(const mf_slot_sources *sources) {
  int candidates[] = {per_peer(sources->universe, sources->peers),
                      per_peer(sources->slurm, sources->peers),
                      per_peer(sources->node_cores, sources->node_peers), sources->allocation};
  int best = -1;
  for (size_t i = 0; i < sizeof candidates / sizeof candidates[0]; i++)
    if (candidates[i] >= 0 && (best < 0 || candidates[i] < best)) best = candidates[i];
  return best;
}

int mf_pool_target(const mf_workers_policy *policy, int round, int tasks, int free_slots) {
  int want = policy->length == 0   ? free_slots
             : policy->length == 1 ? policy->sizes[0]
                                   : policy->sizes[round % policy->length];
  if (want > tasks) want = tasks;
  return want < 1 ? 1 : want;
}

void mf_workers_policy_describe(const mf_workers_policy *policy, char *out, size_t size) {
  if (policy->length == 0) {
    snprintf(out, size, "auto");
    return;
  }
  size_t used = (size_t)snprintf(out, size, "%s", policy->length == 1 ? "fixed " : "schedule ");
  for (int i = 0; i < policy->length && used < size; i++)
    used += (size_t)snprintf(out + used, size - used, "%s%d", i ? "," : "", policy->sizes[i]);
}

/* The sources that cannot change during a run, read once: the Slurm allocation, and hwloc's
 * cores of this node shared by the peers on it. */
static void read_static_sources(const mf_train *t, mf_slot_sources *sources) {
  MPI_Comm node;
  MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, t->rank, MPI_INFO_NULL, &node);
  MPI_Comm_size(node, &sources->node_peers);
  MPI_Comm_free(&node);
  sources->peers = t->peers;
  sources->slurm = mf_slurm_slots(getenv("SLURM_NTASKS"), getenv("SLURM_NPROCS"),
                                  getenv("SLURM_JOB_CPUS_PER_NODE"));
  sources->allocation = -1;
  sources->node_cores = -1;
  if (mf_placement_off_node()) return; /* workers off this node: its cores do not bound them */
  hwloc_topology_t topology;
  if (hwloc_topology_init(&topology) == 0) {
    if (hwloc_topology_load(topology) == 0) {
      int cores = hwloc_get_nbobjs_by_type(topology, HWLOC_OBJ_CORE);
      if (cores > 0) sources->node_cores = cores;
    }
    hwloc_topology_destroy(topology);
  }
}

/* MPI_UNIVERSE_SIZE may change under a resource manager that grows the job: read every round. */
static int read_universe(void) {
  int *universe = NULL, found = 0;
  MPI_Comm_get_attr(MPI_COMM_WORLD, MPI_UNIVERSE_SIZE, &universe, &found);
  return found && universe && *universe > 0 ? *universe : -1;
}

static void describe_sources(const mf_slot_sources *s, char *out, size_t size) {
  char slurm[64] = "Slurm allocation: not set", universe[96] = "MPI_UNIVERSE_SIZE: not set",
       cores[96] = "hwloc cores: unknown";
  if (s->universe > 0)
    snprintf(universe, sizeof universe, "MPI_UNIVERSE_SIZE %d - %d peer%s", s->universe, s->peers,
             s->peers == 1 ? "" : "s");
  if (s->slurm > 0)
    snprintf(slurm, sizeof slurm, "Slurm allocation %d - %d peer%s", s->slurm, s->peers,
             s->peers == 1 ? "" : "s");
  if (s->node_cores > 0)
    snprintf(cores, sizeof cores, "hwloc %d cores - %d peer%s on rank 0's node", s->node_cores,
             s->node_peers, s->node_peers == 1 ? "" : "s");
  snprintf(out, size,
           "smallest of: %s; %s; %s; each divided by the peers sharing it (re-read every round: "
           "MPI_UNIVERSE_SIZE)",
           universe, slurm, cores);
}

int mf_engine_setup(mf_train *t, char *err, size_t errlen) {
  mf_slot_sources sources;
  read_static_sources(t, &sources); /* collective: before anything that can fail */
  engine_state *s = calloc(1, sizeof *s);
  if (!s) {
    snprintf(err, errlen, "out of memory");
    return -1;
  }
  t->mode_state = s;
  s->sources = sources;
  s->sources.universe = read_universe();
  s->weights_len = t->model->num_params + t->model->num_buffers;
  s->weights = malloc((s->weights_len ? s->weights_len : 1) * sizeof(float));
  s->gathered = calloc((size_t)MF_POOL_FIELDS * (size_t)t->peers, sizeof *s->gathered);
  if (t->rank == 0) {
    t->pool_record = calloc((size_t)MF_POOL_FIELDS * (size_t)t->peers, sizeof *t->pool_record);
    s->last_targets = calloc((size_t)t->peers, sizeof *s->last_targets);
  }
  /* Collective like read_static_sources: every peer dups before anything can fail. */
  MPI_Comm_dup(MPI_COMM_WORLD, &s->turns);
  s->take_turns = strcmp(t->config.spawn_turns, "on") == 0 ||
                  (strcmp(t->config.spawn_turns, "auto") == 0 && mf_placement_places());
  t->spawn_turns_selected = s->take_turns ? "on" : "off";
  if (!s->weights || !s->gathered || (t->rank == 0 && (!t->pool_record || !s->last_targets)) ||
      cm_pool_create(&s->pool, err, errlen) != 0) {
    snprintf(err, errlen, "out of memory for %zu weights", s->weights_len);
    return -1;
  }
  mf_workers_policy_describe(&t->config.workers, t->pool_policy, sizeof t->pool_policy);
  describe_sources(&s->sources, t->pool_sources, sizeof t->pool_sources);
  /* The worker's command line: what it needs to build the same model and read the data. Its
   * idle timeout outlasts both a task and the keep-alive, so the peer, not the worker, decides
   * when a warm pool is retired. A stalled task sleeps well past the peer's task timeout. */
  char spec[DS_PATH_MAX + 32], batch[32], threads[32], idle[32], stall[32];
  mf_source_spec(&t->staged, spec, sizeof spec);
  snprintf(batch, sizeof batch, "%d", t->config.batch);
  snprintf(threads, sizeof threads, "%d", t->config.worker_threads);
  double longest =
      t->config.task_timeout > t->config.keep_alive ? t->config.task_timeout : t->config.keep_alive;
  snprintf(idle, sizeof idle, "%g", longest + 60);
  snprintf(stall, sizeof stall, "%g", 2 * t->config.task_timeout + 1);
  char bind[2 * MF_BIND_TEXT + PATH_MAX]; /* the worker's cores from the peer's plan */
  mf_binding_worker_argument(bind, sizeof bind);
  /* A worker on a node whose /tmp lacks the staged copy stages it there from the source. */
  char source[DS_PATH_MAX + 32] = "none";
  if (strcmp(t->staged.dir, t->source.dir) != 0) mf_source_spec(&t->source, source, sizeof source);
  const char *words[] = {"--model",         t->config.model,
                         "--dataset",       spec,
                         "--batch",         batch,
                         "--threads",       threads,
                         "--idle-timeout",  idle,
                         "--stall-seconds", stall,
                         "--bind-cpus",     bind,
                         "--stage-source",  source};
  int n = 0;
  for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
    s->argv_storage[n++] = strdup(words[i]);
  for (int i = 0; i < n; i++) s->argv[i] = s->argv_storage[i];
  s->argv[n] = NULL;
  return 0;
}

/* Retires one group and books its workers' lifetimes; the time goes to the teardown phase. */
static int retire_group(mf_train *t, engine_state *s, int group, char *err, size_t errlen) {
  double start = MPI_Wtime();
  cm_retired retired;
  int rc = cm_pool_retire(s->pool, group, t->config.spawn_timeout, &retired, err, errlen);
  t->usage.worker_seconds += retired.worker_seconds;
  t->usage.measured_byte_seconds += retired.rss_byte_seconds;
  t->phase[MF_PHASE_TEARDOWN] += MPI_Wtime() - start;
  return rc;
}

static int retire_all(mf_train *t, engine_state *s, char *err, size_t errlen) {
  int rc = 0;
  while (s->pool && cm_pool_groups(s->pool) > 0) {
    char why[256];
    if (retire_group(t, s, cm_pool_groups(s->pool) - 1, why, sizeof why) != 0 && rc == 0) {
      snprintf(err, errlen, "%s", why);
      rc = -1;
    }
  }
  return rc;
}

/* Where this peer's workers ran, as each described itself on its first task (a fresh
 * worker's first reply is the one with a startup time): distinct lines with their counts. */
static void note_placements(mf_train *t, const cm_task_record *records, int n) {
  for (int i = 0; i < n; i++) {
    const cm_task_record *r = &records[i];
    if (r->status == -1 || r->startup <= 0 || !r->placement[0]) continue;
    int k = 0;
    while (k < t->placements_used && strcmp(t->placements[k], r->placement) != 0) k++;
    if (k == t->placements_used) {
      if (k == MF_PLACEMENTS_MAX) continue;
      snprintf(t->placements[k], sizeof t->placements[k], "%s", r->placement);
      t->placements_used++;
    }
    t->placement_workers[k]++;
  }
}

/* Rank 0, after the round's decisions are gathered: a short note when --workers auto sizes
 * the pools for the first time or differently from the round before. */
static void note_resize(const mf_train *t, engine_state *s, int round) {
  const int32_t *target = t->pool_record + (size_t)MF_POOL_TARGET * t->peers;
  int changed = round == 0, low = target[0], high = target[0];
  for (int p = 0; p < t->peers; p++) {
    changed |= target[p] != s->last_targets[p];
    if (target[p] < low) low = target[p];
    if (target[p] > high) high = target[p];
    s->last_targets[p] = target[p];
  }
  if (!changed || t->config.workers.length != 0) return;
  char range[32];
  if (low == high)
    snprintf(range, sizeof range, "%d", low);
  else
    snprintf(range, sizeof range, "%d-%d", low, high);
  fprintf(stderr,
          "%s: note: --workers auto: %s worker%s per peer from round %d (%d tasks per round, %d "
          "free slots per peer on peer 0; /pool has the sources)\n",
          t->program, range, high == 1 ? "" : "s", round + 1, t->tasks_per_round,
          t->pool_record[(size_t)MF_POOL_FREE_SLOTS * t->peers]);
}

/* The decisions of peer p this round, as every peer holds them after the allgather. */
static int spawned_by(const engine_state *s, int p) {
  return s->gathered[(size_t)p * MF_POOL_FIELDS + MF_POOL_SPAWNED];
}

/* --spawn-turns: the peers that spawn this round call MPI_Comm_spawn in rank order, each once
 * the spawner before it has its workers (an empty message on the peers' own communicator).
 * Open MPI 4.1.4 loses children in MPI_Init when two spawns across nodes overlap
 * (results/cluster.md). Every spawner ahead is bounded by its own watchdogs (its retires and
 * its spawn, --spawn-timeout each), so the wait is too. Returns the seconds waited. */
static double await_turn(mf_train *t, engine_state *s) {
  int previous = -1, ahead = 0;
  for (int p = 0; p < t->rank; p++)
    if (spawned_by(s, p) > 0) previous = p, ahead++;
  if (previous < 0) return 0;
  char what[128];
  snprintf(what, sizeof what, "peer %d's wait for its spawn turn after peer %d (--spawn-turns)",
           t->rank, previous);
  double start = MPI_Wtime();
  cm_watchdog_arm(2.0 * (ahead + 1) * t->config.spawn_timeout, what);
  MPI_Recv(NULL, 0, MPI_BYTE, previous, 0, s->turns, MPI_STATUS_IGNORE);
  cm_watchdog_disarm();
  return MPI_Wtime() - start;
}

static void pass_turn(const mf_train *t, const engine_state *s) {
  for (int p = t->rank + 1; p < t->peers; p++)
    if (spawned_by(s, p) > 0) {
      MPI_Send(NULL, 0, MPI_BYTE, p, 0, s->turns);
      return;
    }
}

/* Spawns `spawned` workers as one group: on the nodes the placement chooses when it places
 * them (several nodes), else where bench/harness/binding.h says. */
static int spawn_workers(mf_train *t, engine_state *s, int spawned, char *err, size_t errlen) {
  const mf_hosts *hosts = mf_placement_hosts();
  int places = mf_placement_places() ? hosts->count : 0;
  int *alive_on = calloc((size_t)places + 1, sizeof *alive_on);
  int *chosen = calloc((size_t)places + 1, sizeof *chosen);
  int *counts = calloc((size_t)places + 1, sizeof *counts);
  const char **names = calloc((size_t)places + 1, sizeof *names);
  int used = 0;
  if (places && alive_on && chosen && counts && names) {
    for (int h = 0; h < places; h++) alive_on[h] = cm_pool_alive_on(s->pool, hosts->name[h]);
    used = mf_placement_choose(spawned, alive_on, chosen, counts);
    for (int i = 0; i < used; i++) names[i] = hosts->name[chosen[i]];
  }
  cm_spawn_request spawn = {
      .command = t->worker_command,
      .argv = s->argv,
      .workers = spawned,
      .spawn_timeout = t->config.spawn_timeout,
      .spawn_lock = strcmp(t->config.spawn_lock, "none") != 0 ? t->config.spawn_lock : NULL,
      .host = mf_binding_worker_host(), /* one node: beside the peer */
      .hosts = used,
      .host_names = names,
      .host_workers = counts,
      .lock_wait_seconds = &t->phase[MF_PHASE_SPAWN_WAIT]};
  int rc = 0;
  if (places && used == 0) {
    snprintf(err, errlen, "--placement: no node to place %d worker%s on", spawned,
             spawned == 1 ? "" : "s");
    rc = -1;
  } else {
    rc = cm_pool_grow(s->pool, &spawn, &t->phase[MF_PHASE_SPAWN], err, errlen);
  }
  free(alive_on), free(chosen), free(counts), free(names);
  if (rc == 0) {
    t->usage.pools++;
    t->usage.workers_spawned += spawned;
  }
  return rc;
}

/* The round's pool decision, filled into decision[MF_POOL_FIELDS]: keep, retire (expired,
 * surplus) or spawn. Returns the groups to retire (NULL: retire nothing this round). Nothing
 * here can fail, so every peer reaches the gather that follows. */
static char *decide_pool(mf_train *t, engine_state *s, int round, double keep_alive,
                         int retire_after, int32_t *decision) {
  s->sources.universe = read_universe();
  s->sources.allocation = mf_placement_round();
  int free_slots = mf_free_slots(&s->sources);
  int target = mf_pool_target(&t->config.workers, round, t->tasks_per_round, free_slots);
  int groups = cm_pool_groups(s->pool), alive = cm_pool_alive(s->pool);
  int before = alive, retired = 0;
  char *retire_mask = calloc((size_t)groups + 1, 1);
  double now = MPI_Wtime();
  for (int g = 0; g < groups && retire_mask; g++) {
    cm_group_info info;
    cm_pool_group_info(s->pool, g, &info);
    int expired = keep_alive >= 0 && now - info.last_used > keep_alive;
    if (info.alive == 0 || expired) { /* a group of only abandoned workers serves nobody */
      retire_mask[g] = 1;
      alive -= info.alive;
      retired += info.alive;
    }
  }
  /* Shrink by whole groups, newest first, as long as the rest still covers the target; a
   * surplus smaller than any group stays in the pool, idle this round (and warm for the
   * next). */
  for (int g = groups - 1; g >= 0 && retire_mask; g--) {
    if (retire_mask[g]) continue;
    cm_group_info info;
    cm_pool_group_info(s->pool, g, &info);
    if (info.alive <= alive - target) {
      retire_mask[g] = 1;
      alive -= info.alive;
      retired += info.alive;
    }
  }
  int spawned = target > alive ? target - alive : 0;
  if (retire_after) retired += alive + spawned;
  decision[MF_POOL_TARGET] = target;
  decision[MF_POOL_WORKERS_BEFORE] = before;
  decision[MF_POOL_SPAWNED] = spawned;
  decision[MF_POOL_RETIRED] = retired;
  decision[MF_POOL_FREE_SLOTS] = free_slots;
  return retire_mask;
}

/* The round's tasks on the pool (with the injected failures and stalls of the options). */
/* The round's pool when all of its serving workers were lost (cm_pool_run_request.replenish):
 * as many fresh workers as the round wanted, on the nodes the placement chooses, given this
 * round's weights. Their spawn adds to the round's spawn phase and counts as a cold start in
 * the cost (usage.pools); the lost attempts are the task rows with status -1. */
typedef struct {
  mf_train *t;
  engine_state *s;
  int round, target;
} replacement;

static int replace_lost_workers(void *context, char *err, size_t errlen) {
  replacement *r = context;
  mf_train *t = r->t;
  fprintf(stderr,
          "mayfly: warning: peer %d, round %d: every worker of the pool was lost; spawning %d "
          "fresh worker%s for the tasks left\n",
          t->rank, r->round, r->target, r->target == 1 ? "" : "s");
  double spawned_before = t->phase[MF_PHASE_SPAWN];
  int rc = spawn_workers(t, r->s, r->target, err, errlen);
  t->phase[MF_PHASE_SPAWN] += spawned_before; /* cm_pool_grow set it to this spawn's time */
  if (rc == 0)
    rc = cm_pool_send_weights(r->s->pool, r->s->weights, r->s->weights_len, r->round, r->target,
                              t->config.task_timeout, err, errlen);
  return rc;
}

static int run_tasks(mf_train *t, engine_state *s, int round, int target, char *err,
                     size_t errlen) {
  replacement lost = {t, s, round, target};
  cm_pool_run_request run = {.tasks = t->tasks,
                             .indices = t->task_indices,
                             .ntasks = t->tasks_per_round,
                             .result_len = t->result_len,
                             .sum = t->result_sum,
                             .records = t->records,
                             .records_cap = t->records_cap,
                             .task_timeout = t->config.task_timeout,
                             .max_retries = t->config.max_retries,
                             .inject_fail_rate = t->config.inject_failures,
                             .inject_stall_rate = t->config.inject_stalls,
                             .inject_seed = (uint64_t)t->config.failure_seed,
                             .inject_peer = t->rank,
                             .replenish = replace_lost_workers,
                             .replenish_context = &lost};
  int rc = cm_pool_run(s->pool, &run, err, errlen);
  t->records_used = run.records_used;
  note_placements(t, run.records, run.records_used);
  t->usage.invocations += run.records_used;
  return rc;
}

int mf_engine_round(mf_train *t, int round, double keep_alive, int retire_after, char *err,
                    size_t errlen) {
  engine_state *s = t->mode_state;
  const kn_model *m = t->model;

  const int groups = cm_pool_groups(s->pool);
  int32_t decision[MF_POOL_FIELDS];
  char *retire_mask = decide_pool(t, s, round, keep_alive, retire_after, decision);
  const int target = decision[MF_POOL_TARGET], spawned = decision[MF_POOL_SPAWNED];
  MPI_Allgather(decision, MF_POOL_FIELDS, MPI_INT32_T, s->gathered, MF_POOL_FIELDS, MPI_INT32_T,
                MPI_COMM_WORLD); /* every peer learns who spawns: the turns follow from it */
  if (t->rank == 0) {
    for (int p = 0; p < t->peers; p++)
      for (int f = 0; f < MF_POOL_FIELDS; f++)
        t->pool_record[(size_t)f * t->peers + p] = s->gathered[(size_t)p * MF_POOL_FIELDS + f];
    note_resize(t, s, round);
  }

  int rc = 0;
  for (int g = groups - 1; g >= 0 && rc == 0 && retire_mask; g--) /* back to front: indices */
    if (retire_mask[g]) rc = retire_group(t, s, g, err, errlen);  /* stay valid */
  free(retire_mask);
  int retire_failed = rc != 0;

  double start = MPI_Wtime();
  memcpy(s->weights, m->params, m->num_params * sizeof(float));
  if (m->num_buffers)
    memcpy(s->weights + m->num_params, m->buffers, m->num_buffers * sizeof(float));
  if (spawned > 0) {
    /* A failed peer still passes its turn on, so that the later spawners do not wait for it. */
    double turn_wait = s->take_turns ? await_turn(t, s) : 0;
    if (rc == 0) rc = spawn_workers(t, s, spawned, err, errlen);
    if (s->take_turns) pass_turn(t, s);
    t->phase[MF_PHASE_SPAWN] += turn_wait; /* the lock's wait is inside spawn too */
    t->phase[MF_PHASE_SPAWN_WAIT] += turn_wait;
  }
  if (retire_failed) return -1;

  if (rc == 0) {
    double dispatch_start = MPI_Wtime();
    rc = cm_pool_send_weights(s->pool, s->weights, s->weights_len, round, target,
                              t->config.task_timeout, err, errlen);
    t->phase[MF_PHASE_DISPATCH] = MPI_Wtime() - dispatch_start;
  }
  if (rc == 0) rc = run_tasks(t, s, round, target, err, errlen);
  t->phase[MF_PHASE_COMPUTE] = MPI_Wtime() - start;
  if (retire_after || rc != 0) {
    char close_err[256];
    if (retire_all(t, s, close_err, sizeof close_err) != 0 && rc == 0) {
      snprintf(err, errlen, "%s", close_err);
      rc = -1;
    }
  }
  return rc;
}

void mf_engine_teardown(mf_train *t) {
  engine_state *s = t->mode_state;
  if (!s) return;
  char err[256];
  if (retire_all(t, s, err, sizeof err) != 0)
    fprintf(stderr, "%s: warning: peer %d: %s\n", t->program, t->rank, err);
  cm_pool_close(s->pool, t->config.spawn_timeout, NULL, err, sizeof err);
  for (int i = 0; s->argv_storage[i]; i++) free(s->argv_storage[i]);
  free(s->weights);
  free(s->last_targets);
  free(s->gathered);
  free(t->pool_record);
  t->pool_record = NULL;
  if (s->turns != MPI_COMM_NULL) MPI_Comm_free(&s->turns);
  free(s);
  t->mode_state = NULL;
}

static int cold_compute(mf_train *t, int round, char *err, size_t errlen) {
  return mf_engine_round(t, round, -1, 1, err, errlen); /* the pool is empty at every start */
}

const mf_mode mf_mode_cold = {
    .name = "cold",
    .summary = "per round, fresh workers spawned with MPI_Comm_spawn compute the tasks",
    .phases = MF_PHASES_COMMON | MF_PHASE_BIT(MF_PHASE_SPAWN) | MF_PHASE_BIT(MF_PHASE_SPAWN_WAIT) |
              MF_PHASE_BIT(MF_PHASE_DISPATCH) | MF_PHASE_BIT(MF_PHASE_TEARDOWN),
    .setup = mf_engine_setup,
    .compute = cold_compute,
    .teardown = mf_engine_teardown,
};
