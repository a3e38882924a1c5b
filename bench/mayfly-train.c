/* mayfly-train: the main benchmark. MPI ranks are peers of a data-parallel training job; each
 * round every peer gets K minibatch tasks from its shard, has them computed (by itself, or by
 * spawned workers, depending on --mode), averages the gradients, exchanges them with the other
 * peers (allreduce-mean), and applies the same SGD update. Every phase is timed per peer and
 * written to HDF5 as the run goes; stdout gets a '#' header, one row per round and a summary.
 *
 * Read top to bottom: main -> setup -> round loop (train_round) -> summary. */
#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench/harness/binding.h"
#include "bench/harness/cost.h"
#include "bench/harness/environment.h"
#include "bench/harness/placement.h"
#include "bench/harness/launch_check.h"
#include "bench/harness/resume.h"
#include "bench/harness/signals.h"
#include "bench/harness/train.h"
#include "bench/harness/train_options.h"
#include "bench/harness/train_results.h"
#include "bench/harness/util.h"
#include "comm/exchange.h"

#define ERR_LEN 1024

typedef struct {
  mf_train t;
  mf_train_results *results; /* rank 0 only */
  const cm_exchange_algorithm *exchange;
  char command_line[4096];
  double *round_phases; /* rank 0: [rounds][MF_PHASE_COUNT], max over peers */
  float *logits;
  mf_checkpointer checkpoint; /* bench/harness/resume.h */
  char host[MF_HOST_NAME];    /* this peer's node, the host of its baseline task rows */
} run_state;

/* All peers agree whether every one of them succeeded; a failing peer has printed its error. */
static int all_ok(int ok) {
  int all = 0;
  MPI_Allreduce(&ok, &all, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
  return all;
}

/* all_ok for errors every peer may hit at once (bad options, bad data): only the lowest failing
 * rank prints its message, so the user sees one error line, not one per peer. */
static int all_ok_report_once(int ok, const char *program, const char *err) {
  int rank = 0, peers = 1, first_failing = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &peers);
  int mine = ok ? peers : rank;
  MPI_Allreduce(&mine, &first_failing, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
  if (first_failing == rank) mf_error(program, "%s", err);
  return first_failing == peers;
}

static void join_command_line(int argc, char **argv, char *out, size_t size) {
  size_t used = 0;
  out[0] = '\0';
  for (int i = 0; i < argc && used < size; i++)
    used += (size_t)snprintf(out + used, size - used, "%s%s", i ? " " : "", argv[i]);
}

static int load_data(mf_train *t, char *err, size_t errlen) {
  if (ds_source_parse(t->config.dataset, &t->source, err, errlen) != 0) return -1;
  if (ds_load(&t->source, DS_TRAIN, &t->train_set, err, errlen) != 0) return -1;
  if (ds_load(&t->source, DS_TEST, &t->test_set, err, errlen) != 0) return -1;
  /* A test split shaped unlike the training split is a broken dataset, not a cropping job. */
  const ds_set *a = &t->train_set, *b = &t->test_set;
  if (a->channels != b->channels || a->height != b->height || a->width != b->width) {
    snprintf(err, errlen,
             "--dataset %s: test samples are %dx%dx%d, training samples %dx%dx%d "
             "(channels x height x width)",
             t->config.dataset, b->channels, b->height, b->width, a->channels, a->height, a->width);
    return -1;
  }
  if (t->train_set.classes > t->kind->classes) {
    snprintf(err, errlen, "--dataset %s: %d classes, but model %s has %d outputs",
             t->config.dataset, t->train_set.classes, t->kind->name, t->kind->classes);
    return -1;
  }
  return 0;
}

/* Workers read records from plain files; rank 0 unpacks compressed ones first, the others then
 * find the copy (or make their own on other nodes). */
static int stage_data(mf_train *t, char *err, size_t errlen) {
  t->staged = t->source;
  if (strcmp(t->mode->name, "baseline") == 0) return 0;
  int rc = 0;
  if (t->rank == 0) rc = ds_stage(&t->source, t->config.stage_dir, &t->staged, err, errlen);
  if (!all_ok(rc == 0)) return -1;
  if (t->rank != 0) rc = ds_stage(&t->source, t->config.stage_dir, &t->staged, err, errlen);
  return rc;
}

static int plan_rounds(mf_train *t, char *err, size_t errlen) {
  if (ds_partition_make(t->train_set.count, t->peers, (uint64_t)t->config.seed, &t->partition, err,
                        errlen) != 0)
    return -1;
  t->minibatches = ds_minibatch_count(&t->partition, t->config.batch);
  if (t->minibatches < 1) {
    snprintf(err, errlen, "--batch: %d is larger than a peer's shard (%lld samples per peer)",
             t->config.batch, (long long)t->partition.shard_size);
    return -1;
  }
  t->tasks_per_round = t->config.tasks ? t->config.tasks : (int)t->minibatches;
  if (t->tasks_per_round > t->minibatches) {
    snprintf(err, errlen, "--tasks: %d exceeds the %lld minibatches of a peer's shard",
             t->config.tasks, (long long)t->minibatches);
    return -1;
  }
  int64_t rounds = t->config.rounds;
  if (t->config.epochs > 0)
    rounds = (int64_t)t->config.epochs *
             ((t->minibatches + t->tasks_per_round - 1) / t->tasks_per_round);
  if (rounds > 100000000) {
    snprintf(err, errlen, "--epochs: %d epochs make %lld rounds, too many", t->config.epochs,
             (long long)rounds);
    return -1;
  }
  t->rounds = (int)rounds;
  return 0;
}

static int allocate_round_buffers(mf_train *t, char *err, size_t errlen) {
  const kn_model *m = t->model;
  const size_t batch = (size_t)t->config.batch, tasks = (size_t)t->tasks_per_round;
  const size_t sample_bytes =
      (size_t)t->train_set.channels * t->train_set.height * t->train_set.width;
  const size_t input_floats = batch * t->kind->channels * t->kind->height * t->kind->width;
  t->result_len = m->num_params + m->num_buffers + 1;
  t->result_sum = malloc(t->result_len * sizeof(float));
  t->task_result = malloc(t->result_len * sizeof(float));
  t->task_indices = malloc(tasks * batch * sizeof(int64_t));
  t->tasks = calloc(tasks, sizeof(cm_task));
  t->pixels = malloc(batch * sample_bytes);
  t->labels = malloc(batch);
  t->input = malloc(input_floats * sizeof(float));
  t->targets = malloc(batch * sizeof(int32_t));
  t->records_cap = (int)(tasks * (size_t)(t->config.max_retries + 2));
  t->records = calloc((size_t)t->records_cap, sizeof(cm_task_record));
  if (!t->result_sum || !t->task_result || !t->task_indices || !t->tasks || !t->pixels ||
      !t->labels || !t->input || !t->targets || !t->records) {
    snprintf(err, errlen, "out of memory for the round buffers");
    return -1;
  }
  return 0;
}

/* Placement first (bench/harness/binding.h), so the data, the model and the OpenBLAS threads start
 * on the peer's own cores. Workers are planned for the largest pool a peer can run (pools never
 * exceed the tasks of a round; "--tasks all" is not known before the data is loaded). */
static int bind_peer(mf_train *t, char *err, size_t errlen) {
  int workers = 0;
  if (strcmp(t->config.mode, "baseline") != 0)
    workers = t->config.tasks > 0 ? t->config.tasks : 4096;
  return mf_binding_setup(MPI_COMM_WORLD, t->config.bind, t->config.peer_threads, workers,
                          t->config.worker_threads, err, errlen);
}

static int setup(run_state *s, char *err, size_t errlen) {
  mf_train *t = &s->t;
  t->mode = mf_mode_find(t->config.mode);
  t->kind = kn_model_find(t->config.model);
  s->exchange = cm_exchange_find(t->config.exchange);
  kn_set_threads(t->config.peer_threads);
  if (mf_cost_prepare(t, err, errlen) != 0) return -1; /* a bad price table fails early */
  if (load_data(t, err, errlen) != 0 || stage_data(t, err, errlen) != 0) return -1;
  if (plan_rounds(t, err, errlen) != 0) return -1;
  t->model = kn_model_create(t->kind, t->config.batch, (uint64_t)t->config.seed, err, errlen);
  if (!t->model) return -1;
  if (kn_sgd_init(&t->optimizer, t->model->num_params, (float)t->config.lr,
                  (float)t->config.momentum, (float)t->config.weight_decay) != 0) {
    snprintf(err, errlen, "out of memory for the optimizer");
    return -1;
  }
  if (allocate_round_buffers(t, err, errlen) != 0) return -1;
  /* "auto" picks from the message size and the peer count, values every peer shares, so all
   * peers run the same algorithm; a gradient is one message of the same size every round. */
  s->exchange = cm_exchange_resolve(s->exchange, t->result_len * sizeof(float), t->peers);
  t->exchange_selected = s->exchange->name;
  t->spawn_turns_selected = "off"; /* the serverless modes' setup decides */
  s->logits = malloc((size_t)t->config.batch * t->kind->classes * sizeof(float));
  if (!s->logits) {
    snprintf(err, errlen, "out of memory");
    return -1;
  }
  if (strcmp(t->mode->name, "baseline") != 0) {
    char dir[PATH_MAX - 32];
    if (mf_program_dir(dir, sizeof dir) != 0) {
      snprintf(err, errlen, "cannot locate this program's directory (/proc/self/exe)");
      return -1;
    }
    snprintf(t->worker_command, sizeof t->worker_command, "%s/mayfly-worker", dir);
    if (access(t->worker_command, X_OK) != 0) {
      snprintf(err, errlen, "%.900s: worker program missing or not executable", t->worker_command);
      return -1;
    }
  }
  return t->mode->setup(t, err, errlen);
}

/* The sample indices and descriptors of this round's K tasks. */
static void plan_tasks(mf_train *t, int round) {
  const int batch = t->config.batch;
  for (int k = 0; k < t->tasks_per_round; k++) {
    int64_t minibatch = ((int64_t)round * t->tasks_per_round + k) % t->minibatches;
    ds_minibatch_indices(&t->partition, t->rank, batch, minibatch,
                         t->task_indices + (size_t)k * batch);
    t->tasks[k] = (cm_task){
        .round = round, .task = k, .count = batch, .minibatch = minibatch, .version = round};
  }
}

/* Test accuracy over the whole test split, each peer scoring its own slice. */
static double evaluate(run_state *s) {
  mf_train *t = &s->t;
  const ds_set *set = &t->test_set;
  const int64_t begin = set->count * t->rank / t->peers,
                end = set->count * (t->rank + 1) / t->peers;
  const size_t sample_bytes = (size_t)set->channels * set->height * set->width;
  long long correct = 0;
  for (int64_t at = begin; at < end; at += t->config.batch) {
    int n = (int)(end - at < t->config.batch ? end - at : t->config.batch);
    ds_to_input(set->pixels + (size_t)at * sample_bytes, set->labels + at, n, set->channels,
                set->height, set->width, t->kind->channels, t->kind->height, t->kind->width,
                t->input, t->targets);
    correct += kn_model_count_correct(t->model, t->input, t->targets, n, s->logits);
  }
  long long total = 0;
  MPI_Allreduce(&correct, &total, 1, MPI_LONG_LONG, MPI_SUM, MPI_COMM_WORLD);
  return (double)total / (double)set->count;
}

static void print_option(const char *name, const char *value, void *context) {
  (void)context;
  printf(" --%s=%s", name, value);
}

static void print_header(run_state *s) {
  mf_train *t = &s->t;
  char library[256], binding[256];
  mf_mpi_library(library, sizeof library);
  mf_binding(binding, sizeof binding);
  printf("# mayfly-train %s (git %s)\n# command: %s\n", mf_suite_version, mf_git_revision,
         s->command_line);
  printf("# options:");
  mf_options_visit(&mf_train_program, &t->config, print_option, NULL);
  printf("\n");
  printf("# mpi: %s; peers: %d; rank 0 binding: %s\n", library, t->peers, binding);
  char launch[512];
  mf_launch_describe(launch, sizeof launch);
  printf("# launch: %s\n", launch);
  char planned[MF_BIND_TEXT], workers[MF_BIND_TEXT];
  mf_binding_peer_planned(planned, sizeof planned);
  mf_binding_workers_planned(workers, sizeof workers);
  if (mf_placement_off_node()) { /* the binding plan covers only the workers beside the peer */
    char beside[MF_BIND_TEXT];
    snprintf(beside, sizeof beside, "%s", workers);
    const int any = strcmp(t->config.placement, "any") == 0;
    snprintf(workers, sizeof workers,
             "on the nodes --placement %s chooses, every round (each worker's host in "
             "/timing/tasks and /environment/worker_placements)%s%.100s",
             t->config.placement, any ? "; beside it: " : "", any ? beside : "");
  }
  printf("# placement (--bind %s): rank 0 %s; its workers: %s\n", t->config.bind, planned, workers);
  printf(
      "# data: %s, %lld train / %lld test samples, %lld per peer, %lld minibatches of %d per "
      "peer\n",
      t->config.dataset, (long long)t->train_set.count, (long long)t->test_set.count,
      (long long)t->partition.shard_size, (long long)t->minibatches, t->config.batch);
  char exchange[80]; /* "ring", or "auto (ring)" */
  if (strcmp(t->config.exchange, s->exchange->name) == 0)
    snprintf(exchange, sizeof exchange, "%s", s->exchange->name);
  else
    snprintf(exchange, sizeof exchange, "%s (%s)", t->config.exchange, s->exchange->name);
  printf(
      "# model: %s (%zu parameters); mode: %s; tasks per round: %d; rounds: %d; exchange: "
      "%s\n",
      t->kind->name, t->model->num_params, t->mode->name, t->tasks_per_round, t->rounds, exchange);
  printf("# times in ms, max over peers; results: %s\n", t->config.output);
  printf("#%6s %9s", "round", "loss");
  for (int p = 0; p < MF_PHASE_COUNT; p++)
    if (t->mode->phases & MF_PHASE_BIT(p)) printf(" %10s", mf_phase_names[p]);
  printf(" %9s\n", "test_acc");
  fflush(stdout);
}

/* One round on every peer. Returns 0, or -1 when any peer failed (all peers agree). */
static int train_round(run_state *s, int round) {
  mf_train *t = &s->t;
  char err[ERR_LEN] = "";
  plan_tasks(t, round);
  memset(t->phase, 0, sizeof t->phase);
  t->records_used = 0;
  MPI_Barrier(MPI_COMM_WORLD); /* outside the timed region */
  double round_start = MPI_Wtime();

  int ok = t->mode->compute(t, round, err, sizeof err) == 0;
  if (!ok) mf_error(t->program, "peer %d, round %d: %s", t->rank, round, err);
  if (!all_ok(ok)) return -1;

  double exchange_start = MPI_Wtime();
  for (size_t i = 0; i < t->result_len; i++) t->result_sum[i] /= (float)t->tasks_per_round;
  if (s->exchange->allreduce_mean(t->result_sum, t->result_len, MPI_COMM_WORLD, err, sizeof err) !=
      MPI_SUCCESS) {
    mf_error(t->program, "exchange (%s): %s", s->exchange->name, err);
    return -1;
  }
  double update_start = MPI_Wtime();
  t->phase[MF_PHASE_EXCHANGE] = update_start - exchange_start;
  kn_sgd_step(&t->optimizer, t->model->params, t->result_sum);
  if (t->model->num_buffers)
    kn_model_update_buffers(
        t->model, t->result_sum + t->model->num_params,
        t->model->kind->bn_momentum > 0.0f ? t->model->kind->bn_momentum : 0.1f);
  const double loss = t->result_sum[t->result_len - 1];
  double eval_start = MPI_Wtime();
  t->phase[MF_PHASE_UPDATE] = eval_start - update_start;

  double accuracy = NAN;
  int last = round == t->rounds - 1;
  if (last || (t->config.eval_every > 0 && (round + 1) % t->config.eval_every == 0))
    accuracy = evaluate(s);
  t->phase[MF_PHASE_EVAL] = MPI_Wtime() - eval_start;
  t->phase[MF_PHASE_ROUND] = MPI_Wtime() - round_start;

  /* Gather every peer's phases and task records to rank 0 and write them. */
  double *phases_by_peer = t->rank == 0 ? malloc(sizeof(double) * MF_PHASE_COUNT * t->peers) : NULL;
  MPI_Gather(t->phase, MF_PHASE_COUNT, MPI_DOUBLE, phases_by_peer, MF_PHASE_COUNT, MPI_DOUBLE, 0,
             MPI_COMM_WORLD);
  mf_task_row *mine = malloc(((size_t)t->records_used + 1) * sizeof *mine);
  for (int i = 0; i < t->records_used; i++) {
    const cm_task_record *r = &t->records[i];
    mine[i] = (mf_task_row){.round = round,
                            .peer = t->rank,
                            .task = r->task,
                            .worker = r->worker,
                            .retries = r->attempt,
                            .status = r->status,
                            .start = r->start - t->start_time,
                            .end = r->end - t->start_time,
                            .startup = r->startup,
                            .fetch = r->fetch,
                            .forward_backward = r->forward_backward,
                            .send = r->send,
                            .peak_rss_bytes = r->peak_rss_bytes};
    /* The worker's host as it reported it; the baseline's tasks run on the peer. */
    snprintf(mine[i].host, sizeof mine[i].host, "%s", r->host[0] ? r->host : s->host);
  }
  int bytes = t->records_used * (int)sizeof *mine;
  int *counts = t->rank == 0 ? malloc(sizeof(int) * t->peers) : NULL;
  int *offsets = t->rank == 0 ? malloc(sizeof(int) * t->peers) : NULL;
  MPI_Gather(&bytes, 1, MPI_INT, counts, 1, MPI_INT, 0, MPI_COMM_WORLD);
  char *rows = NULL;
  int total = 0;
  if (t->rank == 0) {
    for (int p = 0; p < t->peers; p++) offsets[p] = total, total += counts[p];
    rows = malloc((size_t)total + 1);
  }
  MPI_Gatherv(mine, bytes, MPI_BYTE, rows, counts, offsets, MPI_BYTE, 0, MPI_COMM_WORLD);

  int rc = 0;
  if (t->rank == 0) {
    double by_phase[MF_PHASE_COUNT * 1024];
    double *table =
        t->peers <= 1024 ? by_phase : malloc(sizeof(double) * MF_PHASE_COUNT * t->peers);
    double *row_max = s->round_phases + (size_t)round * MF_PHASE_COUNT;
    for (int p = 0; p < MF_PHASE_COUNT; p++) {
      row_max[p] = 0;
      for (int q = 0; q < t->peers; q++) {
        double v = phases_by_peer[(size_t)q * MF_PHASE_COUNT + p];
        table[(size_t)p * t->peers + q] = v;
        if (v > row_max[p]) row_max[p] = v;
      }
    }
    rc |= mf_train_results_round(s->results, round, table, t->peers, t->mode->phases, loss);
    rc |= mf_train_results_tasks(s->results, (const mf_task_row *)rows,
                                 (size_t)total / sizeof(mf_task_row));
    if (!isnan(accuracy)) rc |= mf_train_results_eval(s->results, round, accuracy);
    if (table != by_phase) free(table);
    printf(" %6d %9.5f", round + 1, loss);
    for (int p = 0; p < MF_PHASE_COUNT; p++)
      if (t->mode->phases & MF_PHASE_BIT(p)) printf(" %10.3f", 1e3 * row_max[p]);
    if (isnan(accuracy))
      printf(" %9s\n", "-");
    else
      printf(" %8.2f%%\n", 100 * accuracy);
    fflush(stdout);
    if (isatty(STDERR_FILENO) || getenv("MAYFLY_PROGRESS")) {
      double elapsed = MPI_Wtime() - t->start_time;
      double left = elapsed / (round + 1) * (t->rounds - round - 1);
      fprintf(stderr, "\r[mayfly-train] round %d/%d, %.0f s elapsed, ~%.0f s left   %s", round + 1,
              t->rounds, elapsed, left, last ? "\n" : "");
    }
    if (rc) mf_error(t->program, "%s: writing round %d failed", t->config.output, round);
  }
  free(phases_by_peer);
  free(mine);
  free(counts);
  free(offsets);
  free(rows);
  return all_ok(rc == 0) ? 0 : -1;
}

static void print_summary(run_state *s) {
  mf_train *t = &s->t;
  int first = t->config.warmup < t->rounds ? t->config.warmup : 0;
  int n = t->rounds - first;
  double *values = malloc(sizeof(double) * (size_t)n);
  printf("# summary over rounds %d..%d (%d warm-up round%s excluded), ms, max over peers:\n",
         first + 1, t->rounds, first, first == 1 ? "" : "s");
  printf("# %-10s %10s %10s %10s\n", "phase", "median", "p95", "total_s");
  for (int p = 0; p < MF_PHASE_COUNT; p++) {
    if (!(t->mode->phases & MF_PHASE_BIT(p))) continue;
    double total = 0;
    for (int r = 0; r < n; r++) {
      values[r] = s->round_phases[(size_t)(first + r) * MF_PHASE_COUNT + p];
      total += values[r];
    }
    printf("# %-10s %10.3f %10.3f %10.3f\n", mf_phase_names[p], 1e3 * mf_quantile(values, n, 0.5),
           1e3 * mf_quantile(values, n, 0.95), total);
  }
  free(values);
}

static void release(run_state *s) {
  mf_train *t = &s->t;
  if (t->mode && t->mode_state) t->mode->teardown(t);
  kn_model_free(t->model);
  kn_sgd_free(&t->optimizer);
  ds_free(&t->train_set);
  ds_free(&t->test_set);
  ds_partition_free(&t->partition);
  free(t->result_sum);
  free(t->task_result);
  free(t->task_indices);
  free(t->tasks);
  free(t->pixels);
  free(t->labels);
  free(t->input);
  free(t->targets);
  free(t->records);
  free(s->round_phases);
  free(s->logits);
  mf_binding_cleanup();
  mf_placement_cleanup();
}

static int run(run_state *s, int argc, char **argv) {
  mf_train *t = &s->t;
  char err[ERR_LEN] = "";
  join_command_line(argc, argv, s->command_line, sizeof s->command_line);
  gethostname(s->host, sizeof s->host);
  s->host[sizeof s->host - 1] = '\0';
  /* Before anything slow and before the results file: a launch that would stall a spawn. */
  char spawner[64];
  snprintf(spawner, sizeof spawner, "--mode %s", t->config.mode);
  int spawns = strcmp(t->config.mode, "baseline") != 0;
  if (mf_launch_check(MPI_COMM_WORLD, t->program, spawns ? spawner : NULL,
                      t->config.allow_unsafe_spawn) != 0)
    return 2;
  /* Where workers may run (bench/harness/placement.h): a placement the allocation cannot satisfy is
   * a usage error, reported before anything is started. */
  int ok = !spawns || mf_placement_setup(MPI_COMM_WORLD, t->config.placement, err, sizeof err) == 0;
  if (!all_ok_report_once(ok, t->program, err)) return 2;
  ok = bind_peer(t, err, sizeof err) == 0;
  if (!all_ok_report_once(ok, t->program, err)) return 1;
  ok = setup(s, err, sizeof err) == 0;
  if (!all_ok_report_once(ok, t->program, err)) return 1;

  /* --resume (bench/harness/resume.h): rank 0 checks the file and its checkpoint, every peer gets
   * the state; without it, a file that could be continued is not started over silently. */
  double *usage = t->rank == 0 ? calloc((size_t)t->peers * 5, sizeof(double)) : NULL;
  if (t->rank == 0) ok = usage && mf_resume_prepare(t, &s->checkpoint, usage, err, sizeof err) == 0;
  if (!all_ok_report_once(ok, t->program, err)) {
    free(usage);
    return 1;
  }
  mf_resume_share(t, &s->checkpoint, usage);
  free(usage);
  const int resumed = s->checkpoint.resumed_round;

  if (t->rank == 0) {
    ok = (resumed
              ? mf_train_results_reopen(&s->results, t->config.output, t, resumed, err, sizeof err)
              : mf_train_results_create(&s->results, t->config.output, t->config.force, err,
                                        sizeof err)) == 0;
    if (!ok) mf_error(t->program, "%s", err);
  }
  if (!all_ok(ok)) {
    if (t->rank == 0 && s->results) mf_train_results_close(s->results, 0, "resume failed");
    return 1;
  }
  if (t->rank == 0) {
    s->round_phases = calloc((size_t)t->rounds * MF_PHASE_COUNT, sizeof(double));
    ok = s->round_phases != NULL;
    if (ok && !resumed)
      ok = mf_train_results_header(s->results, &mf_train_program, &t->config, s->command_line, t) ==
           0;
    if (ok && mf_resume_record(mf_train_results_file(s->results), t, &s->checkpoint,
                               s->round_phases, err, sizeof err) != 0) {
      mf_error(t->program, "%s", err);
      ok = 0;
    }
  }
  if (!resumed) /* a resumed run keeps the first attempt's record; /checkpoint/resumes has its host
                 */
    ok = mf_environment_record(t->rank == 0 ? mf_train_results_file(s->results) : -1,
                               MPI_COMM_WORLD, err, sizeof err) == 0 &&
         ok;
  if (!ok && t->rank == 0) mf_error(t->program, "%s: writing the header failed", t->config.output);
  if (!all_ok(ok)) {
    if (t->rank == 0) mf_train_results_close(s->results, 0, "setup failed");
    return 1;
  }
  if (t->rank == 0) print_header(s);
  if (t->rank == 0 && resumed)
    printf("# resumed from %s at round %d (%d later round%s redone)\n", s->checkpoint.path, resumed,
           s->checkpoint.discarded, s->checkpoint.discarded == 1 ? "" : "s");

  MPI_Barrier(MPI_COMM_WORLD);
  /* Task times continue the first attempt's clock: training seconds, without the gap. */
  t->start_time = MPI_Wtime() - s->checkpoint.elapsed;
  s->checkpoint.last_time = MPI_Wtime();
  int round = resumed, stop_signal = 0, stop_checkpoint = 0;
  for (; round < t->rounds && !stop_signal; round++) {
    if (train_round(s, round) != 0) break;
    /* signals.h: a SIGTERM/SIGINT on any peer stops every peer after this finished round. */
    if (round + 1 < t->rounds) stop_signal = mf_signals_agree(MPI_COMM_WORLD);
    int wrote = mf_checkpoint_maybe(t, &s->checkpoint,
                                    t->rank == 0 ? mf_train_results_file(s->results) : -1,
                                    round + 1, stop_signal != 0);
    if (stop_signal && wrote == 1) stop_checkpoint = round + 1;
    mf_checkpoint_test_hold(t, round + 1);
  }
  int complete = round == t->rounds && !stop_signal;
  /* The cpus every worker slot got, as its last worker reported them (collective). */
  int recorded =
      mf_environment_record_workers(t->rank == 0 ? mf_train_results_file(s->results) : -1,
                                    MPI_COMM_WORLD, err, sizeof err) == 0;
  { /* every worker's host and binding as it reported them (any node; collective) */
    char lines[MF_PLACEMENTS_MAX][MF_BIND_TEXT];
    for (int k = 0; k < t->placements_used; k++)
      snprintf(lines[k], sizeof lines[k], "%d worker%s: %s", t->placement_workers[k],
               t->placement_workers[k] == 1 ? "" : "s", t->placements[k]);
    recorded &= mf_environment_record_lines(t->rank == 0 ? mf_train_results_file(s->results) : -1,
                                            MPI_COMM_WORLD, "worker_placements", &lines[0][0],
                                            t->placements_used, err, sizeof err) == 0;
  }
  if (!recorded && t->rank == 0) mf_error(t->program, "%s: %s", t->config.output, err);
  if (!all_ok(recorded)) complete = 0;
  /* /cost: every peer's worker usage priced (collective; the pools are retired by now). */
  if (complete)
    complete = mf_cost_record(t, t->rank == 0 ? mf_train_results_file(s->results) : -1,
                              MPI_Wtime() - t->start_time) == 0;
  if (t->rank == 0) {
    if (complete) print_summary(s);
    if (complete && mf_train_results_model(s->results, t->model) != 0) {
      mf_error(t->program, "%s: writing the final model failed", t->config.output);
      complete = 0;
    }
    const char *note = complete ? NULL : stop_signal ? mf_signal_name(stop_signal) : "failed";
    if (stop_signal)
      mf_error(t->program,
               "interrupted by %s after round %d of %d; %s keeps the finished rounds "
               "(complete=0)%s",
               mf_signal_name(stop_signal), round, t->rounds, t->config.output,
               stop_checkpoint ? "; checkpoint written: --resume continues" : "");
    if (mf_train_results_close(s->results, complete, note) != 0) {
      mf_error(t->program, "%s: closing the results file failed", t->config.output);
      complete = 0;
    }
    if (complete) mf_checkpoint_remove(&s->checkpoint); /* served: the model is in the file */
    if (complete) printf("# results: %s (complete)\n", t->config.output);
    fflush(stdout);
  }
  if (stop_signal) /* resumable (resume.h), or the shell's convention for "killed by" */
    return stop_checkpoint ? MF_EXIT_RESUMABLE : 128 + stop_signal;
  return all_ok(complete) ? 0 : 1;
}

int main(int argc, char **argv) {
  mf_launch_prepare(); /* before MPI_Init: the PMIx store spawns need (launch_check.h) */
  MPI_Init(&argc, &argv);
  static run_state state;
  mf_train *t = &state.t;
  t->program = mf_train_program.name;
  MPI_Comm_rank(MPI_COMM_WORLD, &t->rank);
  MPI_Comm_size(MPI_COMM_WORLD, &t->peers);
  mf_signals_install(); /* after MPI_Init: finish the round on SIGTERM/SIGINT (signals.h) */
  int status = mf_options_parse(&mf_train_program, argc, argv, &t->config, t->rank != 0);
  int code = status == MF_OPTIONS_USAGE_ERROR ? 2 : 0;
  if (status == MF_OPTIONS_OK) code = run(&state, argc, argv);
  release(&state);
  MPI_Finalize();
  mf_report_exit(t->rank, code);
  return code;
}
