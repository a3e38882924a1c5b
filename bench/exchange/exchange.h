/* What the parts of mayfly-exchange share (bench/mayfly-exchange.c is the program; its top
 * comment documents the options, the timing, the validation and the results file).
 *
 * Why a folder: the program does five things (choose algorithms and sizes, time them, validate
 * them, fit a latency-bandwidth model, report) and each reads best on its own: options.c and
 * sizes.c (what to run), timing.c (the timed loop and the link probe), validate.c (the three
 * wrong-value counts), fit.c (the alpha-beta fit), report.c (the '#' table or CSV) and
 * results_file.c (HDF5). The files link into bin/mayfly-exchange only (the Makefile links
 * bench/<name>/ into bin/mayfly-<name>); they use the harness (bench/harness/) and comm/. */
#ifndef MAYFLY_BENCH_EXCHANGE_EXCHANGE_H
#define MAYFLY_BENCH_EXCHANGE_EXCHANGE_H

#include <stddef.h>
#include <stdint.h>

#include <hdf5.h>

#include "bench/harness/options.h"
#include "comm/exchange.h"

#define EX_PROGRAM "mayfly-exchange"
#define EX_SCHEMA_VERSION 1
#define EX_MAX_ALGORITHMS 32
#define EX_MAX_COUNTS 256
#define EX_LABEL_LENGTH 48

/* ---- Options (options.c) */

typedef struct {
  char text[512];
  int n;
  const cm_exchange_algorithm *chosen[EX_MAX_ALGORITHMS];
} ex_algorithm_list;

typedef struct {
  char text[64];
  uint64_t min, max;
} ex_size_range;

typedef struct {
  char text[512];
  int n;
  uint64_t counts[EX_MAX_COUNTS];
} ex_count_list;

typedef struct {
  ex_algorithm_list algorithms;
  ex_size_range range;
  ex_count_list counts;
  int models;
  int iterations, warmup;
  int check, csv;
  int corrupt_rank;
  const char *output;
} ex_config;

extern const mf_program ex_program;

/* ---- Message sizes (sizes.c): the -m range or --counts, plus the model zoo with --models. */

typedef struct {
  uint64_t count; /* floats */
  char label[EX_LABEL_LENGTH];
} ex_message_size;

/* Fills out[0..capacity) and returns how many; collective (rank 0 reads the model zoo). */
int ex_build_sizes(const ex_config *c, int rank, ex_message_size *out, int capacity);

/* ---- Timing (timing.c) */

typedef struct {
  double median, min, max; /* seconds, over iterations of the max over peers */
} ex_summary;

/* The buffers of the timed loop, allocated once before any timing. */
typedef struct {
  float *data;           /* the vector exchanged, of the largest size */
  double *local;         /* [warmup + iterations]: this peer's times */
  double *gathered;      /* [peers][warmup + iterations]: everyone's, on rank 0 */
  double *per_rank;      /* [iterations][peers] */
  double *iteration_max; /* [iterations]: max over peers */
  double *warmup_max;    /* [warmup]: max over peers */
} ex_buffers;

int ex_buffers_alloc(ex_buffers *b, uint64_t largest, int iterations, int warmup, int peers);
void ex_buffers_free(ex_buffers *b);

/* One allreduce-mean of data; aborts the job on an error (a benchmark of a failing algorithm
 * has nothing to report). */
void ex_run_once(const cm_exchange_algorithm *a, float *data, size_t count, uint64_t bytes);
/* Warm-up and timed iterations of one algorithm and size; rank 0 gets the raw times in b. */
ex_summary ex_measure(const cm_exchange_algorithm *a, ex_buffers *b, size_t count, int iterations,
                      int warmup, int rank, int peers);
/* The best neighbour MPI_Sendrecv bandwidth in bytes per second, *best_bytes where. */
double ex_link_bandwidth(int rank, int peers, size_t *best_bytes);

/* ---- Validation (validate.c) */

typedef struct {
  int64_t wrong_exact, not_identical, out_of_tolerance;
} ex_check_counts;

/* The inputs the timed loop exchanges: full mantissas (validate.c says why). */
void ex_fill_rounding_inputs(float *data, size_t count, int rank);
/* The three counts of -c, summed over peers; collective. */
ex_check_counts ex_validate(const cm_exchange_algorithm *a, float *data, size_t count, int rank,
                            int peers, int corrupt_rank);

/* ---- The alpha-beta fit (fit.c) */

/* One measured row, kept for the fit and the summaries at the end. */
typedef struct {
  int algorithm;
  ex_message_size size;
  ex_summary time;
  int64_t wrong;
} ex_measured_row;

/* busbw = algbw * 2(p-1)/p */
double ex_busbw_factor(int peers);
/* The fit of algorithm a over its measured rows (bytes and seconds receive its points, *m how
 * many); 0, or -1 when it cannot be fitted (then alpha and beta are NaN). */
int ex_fit_algorithm(const ex_measured_row *rows, int n, int a, double *bytes, double *seconds,
                     int *m, double *alpha, double *beta);

/* ---- Text output (report.c), rank 0 */

void ex_print_header(const ex_config *c, int peers, double link, size_t probe_bytes);
void ex_print_row(const ex_config *c, const ex_measured_row *row, int peers,
                  const ex_check_counts *checks);
void ex_print_fits(const ex_config *c, const ex_measured_row *rows, int n, int peers, double link,
                   double *bytes, double *seconds);
void ex_print_summary(const ex_config *c, const ex_measured_row *rows, int n, int peers,
                      int64_t wrong_total);

/* ---- HDF5 output (results_file.c), rank 0 */

typedef struct {
  hid_t file;
  hid_t group[EX_MAX_ALGORITHMS];
  hid_t bytes[EX_MAX_ALGORITHMS], count[EX_MAX_ALGORITHMS], label[EX_MAX_ALGORITHMS];
  hid_t time[EX_MAX_ALGORITHMS], rank_time[EX_MAX_ALGORITHMS], warmup_time[EX_MAX_ALGORITHMS];
  hid_t wrong_exact[EX_MAX_ALGORITHMS], not_identical[EX_MAX_ALGORITHMS],
      out_of_tolerance[EX_MAX_ALGORITHMS];
  hid_t label_type;
  hsize_t rows[EX_MAX_ALGORITHMS];
} ex_results_file;

int ex_results_open(ex_results_file *r, const char *path, const ex_config *c, int peers,
                    const char *command_line, char *err, size_t errlen);
int ex_results_row(ex_results_file *r, int a, const ex_message_size *size, const double *time,
                   const double *rank_time, const double *warmup_time,
                   const ex_check_counts *checks);
/* Writes each algorithm's fit as attributes alpha_s and beta_s_per_byte. */
void ex_results_fits(ex_results_file *r, const ex_config *c, const ex_measured_row *rows, int n,
                     double *bytes, double *seconds);
void ex_results_close(ex_results_file *r, int algorithms, int complete);

#endif
