/* Process-level helpers (see util.h). */
#include "bench/harness/util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void mf_report_exit(int rank, int code) {
  const char *dir = getenv("MAYFLY_STATUS_DIR");
  if (!dir || !*dir || rank < 0) return;
  char path[4096], temporary[4200];
  snprintf(path, sizeof path, "%s/rank-%d", dir, rank);
  snprintf(temporary, sizeof temporary, "%s/.rank-%d.tmp", dir, rank); /* not matched by rank-* */
  FILE *f = fopen(temporary, "w");
  if (!f) return;
  fprintf(f, "%d\n", code);
  if (fclose(f) == 0) rename(temporary, path); /* the launcher never sees a half-written file */
}

int64_t mf_peak_rss_bytes(void) {
  FILE *f = fopen("/proc/self/status", "r");
  if (!f) return 0;
  char line[256];
  long long kib = 0;
  while (fgets(line, sizeof line, f))
    if (sscanf(line, "VmHWM: %lld kB", &kib) == 1) break;
  fclose(f);
  return (int64_t)kib * 1024;
}

static int compare_doubles(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

double mf_quantile(const double *values, size_t n, double q) {
  if (n == 0) return NAN;
  double *sorted = malloc(n * sizeof *sorted);
  if (!sorted) return NAN;
  memcpy(sorted, values, n * sizeof *sorted);
  qsort(sorted, n, sizeof *sorted, compare_doubles);
  double position = q * (double)(n - 1);
  size_t below = (size_t)position;
  double fraction = position - (double)below;
  double result =
      below + 1 < n ? sorted[below] * (1 - fraction) + sorted[below + 1] * fraction : sorted[below];
  free(sorted);
  return result;
}

int mf_program_dir(char *out, size_t size) {
  ssize_t n = readlink("/proc/self/exe", out, size - 1);
  if (n <= 0) return -1;
  out[n] = '\0';
  char *slash = strrchr(out, '/');
  if (!slash) return -1;
  *slash = '\0';
  return 0;
}
