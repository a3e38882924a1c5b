/* Writer of mayfly-train result files (see train_results.h and results/SCHEMA.md). */
#include "bench/train_results.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench/h5util.h"
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
  r->task_type = H5Tcreate(H5T_COMPOUND, sizeof(mf_task_row));
#define MEMBER(name, type) H5Tinsert(r->task_type, #name, HOFFSET(mf_task_row, name), type)
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
#undef MEMBER
  r->tasks = mf_h5_growing_create(timing, "tasks", r->task_type, 0, 256);
  H5Gclose(timing);

  hid_t train = mf_h5_group(r->file, "/train");
  r->loss = mf_h5_growing_create(train, "loss", H5T_IEEE_F64LE, 0, 64);
  r->accuracy = mf_h5_growing_create(train, "test_accuracy", H5T_IEEE_F64LE, 0, 16);
  r->eval_round = mf_h5_growing_create(train, "eval_round", H5T_STD_I32LE, 0, 16);
  H5Gclose(train);
  if (r->tasks < 0 || r->loss < 0 || r->accuracy < 0 || r->eval_round < 0) rc = -1;

  r->train = t;
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
  if (r->loss > 0) H5Dclose(r->loss);
  if (r->accuracy > 0) H5Dclose(r->accuracy);
  if (r->eval_round > 0) H5Dclose(r->eval_round);
  if (r->task_type > 0) H5Tclose(r->task_type);
  rc |= H5Fclose(r->file) < 0;
  free(r);
  return rc ? -1 : 0;
}
