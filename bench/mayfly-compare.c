/* mayfly-compare: the study's comparison for two mayfly-train result files of the same
 * configuration, one baseline and one serverless: every phase side by side (median and p95 over
 * the non-warm-up rounds of the per-round max over peers), the gradient-computation improvement
 * 100 x (T_baseline - T_serverless) / T_baseline, and - next to the speed claim - whether both
 * runs produced the same model (HPCG's VALID/INVALID habit). Refuses files whose
 * configurations differ in anything but the mode. --summary condenses one or more such
 * comparisons into one row each (a verdict table: `make run` ends with one, per regime). No MPI. */
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/harness/h5util.h"
#include "bench/harness/options.h"
#include "bench/harness/train.h"
#include "bench/harness/train_results.h"
#include "bench/harness/util.h"

static const char *const program = "mayfly-compare";

/* Options that may differ between the two runs: where results go, placement, and the
 * serverless runtime's knobs, which change timing and cost but never the mathematics (the pool
 * sums gradients in task order whoever computed them, and a failed attempt is recomputed from
 * scratch). */
static const char *const ignored_options[] = {"mode",
                                              "output",
                                              "force",
                                              "workers",
                                              "keep-alive",
                                              "inject-failures",
                                              "inject-stalls",
                                              "failure-seed",
                                              "spawn-timeout",
                                              "task-timeout",
                                              "max-retries",
                                              "stage-dir",
                                              "prices",
                                              "worker-memory",
                                              "bind",
                                              "placement",
                                              "spawn-lock",
                                              "spawn-turns",
                                              "spawn_turns_selected",
                                              NULL};

typedef struct {
  const char *path;
  hid_t file;
  char mode[64];
  int64_t warmup;
} result_file;

static int open_result(result_file *r, const char *path) {
  r->path = path;
  r->file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
  if (r->file < 0) {
    mf_error(program, "%s: not a readable HDF5 file", path);
    return -1;
  }
  char suite[32] = "";
  int64_t version = 0, complete = 0;
  if (mf_h5_read_attr_string(r->file, "suite", suite, sizeof suite) != 0 ||
      strcmp(suite, "mayfly") != 0) {
    mf_error(program, "%s: not a mayfly result file", path);
    return -1;
  }
  if (mf_h5_read_attr_int(r->file, "schema_version", &version) != 0 || version < 1 ||
      version > MF_SCHEMA_VERSION) {
    mf_error(program, "%s: schema version %lld, this program reads versions 1 to %d", path,
             (long long)version, MF_SCHEMA_VERSION);
    return -1;
  }
  if (mf_h5_read_attr_int(r->file, "complete", &complete) != 0 || complete != 1) {
    mf_error(program, "%s: the run is not complete (complete=0); compare finished runs only", path);
    return -1;
  }
  hid_t config = H5Gopen2(r->file, "/config", H5P_DEFAULT);
  hid_t timing = H5Gopen2(r->file, "/timing", H5P_DEFAULT);
  int rc = config >= 0 && timing >= 0 &&
                   mf_h5_read_attr_string(config, "mode", r->mode, sizeof r->mode) == 0 &&
                   mf_h5_read_attr_int(timing, "warmup_rounds", &r->warmup) == 0
               ? 0
               : -1;
  if (config >= 0) H5Gclose(config);
  if (timing >= 0) H5Gclose(timing);
  if (rc != 0) mf_error(program, "%s: /config or /timing is missing its attributes", path);
  return rc;
}

typedef struct {
  hid_t other;
  const char *this_path, *other_path;
  int differences;
} config_check;

static herr_t compare_attribute(hid_t group, const char *name, const H5A_info_t *info, void *data) {
  (void)info;
  config_check *check = data;
  for (int i = 0; ignored_options[i]; i++)
    if (strcmp(name, ignored_options[i]) == 0) return 0;
  char mine[512] = "", theirs[512] = "";
  int64_t a = 0, b = 0;
  int have_mine = mf_h5_read_attr_string(group, name, mine, sizeof mine) == 0 ||
                  (mf_h5_read_attr_int(group, name, &a) == 0 &&
                   snprintf(mine, sizeof mine, "%lld", (long long)a) > 0);
  int have_theirs = mf_h5_read_attr_string(check->other, name, theirs, sizeof theirs) == 0 ||
                    (mf_h5_read_attr_int(check->other, name, &b) == 0 &&
                     snprintf(theirs, sizeof theirs, "%lld", (long long)b) > 0);
  if (!have_mine || !have_theirs || strcmp(mine, theirs) != 0) {
    if (check->differences == 0)
      mf_error(program,
               "%s and %s: configurations differ in %s (%s vs %s); only the mode may "
               "differ",
               check->this_path, check->other_path, name, have_mine ? mine : "absent",
               have_theirs ? theirs : "absent");
    check->differences++;
  }
  return 0;
}

static int same_configuration(const result_file *a, const result_file *b) {
  hid_t config_a = H5Gopen2(a->file, "/config", H5P_DEFAULT);
  hid_t config_b = H5Gopen2(b->file, "/config", H5P_DEFAULT);
  config_check forward = {config_b, a->path, b->path, 0};
  config_check backward = {config_a, b->path, a->path, 0};
  H5Aiterate2(config_a, H5_INDEX_NAME, H5_ITER_INC, NULL, compare_attribute, &forward);
  if (forward.differences == 0)
    H5Aiterate2(config_b, H5_INDEX_NAME, H5_ITER_INC, NULL, compare_attribute, &backward);
  H5Gclose(config_a);
  H5Gclose(config_b);
  return forward.differences + backward.differences == 0;
}

/* Per-round max over peers of /timing/<phase>, the non-warm-up rounds. NULL if absent. */
static double *phase_per_round(const result_file *r, const char *phase, size_t *rounds) {
  char path[64];
  snprintf(path, sizeof path, "/timing/%s", phase);
  *rounds = 0;
  if (H5Lexists(r->file, path, H5P_DEFAULT) <= 0) return NULL;
  hid_t dataset = H5Dopen2(r->file, path, H5P_DEFAULT);
  hid_t space = H5Dget_space(dataset);
  hsize_t dims[2] = {0, 0};
  int rank = H5Sget_simple_extent_dims(space, dims, NULL);
  H5Sclose(space);
  double *values = NULL, *per_round = NULL;
  if (rank == 2 && dims[0] > 0 && dims[1] > 0) {
    values = malloc(sizeof(double) * dims[0] * dims[1]);
    per_round = malloc(sizeof(double) * dims[0]);
  }
  if (values && per_round &&
      H5Dread(dataset, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, values) >= 0) {
    hsize_t first = (hsize_t)r->warmup < dims[0] ? (hsize_t)r->warmup : 0;
    for (hsize_t round = first; round < dims[0]; round++) {
      double most = 0;
      for (hsize_t peer = 0; peer < dims[1]; peer++)
        if (values[round * dims[1] + peer] > most) most = values[round * dims[1] + peer];
      per_round[(*rounds)++] = most;
    }
  }
  H5Dclose(dataset);
  free(values);
  if (*rounds == 0) {
    free(per_round);
    return NULL;
  }
  return per_round;
}

static float *read_floats(hid_t file, const char *path, hsize_t *count) {
  *count = 0;
  if (H5Lexists(file, "/model", H5P_DEFAULT) <= 0 || H5Lexists(file, path, H5P_DEFAULT) <= 0)
    return NULL;
  hid_t dataset = H5Dopen2(file, path, H5P_DEFAULT);
  hid_t space = H5Dget_space(dataset);
  H5Sget_simple_extent_dims(space, count, NULL);
  H5Sclose(space);
  float *values = malloc(sizeof(float) * (*count ? *count : 1));
  if (values && H5Dread(dataset, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, values) < 0) {
    free(values);
    values = NULL;
  }
  H5Dclose(dataset);
  return values;
}

static double last_value(hid_t file, const char *path) {
  if (H5Lexists(file, path, H5P_DEFAULT) <= 0) return NAN;
  hid_t dataset = H5Dopen2(file, path, H5P_DEFAULT);
  hid_t space = H5Dget_space(dataset);
  hsize_t n = 0;
  H5Sget_simple_extent_dims(space, &n, NULL);
  H5Sclose(space);
  double result = NAN;
  double *values = n ? malloc(sizeof(double) * n) : NULL;
  if (values && H5Dread(dataset, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, values) >= 0)
    result = values[n - 1];
  free(values);
  H5Dclose(dataset);
  return result;
}

/* /cost of a run (written by mayfly-train from the price table of its --prices). */
static double cost_total(const result_file *r) {
  double total = NAN;
  if (H5Lexists(r->file, "/cost", H5P_DEFAULT) <= 0) return NAN;
  hid_t group = H5Gopen2(r->file, "/cost", H5P_DEFAULT);
  if (mf_h5_read_attr_double(group, "usd_total", &total) != 0) total = NAN;
  H5Gclose(group);
  return total;
}

static void print_cost(const result_file *r) {
  if (H5Lexists(r->file, "/cost", H5P_DEFAULT) <= 0) {
    printf("# cost %-8s: no /cost in %s\n", r->mode, r->path);
    return;
  }
  hid_t group = H5Gopen2(r->file, "/cost", H5P_DEFAULT);
  char prices[64] = "?", currency[16] = "?";
  int64_t invocations = 0;
  double gb = NAN, measured = NAN, serverless = NAN, instances = NAN, total = NAN;
  mf_h5_read_attr_string(group, "prices", prices, sizeof prices);
  mf_h5_read_attr_string(group, "currency", currency, sizeof currency);
  mf_h5_read_attr_int(group, "invocations", &invocations);
  mf_h5_read_attr_double(group, "worker_gb_seconds", &gb);
  mf_h5_read_attr_double(group, "measured_gb_seconds", &measured);
  mf_h5_read_attr_double(group, "usd_serverless", &serverless);
  mf_h5_read_attr_double(group, "usd_instances", &instances);
  mf_h5_read_attr_double(group, "usd_total", &total);
  H5Gclose(group);
  printf(
      "# cost %-8s (%s): %lld invocations, %.2f GB-s billed (%.2f measured); %s %.6f "
      "serverless + %.6f instances = %.6f\n",
      r->mode, prices, (long long)invocations, gb, measured, currency, serverless, instances,
      total);
}

/* Checks whether both final models are bit-identical; writes the verdict ("VALID",
 * "INVALID: ...") into `verdict` and, unless `quiet`, prints the model-check line. Returns 1
 * when identical. */
static int compare_models(const result_file *a, const result_file *b, int quiet, char *verdict,
                          size_t size) {
  hsize_t na = 0, nb = 0;
  float *pa = read_floats(a->file, "/model/parameters", &na);
  float *pb = read_floats(b->file, "/model/parameters", &nb);
  int identical = 0;
  char line[160];
  if (!pa || !pb || na != nb) {
    snprintf(verdict, size, "INVALID(no-model)");
    snprintf(line, sizeof line, "INVALID (final parameters missing or of different sizes)");
  } else {
    double max_difference = 0;
    hsize_t differing = 0;
    for (hsize_t i = 0; i < na; i++) {
      double d = fabs((double)pa[i] - (double)pb[i]);
      if (memcmp(&pa[i], &pb[i], sizeof(float)) != 0) differing++;
      if (d > max_difference) max_difference = d;
    }
    identical = differing == 0;
    if (identical) {
      snprintf(verdict, size, "VALID");
      snprintf(line, sizeof line, "VALID (the %llu final parameters are bit-identical)",
               (unsigned long long)na);
    } else {
      snprintf(verdict, size, "INVALID(%llu/%llu)", (unsigned long long)differing,
               (unsigned long long)na);
      snprintf(line, sizeof line, "INVALID (%llu of %llu final parameters differ, max |diff| %.3g)",
               (unsigned long long)differing, (unsigned long long)na, max_difference);
    }
  }
  if (!quiet) printf("# model check: %s\n", line);
  free(pa);
  free(pb);
  return identical;
}

/* Median over the non-warm-up rounds of the per-round max over peers of one phase; NaN if the
 * file has no such phase. */
static double phase_median(const result_file *r, const char *phase) {
  size_t n = 0;
  double *values = phase_per_round(r, phase, &n);
  double median = values ? mf_quantile(values, n, 0.5) : NAN;
  free(values);
  return median;
}

/* A /config attribute as text (string or integer attribute), "?" when absent. */
static void config_text(const result_file *r, const char *name, char *out, size_t size) {
  hid_t config = H5Gopen2(r->file, "/config", H5P_DEFAULT);
  int64_t value = 0;
  if (config < 0 || mf_h5_read_attr_string(config, name, out, size) != 0) {
    if (config >= 0 && mf_h5_read_attr_int(config, name, &value) == 0)
      snprintf(out, size, "%lld", (long long)value);
    else
      snprintf(out, size, "?");
  }
  if (config >= 0) H5Gclose(config);
}

/* The full comparison of one pair (phases, losses, improvement, cost, model check). */
static int print_comparison(const result_file *base, const result_file *other) {
  printf("# mayfly-compare: %s (baseline) vs %s (%s)\n", base->path, other->path, other->mode);
  printf("# per-round max over peers; median and p95 over non-warm-up rounds; ms\n");
  printf("# %-10s %12s %12s %12s %12s %9s\n", "phase", "base_median", "base_p95", "srvl_median",
         "srvl_p95", "ratio");
  for (int p = 0; p < MF_PHASE_COUNT; p++) {
    size_t nb = 0, no = 0;
    double *vb = phase_per_round(base, mf_phase_names[p], &nb);
    double *vo = phase_per_round(other, mf_phase_names[p], &no);
    if (!vb && !vo) continue;
    double mb = vb ? mf_quantile(vb, nb, 0.5) : NAN, mo = vo ? mf_quantile(vo, no, 0.5) : NAN;
    printf("  %-10s %12.3f %12.3f %12.3f %12.3f %9.3f\n", mf_phase_names[p], 1e3 * mb,
           vb ? 1e3 * mf_quantile(vb, nb, 0.95) : NAN, 1e3 * mo,
           vo ? 1e3 * mf_quantile(vo, no, 0.95) : NAN, mo / mb);
    free(vb);
    free(vo);
  }
  double base_compute = phase_median(base, "compute"),
         other_compute = phase_median(other, "compute");
  printf("# final loss: %.6f (baseline) vs %.6f (%s); final test accuracy: %.2f%% vs %.2f%%\n",
         last_value(base->file, "/train/loss"), last_value(other->file, "/train/loss"), other->mode,
         100 * last_value(base->file, "/train/test_accuracy"),
         100 * last_value(other->file, "/train/test_accuracy"));
  printf(
      "gradient computation improvement (%s vs baseline): %.2f %% (baseline %.3f ms, %s %.3f "
      "ms per round, medians)\n",
      other->mode, 100 * (base_compute - other_compute) / base_compute, 1e3 * base_compute,
      other->mode, 1e3 * other_compute);
  print_cost(base);
  print_cost(other);
  double total_base = cost_total(base), total_other = cost_total(other);
  if (!isnan(total_base) && !isnan(total_other) && total_base > 0)
    printf(
        "cost ratio (%s vs baseline): %.3f (total run cost, same price table only if the "
        "lines above agree)\n",
        other->mode, total_other / total_base);
  char verdict[64];
  return compare_models(base, other, 0, verdict, sizeof verdict);
}

#define SUMMARY_COLUMNS " %-8s %5s %7s %-8s %5s %5s %10s %10s %12s %10s %-18s %s\n"

/* One row of the verdict table for one pair. */
static int print_summary_row(const char *label, const result_file *base, const result_file *other) {
  char peers[16], workers[64], model[64], batch[16], tasks[16], verdict[64], files[1024];
  config_text(other, "peers", peers, sizeof peers);
  config_text(other, "workers", workers, sizeof workers);
  config_text(other, "model", model, sizeof model);
  config_text(other, "batch", batch, sizeof batch);
  config_text(other, "tasks", tasks, sizeof tasks);
  double tb = phase_median(base, "compute"), to = phase_median(other, "compute");
  double cb = cost_total(base), co = cost_total(other);
  char base_ms[32], other_ms[32], improvement[32], ratio[32];
  snprintf(base_ms, sizeof base_ms, "%.3f", 1e3 * tb);
  snprintf(other_ms, sizeof other_ms, "%.3f", 1e3 * to);
  snprintf(improvement, sizeof improvement, "%.1f %%", 100 * (tb - to) / tb);
  if (!isnan(cb) && !isnan(co) && cb > 0)
    snprintf(ratio, sizeof ratio, "%.1fx", co / cb);
  else
    snprintf(ratio, sizeof ratio, "-");
  int identical = compare_models(base, other, 1, verdict, sizeof verdict);
  snprintf(files, sizeof files, "%s %s", base->path, other->path);
  printf("%-24s" SUMMARY_COLUMNS, label, other->mode, peers, workers, model, batch, tasks, base_ms,
         other_ms, improvement, ratio, verdict, files);
  return identical;
}

static void usage(void) {
  printf(
      "Usage: %s BASELINE.h5 SERVERLESS.h5\n"
      "       %s --summary [--label TEXT]... BASELINE.h5 SERVERLESS.h5 [BASELINE.h5 "
      "SERVERLESS.h5]...\n"
      "Compares two complete mayfly-train result files of the same configuration (only\n"
      "--mode may differ): phase medians and p95 side by side, the gradient-computation\n"
      "improvement 100 x (T_baseline - T_serverless) / T_baseline, and whether both runs\n"
      "produced bit-identical models.\n"
      "  --summary     one row per pair instead (a verdict table under one header line):\n"
      "                label, serverless mode, peers, workers, model, batch, tasks, median\n"
      "                gradient-computation ms per round of baseline and serverless,\n"
      "                improvement %%, total cost ratio (serverless / baseline), model check\n"
      "                (VALID, INVALID(differing/total) or INVALID(no-model)) and the files\n"
      "  --label TEXT  the label of the next pair's row (in order; default: its number)\n"
      "Exit: 0 compared (every pair VALID), 1 models differ, 2 bad input.\n",
      program, program);
}

int main(int argc, char **argv) {
  if (argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
    usage();
    return 0;
  }
  if (argc == 2 && strcmp(argv[1], "--version") == 0) {
    printf("%s %s (git %s)\n", program, mf_suite_version, mf_git_revision);
    return 0;
  }
  int summary = 0, labels = 0, files = 0, rc = 2, pairs = 0, all_identical = 1;
  const char **label = calloc((size_t)argc, sizeof *label);
  const char **file = calloc((size_t)argc, sizeof *file);
  result_file *runs = calloc((size_t)argc, sizeof *runs);
  if (!label || !file || !runs) {
    mf_error(program, "out of memory");
    goto done;
  }
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--summary") == 0) {
      summary = 1;
    } else if (strcmp(argv[i], "--label") == 0) {
      if (i + 1 >= argc || argv[i + 1][0] == '\0') {
        mf_error(program, "--label: missing value (see --help)");
        goto done;
      }
      label[labels++] = argv[++i];
    } else if (argv[i][0] == '-' && argv[i][1] != '\0') {
      mf_error(program, "%s: unknown option (see --help)", argv[i]);
      goto done;
    } else {
      file[files++] = argv[i];
    }
  }
  if (!summary && (files != 2 || labels > 0)) {
    mf_error(program, labels > 0
                          ? "--label: only with --summary (see --help)"
                          : "expected two result files: BASELINE.h5 SERVERLESS.h5 (see --help)");
    goto done;
  }
  if (summary && (files == 0 || files % 2 != 0)) {
    mf_error(program,
             "--summary: expected pairs of result files BASELINE.h5 SERVERLESS.h5, got %d "
             "file(s) (see --help)",
             files);
    goto done;
  }
  pairs = files / 2;
  if (labels > pairs) {
    mf_error(program, "--label: %d labels for %d pair(s) of files", labels, pairs);
    goto done;
  }
  mf_h5_quiet();
  /* Every file is checked before anything is printed: a bad pair fails the whole call. */
  for (int p = 0; p < pairs; p++) {
    result_file *base = &runs[2 * p], *other = &runs[2 * p + 1];
    if (open_result(base, file[2 * p]) != 0 || open_result(other, file[2 * p + 1]) != 0) goto done;
    if (strcmp(base->mode, "baseline") != 0) {
      mf_error(program, "%s: mode is %s; the first file of a pair must be the baseline run",
               base->path, base->mode);
      goto done;
    }
    if (!same_configuration(base, other)) goto done;
  }
  if (summary)
    printf("# %-22s" SUMMARY_COLUMNS, "label", "mode", "peers", "workers", "model", "batch",
           "tasks", "base_ms", "srvl_ms", "improvement", "cost_ratio", "model_check", "files");
  for (int p = 0; p < pairs; p++) {
    char number[16];
    snprintf(number, sizeof number, "%d", p + 1);
    const char *name = p < labels ? label[p] : number;
    int identical = summary ? print_summary_row(name, &runs[2 * p], &runs[2 * p + 1])
                            : print_comparison(&runs[2 * p], &runs[2 * p + 1]);
    all_identical &= identical;
  }
  rc = all_identical ? 0 : 1;
done:
  for (int i = 0; runs && i < files; i++)
    if (runs[i].file > 0) H5Fclose(runs[i].file);
  free(runs);
  free(label);
  free(file);
  return rc;
}
