/* mayfly-exchange: the peer gradient exchange microbenchmark. Times every exchange algorithm of
 * comm/exchange_registry.c (allreduce-mean of a float vector over all peers) over a range of
 * message sizes and the model zoo's gradient sizes, validates the results, fits a latency-
 * bandwidth (alpha-beta) model and writes raw per-iteration times to HDF5.
 *
 * Why: the study exchanged gradients through a queue, HPC uses ring and tree allreduces; before
 * a training run says "exchange took X", this program says what each algorithm costs on the
 * machine and whether it is correct. Conventions follow the OSU micro-benchmarks and
 * nccl-tests: -m MIN:MAX, -i/-x, -c, a '#' header, fixed-width rows flushed one by one, algbw
 * and busbw (= algbw * 2(p-1)/p, comparable to a link's peak), a wrong-value count and a
 * verdict line at the end (exit status 1 when a value was wrong).
 *
 * Timing: before every iteration a barrier (outside the timed region), then MPI_Wtime around
 * one call; the time of an iteration is the max over peers, the reported time the median over
 * iterations. Warm-up iterations are timed and recorded too, but left out of every summary.
 *
 * Validation (-c, after the timed loop of each algorithm and size), three counts summed into
 * `wrong`:
 *   exact      inputs are multiples of 1/64 in [-16, 16): every summation order gives the
 *              exact sum (for up to 16384 peers), so the result must equal, bit for bit,
 *              (float)sum / (float)peers with the sum computed independently;
 *   identical  inputs with full mantissas and exponents from 2^-4 to 2^3 (the order of the
 *              additions changes the rounding): every peer must hold exactly rank 0's bits;
 *   tolerance  on those inputs, |result - s/p| <= (gamma(p-1) * sum|x| * (1+u) + u*|s|) / p,
 *              with s the sum in double, u = 2^-24, gamma(k) = k*u/(1-k*u): the worst-case
 *              bound of ANY order of p-1 float additions followed by one division.
 *
 * Results file (-o FILE.h5, schema_version 1, written by rank 0 with the serial driver):
 *   /                      attrs suite="mayfly", program, schema_version, suite_version,
 *                          git_revision, created, command_line, peers, mpi_library_version,
 *                          wtick_s, link_bandwidth_bytes_per_s (best neighbour MPI_Sendrecv
 *                          bandwidth, see link_bandwidth()) and link_probe_bytes (where),
 *                          complete (0 while running, 1 at the end)
 *   /config                attrs: every option as text
 *   /environment           see bench/harness/environment.h
 *   /algorithms/<name>/    one row per message size, in the order measured:
 *       bytes, count       int64 [n]
 *       label              string [n] (model name for --models sizes, else "")
 *       time               float64 [n, iterations]: seconds, max over peers per iteration
 *       rank_time          float64 [n, iterations * peers]: seconds, iteration-major, raw
 *       warmup_time        float64 [n, warmup]: seconds, max over peers (when warmup > 0)
 *       wrong_exact, not_identical, out_of_tolerance  int64 [n] (-1 without -c)
 *     attrs alpha_s, beta_s_per_byte (the fit; NaN with fewer than 2 non-empty sizes)
 *
 * This file is the program's main; its parts live in bench/exchange/ (exchange.h names them:
 * options and sizes, the timing loop, validation, the alpha-beta fit, text and HDF5 output). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mpi.h>

#include "bench/exchange/exchange.h"
#include "bench/harness/environment.h"
#include "bench/harness/h5util.h"
#include "bench/harness/util.h"

/* The command line as one string, for the results file. */
static void join_command_line(int argc, char **argv, char *out, size_t size) {
  out[0] = '\0';
  for (int i = 0, used = 0; i < argc && used < (int)size; i++)
    used += snprintf(out + used, size - (size_t)used, "%s%s", i ? " " : "", argv[i]);
}

/* After the last row, on rank 0: the fits and the summary, the fits into the results file. */
static void finish(const ex_config *c, const ex_measured_row *rows, int row_count, int peers,
                   double link, int64_t wrong_total, ex_results_file *out) {
  double *bytes = malloc(sizeof(double) * (size_t)(row_count + 1));
  double *seconds = malloc(sizeof(double) * (size_t)(row_count + 1));
  if (bytes && seconds && !c->csv) {
    ex_print_fits(c, rows, row_count, peers, link, bytes, seconds);
    ex_print_summary(c, rows, row_count, peers, wrong_total);
  }
  if (out) {
    if (bytes && seconds) ex_results_fits(out, c, rows, row_count, bytes, seconds);
    ex_results_close(out, c->algorithms.n, 1);
  }
  free(bytes);
  free(seconds);
  fflush(stdout);
}

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  int rank, peers;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &peers);

  ex_config config;
  memset(&config, 0, sizeof config);
  int status = mf_options_parse(&ex_program, argc, argv, &config, rank != 0);
  if (status != MF_OPTIONS_OK) {
    MPI_Finalize();
    int code = status == MF_OPTIONS_EXIT ? 0 : 2;
    mf_report_exit(rank, code);
    return code;
  }

  static ex_message_size sizes[EX_MAX_COUNTS + 32];
  const int size_count = ex_build_sizes(&config, rank, sizes, EX_MAX_COUNTS + 32);
  uint64_t largest = 0;
  for (int s = 0; s < size_count; s++)
    if (sizes[s].count > largest) largest = sizes[s].count;

  /* Everything that can fail for lack of memory or a bad path fails here, before any timing. */
  ex_buffers buffers;
  int ok = ex_buffers_alloc(&buffers, largest, config.iterations, config.warmup, peers) == 0;
  ex_measured_row *rows =
      malloc(sizeof(ex_measured_row) * (size_t)(size_count * config.algorithms.n + 1));
  char err[1024] = "";
  ok = ok && rows;
  if (!ok) snprintf(err, sizeof err, "out of memory for %llu floats", (unsigned long long)largest);
  char command_line[4096];
  join_command_line(argc, argv, command_line, sizeof command_line);
  ex_results_file out_file;
  memset(&out_file, 0, sizeof out_file);
  ex_results_file *out = NULL;
  if (ok && rank == 0 && config.output) {
    if (ex_results_open(&out_file, config.output, &config, peers, command_line, err, sizeof err) ==
        0)
      out = &out_file;
    else
      ok = 0;
  }
  int all_ok = 0;
  MPI_Allreduce(&ok, &all_ok, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
  if (!all_ok) {
    if (!ok) mf_error(EX_PROGRAM, "rank %d: %s", rank, err);
    MPI_Finalize();
    mf_report_exit(rank, 1);
    return 1;
  }
  if (config.output &&
      mf_environment_record(rank == 0 ? out->file : -1, MPI_COMM_WORLD, err, sizeof err) != 0)
    mf_error(EX_PROGRAM, "warning: environment not recorded: %s", err);

  size_t probe_bytes = 0;
  const double link = ex_link_bandwidth(rank, peers, &probe_bytes);
  if (out) {
    mf_h5_attr_int(out->file, "link_probe_bytes", (int64_t)probe_bytes);
    mf_h5_attr_double(out->file, "link_bandwidth_bytes_per_s", link);
  }
  if (rank == 0) ex_print_header(&config, peers, link, probe_bytes);

  int64_t wrong_total = 0;
  int row_count = 0;
  for (int s = 0; s < size_count; s++) {
    for (int a = 0; a < config.algorithms.n; a++) {
      const cm_exchange_algorithm *algorithm = config.algorithms.chosen[a];
      const size_t count = (size_t)sizes[s].count;
      ex_summary t =
          ex_measure(algorithm, &buffers, count, config.iterations, config.warmup, rank, peers);
      ex_check_counts checks = {-1, -1, -1};
      int64_t wrong = -1;
      if (config.check) {
        checks = ex_validate(algorithm, buffers.data, count, rank, peers, config.corrupt_rank);
        wrong = checks.wrong_exact + checks.not_identical + checks.out_of_tolerance;
        wrong_total += wrong;
      }
      if (rank != 0) continue;
      rows[row_count] = (ex_measured_row){a, sizes[s], t, wrong};
      ex_print_row(&config, &rows[row_count++], peers, &checks);
      if (out && ex_results_row(out, a, &sizes[s], buffers.iteration_max, buffers.per_rank,
                                buffers.warmup_max, &checks)) {
        mf_error(EX_PROGRAM, "%s: cannot write the results file", config.output);
        MPI_Abort(MPI_COMM_WORLD, 1);
      }
    }
  }

  if (rank == 0) finish(&config, rows, row_count, peers, link, wrong_total, out);
  ex_buffers_free(&buffers);
  free(rows);
  const int code = wrong_total > 0 ? 1 : 0;
  MPI_Finalize();
  mf_report_exit(rank, code);
  return code;
}
