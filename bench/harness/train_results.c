/* Writer of mayfly-train result files (see train_results.h and results/SCHEMA.md). */
#include "bench/harness/train_results.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench/harness/h5util.h"
#include <mpi.h>

struct mf_train_results {
  hid_t file;
  hid_t phase_sets[MF_PHASE_COUNT];
  hid_t loss, accuracy, eval_round, tasks, task_type;
  hsize_t rounds_written, tasks_written, evals_written;
  int peers;
  /* /pool: one dataset per mf_pool_field, filled from train->pool_record every round. */
  const mf_train *train;
  hid_t pool_sets[MF_POOL_FIELDS];
  hid_t host_slots; /* /pool/host_slots [rounds, hosts] (bench/harness/placement.h), -1 */
  int hosts;
};

static void iso_time(char *out, size_t size) {
  time_t now = time(NULL);
  struct tm utc;
  gmtime_r(&now, &utc);
  strftime(out, size, "%Y-%m-%dT%H:%M:%SZ", &utc);
}

int mf_train_results_create(mf_train_results **out, const char *path, int force, char *err,
                            size_t errlen) {
  *out = NULL;
  mf_h5_quiet();
  if (access(path, F_OK) == 0 && !force) {
    int complete = mf_h5_result_complete(path);
    if (complete == 1) {
      snprintf(err, errlen, "%s: a complete result file exists; use --force to overwrite it", path);
      return -1;
    }
  }
  mf_train_results *r = calloc(1, sizeof *r);
  if (!r) {
    snprintf(err, errlen, "out of memory");
    return -1;
  }
  for (int f = 0; f < MF_POOL_FIELDS; f++) r->pool_sets[f] = -1;
  r->host_slots = -1;
  r->file = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  if (r->file < 0) {
    snprintf(err, errlen,
             "%s: cannot create the results file (directory missing or not "
             "writable?)",
             path);
    free(r);
    return -1;
  }
  mf_h5_attr_string(r->file, "suite", "mayfly");
  mf_h5_attr_int(r->file, "complete", 0);
  *out = r;
  return 0;
}

hid_t mf_train_results_file(const mf_train_results *r) {
  return r->file;
}

static void write_config_attr(const char *name, const char *value, void *context) {
  mf_h5_attr_string(*(hid_t *)context, name, value);
}

static hid_t task_row_type(void) {
  hid_t type = H5Tcreate(H5T_COMPOUND, sizeof(mf_task_row));
#define MEMBER(name, member_type) H5Tinsert(type, #name, HOFFSET(mf_task_row, name), member_type)
  MEMBER(round, H5T_NATIVE_INT32);
  MEMBER(peer, H5T_NATIVE_INT32);
  MEMBER(task, H5T_NATIVE_INT32);
  MEMBER(worker, H5T_NATIVE_INT32);
  MEMBER(retries, H5T_NATIVE_INT32);
  MEMBER(status, H5T_NATIVE_INT32);
  MEMBER(start, H5T_NATIVE_DOUBLE);
  MEMBER(end, H5T_NATIVE_DOUBLE);
  MEMBER(startup, H5T_NATIVE_DOUBLE);
  MEMBER(fetch, H5T_NATIVE_DOUBLE);
  MEMBER(forward_backward, H5T_NATIVE_DOUBLE);
  MEMBER(send, H5T_NATIVE_DOUBLE);
  MEMBER(peak_rss_bytes, H5T_NATIVE_INT64);
  hid_t host = H5Tcopy(H5T_C_S1);
  H5Tset_size(host, MF_HOST_NAME);
  MEMBER(host, host);
  H5Tclose(host);
#undef MEMBER
  return type;
}

/* /pool/host_slots: every node's free slots (slots minus peers) per round, names in `hosts`. */
static int host_slots_create(mf_train_results *r, hid_t pool) {
  const mf_hosts *hosts = mf_placement_hosts();
  if (!hosts) return 0;
  r->hosts = hosts->count;
  r->host_slots =
      mf_h5_growing_create(pool, "host_slots", H5T_STD_I32LE, (hsize_t)hosts->count, 64);
  if (r->host_slots < 0) return -1;
  size_t size = (size_t)hosts->count * MF_HOST_NAME + 1, used = 0;
  char *names = calloc(size, 1);
  if (!names) return -1;
  for (int h = 0; h < hosts->count; h++)
    used += (size_t)snprintf(names + used, size - used, "%s%s", h ? "," : "", hosts->name[h]);
  int rc = mf_h5_attr_string(r->host_slots, "hosts", names);
  char text[4096];
  mf_placement_describe(text, sizeof text);
  rc |= mf_h5_attr_string(pool, "placement", text);
  free(names);
  return rc;
}

int mf_train_results_header(mf_train_results *r, const mf_program *program, const void *config,
                            const char *command_line, const mf_train *t) {
  char created[32];
  iso_time(created, sizeof created);
  int rc = 0;
  rc |= mf_h5_attr_int(r->file, "schema_version", MF_SCHEMA_VERSION);
  rc |= mf_h5_attr_string(r->file, "suite_version", mf_suite_version);
  rc |= mf_h5_attr_string(r->file, "git_revision", mf_git_revision);
  rc |= mf_h5_attr_string(r->file, "created", created);
  rc |= mf_h5_attr_string(r->file, "command_line", command_line);
  rc |= mf_h5_attr_string(r->file, "program", program->name);

  hid_t config_group = mf_h5_group(r->file, "/config");
  mf_options_visit(program, config, write_config_attr, &config_group);
  /* Derived values a reader needs without re-deriving them. */
  rc |= mf_h5_attr_int(config_group, "peers", t->peers);
  rc |= mf_h5_attr_string(config_group, "exchange_selected", t->exchange_selected);
  rc |= mf_h5_attr_string(config_group, "spawn_turns_selected", t->spawn_turns_selected);
  rc |= mf_h5_attr_int(config_group, "tasks_per_round", t->tasks_per_round);
  rc |= mf_h5_attr_int(config_group, "resolved_rounds", t->rounds);
  rc |= mf_h5_attr_int(config_group, "minibatches_per_peer", t->minibatches);
  rc |= mf_h5_attr_int(config_group, "shard_size", t->partition.shard_size);
  rc |= mf_h5_attr_int(config_group, "model_parameters", (int64_t)t->model->num_params);
  rc |= mf_h5_attr_int(config_group, "train_samples", t->train_set.count);
  rc |= mf_h5_attr_int(config_group, "test_samples", t->test_set.count);
  H5Gclose(config_group);

  r->peers = t->peers;
  hid_t timing = mf_h5_group(r->file, "/timing");
  rc |= mf_h5_attr_string(timing, "units", "seconds");
  rc |= mf_h5_attr_int(timing, "warmup_rounds", t->config.warmup);
  rc |= mf_h5_attr_double(timing, "wtick", MPI_Wtick());
  for (int p = 0; p < MF_PHASE_COUNT; p++) {
    r->phase_sets[p] = -1;
    if (t->mode->phases & MF_PHASE_BIT(p))
      r->phase_sets[p] =
          mf_h5_growing_create(timing, mf_phase_names[p], H5T_IEEE_F64LE, (hsize_t)t->peers, 64);
  }
  r->task_type = task_row_type();
  r->tasks = mf_h5_growing_create(timing, "tasks", r->task_type, 0, 256);
  H5Gclose(timing);

  hid_t train = mf_h5_group(r->file, "/train");
  r->loss = mf_h5_growing_create(train, "loss", H5T_IEEE_F64LE, 0, 64);
  r->accuracy = mf_h5_growing_create(train, "test_accuracy", H5T_IEEE_F64LE, 0, 16);
  r->eval_round = mf_h5_growing_create(train, "eval_round", H5T_STD_I32LE, 0, 16);
  H5Gclose(train);
  if (r->tasks < 0 || r->loss < 0 || r->accuracy < 0 || r->eval_round < 0) rc = -1;

  r->train = t;
  r->host_slots = -1;
  for (int f = 0; f < MF_POOL_FIELDS; f++) r->pool_sets[f] = -1;
  if (t->pool_record) { /* the modes with a worker pool */
    hid_t pool = mf_h5_group(r->file, "/pool");
    rc |= mf_h5_attr_string(pool, "policy", t->pool_policy);
    rc |= mf_h5_attr_string(pool, "free_slot_sources", t->pool_sources);
    for (int f = 0; f < MF_POOL_FIELDS; f++) {
      r->pool_sets[f] =
          mf_h5_growing_create(pool, mf_pool_field_names[f], H5T_STD_I32LE, (hsize_t)t->peers, 64);
      if (r->pool_sets[f] < 0) rc = -1;
    }
    rc |= host_slots_create(r, pool);
    H5Gclose(pool);
  }
  H5Fflush(r->file, H5F_SCOPE_GLOBAL);
  return rc ? -1 : 0;
}

int mf_train_results_round(mf_train_results *r, int round, const double *phases, int peers,
                           unsigned mask, double loss) {
  int rc = 0;
  for (int p = 0; p < MF_PHASE_COUNT; p++)
    if ((mask & MF_PHASE_BIT(p)) && r->phase_sets[p] >= 0)
      rc |= mf_h5_growing_write(r->phase_sets[p], (hsize_t)round, 1, H5T_NATIVE_DOUBLE,
                                phases + (size_t)p * peers);
  rc |= mf_h5_growing_write(r->loss, (hsize_t)round, 1, H5T_NATIVE_DOUBLE, &loss);
  for (int f = 0; f < MF_POOL_FIELDS; f++)
    if (r->pool_sets[f] >= 0 && r->train->pool_record)
      rc |= mf_h5_growing_write(r->pool_sets[f], (hsize_t)round, 1, H5T_NATIVE_INT32,
                                r->train->pool_record + (size_t)f * peers);
  if (r->host_slots >= 0 && r->train->pool_record && mf_placement_hosts()) {
    int32_t slots[MF_HOSTS_MAX];
    mf_placement_free_slots(slots);
    rc |= mf_h5_growing_write(r->host_slots, (hsize_t)round, 1, H5T_NATIVE_INT32, slots);
  }
  r->rounds_written = (hsize_t)round + 1;
  H5Fflush(r->file, H5F_SCOPE_GLOBAL);
  return rc ? -1 : 0;
}

int mf_train_results_tasks(mf_train_results *r, const mf_task_row *rows, size_t n) {
  int rc = mf_h5_growing_write(r->tasks, r->tasks_written, n, r->task_type, rows);
  r->tasks_written += n;
  /* The round's task rows belong to the finished round: a SIGKILL right after must keep them. */
  H5Fflush(r->file, H5F_SCOPE_GLOBAL);
  return rc;
}

int mf_train_results_eval(mf_train_results *r, int round, double accuracy) {
  int32_t round32 = round;
  int rc = mf_h5_growing_write(r->accuracy, r->evals_written, 1, H5T_NATIVE_DOUBLE, &accuracy);
  rc |= mf_h5_growing_write(r->eval_round, r->evals_written, 1, H5T_NATIVE_INT32, &round32);
  r->evals_written++;
  H5Fflush(r->file, H5F_SCOPE_GLOBAL);
  return rc ? -1 : 0;
}

int mf_train_results_model(mf_train_results *r, const kn_model *model) {
  hid_t group = mf_h5_group(r->file, "/model");
  hsize_t params[1] = {model->num_params}, buffers[1] = {model->num_buffers};
  int rc = mf_h5_write_array(group, "parameters", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 1, params,
                             model->params);
  rc |= mf_h5_write_array(group, "buffers", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 1, buffers,
                          model->num_buffers ? model->buffers : model->params);
  rc |= mf_h5_attr_string(group, "model", model->kind->name);
  H5Gclose(group);
  return rc ? -1 : 0;
}

int mf_train_results_close(mf_train_results *r, int complete, const char *note) {
  if (!r) return 0;
  char finished[32];
  iso_time(finished, sizeof finished);
  int rc = mf_h5_attr_string(r->file, "finished", finished);
  if (note) rc |= mf_h5_attr_string(r->file, "interrupted", note);
  rc |= mf_h5_attr_int(r->file, "rounds_completed", (int64_t)r->rounds_written);
  /* complete goes last: a reader that sees complete=1 sees everything else. */
  H5Fflush(r->file, H5F_SCOPE_GLOBAL);
  if (complete) rc |= mf_h5_attr_int(r->file, "complete", 1);
  for (int p = 0; p < MF_PHASE_COUNT; p++)
    if (r->phase_sets[p] > 0) H5Dclose(r->phase_sets[p]);
  if (r->tasks > 0) H5Dclose(r->tasks);
  for (int f = 0; f < MF_POOL_FIELDS; f++)
    if (r->pool_sets[f] > 0) H5Dclose(r->pool_sets[f]);
  if (r->host_slots > 0) H5Dclose(r->host_slots);
  if (r->loss > 0) H5Dclose(r->loss);
  if (r->accuracy > 0) H5Dclose(r->accuracy);
  if (r->eval_round > 0) H5Dclose(r->eval_round);
  if (r->task_type > 0) H5Tclose(r->task_type);
  rc |= H5Fclose(r->file) < 0;
  free(r);
  return rc ? -1 : 0;
}

/* Rows of a growing dataset; -1 when it cannot be read. */
static hssize_t dataset_rows(hid_t dataset) {
  hid_t space = H5Dget_space(dataset);
  hsize_t dims[2] = {0, 0};
  int ok = space >= 0 && H5Sget_simple_extent_dims(space, dims, NULL) >= 0;
  if (space >= 0) H5Sclose(space);
  return ok ? (hssize_t)dims[0] : -1;
}

/* Cuts a growing dataset (rank 1 or 2) back to `rows` rows. */
static int truncate_rows(hid_t dataset, hsize_t rows) {
  hid_t space = H5Dget_space(dataset);
  hsize_t dims[2] = {0, 0};
  int ok = space >= 0 && H5Sget_simple_extent_dims(space, dims, NULL) >= 0;
  if (space >= 0) H5Sclose(space);
  if (!ok || dims[0] < rows) return -1;
  dims[0] = rows;
  return H5Dset_extent(dataset, dims) < 0 ? -1 : 0;
}

/* The first `rows` whose int32 column `member` (NULL: the dataset itself) is below `limit`;
 * rows are appended in round order, so the kept ones are a prefix. */
static hssize_t rows_before(hid_t dataset, const char *member, int32_t limit) {
  hssize_t n = dataset_rows(dataset);
  if (n <= 0) return n;
  int32_t *values = malloc((size_t)n * sizeof *values);
  hid_t memtype = H5T_NATIVE_INT32;
  if (member) {
    memtype = H5Tcreate(H5T_COMPOUND, sizeof(int32_t));
    H5Tinsert(memtype, member, 0, H5T_NATIVE_INT32);
  }
  int ok = values && H5Dread(dataset, memtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, values) >= 0;
  if (member) H5Tclose(memtype);
  hssize_t kept = 0;
  while (ok && kept < n && values[kept] < limit) kept++;
  free(values);
  return ok ? kept : -1;
}

int mf_train_results_reopen(mf_train_results **out, const char *path, const mf_train *t,
                            int rounds_kept, char *err, size_t errlen) {
  *out = NULL;
  mf_h5_quiet();
  mf_train_results *r = calloc(1, sizeof *r);
  if (!r) {
    snprintf(err, errlen, "out of memory");
    return -1;
  }
  r->file = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
  if (r->file < 0) {
    snprintf(err, errlen, "%s: cannot open the results file for writing", path);
    free(r);
    return -1;
  }
  r->peers = t->peers;
  r->train = t;
  r->task_type = task_row_type();
  int rc = 0;
  char name[96];
  for (int p = 0; p < MF_PHASE_COUNT; p++) {
    r->phase_sets[p] = -1;
    if (!(t->mode->phases & MF_PHASE_BIT(p))) continue;
    snprintf(name, sizeof name, "/timing/%s", mf_phase_names[p]);
    r->phase_sets[p] = H5Dopen2(r->file, name, H5P_DEFAULT);
    if (r->phase_sets[p] < 0 || truncate_rows(r->phase_sets[p], (hsize_t)rounds_kept) != 0) rc = -1;
  }
  for (int f = 0; f < MF_POOL_FIELDS; f++) {
    r->pool_sets[f] = -1;
    if (!t->pool_record) continue;
    snprintf(name, sizeof name, "/pool/%s", mf_pool_field_names[f]);
    r->pool_sets[f] = H5Dopen2(r->file, name, H5P_DEFAULT);
    if (r->pool_sets[f] < 0 || truncate_rows(r->pool_sets[f], (hsize_t)rounds_kept) != 0) rc = -1;
  }
  r->host_slots = -1;
  if (t->pool_record && H5Lexists(r->file, "/pool/host_slots", H5P_DEFAULT) > 0) {
    r->host_slots = H5Dopen2(r->file, "/pool/host_slots", H5P_DEFAULT);
    if (r->host_slots < 0 || truncate_rows(r->host_slots, (hsize_t)rounds_kept) != 0) rc = -1;
  }
  r->loss = H5Dopen2(r->file, "/train/loss", H5P_DEFAULT);
  r->accuracy = H5Dopen2(r->file, "/train/test_accuracy", H5P_DEFAULT);
  r->eval_round = H5Dopen2(r->file, "/train/eval_round", H5P_DEFAULT);
  r->tasks = H5Dopen2(r->file, "/timing/tasks", H5P_DEFAULT);
  hssize_t tasks = r->tasks >= 0 ? rows_before(r->tasks, "round", rounds_kept) : -1;
  hssize_t evals = r->eval_round >= 0 ? rows_before(r->eval_round, NULL, rounds_kept) : -1;
  if (r->loss < 0 || r->accuracy < 0 || tasks < 0 || evals < 0 ||
      truncate_rows(r->loss, (hsize_t)rounds_kept) != 0 ||
      truncate_rows(r->tasks, (hsize_t)tasks) != 0 ||
      truncate_rows(r->accuracy, (hsize_t)evals) != 0 ||
      truncate_rows(r->eval_round, (hsize_t)evals) != 0)
    rc = -1;
  r->rounds_written = (hsize_t)rounds_kept;
  r->tasks_written = tasks > 0 ? (hsize_t)tasks : 0;
  r->evals_written = evals > 0 ? (hsize_t)evals : 0;
  /* What the end of the interrupted attempt wrote is written again at the end of this one. */
  if (H5Aexists(r->file, "interrupted") > 0) H5Adelete(r->file, "interrupted");
  if (H5Lexists(r->file, "/environment/worker_bindings", H5P_DEFAULT) > 0)
    H5Ldelete(r->file, "/environment/worker_bindings", H5P_DEFAULT);
  if (H5Lexists(r->file, "/environment/worker_placements", H5P_DEFAULT) > 0)
    H5Ldelete(r->file, "/environment/worker_placements", H5P_DEFAULT);
  H5Fflush(r->file, H5F_SCOPE_GLOBAL);
  *out = r;
  if (rc != 0) snprintf(err, errlen, "%s: the results file's datasets cannot be continued", path);
  return rc;
}
