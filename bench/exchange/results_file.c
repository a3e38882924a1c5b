/* mayfly-exchange's results file (-o FILE.h5; the schema is at the top of
 * bench/mayfly-exchange.c): written by rank 0 with the serial HDF5 driver, one growing row per
 * algorithm and size, flushed after every row, and `complete` set last, so a reader can tell a
 * finished run from one that was killed. */
#include <stdio.h>
#include <time.h>

#include <hdf5.h>
#include <mpi.h>

#include "bench/exchange/exchange.h"
#include "bench/harness/environment.h"
#include "bench/harness/h5util.h"
#include "bench/harness/util.h"

static void write_config_attr(const char *name, const char *value, void *context) {
  mf_h5_attr_string(*(hid_t *)context, name, value);
}

/* The root attributes and /config. */
static int write_header(ex_results_file *r, const ex_config *c, int peers,
                        const char *command_line) {
  char created[32], library[256];
  time_t now = time(NULL);
  struct tm utc;
  gmtime_r(&now, &utc);
  strftime(created, sizeof created, "%Y-%m-%dT%H:%M:%SZ", &utc);
  mf_mpi_library(library, sizeof library);
  int rc = 0;
  rc |= mf_h5_attr_string(r->file, "suite", "mayfly");
  rc |= mf_h5_attr_int(r->file, "complete", 0);
  rc |= mf_h5_attr_string(r->file, "program", EX_PROGRAM);
  rc |= mf_h5_attr_int(r->file, "schema_version", EX_SCHEMA_VERSION);
  rc |= mf_h5_attr_string(r->file, "suite_version", mf_suite_version);
  rc |= mf_h5_attr_string(r->file, "git_revision", mf_git_revision);
  rc |= mf_h5_attr_string(r->file, "created", created);
  rc |= mf_h5_attr_string(r->file, "command_line", command_line);
  rc |= mf_h5_attr_int(r->file, "peers", peers);
  rc |= mf_h5_attr_string(r->file, "mpi_library_version", library);
  rc |= mf_h5_attr_double(r->file, "wtick_s", MPI_Wtick());
  hid_t config = mf_h5_group(r->file, "/config");
  if (config < 0)
    rc = -1;
  else {
    mf_options_visit(&ex_program, c, write_config_attr, &config);
    H5Gclose(config);
  }
  return rc;
}

/* /algorithms/<name>/ with its growing datasets. */
static int create_algorithm(ex_results_file *r, const ex_config *c, int a, int peers) {
  char path_in_file[128];
  snprintf(path_in_file, sizeof path_in_file, "/algorithms/%s", c->algorithms.chosen[a]->name);
  hid_t g = r->group[a] = mf_h5_group(r->file, path_in_file);
  if (g < 0) return -1;
  int rc = 0;
  hsize_t it = (hsize_t)c->iterations;
  r->bytes[a] = mf_h5_growing_create(g, "bytes", H5T_STD_I64LE, 0, 64);
  r->count[a] = mf_h5_growing_create(g, "count", H5T_STD_I64LE, 0, 64);
  r->label[a] = mf_h5_growing_create(g, "label", r->label_type, 0, 64);
  r->time[a] = mf_h5_growing_create(g, "time", H5T_IEEE_F64LE, it, 1);
  r->rank_time[a] = mf_h5_growing_create(g, "rank_time", H5T_IEEE_F64LE, it * peers, 1);
  r->warmup_time[a] =
      c->warmup > 0 ? mf_h5_growing_create(g, "warmup_time", H5T_IEEE_F64LE, c->warmup, 1) : 0;
  r->wrong_exact[a] = mf_h5_growing_create(g, "wrong_exact", H5T_STD_I64LE, 0, 64);
  r->not_identical[a] = mf_h5_growing_create(g, "not_identical", H5T_STD_I64LE, 0, 64);
  r->out_of_tolerance[a] = mf_h5_growing_create(g, "out_of_tolerance", H5T_STD_I64LE, 0, 64);
  rc |= mf_h5_attr_string(g, "summary", c->algorithms.chosen[a]->summary);
  if (r->bytes[a] < 0 || r->count[a] < 0 || r->label[a] < 0 || r->time[a] < 0 ||
      r->rank_time[a] < 0 || r->warmup_time[a] < 0 || r->wrong_exact[a] < 0 ||
      r->not_identical[a] < 0 || r->out_of_tolerance[a] < 0)
    rc = -1;
  return rc;
}

int ex_results_open(ex_results_file *r, const char *path, const ex_config *c, int peers,
                    const char *command_line, char *err, size_t errlen) {
  mf_h5_quiet();
  r->file = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  if (r->file < 0) {
    snprintf(err, errlen, "%s: cannot create the results file", path);
    return -1;
  }
  int rc = write_header(r, c, peers, command_line);
  r->label_type = H5Tcopy(H5T_C_S1);
  H5Tset_size(r->label_type, EX_LABEL_LENGTH);
  for (int a = 0; a < c->algorithms.n && rc == 0; a++) rc = create_algorithm(r, c, a, peers);
  if (rc == 0) rc = H5Fflush(r->file, H5F_SCOPE_GLOBAL) < 0 ? -1 : 0;
  if (rc != 0) snprintf(err, errlen, "%s: cannot write the results file", path);
  return rc;
}

int ex_results_row(ex_results_file *r, int a, const ex_message_size *size, const double *time,
                   const double *rank_time, const double *warmup_time,
                   const ex_check_counts *checks) {
  hsize_t row = r->rows[a]++;
  int64_t bytes = (int64_t)(size->count * sizeof(float)), count = (int64_t)size->count;
  char label[EX_LABEL_LENGTH] = {0};
  snprintf(label, sizeof label, "%s", size->label);
  int rc = 0;
  rc |= mf_h5_growing_write(r->bytes[a], row, 1, H5T_NATIVE_INT64, &bytes);
  rc |= mf_h5_growing_write(r->count[a], row, 1, H5T_NATIVE_INT64, &count);
  rc |= mf_h5_growing_write(r->label[a], row, 1, r->label_type, label);
  rc |= mf_h5_growing_write(r->time[a], row, 1, H5T_NATIVE_DOUBLE, time);
  rc |= mf_h5_growing_write(r->rank_time[a], row, 1, H5T_NATIVE_DOUBLE, rank_time);
  if (r->warmup_time[a] > 0)
    rc |= mf_h5_growing_write(r->warmup_time[a], row, 1, H5T_NATIVE_DOUBLE, warmup_time);
  rc |= mf_h5_growing_write(r->wrong_exact[a], row, 1, H5T_NATIVE_INT64, &checks->wrong_exact);
  rc |= mf_h5_growing_write(r->not_identical[a], row, 1, H5T_NATIVE_INT64, &checks->not_identical);
  rc |= mf_h5_growing_write(r->out_of_tolerance[a], row, 1, H5T_NATIVE_INT64,
                            &checks->out_of_tolerance);
  if (H5Fflush(r->file, H5F_SCOPE_GLOBAL) < 0) rc = -1;
  return rc;
}

void ex_results_fits(ex_results_file *r, const ex_config *c, const ex_measured_row *rows, int n,
                     double *bytes, double *seconds) {
  for (int a = 0; a < c->algorithms.n; a++) {
    int m;
    double alpha, beta;
    ex_fit_algorithm(rows, n, a, bytes, seconds, &m, &alpha, &beta);
    mf_h5_attr_double(r->group[a], "alpha_s", alpha);
    mf_h5_attr_double(r->group[a], "beta_s_per_byte", beta);
  }
}

void ex_results_close(ex_results_file *r, int algorithms, int complete) {
  for (int a = 0; a < algorithms; a++) {
    hid_t sets[] = {r->bytes[a],       r->count[a],         r->label[a],
                    r->time[a],        r->rank_time[a],     r->warmup_time[a],
                    r->wrong_exact[a], r->not_identical[a], r->out_of_tolerance[a]};
    for (size_t s = 0; s < sizeof sets / sizeof sets[0]; s++)
      if (sets[s] > 0) H5Dclose(sets[s]);
    if (r->group[a] > 0) H5Gclose(r->group[a]);
  }
  /* complete goes last: a reader that sees complete=1 sees everything else. */
  if (complete) mf_h5_attr_int(r->file, "complete", 1);
  H5Tclose(r->label_type);
  H5Fclose(r->file);
}
