/* mayfly-exchange's text output on rank 0, in the OSU / nccl-tests shape: a '#' header naming
 * the program, the machine and every option; one fixed-width row (or CSV line) per algorithm
 * and size, flushed at once so a killed job still leaves its rows; then the alpha-beta fits
 * against the link bound, the average busbw of large messages and the verdict line. */
#include <math.h>
#include <stdio.h>

#include <mpi.h>

#include "bench/exchange/exchange.h"
#include "bench/harness/environment.h"
#include "bench/harness/util.h"

static void print_option(const char *name, const char *value, void *context) {
  (void)context;
  printf(" %s=%s", name, *value ? value : "-");
}

void ex_print_header(const ex_config *c, int peers, double link, size_t probe_bytes) {
  char library[256];
  mf_mpi_library(library, sizeof library);
  if (c->csv) {
    printf(
        "algorithm,peers,bytes,count,label,iterations,time_us,min_us,max_us,algbw_gbs,"
        "busbw_gbs,wrong\n");
  } else {
    printf("# %s %s (git %s): peer gradient exchange (allreduce-mean) microbenchmark\n", EX_PROGRAM,
           mf_suite_version, mf_git_revision);
    printf("# peers: %d   MPI: %s   MPI_Wtick: %.3g s\n", peers, library, MPI_Wtick());
    printf("# options:");
    mf_options_visit(&ex_program, c, print_option, NULL);
    printf(
        "\n# time: median over %d iterations (after %d warm-up) of the max over peers; "
        "barrier before each, outside the timed region\n",
        c->iterations, c->warmup);
    printf("# algbw = bytes / time; busbw = algbw * 2(p-1)/p; GB = 1e9 bytes\n");
    if (peers > 1)
      printf(
          "# link bandwidth: %.3f GB/s (best ring MPI_Sendrecv, 64 KiB..16 MiB; reached at "
          "%zu bytes)\n",
          link / 1e9, probe_bytes);
    printf("# wrong: %s\n#\n", c->check ? "exact + not bit-identical across peers + outside the "
                                          "float error bound (how: top of bench/mayfly-exchange.c)"
                                        : "not checked (use -c)");
    printf("# %-20s %14s %12s %12s %12s %12s %11s %11s %8s  %s\n", "algorithm", "bytes", "count",
           "time_us", "min_us", "max_us", "algbw_GB/s", "busbw_GB/s", "wrong", "label");
  }
  fflush(stdout);
}

/* One row; a wrong value also goes to stderr with the three counts. */
void ex_print_row(const ex_config *c, const ex_measured_row *row, int peers,
                  const ex_check_counts *checks) {
  const cm_exchange_algorithm *algorithm = c->algorithms.chosen[row->algorithm];
  const size_t count = (size_t)row->size.count;
  const ex_summary t = row->time;
  const double bytes = (double)count * sizeof(float);
  const double algbw = t.median > 0 ? bytes / t.median / 1e9 : 0;
  const double busbw = algbw * ex_busbw_factor(peers);
  char wrong_text[32];
  if (c->check)
    snprintf(wrong_text, sizeof wrong_text, "%lld", (long long)row->wrong);
  else
    snprintf(wrong_text, sizeof wrong_text, "N/A");
  if (c->csv)
    printf("%s,%d,%.0f,%zu,%s,%d,%.3f,%.3f,%.3f,%.4f,%.4f,%s\n", algorithm->name, peers, bytes,
           count, row->size.label, c->iterations, t.median * 1e6, t.min * 1e6, t.max * 1e6, algbw,
           busbw, c->check ? wrong_text : "");
  else
    printf("  %-20s %14.0f %12zu %12.2f %12.2f %12.2f %11.3f %11.3f %8s  %s\n", algorithm->name,
           bytes, count, t.median * 1e6, t.min * 1e6, t.max * 1e6, algbw, busbw, wrong_text,
           row->size.label);
  if (c->check && row->wrong > 0)
    fprintf(stderr,
            "%s: WRONG: %s, %zu floats: %lld not exact, %lld not bit-identical across "
            "peers, %lld outside the error bound\n",
            EX_PROGRAM, algorithm->name, count, (long long)checks->wrong_exact,
            (long long)checks->not_identical, (long long)checks->out_of_tolerance);
  fflush(stdout);
}

void ex_print_fits(const ex_config *c, const ex_measured_row *rows, int n, int peers, double link,
                   double *bytes, double *seconds) {
  printf(
      "#\n# alpha-beta fit per algorithm: time = alpha + beta * bytes, least squares weighted "
      "by 1/time^2\n# (minimises relative error; empty messages left out). bound_us = "
      "2(p-1)/p * bytes / link bandwidth:\n# the bandwidth term of an ideal allreduce at the best "
      "neighbour bandwidth measured above (a bound for in-cache data, optimistic for large "
      "vectors).\n");
  printf("# %-20s %14s %12s %12s %10s %12s %10s\n", "algorithm", "bytes", "time_us", "model_us",
         "model_err%", "bound_us", "time/bound");
  for (int a = 0; a < c->algorithms.n; a++) {
    int m;
    double alpha, beta;
    int fitted = ex_fit_algorithm(rows, n, a, bytes, seconds, &m, &alpha, &beta) == 0;
    const char *name = c->algorithms.chosen[a]->name;
    if (fitted)
      printf("# %-20s alpha = %.3f us, beta = %.6f ns/byte (1/beta = %.3f GB/s)\n", name,
             alpha * 1e6, beta * 1e9, beta > 0 ? 1e-9 / beta : INFINITY);
    else
      printf("# %-20s alpha-beta fit needs two different non-empty sizes\n", name);
    for (int k = 0; k < m; k++) {
      double model = alpha + beta * bytes[k];
      double bound = link > 0 ? ex_busbw_factor(peers) * bytes[k] / link : 0;
      printf("  %-20s %14.0f %12.2f %12.2f %10.1f %12.2f %10.2f\n", name, bytes[k],
             seconds[k] * 1e6, model * 1e6, (model - seconds[k]) / seconds[k] * 100, bound * 1e6,
             bound > 0 ? seconds[k] / bound : NAN);
    }
  }
}

void ex_print_summary(const ex_config *c, const ex_measured_row *rows, int n, int peers,
                      int64_t wrong_total) {
  printf("#\n# average busbw over sizes >= 1 MiB (GB/s):");
  for (int a = 0; a < c->algorithms.n; a++) {
    double sum = 0;
    int used = 0;
    for (int k = 0; k < n; k++) {
      double bytes = (double)rows[k].size.count * sizeof(float);
      if (rows[k].algorithm != a || bytes < 1048576.0 || !(rows[k].time.median > 0)) continue;
      sum += bytes / rows[k].time.median / 1e9 * ex_busbw_factor(peers);
      used++;
    }
    if (used) printf(" %s %.3f", c->algorithms.chosen[a]->name, sum / used);
  }
  printf("\n");
  if (c->check)
    printf("# wrong values: %lld  %s\n", (long long)wrong_total,
           wrong_total == 0 ? "OK" : "FAILED");
  else
    printf("# wrong values: not checked (use -c)\n");
}
