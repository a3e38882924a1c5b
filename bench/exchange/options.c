/* mayfly-exchange's options: one table (bench/harness/options.h) that gives both the parser and
 * --help, so they cannot drift. --algorithms picks entries of comm's algorithm table
 * (comm/exchange_registry.c) by name, so a new algorithm there is selectable here without a
 * change; -m and --counts say which message sizes to run (sizes.c expands them). */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/exchange/exchange.h"

#define FIELD(name) offsetof(ex_config, name)

static int parse_algorithms(const char *text, void *field, char *err, size_t errlen) {
  ex_algorithm_list *list = field;
  list->n = 0;
  snprintf(list->text, sizeof list->text, "%s", text);
  if (strcmp(text, "all") == 0) {
    for (int i = 0; cm_exchange_algorithms[i] && list->n < EX_MAX_ALGORITHMS; i++)
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
    if (list->n == EX_MAX_ALGORITHMS) {
      snprintf(err, errlen, "more than %d algorithms", EX_MAX_ALGORITHMS);
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
  snprintf(out, size, "%s", ((const ex_algorithm_list *)field)->text);
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
  ex_size_range *r = field;
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
  snprintf(out, size, "%s", ((const ex_size_range *)field)->text);
}

static int parse_counts(const char *text, void *field, char *err, size_t errlen) {
  ex_count_list *list = field;
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
    if (list->n == EX_MAX_COUNTS) {
      snprintf(err, errlen, "more than %d counts", EX_MAX_COUNTS);
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
  snprintf(out, size, "%s", ((const ex_count_list *)field)->text);
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

const mf_program ex_program = {
    .name = EX_PROGRAM,
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
