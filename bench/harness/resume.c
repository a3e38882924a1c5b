/* Checkpoint writing, checking and resuming for mayfly-train (see resume.h for what is stored
 * and why that is enough for a bit-identical continuation). */
#include "bench/harness/resume.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <math.h>
#include <mpi.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "bench/harness/checkpoint.h"
#include "bench/harness/h5util.h"
#include "bench/harness/options.h"
#include "bench/harness/train_options.h"

#define CHECKPOINT_FORMAT "mayfly-checkpoint"
#define CHECKPOINT_FORMAT_VERSION 1
#define USAGE_FIELDS 5 /* worker_seconds, measured_byte_seconds, invocations, pools, spawned */

/* Options that say how this process runs, not what the run computes: they may differ
 * between the attempts of one run. Everything else must match. */
static const char *const free_options[] = {
    "output",    "force", "resume", "resume-any-revision", "checkpoint-every", "checkpoint-seconds",
    "stage-dir", NULL};

static int is_free_option(const char *name) {
  for (int i = 0; free_options[i]; i++)
    if (strcmp(free_options[i], name) == 0) return 1;
  return 0;
}

static void iso_now(char *out, size_t size) {
  time_t now = time(NULL);
  struct tm utc;
  gmtime_r(&now, &utc);
  strftime(out, size, "%Y-%m-%dT%H:%M:%SZ", &utc);
}

static void checkpoint_paths(const char *output, mf_checkpointer *c) {
  snprintf(c->path, sizeof c->path, "%s.ckpt", output);
  snprintf(c->tmp, sizeof c->tmp, "%s.ckpt.tmp", output);
}

/* ---- the options a run was written with ------------------------------------------------ */

typedef struct {
  hid_t group;
  char *list; /* "--lr 0.05 (now 0.1), ..." */
  size_t size, used;
  int differing;
} config_diff;

static void diff_option(const char *name, const char *value, void *context) {
  config_diff *d = context;
  if (is_free_option(name)) return;
  char stored[1024];
  int have = mf_h5_read_attr_string(d->group, name, stored, sizeof stored) == 0;
  if (have && strcmp(stored, value) == 0) return;
  d->differing++;
  if (d->used < d->size)
    d->used += (size_t)snprintf(d->list + d->used, d->size - d->used, "%s--%s %s (now %s)",
                                d->differing > 1 ? ", " : "", name, have ? stored : "unset", value);
}

/* 0 when the /config group under `file` holds the options of t (free ones aside) and the same
 * peer count; else -1 with "WHAT was written with other options: ...". */
static int compare_config(hid_t file, const char *what, const mf_train *t, char *err,
                          size_t errlen) {
  char list[768] = "";
  config_diff d = {.list = list, .size = sizeof list};
  d.group =
      H5Lexists(file, "/config", H5P_DEFAULT) > 0 ? H5Gopen2(file, "/config", H5P_DEFAULT) : -1;
  if (d.group < 0) {
    snprintf(err, errlen, "%s has no /config group", what);
    return -1;
  }
  mf_options_visit(&mf_train_program, &t->config, diff_option, &d);
  int64_t peers = -1;
  if (mf_h5_read_attr_int(d.group, "peers", &peers) != 0 || peers != t->peers) {
    d.differing++;
    if (d.used < d.size)
      d.used += (size_t)snprintf(list + d.used, d.size - d.used, "%speers %lld (now %d)",
                                 d.differing > 1 ? ", " : "", (long long)peers, t->peers);
  }
  H5Gclose(d.group);
  if (d.differing == 0) return 0;
  snprintf(err, errlen, "%s was written with other options: %s", what, list);
  return -1;
}

static void write_option(const char *name, const char *value, void *context) {
  mf_h5_attr_string(*(hid_t *)context, name, value);
}

/* ---- the checksum ----------------------------------------------------------------------- */

typedef struct {
  int64_t round, steps, num_params, num_buffers, peers;
  double elapsed;
} state_header;

static uLong crc_bytes(uLong crc, const void *data, size_t bytes) {
  const unsigned char *p = data;
  while (bytes > 0) { /* crc32 takes a uInt length */
    uInt n = bytes > (1u << 30) ? (1u << 30) : (uInt)bytes;
    crc = crc32(crc, p, n);
    p += n;
    bytes -= n;
  }
  return crc;
}

static uint32_t state_crc(const state_header *h, const kn_model *m, const kn_sgd *opt,
                          const double *usage) {
  uLong crc = crc32(0L, Z_NULL, 0);
  crc = crc_bytes(crc, h, sizeof *h);
  crc = crc_bytes(crc, m->params, m->num_params * sizeof(float));
  if (m->num_buffers) crc = crc_bytes(crc, m->buffers, m->num_buffers * sizeof(float));
  if (opt->velocity) crc = crc_bytes(crc, opt->velocity, opt->n * sizeof(float));
  crc = crc_bytes(crc, usage, (size_t)h->peers * USAGE_FIELDS * sizeof(double));
  return (uint32_t)crc;
}

/* ---- the results file's /checkpoint group ----------------------------------------------- */

static hid_t string_type(size_t size) {
  hid_t type = H5Tcopy(H5T_C_S1);
  H5Tset_size(type, size);
  H5Tset_strpad(type, H5T_STR_NULLTERM);
  return type;
}

typedef struct {
  int32_t round, discarded_rounds;
  char time[32], host[64], git_revision[64];
} resume_row;

typedef struct {
  int32_t round;
  double seconds;
  int64_t bytes;
  char reason[16];
} write_row;

static hid_t resume_row_type(void) {
  hid_t type = H5Tcreate(H5T_COMPOUND, sizeof(resume_row));
  hid_t s32 = string_type(32), s64 = string_type(64);
  H5Tinsert(type, "round", HOFFSET(resume_row, round), H5T_NATIVE_INT32);
  H5Tinsert(type, "discarded_rounds", HOFFSET(resume_row, discarded_rounds), H5T_NATIVE_INT32);
  H5Tinsert(type, "time", HOFFSET(resume_row, time), s32);
  H5Tinsert(type, "host", HOFFSET(resume_row, host), s64);
  H5Tinsert(type, "git_revision", HOFFSET(resume_row, git_revision), s64);
  H5Tclose(s32);
  H5Tclose(s64);
  return type;
}

static hid_t write_row_type(void) {
  hid_t type = H5Tcreate(H5T_COMPOUND, sizeof(write_row));
  hid_t s16 = string_type(16);
  H5Tinsert(type, "round", HOFFSET(write_row, round), H5T_NATIVE_INT32);
  H5Tinsert(type, "seconds", HOFFSET(write_row, seconds), H5T_NATIVE_DOUBLE);
  H5Tinsert(type, "bytes", HOFFSET(write_row, bytes), H5T_NATIVE_INT64);
  H5Tinsert(type, "reason", HOFFSET(write_row, reason), s16);
  H5Tclose(s16);
  return type;
}

/* Appends one row to /checkpoint/NAME (created on first use). */
static int append_row(hid_t results, const char *name, hid_t type, const void *row) {
  hid_t group = mf_h5_group(results, "/checkpoint");
  if (group < 0) return -1;
  hid_t set = H5Lexists(group, name, H5P_DEFAULT) > 0
                  ? H5Dopen2(group, name, H5P_DEFAULT)
                  : mf_h5_growing_create(group, name, type, 0, 16);
  int rc = -1;
  if (set >= 0) {
    hid_t space = H5Dget_space(set);
    hsize_t rows = 0;
    H5Sget_simple_extent_dims(space, &rows, NULL);
    H5Sclose(space);
    rc = mf_h5_growing_write(set, rows, 1, type, row);
    H5Dclose(set);
  }
  H5Gclose(group);
  return rc;
}

/* ---- resume: the checks, then the state ------------------------------------------------- */

static int rounds_in_results(hid_t file, int64_t *rounds) {
  hid_t loss = H5Dopen2(file, "/train/loss", H5P_DEFAULT);
  if (loss < 0) return -1;
  hid_t space = H5Dget_space(loss);
  hsize_t n = 0;
  int rc = H5Sget_simple_extent_dims(space, &n, NULL) == 1 ? 0 : -1;
  H5Sclose(space);
  H5Dclose(loss);
  *rounds = (int64_t)n;
  return rc;
}

/* The results file's side: a mayfly file, not complete, same options, with a run id. */
static int check_results(const mf_train *t, mf_checkpointer *c, int64_t *rounds, char *err,
                         size_t errlen) {
  const char *path = t->config.output;
  if (access(path, F_OK) != 0) {
    snprintf(err, errlen, "--resume: %s does not exist: nothing to resume", path);
    return -1;
  }
  hid_t file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
  char suite[32] = "";
  if (file < 0 || mf_h5_read_attr_string(file, "suite", suite, sizeof suite) != 0 ||
      strcmp(suite, "mayfly") != 0) {
    if (file >= 0) H5Fclose(file);
    snprintf(err, errlen, "--resume: %s is not readable as a mayfly results file", path);
    return -1;
  }
  int64_t complete = 0;
  int rc = -1;
  char what[PATH_MAX + 32];
  snprintf(what, sizeof what, "--resume: %s", path);
  if (mf_h5_read_attr_int(file, "complete", &complete) == 0 && complete == 1)
    snprintf(err, errlen, "--resume: %s is complete: nothing to resume", path);
  else if (compare_config(file, what, t, err, errlen) != 0)
    ;
  else if (H5Lexists(file, "/checkpoint", H5P_DEFAULT) <= 0 ||
           H5Aexists_by_name(file, "/checkpoint", "run_id", H5P_DEFAULT) <= 0)
    snprintf(err, errlen,
             "--resume: %s has no checkpoint record (written without checkpoints): cannot "
             "resume; --force without --resume starts over",
             path);
  else if (rounds_in_results(file, rounds) != 0)
    snprintf(err, errlen, "--resume: %s has no readable /train/loss", path);
  else {
    hid_t group = H5Gopen2(file, "/checkpoint", H5P_DEFAULT);
    rc = mf_h5_read_attr_string(group, "run_id", c->run_id, sizeof c->run_id);
    H5Gclose(group);
    if (rc != 0) snprintf(err, errlen, "--resume: %s: unreadable /checkpoint run_id", path);
  }
  H5Fclose(file);
  return rc;
}

/* After the checkpoint's header checked out: the momentum and the usage (the model is already
 * read), then the CRC-32 over the whole state and the git revision that wrote it. */
static int load_state(hid_t file, const char *path, mf_train *t, const state_header *h,
                      uint32_t stored_crc, const char *revision, double *usage, char *err,
                      size_t errlen) {
  int rc = 0;
  if (t->optimizer.velocity) {
    int64_t shape[1] = {(int64_t)t->optimizer.n};
    rc = mf_h5_read_tensor(file, path, "optimizer/momentum_buffer", H5T_FLOAT, H5T_NATIVE_FLOAT, 1,
                           shape, t->optimizer.velocity, err, errlen);
  }
  int64_t usage_shape[2] = {t->peers, USAGE_FIELDS};
  if (rc == 0)
    rc = mf_h5_read_tensor(file, path, "usage", H5T_FLOAT, H5T_NATIVE_DOUBLE, 2, usage_shape, usage,
                           err, errlen);
  if (rc == 0 && state_crc(h, t->model, &t->optimizer, usage) != stored_crc) {
    snprintf(err, errlen, "--resume: checkpoint %s fails its CRC-32 check (corrupted)", path);
    rc = -1;
  }
  if (rc == 0 && strcmp(revision, mf_git_revision) != 0 && !t->config.resume_any_revision) {
    snprintf(err, errlen,
             "--resume: checkpoint %s was written by git revision %s, this is %s "
             "(--resume-any-revision accepts it)",
             path, revision, mf_git_revision);
    rc = -1;
  }
  return rc;
}

/* The checkpoint's side, in the order that names the most useful problem first. */
static int load_checkpoint(mf_train *t, mf_checkpointer *c, double *usage, char *err,
                           size_t errlen) {
  const char *path = c->path;
  if (access(path, F_OK) != 0) {
    snprintf(err, errlen,
             "--resume: %s has no checkpoint (%s is missing): cannot resume; --force without "
             "--resume starts over",
             t->config.output, path);
    return -1;
  }
  hid_t file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
  if (file < 0) {
    snprintf(err, errlen, "--resume: checkpoint %s is truncated or not an HDF5 file", path);
    return -1;
  }
  char format[64] = "", run_id[96] = "", revision[64] = "", model[64] = "", what[PATH_MAX + 64];
  int64_t version = 0, round = -1, stored_crc = -1, steps = -1;
  double elapsed = 0;
  int rc = -1;
  snprintf(what, sizeof what, "--resume: checkpoint %s", path);
  if (mf_h5_read_attr_string(file, "format", format, sizeof format) != 0 ||
      strcmp(format, CHECKPOINT_FORMAT) != 0 ||
      mf_h5_read_attr_int(file, "format_version", &version) != 0)
    snprintf(err, errlen, "--resume: %s is not a mayfly checkpoint (no format attribute)", path);
  else if (version != CHECKPOINT_FORMAT_VERSION)
    snprintf(err, errlen, "--resume: checkpoint %s has format version %lld, this mayfly reads %d",
             path, (long long)version, CHECKPOINT_FORMAT_VERSION);
  else if (mf_h5_read_attr_string(file, "model", model, sizeof model) != 0 ||
           strcmp(model, t->kind->name) != 0)
    snprintf(err, errlen, "--resume: checkpoint %s is of model '%s', the run trains '%s'", path,
             model, t->kind->name);
  else if (compare_config(file, what, t, err, errlen) != 0)
    ;
  else if (mf_h5_read_attr_string(file, "run_id", run_id, sizeof run_id) != 0 ||
           strcmp(run_id, c->run_id) != 0)
    snprintf(err, errlen, "--resume: checkpoint %s belongs to another run (run_id %s, %s has %s)",
             path, run_id, t->config.output, c->run_id);
  else if (mf_h5_read_attr_int(file, "round", &round) != 0 ||
           mf_h5_read_attr_int(file, "sgd_steps", &steps) != 0 ||
           mf_h5_read_attr_int(file, "crc32", &stored_crc) != 0 ||
           mf_h5_read_attr_double(file, "elapsed_seconds", &elapsed) != 0 ||
           mf_h5_read_attr_string(file, "git_revision", revision, sizeof revision) != 0)
    snprintf(err, errlen, "--resume: checkpoint %s lacks its round, steps or checksum", path);
  else if (round < 1 || round >= t->rounds || steps != round)
    snprintf(err, errlen, "--resume: checkpoint %s has round %lld and %lld steps of %d rounds",
             path, (long long)round, (long long)steps, t->rounds);
  else if (mf_checkpoint_read_model(file, path, t->model, NULL, err, errlen) != 0)
    ;
  else {
    const state_header h = {.round = round,
                            .steps = steps,
                            .num_params = (int64_t)t->model->num_params,
                            .num_buffers = (int64_t)t->model->num_buffers,
                            .peers = t->peers,
                            .elapsed = elapsed};
    rc = load_state(file, path, t, &h, (uint32_t)stored_crc, revision, usage, err, errlen);
  }
  H5Fclose(file);
  if (rc == 0) {
    t->optimizer.steps = (long)steps;
    c->resumed_round = (int)round;
    c->elapsed = elapsed;
  }
  return rc;
}

int mf_resume_prepare(mf_train *t, mf_checkpointer *c, double *usage, char *err, size_t errlen) {
  mf_h5_quiet();
  checkpoint_paths(t->config.output, c);
  c->resumed_round = 0;
  c->elapsed = 0;
  if (!t->config.resume) {
    /* Starting over a run that could be continued loses its rounds: only on request. */
    if (!t->config.force && access(c->path, F_OK) == 0 && access(t->config.output, F_OK) == 0 &&
        mf_h5_result_complete(t->config.output) == 0) {
      snprintf(err, errlen,
               "%s has a checkpoint (%s): --resume continues the run, --force starts it over",
               t->config.output, c->path);
      return -1;
    }
    return 0;
  }
  int64_t rounds = 0;
  if (check_results(t, c, &rounds, err, errlen) != 0) return -1;
  if (load_checkpoint(t, c, usage, err, errlen) != 0) return -1;
  if (rounds < c->resumed_round) {
    snprintf(err, errlen, "--resume: %s has %lld rounds, its checkpoint %s claims %d",
             t->config.output, (long long)rounds, c->path, c->resumed_round);
    return -1;
  }
  c->discarded = (int)(rounds - c->resumed_round);
  return 0;
}

void mf_resume_share(mf_train *t, mf_checkpointer *c, const double *usage) {
  int round = c->resumed_round;
  MPI_Bcast(&round, 1, MPI_INT, 0, MPI_COMM_WORLD);
  c->resumed_round = round;
  if (round == 0) return;
  MPI_Bcast(&c->elapsed, 1, MPI_DOUBLE, 0, MPI_COMM_WORLD);
  long steps = t->optimizer.steps;
  MPI_Bcast(&steps, 1, MPI_LONG, 0, MPI_COMM_WORLD);
  t->optimizer.steps = steps;
  kn_model *m = t->model;
  MPI_Bcast(m->params, (int)m->num_params, MPI_FLOAT, 0, MPI_COMM_WORLD);
  if (m->num_buffers) MPI_Bcast(m->buffers, (int)m->num_buffers, MPI_FLOAT, 0, MPI_COMM_WORLD);
  if (t->optimizer.velocity)
    MPI_Bcast(t->optimizer.velocity, (int)t->optimizer.n, MPI_FLOAT, 0, MPI_COMM_WORLD);
  double mine[USAGE_FIELDS];
  MPI_Scatter(usage, USAGE_FIELDS, MPI_DOUBLE, mine, USAGE_FIELDS, MPI_DOUBLE, 0, MPI_COMM_WORLD);
  t->usage = (mf_worker_usage){.worker_seconds = mine[0],
                               .measured_byte_seconds = mine[1],
                               .invocations = (int64_t)mine[2],
                               .pools = (int64_t)mine[3],
                               .workers_spawned = (int64_t)mine[4]};
}

/* The summary's table of max-over-peers phase times for the rounds before the checkpoint. */
static void reload_round_phases(hid_t results, const mf_train *t, int rounds, double *table) {
  double *values = malloc((size_t)rounds * (size_t)t->peers * sizeof(double));
  for (int p = 0; values && p < MF_PHASE_COUNT; p++) {
    if (!(t->mode->phases & MF_PHASE_BIT(p))) continue;
    char name[64];
    snprintf(name, sizeof name, "/timing/%s", mf_phase_names[p]);
    hid_t set = H5Dopen2(results, name, H5P_DEFAULT);
    if (set < 0) continue;
    if (H5Dread(set, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, values) >= 0)
      for (int r = 0; r < rounds; r++) {
        double max = 0;
        for (int q = 0; q < t->peers; q++)
          if (values[(size_t)r * t->peers + q] > max) max = values[(size_t)r * t->peers + q];
        table[(size_t)r * MF_PHASE_COUNT + p] = max;
      }
    H5Dclose(set);
  }
  free(values);
}

static void make_run_id(mf_checkpointer *c) {
  char host[64] = "", now[32];
  gethostname(host, sizeof host - 1);
  iso_now(now, sizeof now);
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  snprintf(c->run_id, sizeof c->run_id, "%s-%s-%d-%09ld", now, host, (int)getpid(),
           (long)ts.tv_nsec);
}

int mf_resume_record(hid_t results, const mf_train *t, mf_checkpointer *c, double *round_phases,
                     char *err, size_t errlen) {
  int rc = 0;
  if (c->resumed_round == 0) { /* a fresh run */
    make_run_id(c);
    unlink(c->tmp);
    unlink(c->path); /* a stale checkpoint of the file this run replaces */
    hid_t group = mf_h5_group(results, "/checkpoint");
    char *name = strdup(c->path);
    rc |= group < 0;
    rc |= mf_h5_attr_string(group, "run_id", c->run_id);
    rc |= mf_h5_attr_string(group, "file", name ? basename(name) : c->path);
    rc |= mf_h5_attr_int(group, "every_rounds", t->config.checkpoint_every);
    rc |= mf_h5_attr_double(group, "every_seconds", t->config.checkpoint_seconds);
    free(name);
    if (group >= 0) H5Gclose(group);
  } else {
    resume_row row = {.round = c->resumed_round, .discarded_rounds = c->discarded};
    iso_now(row.time, sizeof row.time);
    gethostname(row.host, sizeof row.host - 1);
    snprintf(row.git_revision, sizeof row.git_revision, "%s", mf_git_revision);
    hid_t type = resume_row_type();
    rc |= append_row(results, "resumes", type, &row);
    H5Tclose(type);
    reload_round_phases(results, t, c->resumed_round, round_phases);
    unlink(c->tmp); /* what a kill in the middle of a checkpoint write left */
  }
  H5Fflush(results, H5F_SCOPE_GLOBAL);
  if (rc) snprintf(err, errlen, "%s: writing /checkpoint failed", t->config.output);
  return rc ? -1 : 0;
}

/* ---- writing a checkpoint --------------------------------------------------------------- */

/* MAYFLY_TEST_CHECKPOINT_KILL=N: the N-th checkpoint this process writes stops half-way (the
 * weights in the temporary file, nothing renamed) with SIGKILL, as a kill at the worst moment. */
static void test_hook_mid_write(const mf_checkpointer *c, hid_t file) {
  const char *hook = getenv("MAYFLY_TEST_CHECKPOINT_KILL");
  if (!hook || atoi(hook) != c->writes) return;
  H5Fflush(file, H5F_SCOPE_GLOBAL);
  raise(SIGKILL);
}

static int fsync_path(const char *path, int directory) {
  int fd = open(path, directory ? O_RDONLY | O_DIRECTORY : O_RDONLY);
  if (fd < 0) return -1;
  int rc = fsync(fd);
  close(fd);
  return rc;
}

/* The checkpoint's root attributes (what, when, where, the seeds) and /config. */
static int write_attributes(hid_t f, const mf_train *t, const mf_checkpointer *c, int rounds_done,
                            double elapsed) {
  const kn_model *m = t->model;
  char now[32], host[64] = "";
  iso_now(now, sizeof now);
  gethostname(host, sizeof host - 1);
  int rc = 0;
  rc |= mf_h5_attr_string(f, "format", CHECKPOINT_FORMAT);
  rc |= mf_h5_attr_int(f, "format_version", CHECKPOINT_FORMAT_VERSION);
  rc |= mf_h5_attr_string(f, "run_id", c->run_id);
  rc |= mf_h5_attr_int(f, "round", rounds_done);
  rc |= mf_h5_attr_int(f, "sgd_steps", t->optimizer.steps);
  rc |= mf_h5_attr_double(f, "elapsed_seconds", elapsed);
  rc |= mf_h5_attr_string(f, "created", now);
  rc |= mf_h5_attr_string(f, "host", host);
  rc |= mf_h5_attr_string(f, "git_revision", mf_git_revision);
  /* The random streams, stated: all are functions of these seeds and the round (resume.h). */
  rc |= mf_h5_attr_int(f, "data_order_seed", t->config.seed);
  rc |= mf_h5_attr_int(f, "data_cursor",
                       ((int64_t)rounds_done * t->tasks_per_round) % t->minibatches);
  rc |= mf_h5_attr_int(f, "failure_seed", t->config.failure_seed);
  rc |= mf_h5_attr_int(f, "dropout_seed", (int64_t)m->dropout_seed);
  hid_t config = mf_h5_group(f, "/config");
  rc |= config < 0;
  if (config >= 0) {
    mf_options_visit(&mf_train_program, &t->config, write_option, &config);
    rc |= mf_h5_attr_int(config, "peers", t->peers);
    H5Gclose(config);
  }
  return rc;
}

/* The written c->tmp becomes c->path: fsync, rename, then fsync of the directory, so a crash
 * leaves either the old checkpoint or the new one, never half of one. */
static int publish(const mf_checkpointer *c, char *err, size_t errlen) {
  if (fsync_path(c->tmp, 0) != 0) {
    snprintf(err, errlen, "%.600s: fsync failed: %s", c->tmp, strerror(errno));
    return -1;
  }
  if (rename(c->tmp, c->path) != 0) {
    snprintf(err, errlen, "%.600s: cannot rename to %.300s: %s", c->tmp, c->path, strerror(errno));
    return -1;
  }
  char *copy = strdup(c->path);
  if (copy) fsync_path(dirname(copy), 1); /* the rename itself reaches the disk */
  free(copy);
  return 0;
}

/* Rank 0: the whole checkpoint into c->tmp, then fsync + rename + directory fsync. */
static int write_checkpoint(const mf_train *t, mf_checkpointer *c, int rounds_done, double elapsed,
                            const double *usage, char *err, size_t errlen) {
  const kn_model *m = t->model;
  state_header h = {.round = rounds_done,
                    .steps = t->optimizer.steps,
                    .num_params = (int64_t)m->num_params,
                    .num_buffers = (int64_t)m->num_buffers,
                    .peers = t->peers,
                    .elapsed = elapsed};
  uint32_t crc = state_crc(&h, m, &t->optimizer, usage);
  hid_t f = H5Fcreate(c->tmp, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  if (f < 0) {
    snprintf(err, errlen, "%.600s: cannot create the checkpoint", c->tmp);
    return -1;
  }
  int rc = write_attributes(f, t, c, rounds_done, elapsed);
  if (rc == 0)
    rc = mf_checkpoint_write_model(f, c->tmp, m, t->optimizer.steps, err, errlen);
  else
    snprintf(err, errlen, "%.600s: cannot write the checkpoint's attributes", c->tmp);
  if (rc == 0) test_hook_mid_write(c, f);
  if (rc == 0 && t->optimizer.velocity) {
    int64_t shape[1] = {(int64_t)t->optimizer.n};
    if (mf_h5_write_tensor(f, "optimizer/momentum_buffer", 1, shape, t->optimizer.velocity) != 0) {
      snprintf(err, errlen, "%.600s: cannot write the momentum", c->tmp);
      rc = -1;
    }
  }
  if (rc == 0) {
    hsize_t dims[2] = {(hsize_t)t->peers, USAGE_FIELDS};
    if (mf_h5_write_array(f, "usage", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 2, dims, usage) != 0 ||
        mf_h5_attr_int(f, "crc32", crc) != 0) {
      snprintf(err, errlen, "%.600s: cannot write the checkpoint's usage and checksum", c->tmp);
      rc = -1;
    }
  }
  if (H5Fclose(f) < 0 && rc == 0) {
    snprintf(err, errlen, "%.600s: cannot close the checkpoint", c->tmp);
    rc = -1;
  }
  if (rc == 0) rc = publish(c, err, errlen);
  if (rc != 0) unlink(c->tmp);
  return rc;
}

int mf_checkpoint_maybe(mf_train *t, mf_checkpointer *c, hid_t results, int rounds_done,
                        int stopping) {
  const mf_train_config *o = &t->config;
  int due = 0;
  const char *reason = "rounds";
  if (t->rank == 0 && rounds_done < t->rounds) {
    double now = MPI_Wtime();
    if (o->checkpoint_every > 0 && rounds_done % o->checkpoint_every == 0)
      due = 1;
    else if (o->checkpoint_seconds > 0 && (stopping || now - c->last_time >= o->checkpoint_seconds))
      due = stopping ? 3 : 2;
  }
  MPI_Bcast(&due, 1, MPI_INT, 0, MPI_COMM_WORLD);
  if (!due) return 0;
  reason = due == 1 ? "rounds" : due == 2 ? "seconds" : "signal";
  double mine[USAGE_FIELDS] = {t->usage.worker_seconds, t->usage.measured_byte_seconds,
                               (double)t->usage.invocations, (double)t->usage.pools,
                               (double)t->usage.workers_spawned};
  double *usage = t->rank == 0 ? malloc((size_t)t->peers * USAGE_FIELDS * sizeof(double)) : NULL;
  MPI_Gather(mine, USAGE_FIELDS, MPI_DOUBLE, usage, USAGE_FIELDS, MPI_DOUBLE, 0, MPI_COMM_WORLD);
  int rc = 0;
  if (t->rank == 0) {
    char err[1024] = "";
    double start = MPI_Wtime();
    c->writes++;
    rc = usage ? write_checkpoint(t, c, rounds_done, start - t->start_time, usage, err, sizeof err)
               : (snprintf(err, sizeof err, "out of memory"), -1);
    double seconds = MPI_Wtime() - start;
    c->last_time = MPI_Wtime();
    if (rc == 0) {
      struct stat st;
      int64_t bytes = stat(c->path, &st) == 0 ? (int64_t)st.st_size : -1;
      printf("# checkpoint after round %d (%s): %.1f ms, %.2f MB, %s\n", rounds_done, reason,
             1e3 * seconds, bytes / 1e6, c->path);
      fflush(stdout);
      write_row row = {.round = rounds_done, .seconds = seconds, .bytes = bytes};
      snprintf(row.reason, sizeof row.reason, "%s", reason);
      hid_t type = write_row_type();
      hid_t group = mf_h5_group(results, "/checkpoint");
      int recorded = group >= 0 && append_row(results, "writes", type, &row) == 0 &&
                     mf_h5_attr_int(group, "last_round", rounds_done) == 0;
      if (group >= 0) H5Gclose(group);
      H5Tclose(type);
      H5Fflush(results, H5F_SCOPE_GLOBAL);
      if (!recorded)
        fprintf(stderr, "%s: warning: %s: recording checkpoint %d failed\n", t->program, o->output,
                rounds_done);
    } else {
      fprintf(stderr,
              "%s: warning: checkpoint after round %d not written (the previous one is "
              "kept): %s\n",
              t->program, rounds_done, err);
    }
  }
  free(usage);
  MPI_Bcast(&rc, 1, MPI_INT, 0, MPI_COMM_WORLD);
  return rc == 0 ? 1 : -1;
}

void mf_checkpoint_test_hold(const mf_train *t, int rounds_done) {
  const char *hook = getenv("MAYFLY_TEST_HOLD_AFTER_ROUND");
  if (t->rank != 0 || !hook || atoi(hook) != rounds_done) return;
  printf("# test hook: holding after round %d\n", rounds_done);
  fflush(stdout);
  pause(); /* until a signal: SIGKILL ends the job here, SIGTERM lets it stop gracefully */
}

void mf_checkpoint_remove(const mf_checkpointer *c) {
  unlink(c->tmp);
  unlink(c->path);
}
