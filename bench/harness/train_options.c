/* The option table of mayfly-train. Names follow DESIGN.md's vocabulary; defaults are the
 * values a first run should use. Model, mode and exchange values are checked against the
 * tables of kernels/, bench/ and comm/ at parse time, so a typo is one clear error line. */
#include "bench/harness/train_options.h"

#include <ctype.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/harness/train.h"
#include "comm/exchange.h"
#include "kernels/model.h"

#define FIELD(name) offsetof(mf_train_config, name)

static int parse_tasks(const char *text, void *field, char *err, size_t errlen) {
  if (strcmp(text, "all") == 0) {
    *(int *)field = 0;
    return 0;
  }
  char *end = NULL;
  long v = strtol(text, &end, 10);
  if (!*text || *end || v < 1 || v > 1000000) {
    snprintf(err, errlen, "'%s' is not a task count (1..1000000) or 'all'", text);
    return -1;
  }
  *(int *)field = (int)v;
  return 0;
}

static void format_tasks(const void *field, char *out, size_t size) {
  int v = *(const int *)field;
  if (v == 0)
    snprintf(out, size, "all");
  else
    snprintf(out, size, "%d", v);
}

/* "auto", a count N, or a per-round schedule "A,B,C" (cycled over the rounds). */
static int parse_workers(const char *text, void *field, char *err, size_t errlen) {
  mf_workers_policy policy = {0};
  if (strcmp(text, "auto") == 0) {
    *(mf_workers_policy *)field = policy;
    return 0;
  }
  const char *p = text;
  for (int entry = 1;; entry++) {
    size_t length = strcspn(p, ",");
    char *end = NULL;
    long v = strtol(p, &end, 10);
    if (length == 0) {
      snprintf(err, errlen, "'%s': entry %d of the schedule is empty", text, entry);
      return -1;
    }
    if (end != p + length || !isdigit((unsigned char)*p) || v < 1 || v > 4096) {
      if (!strchr(text, ','))
        snprintf(err, errlen,
                 "'%s' is not a worker count (1..4096), a per-round schedule A,B,C of them, or "
                 "'auto'",
                 text);
      else
        snprintf(err, errlen, "'%s': entry %d ('%.*s') is not a worker count (1..4096)", text,
                 entry, (int)(length < 32 ? length : 32), p);
      return -1;
    }
    if (policy.length == MF_WORKERS_SCHEDULE_MAX) {
      snprintf(err, errlen, "'%s': a schedule has at most %d entries", text,
               MF_WORKERS_SCHEDULE_MAX);
      return -1;
    }
    policy.sizes[policy.length++] = (int)v;
    if (p[length] == 0) break;
    p += length + 1;
  }
  *(mf_workers_policy *)field = policy;
  return 0;
}

static void format_workers(const void *field, char *out, size_t size) {
  const mf_workers_policy *policy = field;
  if (policy->length == 0) {
    snprintf(out, size, "auto");
    return;
  }
  size_t used = 0;
  out[0] = 0;
  for (int i = 0; i < policy->length && used < size; i++)
    used += (size_t)snprintf(out + used, size - used, "%s%d", i ? "," : "", policy->sizes[i]);
}

int mf_option_parse_model(const char *text, void *field, char *err, size_t errlen) {
  if (kn_model_find(text)) {
    *(const char **)field = kn_model_find(text)->name;
    return 0;
  }
  size_t used = (size_t)snprintf(err, errlen, "'%s' is not a model (", text);
  for (int i = 0; kn_model_kinds[i] && used < errlen; i++)
    used +=
        (size_t)snprintf(err + used, errlen - used, "%s%s", i ? ", " : "", kn_model_kinds[i]->name);
  if (used < errlen) snprintf(err + used, errlen - used, ")");
  return -1;
}

static int parse_mode(const char *text, void *field, char *err, size_t errlen) {
  if (mf_mode_find(text)) {
    *(const char **)field = mf_mode_find(text)->name;
    return 0;
  }
  size_t used = (size_t)snprintf(err, errlen, "'%s' is not a mode (", text);
  for (int i = 0; mf_modes[i] && used < errlen; i++)
    used += (size_t)snprintf(err + used, errlen - used, "%s%s", i ? ", " : "", mf_modes[i]->name);
  if (used < errlen) snprintf(err + used, errlen - used, ")");
  return -1;
}

static int parse_exchange(const char *text, void *field, char *err, size_t errlen) {
  if (cm_exchange_find(text)) {
    *(const char **)field = cm_exchange_find(text)->name;
    return 0;
  }
  size_t used = (size_t)snprintf(err, errlen, "'%s' is not an exchange algorithm (", text);
  for (int i = 0; cm_exchange_algorithms[i] && used < errlen; i++)
    used += (size_t)snprintf(err + used, errlen - used, "%s%s", i ? ", " : "",
                             cm_exchange_algorithms[i]->name);
  if (used < errlen) snprintf(err + used, errlen - used, ")");
  return -1;
}

static int parse_dataset(const char *text, void *field, char *err, size_t errlen) {
  ds_source source;
  char why[DS_ERROR_MAX];
  if (ds_source_parse(text, &source, why, sizeof why) != 0) {
    snprintf(err, errlen, "%s", why);
    return -1;
  }
  *(const char **)field = text;
  return 0;
}

void mf_option_format_string(const void *field, char *out, size_t size) {
  const char *value = *(const char *const *)field;
  snprintf(out, size, "%s", value ? value : "");
}

static const mf_option train_options[] = {
    {"mode", 0, MF_OPT_CUSTOM, FIELD(mode), "MODE", "baseline",
     "who computes the tasks: baseline (the peer itself), cold (fresh spawned workers every "
     "round), warm (spawned workers kept across rounds, see --keep-alive)",
     0, 0, NULL, parse_mode, mf_option_format_string},
    {"model", 0, MF_OPT_CUSTOM, FIELD(model), "NAME", "mlp", "network to train", 0, 0, NULL,
     mf_option_parse_model, mf_option_format_string},
    {"dataset", 0, MF_OPT_CUSTOM, FIELD(dataset), "SPEC", "fashion-mnist",
     "fashion-mnist, idx:DIR, cifar10:DIR or synthetic[:TRAIN:TEST[:SEED]]", 0, 0, NULL,
     parse_dataset, mf_option_format_string},
    {"batch", 'b', MF_OPT_INT, FIELD(batch), "N", "64", "samples per minibatch", 1, 65536, NULL,
     NULL, NULL},
    {"tasks", 'k', MF_OPT_CUSTOM, FIELD(tasks), "K|all", "4",
     "minibatches per peer per round; all = every local minibatch, one update per epoch", 0, 0,
     NULL, parse_tasks, format_tasks},
    {"workers", 'w', MF_OPT_CUSTOM, FIELD(workers), "W|A,B,..|auto", "2",
     "workers in each peer's pool, decided every round (serverless modes; at most the task "
     "count): W fixed; A,B,.. a per-round schedule, cycled; auto = min(tasks, free slots per "
     "peer), at least 1, free slots = the smallest of MPI_UNIVERSE_SIZE, the Slurm allocation "
     "and (local) hwloc's cores of the node, each minus the peers sharing it and divided by "
     "them, and the peer's share of every node's free slots under --placement, re-read every "
     "round; decisions in /pool",
     0, 0, NULL, parse_workers, format_workers},
    {"rounds", 'n', MF_OPT_INT, FIELD(rounds), "N", "20", "rounds to train", 1, 100000000, NULL,
     NULL, NULL},
    {"epochs", 'e', MF_OPT_INT, FIELD(epochs), "N", "0",
     "train for N passes over every shard instead (overrides --rounds when > 0)", 0, 1000000, NULL,
     NULL, NULL},
    {"lr", 0, MF_OPT_DOUBLE, FIELD(lr), "RATE", "0.05", "SGD learning rate", 1e-12, 1e6, NULL, NULL,
     NULL},
    {"momentum", 0, MF_OPT_DOUBLE, FIELD(momentum), "M", "0.9", "SGD momentum", 0, 0.999999, NULL,
     NULL, NULL},
    {"weight-decay", 0, MF_OPT_DOUBLE, FIELD(weight_decay), "WD", "0", "SGD weight decay", 0, 1,
     NULL, NULL, NULL},
    {"seed", 's', MF_OPT_INT, FIELD(seed), "S", "1234",
     "seed of the weights and the data partition", 0, 2147483647, NULL, NULL, NULL},
    {"peer-threads", 0, MF_OPT_INT, FIELD(peer_threads), "T", "1",
     "threads of a peer (its fixed compute budget)", 1, 1024, NULL, NULL, NULL},
    {"worker-threads", 0, MF_OPT_INT, FIELD(worker_threads), "T", "1", "threads of a worker", 1,
     1024, NULL, NULL, NULL},
    {"eval-every", 0, MF_OPT_INT, FIELD(eval_every), "N", "10",
     "test accuracy every N rounds (0: only after the last round)", 0, 100000000, NULL, NULL, NULL},
    {"warmup", 0, MF_OPT_INT, FIELD(warmup), "N", "1",
     "first rounds flagged as warm-up and left out of summaries", 0, 100000000, NULL, NULL, NULL},
    {"exchange", 0, MF_OPT_CUSTOM, FIELD(exchange), "NAME", "auto",
     "peer gradient exchange algorithm (auto: the fastest measured for the size)", 0, 0, NULL,
     parse_exchange, mf_option_format_string},
    {"output", 'o', MF_OPT_STRING, FIELD(output), "FILE.h5", "mayfly-train.h5", "HDF5 results file",
     0, 0, NULL, NULL, NULL},
    {"force", 'f', MF_OPT_FLAG, FIELD(force), NULL, NULL,
     "overwrite an existing complete results file", 0, 0, NULL, NULL, NULL},
    {"spawn-timeout", 0, MF_OPT_DOUBLE, FIELD(spawn_timeout), "S", "120",
     "seconds a spawn may take before the run is aborted", 0.001, 1e6, NULL, NULL, NULL},
    {"task-timeout", 0, MF_OPT_DOUBLE, FIELD(task_timeout), "S", "300",
     "seconds a worker may take for one task before it is abandoned and the task retried", 0.001,
     1e6, NULL, NULL, NULL},
    {"max-retries", 0, MF_OPT_INT, FIELD(max_retries), "N", "2",
     "retries of a failed task before the run fails", 0, 100, NULL, NULL, NULL},
    {"spawn-lock", 0, MF_OPT_STRING, FIELD(spawn_lock), "FILE|none", "none",
     "lock file that makes the peers of a node call MPI_Comm_spawn one at a time (the wait is "
     "timed as spawn_wait); an experiment knob, it does not prevent Open MPI 4.1.4's spawn "
     "stall (PMIX_MCA_gds=hash does, see bench/scripts/launch.sh)",
     0, 0, NULL, NULL, NULL},
    {"spawn-turns", 0, MF_OPT_CHOICE, FIELD(spawn_turns), "auto|on|off", "auto",
     "on: the peers that spawn workers in a round call MPI_Comm_spawn one after another in rank "
     "order, each once the one before has its workers (the wait is timed as spawn_wait); off: "
     "all at once; auto: on when the allocation has several nodes (Open MPI 4.1.4 fails "
     "concurrent spawns whose workers span nodes: results/cluster.md)",
     0, 0, (const char *const[]){"auto", "on", "off", NULL}, NULL, NULL},
    {"stage-dir", 0, MF_OPT_STRING, FIELD(stage_dir), "DIR", "/tmp/mayfly-stage",
     "where compressed datasets are unpacked once for workers to read records from", 0, 0, NULL,
     NULL, NULL},
    {"keep-alive", 0, MF_OPT_DOUBLE, FIELD(keep_alive), "S", "600",
     "warm mode: a spawn group of workers idle longer than this between rounds is retired and "
     "the next round that needs workers spawns new ones (cold start)",
     0, 1e6, NULL, NULL, NULL},
    {"inject-failures", 0, MF_OPT_DOUBLE, FIELD(inject_failures), "RATE", "0",
     "fault injection: probability that a task attempt fails (never the last allowed attempt)", 0,
     1, NULL, NULL, NULL},
    {"inject-stalls", 0, MF_OPT_DOUBLE, FIELD(inject_stalls), "RATE", "0",
     "fault injection: probability that a task attempt hangs past --task-timeout (its worker "
     "is abandoned)",
     0, 1, NULL, NULL, NULL},
    {"failure-seed", 0, MF_OPT_INT, FIELD(failure_seed), "S", "1",
     "seed of the fault injection (which attempts fail)", 0, 2147483647, NULL, NULL, NULL},
    {"prices", 0, MF_OPT_STRING, FIELD(prices), "FILE", "aws-us-east-1",
     "price table for /cost: a file, or a name looked up as results/prices/NAME.txt next to "
     "the executable (../results/prices) or under the current directory",
     0, 0, NULL, NULL, NULL},
    {"worker-memory", 0, MF_OPT_INT, FIELD(worker_memory), "MB", "1769",
     "memory a worker is billed for (function size; 1769 MB = 1 vCPU on AWS Lambda)", 128, 10240,
     NULL, NULL, NULL},
    {"bind", 0, MF_OPT_CHOICE, FIELD(bind), "cores|none", "cores",
     "cores: bind every peer (hwloc) to cores of its own and each worker to a free core of its "
     "own where one is left, the rest unbound (all recorded in /environment); none: bind nothing",
     0, 0, (const char *const[]){"cores", "none", NULL}, NULL, NULL},
    {"placement", 0, MF_OPT_CHOICE, FIELD(placement), "any|local|remote", "any",
     "nodes the workers run on: any = wherever the allocation has free slots, shared fairly "
     "among the peers (the peer's own node first on a tie; on one node the same as local); "
     "local = only the peer's node; remote = only nodes without a peer (an allocation without "
     "one is an error); free slots per node in /pool/host_slots",
     0, 0, (const char *const[]){"any", "local", "remote", NULL}, NULL, NULL},
    {"allow-unsafe-spawn", 0, MF_OPT_FLAG, FIELD(allow_unsafe_spawn), NULL, NULL,
     "experts: run serverless modes where the launch is known to stall or fail MPI_Comm_spawn "
     "(a PMIX_MCA_gds with a shared-memory store on Open MPI 4.1, srun direct launch); "
     "recorded in /environment",
     0, 0, NULL, NULL, NULL},
    {"checkpoint-every", 0, MF_OPT_INT, FIELD(checkpoint_every), "N", "0",
     "write a checkpoint (OUTPUT.ckpt: weights, buffers, momentum, round) every N rounds; 0: "
     "only --checkpoint-seconds decides",
     0, 100000000, NULL, NULL, NULL},
    {"checkpoint-seconds", 0, MF_OPT_DOUBLE, FIELD(checkpoint_seconds), "S", "600",
     "also write a checkpoint after the first round that ends S wall seconds or more after the "
     "last one, and when a stop signal ends the run; 0: never by time nor on a signal",
     0, 1e9, NULL, NULL, NULL},
    {"resume", 0, MF_OPT_FLAG, FIELD(resume), NULL, NULL,
     "continue --output from its last checkpoint (the same options are required; the rounds "
     "after the checkpoint are redone)",
     0, 0, NULL, NULL, NULL},
    {"resume-any-revision", 0, MF_OPT_FLAG, FIELD(resume_any_revision), NULL, NULL,
     "with --resume: accept a checkpoint written by another git revision of mayfly", 0, 0, NULL,
     NULL, NULL},
};

const mf_program mf_train_program = {
    .name = "mayfly-train",
    .summary =
        "Peer-to-peer data-parallel training, baseline vs serverless (spawned) gradient "
        "workers, every phase timed into HDF5. Run under mpirun, one rank per peer "
        "(bench/scripts/launch.sh does it).",
    .usage = "[OPTIONS]",
    .options = train_options,
    .count = MF_OPTION_COUNT(train_options),
    .epilogue =
        "Examples:\n"
        "  bench/scripts/launch.sh -n 2 -- bin/mayfly-train --mode baseline --tasks 4 -o base.h5\n"
        "  bench/scripts/launch.sh -n 2 -- bin/mayfly-train --mode cold --workers 2 --tasks 4 "
        "-o cold.h5\n"
        "  bin/mayfly-compare base.h5 cold.h5\n",
};
