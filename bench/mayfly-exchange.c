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
 *     attrs alpha_s, beta_s_per_byte (the fit; NaN with fewer than 2 non-empty sizes) */
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <hdf5.h>
#include <mpi.h>

#include "bench/harness/environment.h"
#include "bench/harness/h5util.h"
#include "bench/harness/options.h"
#include "bench/harness/util.h"
#include "comm/exchange.h"
#include "kernels/model.h"

#define PROGRAM "mayfly-exchange"
#define SCHEMA_VERSION 1
#define MAX_ALGORITHMS 32
#define MAX_COUNTS 256
#define LABEL_LENGTH 48

/* ---------------------------------------------------------------------------------------
 * Options */

typedef struct {
  char text[512];
  int n;
  const cm_exchange_algorithm *chosen[MAX_ALGORITHMS];
} algorithm_list;

typedef struct {
  char text[64];
  uint64_t min, max;
} size_range;

typedef struct {
  char text[512];
  int n;
  uint64_t counts[MAX_COUNTS];
} count_list;

typedef struct {
  algorithm_list algorithms;
  size_range range;
  count_list counts;
  int models;
  int iterations, warmup;
  int check, csv;
  int corrupt_rank;
  const char *output;
} exchange_config;

#define FIELD(name) offsetof(exchange_config, name)

static int parse_algorithms(const char *text, void *field, char *err, size_t errlen) {
  algorithm_list *list = field;
  list->n = 0;
  snprintf(list->text, sizeof list->text, "%s", text);
  if (strcmp(text, "all") == 0) {
    for (int i = 0; cm_exchange_algorithms[i] && list->n < MAX_ALGORITHMS; i++)
      list->chosen[list->n++] = cm_exchange_algorithms[i];
    return 0;
  }
  char copy[512];
  snprintf(copy, sizeof copy, "%s", text);
  char *save = NULL;
  for (char *name = strtok_r(copy, ",", &save); name; name = strtok_r(NULL, ",", &save)) {
    const cm_exchange_algorithm *a = cm_exchange_find(name);
    if (!a) {
      size_t used = (size_t)snprintf(err, errlen, "'%s' is not an exchange algorithm (", name);
      for (int i = 0; cm_exchange_algorithms[i] && used < errlen; i++)
        used +=
            (size_t)snprintf(err + used, errlen - used, "%s, ", cm_exchange_algorithms[i]->name);
      if (used < errlen) snprintf(err + used, errlen - used, "or all)");
      return -1;
    }
    for (int i = 0; i < list->n; i++)
      if (list->chosen[i] == a) {
        snprintf(err, errlen, "'%s' is listed twice", name);
        return -1;
      }
    if (list->n == MAX_ALGORITHMS) {
      snprintf(err, errlen, "more than %d algorithms", MAX_ALGORITHMS);
      return -1;
    }
    list->chosen[list->n++] = a;
  }
  if (list->n == 0) {
    snprintf(err, errlen, "'%s' names no algorithm", text);
    return -1;
  }
  return 0;
}

static void format_algorithms(const void *field, char *out, size_t size) {
  snprintf(out, size, "%s", ((const algorithm_list *)field)->text);
}

/* "12", "4K", "16M", "1G" (binary multiples, either case). */
static int parse_quantity(const char *text, uint64_t *out) {
  char *end = NULL;
  if (!*text || *text == '-' || *text == '+') return -1;
  unsigned long long v = strtoull(text, &end, 10);
  if (end == text) return -1;
  unsigned shift = 0;
  if (*end == 'k' || *end == 'K')
    shift = 10, end++;
  else if (*end == 'm' || *end == 'M')
    shift = 20, end++;
  else if (*end == 'g' || *end == 'G')
    shift = 30, end++;
  if (*end != '\0') return -1;
  const uint64_t limit = (uint64_t)1 << 40; /* 1 TiB: beyond any machine this runs on */
  if (v > (limit >> shift)) return -1;
  *out = (uint64_t)v << shift;
  return 0;
}

static int parse_range(const char *text, void *field, char *err, size_t errlen) {
  size_range *r = field;
  char copy[64];
  snprintf(copy, sizeof copy, "%s", text);
  char *colon = strchr(copy, ':');
  if (colon) *colon = '\0';
  const char *max_text = colon ? colon + 1 : copy;
  if (parse_quantity(copy, &r->min) || parse_quantity(max_text, &r->max)) {
    snprintf(err, errlen, "'%s' is not MIN:MAX in bytes (e.g. 4:16M; suffixes K, M, G)", text);
    return -1;
  }
  if (r->min > r->max) {
    snprintf(err, errlen, "'%s': MIN is larger than MAX", text);
    return -1;
  }
  snprintf(r->text, sizeof r->text, "%s", text);
  return 0;
}

static void format_range(const void *field, char *out, size_t size) {
  snprintf(out, size, "%s", ((const size_range *)field)->text);
}

static int parse_counts(const char *text, void *field, char *err, size_t errlen) {
  count_list *list = field;
  list->n = 0;
  snprintf(list->text, sizeof list->text, "%s", text);
  char copy[512];
  snprintf(copy, sizeof copy, "%s", text);
  char *save = NULL;
  for (char *item = strtok_r(copy, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
    uint64_t v;
    if (parse_quantity(item, &v) || v > ((uint64_t)1 << 40) / sizeof(float)) {
      snprintf(err, errlen, "'%s' is not an element count (e.g. 0,7,12345,1M)", item);
      return -1;
    }
    if (list->n == MAX_COUNTS) {
      snprintf(err, errlen, "more than %d counts", MAX_COUNTS);
      return -1;
    }
    list->counts[list->n++] = v;
  }
  if (list->n == 0) {
    snprintf(err, errlen, "'%s' names no count", text);
    return -1;
  }
  return 0;
}

static void format_counts(const void *field, char *out, size_t size) {
  snprintf(out, size, "%s", ((const count_list *)field)->text);
}

static const mf_option exchange_options[] = {
    {"algorithms", 'a', MF_OPT_CUSTOM, FIELD(algorithms), "LIST|all", "all",
     "exchange algorithms to run, comma-separated", 0, 0, NULL, parse_algorithms,
     format_algorithms},
    {"message-sizes", 'm', MF_OPT_CUSTOM, FIELD(range), "MIN:MAX", "4:16M",
     "message sizes in bytes (K, M, G suffixes): MIN, 2*MIN, 4*MIN, ... up to MAX, each "
     "rounded up to whole floats",
     0, 0, NULL, parse_range, format_range},
    {"counts", 0, MF_OPT_CUSTOM, FIELD(counts), "LIST", NULL,
     "exact vector lengths in floats instead of -m, comma-separated (e.g. 0,1,7,12345,1M)", 0, 0,
     NULL, parse_counts, format_counts},
    {"models", 0, MF_OPT_FLAG, FIELD(models), NULL, NULL,
     "also run the gradient sizes of the model zoo (kernels' model table)", 0, 0, NULL, NULL, NULL},
    {"iterations", 'i', MF_OPT_INT, FIELD(iterations), "N", "20", "timed iterations per size", 1,
     100000000, NULL, NULL, NULL},
    {"warmup", 'x', MF_OPT_INT, FIELD(warmup), "N", "5",
     "warm-up iterations per size (recorded, left out of summaries)", 0, 100000000, NULL, NULL,
     NULL},
    {"check", 'c', MF_OPT_FLAG, FIELD(check), NULL, NULL,
     "validate every algorithm and size after its timed loop and count wrong values", 0, 0, NULL,
     NULL, NULL},
    {"output", 'o', MF_OPT_STRING, FIELD(output), "FILE.h5", NULL,
     "write raw per-iteration times to this HDF5 file", 0, 0, NULL, NULL, NULL},
    {"csv", 0, MF_OPT_FLAG, FIELD(csv), NULL, NULL,
     "print CSV (a header line, one row per algorithm and size) instead of the table", 0, 0, NULL,
     NULL, NULL},
    {"corrupt-rank", 0, MF_OPT_INT, FIELD(corrupt_rank), "R", "-1",
     "testing -c itself: rank R flips the last bit of one float of every result it validates "
     "(-1: off)",
     -1, 1000000, NULL, NULL, NULL},
};

static const mf_program exchange_program = {
    .name = PROGRAM,
    .summary =
        "Peer gradient exchange (allreduce-mean) microbenchmark: every algorithm of "
        "comm/ over message sizes, algbw/busbw, validation, alpha-beta fit.",
    .usage = "[OPTIONS]   (under mpirun, one rank per peer)",
    .options = exchange_options,
    .count = MF_OPTION_COUNT(exchange_options),
    .epilogue =
        "time_us is the median over iterations of the max over peers; algbw = bytes / time; "
        "busbw = algbw * 2(p-1)/p.\n"
        "Examples:\n"
        "  mpirun -np 2 bin/mayfly-exchange -m 1K:64M -c\n"
        "  mpirun -np 4 bin/mayfly-exchange --algorithms mpi,ring --models -o exchange.h5\n"
        "  mpirun -np 3 bin/mayfly-exchange --counts 0,1,7,12345 -c --csv\n",
};

/* ---------------------------------------------------------------------------------------
 * Sizes: the -m range or --counts, plus the model zoo with --models. */

typedef struct {
  uint64_t count; /* floats */
  char label[LABEL_LENGTH];
} message_size;

/* The study's models, for when the model table does not have them (yet). Parameter counts of
 * the CIFAR-10 / Fashion-MNIST variants with 10 classes, as torchvision builds them. */
static const struct {
  const char *name;
  uint64_t params;
} study_models[] = {
    {"mlp", 235146},
    {"squeezenet1_1", 727626},
    {"mobilenet_v3_small", 1528106},
    {"vgg11", 128807306},
};

static int by_count(const void *a, const void *b) {
  uint64_t x = ((const message_size *)a)->count, y = ((const message_size *)b)->count;
  return (x > y) - (x < y);
}

/* Rank 0 creates every model of the table once (batch 1) to read its parameter count; the
 * sizes come back smallest first. */
static int model_sizes(message_size *out, int capacity) {
  int n = 0;
  for (int i = 0; kn_model_kinds[i] && n < capacity; i++) {
    char err[256];
    kn_model *m = kn_model_create(kn_model_kinds[i], 1, 1, err, sizeof err);
    if (!m) {
      fprintf(stderr, "%s: warning: model %s: %s\n", PROGRAM, kn_model_kinds[i]->name, err);
      continue;
    }
    out[n].count = m->num_params;
    snprintf(out[n].label, LABEL_LENGTH, "%s", kn_model_kinds[i]->name);
    n++;
    kn_model_free(m);
  }
  for (size_t s = 0; s < sizeof study_models / sizeof study_models[0] && n < capacity; s++) {
    if (kn_model_find(study_models[s].name)) continue;
    out[n].count = study_models[s].params;
    snprintf(out[n].label, LABEL_LENGTH, "%s(builtin)", study_models[s].name);
    n++;
  }
  qsort(out, (size_t)n, sizeof out[0], by_count);
  return n;
}

static int build_sizes(const exchange_config *c, int rank, message_size *out, int capacity) {
  int n = 0;
  if (c->counts.n > 0) {
    for (int i = 0; i < c->counts.n && n < capacity; i++, n++) {
      out[n].count = c->counts.counts[i];
      out[n].label[0] = '\0';
    }
  } else {
    uint64_t bytes = c->range.min;
    while (bytes <= c->range.max && n < capacity) {
      uint64_t count = (bytes + sizeof(float) - 1) / sizeof(float);
      if (n == 0 || out[n - 1].count != count) {
        out[n].count = count;
        out[n].label[0] = '\0';
        n++;
      }
      bytes = bytes == 0 ? 1 : bytes * 2;
    }
  }
  if (c->models) {
    message_size models[32];
    int m = rank == 0 ? model_sizes(models, 32) : 0;
    MPI_Bcast(&m, 1, MPI_INT, 0, MPI_COMM_WORLD);
    MPI_Bcast(models, (int)(m * sizeof models[0]), MPI_BYTE, 0, MPI_COMM_WORLD);
    for (int i = 0; i < m && n < capacity; i++) out[n++] = models[i];
  }
  return n;
}

/* ---------------------------------------------------------------------------------------
 * Input patterns and validation */

static uint64_t mix(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

/* Multiples of 1/64 in [-16, 16): sums of up to 16384 of them are exact in float. */
static float exact_value(int rank, uint64_t i) {
  uint64_t h = mix(((uint64_t)rank << 40) ^ i ^ 0x5EED0001ull);
  return (float)((int)(h >> 53) - 1024) / 64.0f;
}

/* Full 24-bit mantissas, exponents 2^-4..2^3, both signs: rounding depends on the order. */
static float rounding_value(int rank, uint64_t i) {
  uint64_t h = mix(((uint64_t)rank << 40) ^ i ^ 0x5EED0002ull);
  float unit = (float)(h >> 40) / 16777216.0f; /* [0, 1), 24 bits */
  float scale = ldexpf(1.0f, (int)((h >> 8) & 7) - 4);
  return (h & 1 ? -unit : unit) * scale;
}

static void fill(float *data, size_t count, int rank, float (*value)(int, uint64_t)) {
  for (size_t i = 0; i < count; i++) data[i] = value(rank, i);
}

typedef struct {
  int64_t wrong_exact, not_identical, out_of_tolerance;
} check_counts;

static int run_once(const cm_exchange_algorithm *a, float *data, size_t count, uint64_t bytes) {
  char err[512] = "";
  int rc = a->allreduce_mean(data, count, MPI_COMM_WORLD, err, sizeof err);
  if (rc != MPI_SUCCESS) {
    int rank;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    fprintf(stderr, "%s: error: rank %d: %s at %llu bytes: %s\n", PROGRAM, rank, a->name,
            (unsigned long long)bytes, err);
    MPI_Abort(MPI_COMM_WORLD, 1);
  }
  return rc;
}

/* --corrupt-rank: proves that validation notices one wrong bit on one peer. */
static void corrupt(float *data, size_t count, int rank, int corrupt_rank) {
  if (rank != corrupt_rank || count == 0) return;
  uint32_t bits;
  memcpy(&bits, &data[count / 2], sizeof bits);
  bits ^= 1;
  memcpy(&data[count / 2], &bits, sizeof bits);
}

static check_counts validate(const cm_exchange_algorithm *a, float *data, size_t count, int rank,
                             int peers, int corrupt_rank) {
  check_counts local = {0, 0, 0}, total;
  const uint64_t bytes = (uint64_t)count * sizeof(float);

  fill(data, count, rank, exact_value);
  run_once(a, data, count, bytes);
  corrupt(data, count, rank, corrupt_rank);
  for (size_t i = 0; i < count; i++) {
    double sum = 0;
    for (int q = 0; q < peers; q++) sum += exact_value(q, i);
    float expected = (float)sum / (float)peers;
    if (memcmp(&expected, &data[i], sizeof expected) != 0) local.wrong_exact++;
  }

  fill(data, count, rank, rounding_value);
  run_once(a, data, count, bytes);
  corrupt(data, count, rank, corrupt_rank);
  const double u = ldexp(1.0, -24), k = (double)(peers - 1);
  const double gamma = k * u / (1 - k * u);
  for (size_t i = 0; i < count; i++) {
    double sum = 0, magnitude = 0;
    for (int q = 0; q < peers; q++) {
      double v = rounding_value(q, i);
      sum += v, magnitude += fabs(v);
    }
    double tolerance = (gamma * magnitude * (1 + u) + u * fabs(sum)) / peers * (1 + 1e-9);
    if (!(fabs((double)data[i] - sum / peers) <= tolerance)) local.out_of_tolerance++;
  }
  /* Bit identity: rank 0's result travels to everyone with the MPI library's own broadcast. */
  enum { CHUNK = 1 << 20 };
  float *theirs = malloc(sizeof(float) * (count < CHUNK ? (count ? count : 1) : CHUNK));
  if (!theirs) {
    fprintf(stderr, "%s: error: out of memory for the identity check\n", PROGRAM);
    MPI_Abort(MPI_COMM_WORLD, 1);
  }
  for (size_t first = 0; first < count; first += CHUNK) {
    size_t n = count - first < CHUNK ? count - first : CHUNK;
    if (rank == 0) memcpy(theirs, data + first, n * sizeof(float));
    MPI_Bcast(theirs, (int)n, MPI_FLOAT, 0, MPI_COMM_WORLD);
    for (size_t i = 0; i < n; i++)
      if (memcmp(&theirs[i], &data[first + i], sizeof(float)) != 0) local.not_identical++;
  }
  free(theirs);
  MPI_Allreduce(&local, &total, 3, MPI_INT64_T, MPI_SUM, MPI_COMM_WORLD);
  return total;
}

/* ---------------------------------------------------------------------------------------
 * Measurement */

typedef struct {
  double median, min, max; /* seconds, over iterations of the max over peers */
} summary;

/* Runs warm-up and timed iterations; rank 0 gets the raw times: per_rank [iterations][peers],
 * iteration_max [iterations], warmup_max [warmup]. */
static summary measure(const cm_exchange_algorithm *a, float *data, size_t count, int iterations,
                       int warmup, int rank, int peers, double *per_rank, double *iteration_max,
                       double *warmup_max, double *local, double *gathered) {
  const uint64_t bytes = (uint64_t)count * sizeof(float);
  fill(data, count, rank, rounding_value);
  const int total = warmup + iterations;
  for (int it = 0; it < total; it++) {
    MPI_Barrier(MPI_COMM_WORLD);
    double start = MPI_Wtime();
    run_once(a, data, count, bytes);
    local[it] = MPI_Wtime() - start;
  }
  MPI_Gather(local, total, MPI_DOUBLE, gathered, total, MPI_DOUBLE, 0, MPI_COMM_WORLD);
  summary s = {0, 0, 0};
  if (rank != 0) return s;
  for (int it = 0; it < total; it++) {
    double worst = 0;
    for (int q = 0; q < peers; q++) {
      double t = gathered[(size_t)q * total + it];
      if (t > worst) worst = t;
      if (it >= warmup) per_rank[(size_t)(it - warmup) * peers + q] = t;
    }
    if (it < warmup)
      warmup_max[it] = worst;
    else
      iteration_max[it - warmup] = worst;
  }
  s.median = mf_quantile(iteration_max, (size_t)iterations, 0.5);
  s.min = mf_quantile(iteration_max, (size_t)iterations, 0.0);
  s.max = mf_quantile(iteration_max, (size_t)iterations, 1.0);
  return s;
}

/* The link bandwidth the bound uses: the best bandwidth MPI itself reaches between neighbours.
 * Every peer sends a message to its right neighbour while receiving one from its left one
 * (MPI_Sendrecv, exactly a ring step), for messages of 64 KiB, 256 KiB, 1 MiB, 4 MiB and
 * 16 MiB; per size the median over 5 repetitions (after 1 warm-up) of the max over peers; the
 * link bandwidth is the best of those, in bytes per second, and *best_bytes the size that
 * reached it. On shared memory mid-sized messages that stay in cache are fastest, so the best
 * is usually not the largest. */
static double link_bandwidth(int rank, int peers, size_t *best_bytes) {
  *best_bytes = 0;
  if (peers < 2) return 0;
  const size_t largest = (size_t)16 << 20;
  char *out = malloc(largest), *in = malloc(largest);
  if (!out || !in) {
    fprintf(stderr, "%s: error: out of memory for the link probe\n", PROGRAM);
    MPI_Abort(MPI_COMM_WORLD, 1);
  }
  memset(out, 1, largest);
  memset(in, 0, largest);
  enum { PROBES = 5 };
  double best = 0;
  for (size_t bytes = (size_t)64 << 10; bytes <= largest; bytes *= 4) {
    double times[PROBES];
    for (int it = -1; it < PROBES; it++) {
      MPI_Barrier(MPI_COMM_WORLD);
      double start = MPI_Wtime();
      MPI_Sendrecv(out, (int)bytes, MPI_BYTE, (rank + 1) % peers, 1, in, (int)bytes, MPI_BYTE,
                   (rank + peers - 1) % peers, 1, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
      double t = MPI_Wtime() - start, worst;
      MPI_Allreduce(&t, &worst, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
      if (it >= 0) times[it] = worst;
    }
    double bandwidth = (double)bytes / mf_quantile(times, PROBES, 0.5);
    if (bandwidth > best) best = bandwidth, *best_bytes = bytes;
  }
  free(out);
  free(in);
  return best;
}

/* time = alpha + beta * bytes by weighted least squares with weights 1/time^2, i.e. minimising
 * the relative error: plain least squares over sizes that grow by powers of two would fit the
 * largest sizes only and give a meaningless (often negative) alpha. Empty messages are left out
 * (they communicate nothing). Returns 0, or -1 with fewer than two distinct non-empty sizes. */
static int fit_alpha_beta(const double *bytes, const double *seconds, int n, double *alpha,
                          double *beta) {
  double sw = 0, sx = 0, sy = 0, sxx = 0, sxy = 0;
  int used = 0;
  double first = -1;
  int distinct = 0;
  for (int k = 0; k < n; k++) {
    if (bytes[k] <= 0 || !(seconds[k] > 0)) continue;
    double w = 1.0 / (seconds[k] * seconds[k]);
    sw += w, sx += w * bytes[k], sy += w * seconds[k];
    sxx += w * bytes[k] * bytes[k], sxy += w * bytes[k] * seconds[k];
    if (first < 0) first = bytes[k];
    if (bytes[k] != first) distinct = 1;
    used++;
  }
  double det = sw * sxx - sx * sx;
  if (used < 2 || !distinct || det == 0) return -1;
  *beta = (sw * sxy - sx * sy) / det;
  *alpha = (sy - *beta * sx) / sw;
  return 0;
}

/* ---------------------------------------------------------------------------------------
 * HDF5 output (rank 0) */

typedef struct {
  hid_t file;
  hid_t group[MAX_ALGORITHMS];
  hid_t bytes[MAX_ALGORITHMS], count[MAX_ALGORITHMS], label[MAX_ALGORITHMS];
  hid_t time[MAX_ALGORITHMS], rank_time[MAX_ALGORITHMS], warmup_time[MAX_ALGORITHMS];
  hid_t wrong_exact[MAX_ALGORITHMS], not_identical[MAX_ALGORITHMS],
      out_of_tolerance[MAX_ALGORITHMS];
  hid_t label_type;
  hsize_t rows[MAX_ALGORITHMS];
} results_file;

static void write_config_attr(const char *name, const char *value, void *context) {
  mf_h5_attr_string(*(hid_t *)context, name, value);
}

static int results_open(results_file *r, const char *path, const exchange_config *c, int peers,
                        const char *command_line, char *err, size_t errlen) {
  mf_h5_quiet();
  r->file = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  if (r->file < 0) {
    snprintf(err, errlen, "%s: cannot create the results file", path);
    return -1;
  }
  char created[32], library[256];
  time_t now = time(NULL);
  struct tm utc;
  gmtime_r(&now, &utc);
  strftime(created, sizeof created, "%Y-%m-%dT%H:%M:%SZ", &utc);
  mf_mpi_library(library, sizeof library);
  int rc = 0;
  rc |= mf_h5_attr_string(r->file, "suite", "mayfly");
  rc |= mf_h5_attr_int(r->file, "complete", 0);
  rc |= mf_h5_attr_string(r->file, "program", PROGRAM);
  rc |= mf_h5_attr_int(r->file, "schema_version", SCHEMA_VERSION);
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
    mf_options_visit(&exchange_program, c, write_config_attr, &config);
    H5Gclose(config);
  }
  r->label_type = H5Tcopy(H5T_C_S1);
  H5Tset_size(r->label_type, LABEL_LENGTH);
  for (int a = 0; a < c->algorithms.n && rc == 0; a++) {
    char path_in_file[128];
    snprintf(path_in_file, sizeof path_in_file, "/algorithms/%s", c->algorithms.chosen[a]->name);
    hid_t g = r->group[a] = mf_h5_group(r->file, path_in_file);
    if (g < 0) {
      rc = -1;
      break;
    }
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
  }
  if (rc == 0) rc = H5Fflush(r->file, H5F_SCOPE_GLOBAL) < 0 ? -1 : 0;
  if (rc != 0) snprintf(err, errlen, "%s: cannot write the results file", path);
  return rc;
}

static int results_row(results_file *r, int a, const message_size *size, const double *time,
                       const double *rank_time, const double *warmup_time,
                       const check_counts *checks) {
  hsize_t row = r->rows[a]++;
  int64_t bytes = (int64_t)(size->count * sizeof(float)), count = (int64_t)size->count;
  char label[LABEL_LENGTH] = {0};
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

static void results_close(results_file *r, int algorithms, int complete) {
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

/* ---------------------------------------------------------------------------------------
 * Printing */

static void print_option(const char *name, const char *value, void *context) {
  (void)context;
  printf(" %s=%s", name, *value ? value : "-");
}

/* One measured row, kept for the fit and the summaries at the end. */
typedef struct {
  int algorithm;
  message_size size;
  summary time;
  int64_t wrong;
} measured_row;

static double busbw_factor(int peers) {
  return 2.0 * (peers - 1) / peers;
}

/* The fit of algorithm a over its measured rows; 0, or -1 when it cannot be fitted. */
static int fit_algorithm(const measured_row *rows, int n, int a, double *bytes, double *seconds,
                         int *m, double *alpha, double *beta) {
  *m = 0;
  for (int k = 0; k < n; k++)
    if (rows[k].algorithm == a) {
      bytes[*m] = (double)rows[k].size.count * sizeof(float);
      seconds[*m] = rows[k].time.median;
      (*m)++;
    }
  *alpha = *beta = NAN;
  return fit_alpha_beta(bytes, seconds, *m, alpha, beta);
}

static void print_fits(const exchange_config *c, const measured_row *rows, int n, int peers,
                       double link, double *bytes, double *seconds) {
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
    int fitted = fit_algorithm(rows, n, a, bytes, seconds, &m, &alpha, &beta) == 0;
    const char *name = c->algorithms.chosen[a]->name;
    if (fitted)
      printf("# %-20s alpha = %.3f us, beta = %.6f ns/byte (1/beta = %.3f GB/s)\n", name,
             alpha * 1e6, beta * 1e9, beta > 0 ? 1e-9 / beta : INFINITY);
    else
      printf("# %-20s alpha-beta fit needs two different non-empty sizes\n", name);
    for (int k = 0; k < m; k++) {
      double model = alpha + beta * bytes[k];
      double bound = link > 0 ? busbw_factor(peers) * bytes[k] / link : 0;
      printf("  %-20s %14.0f %12.2f %12.2f %10.1f %12.2f %10.2f\n", name, bytes[k],
             seconds[k] * 1e6, model * 1e6, (model - seconds[k]) / seconds[k] * 100, bound * 1e6,
             bound > 0 ? seconds[k] / bound : NAN);
    }
  }
}

static void print_summary(const exchange_config *c, const measured_row *rows, int n, int peers,
                          int64_t wrong_total) {
  printf("#\n# average busbw over sizes >= 1 MiB (GB/s):");
  for (int a = 0; a < c->algorithms.n; a++) {
    double sum = 0;
    int used = 0;
    for (int k = 0; k < n; k++) {
      double bytes = (double)rows[k].size.count * sizeof(float);
      if (rows[k].algorithm != a || bytes < 1048576.0 || !(rows[k].time.median > 0)) continue;
      sum += bytes / rows[k].time.median / 1e9 * busbw_factor(peers);
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

/* ---------------------------------------------------------------------------------------
 * main */

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  int rank, peers;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &peers);

  exchange_config config;
  memset(&config, 0, sizeof config);
  int status = mf_options_parse(&exchange_program, argc, argv, &config, rank != 0);
  if (status != MF_OPTIONS_OK) {
    MPI_Finalize();
    int code = status == MF_OPTIONS_EXIT ? 0 : 2;
    mf_report_exit(rank, code);
    return code;
  }

  static message_size sizes[MAX_COUNTS + 32];
  const int size_count = build_sizes(&config, rank, sizes, MAX_COUNTS + 32);
  uint64_t largest = 0;
  for (int s = 0; s < size_count; s++)
    if (sizes[s].count > largest) largest = sizes[s].count;

  /* Everything that can fail for lack of memory or a bad path fails here, before any timing. */
  float *data = malloc(sizeof(float) * (size_t)(largest ? largest : 1));
  const int total_iterations = config.warmup + config.iterations;
  double *local = malloc(sizeof(double) * (size_t)total_iterations);
  double *gathered = malloc(sizeof(double) * (size_t)total_iterations * (size_t)peers);
  double *per_rank = malloc(sizeof(double) * (size_t)config.iterations * (size_t)peers);
  double *iteration_max = malloc(sizeof(double) * (size_t)config.iterations);
  double *warmup_max = malloc(sizeof(double) * (size_t)(config.warmup ? config.warmup : 1));
  measured_row *rows =
      malloc(sizeof(measured_row) * (size_t)(size_count * config.algorithms.n + 1));
  char err[1024] = "";
  int ok = data && local && gathered && per_rank && iteration_max && warmup_max && rows;
  if (!ok) snprintf(err, sizeof err, "out of memory for %llu floats", (unsigned long long)largest);
  char command_line[4096] = "";
  for (int i = 0, used = 0; i < argc && used < (int)sizeof command_line; i++)
    used += snprintf(command_line + used, sizeof command_line - (size_t)used, "%s%s", i ? " " : "",
                     argv[i]);
  results_file out_file;
  memset(&out_file, 0, sizeof out_file);
  results_file *out = NULL;
  if (ok && rank == 0 && config.output) {
    if (results_open(&out_file, config.output, &config, peers, command_line, err, sizeof err) == 0)
      out = &out_file;
    else
      ok = 0;
  }
  int all_ok = 0;
  MPI_Allreduce(&ok, &all_ok, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
  if (!all_ok) {
    if (!ok) mf_error(PROGRAM, "rank %d: %s", rank, err);
    MPI_Finalize();
    mf_report_exit(rank, 1);
    return 1;
  }
  if (config.output &&
      mf_environment_record(rank == 0 ? out->file : -1, MPI_COMM_WORLD, err, sizeof err) != 0)
    mf_error(PROGRAM, "warning: environment not recorded: %s", err);

  size_t probe_bytes = 0;
  const double link = link_bandwidth(rank, peers, &probe_bytes);
  if (out) {
    mf_h5_attr_int(out->file, "link_probe_bytes", (int64_t)probe_bytes);
    mf_h5_attr_double(out->file, "link_bandwidth_bytes_per_s", link);
  }

  if (rank == 0) {
    char library[256];
    mf_mpi_library(library, sizeof library);
    if (config.csv) {
      printf(
          "algorithm,peers,bytes,count,label,iterations,time_us,min_us,max_us,algbw_gbs,"
          "busbw_gbs,wrong\n");
    } else {
      printf("# %s %s (git %s): peer gradient exchange (allreduce-mean) microbenchmark\n", PROGRAM,
             mf_suite_version, mf_git_revision);
      printf("# peers: %d   MPI: %s   MPI_Wtick: %.3g s\n", peers, library, MPI_Wtick());
      printf("# options:");
      mf_options_visit(&exchange_program, &config, print_option, NULL);
      printf(
          "\n# time: median over %d iterations (after %d warm-up) of the max over peers; "
          "barrier before each, outside the timed region\n",
          config.iterations, config.warmup);
      printf("# algbw = bytes / time; busbw = algbw * 2(p-1)/p; GB = 1e9 bytes\n");
      if (peers > 1)
        printf(
            "# link bandwidth: %.3f GB/s (best ring MPI_Sendrecv, 64 KiB..16 MiB; reached at "
            "%zu bytes)\n",
            link / 1e9, probe_bytes);
      printf("# wrong: %s\n#\n", config.check
                                     ? "exact + not bit-identical across peers + outside the "
                                       "float error bound (how: top of bench/mayfly-exchange.c)"
                                     : "not checked (use -c)");
      printf("# %-20s %14s %12s %12s %12s %12s %11s %11s %8s  %s\n", "algorithm", "bytes", "count",
             "time_us", "min_us", "max_us", "algbw_GB/s", "busbw_GB/s", "wrong", "label");
    }
    fflush(stdout);
  }

  int64_t wrong_total = 0;
  int row_count = 0;
  for (int s = 0; s < size_count; s++) {
    for (int a = 0; a < config.algorithms.n; a++) {
      const cm_exchange_algorithm *algorithm = config.algorithms.chosen[a];
      const size_t count = (size_t)sizes[s].count;
      summary t = measure(algorithm, data, count, config.iterations, config.warmup, rank, peers,
                          per_rank, iteration_max, warmup_max, local, gathered);
      check_counts checks = {-1, -1, -1};
      int64_t wrong = -1;
      if (config.check) {
        checks = validate(algorithm, data, count, rank, peers, config.corrupt_rank);
        wrong = checks.wrong_exact + checks.not_identical + checks.out_of_tolerance;
        wrong_total += wrong;
      }
      if (rank != 0) continue;
      rows[row_count++] = (measured_row){a, sizes[s], t, wrong};
      const double bytes = (double)count * sizeof(float);
      const double algbw = t.median > 0 ? bytes / t.median / 1e9 : 0;
      const double busbw = algbw * busbw_factor(peers);
      char wrong_text[32];
      if (config.check)
        snprintf(wrong_text, sizeof wrong_text, "%lld", (long long)wrong);
      else
        snprintf(wrong_text, sizeof wrong_text, "N/A");
      if (config.csv)
        printf("%s,%d,%.0f,%zu,%s,%d,%.3f,%.3f,%.3f,%.4f,%.4f,%s\n", algorithm->name, peers, bytes,
               count, sizes[s].label, config.iterations, t.median * 1e6, t.min * 1e6, t.max * 1e6,
               algbw, busbw, config.check ? wrong_text : "");
      else
        printf("  %-20s %14.0f %12zu %12.2f %12.2f %12.2f %11.3f %11.3f %8s  %s\n", algorithm->name,
               bytes, count, t.median * 1e6, t.min * 1e6, t.max * 1e6, algbw, busbw, wrong_text,
               sizes[s].label);
      if (config.check && wrong > 0)
        fprintf(stderr,
                "%s: WRONG: %s, %zu floats: %lld not exact, %lld not bit-identical across "
                "peers, %lld outside the error bound\n",
                PROGRAM, algorithm->name, count, (long long)checks.wrong_exact,
                (long long)checks.not_identical, (long long)checks.out_of_tolerance);
      fflush(stdout);
      if (out && results_row(out, a, &sizes[s], iteration_max, per_rank, warmup_max, &checks)) {
        mf_error(PROGRAM, "%s: cannot write the results file", config.output);
        MPI_Abort(MPI_COMM_WORLD, 1);
      }
    }
  }

  if (rank == 0) {
    double *bytes = malloc(sizeof(double) * (size_t)(row_count + 1));
    double *seconds = malloc(sizeof(double) * (size_t)(row_count + 1));
    if (bytes && seconds && !config.csv) {
      print_fits(&config, rows, row_count, peers, link, bytes, seconds);
      print_summary(&config, rows, row_count, peers, wrong_total);
    }
    if (out) {
      for (int a = 0; bytes && seconds && a < config.algorithms.n; a++) {
        int m;
        double alpha, beta;
        fit_algorithm(rows, row_count, a, bytes, seconds, &m, &alpha, &beta);
        mf_h5_attr_double(out->group[a], "alpha_s", alpha);
        mf_h5_attr_double(out->group[a], "beta_s_per_byte", beta);
      }
      results_close(out, config.algorithms.n, 1);
    }
    free(bytes);
    free(seconds);
    fflush(stdout);
  }
  free(data);
  free(local);
  free(gathered);
  free(per_rank);
  free(iteration_max);
  free(warmup_max);
  free(rows);
  const int code = wrong_total > 0 ? 1 : 0;
  MPI_Finalize();
  mf_report_exit(rank, code);
  return code;
}
