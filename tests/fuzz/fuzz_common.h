/* Helpers shared by the libFuzzer targets in tests/fuzz/: a private scratch directory per fuzzing
 * process, and writing fuzzed bytes into files there (plain, gzip-compressed, or raw bytes under
 * a .gz name). The dataset readers take directories, not buffers, so the targets have to go
 * through real files; /tmp is a tmpfs-like page-cache path, fast enough for ~1000 runs/s. */
#ifndef MAYFLY_TESTS_FUZZ_COMMON_H
#define MAYFLY_TESTS_FUZZ_COMMON_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

enum { FUZZ_PLAIN = 0, FUZZ_GZIP = 1, FUZZ_RAW_GZ_NAME = 2 };

/* The process's scratch directory (created on first use, removed by run.sh's cleanup). */
static inline const char *fuzz_dir(void) {
  static char dir[64] = "";
  if (!dir[0]) {
    snprintf(dir, sizeof dir, "/tmp/mayfly-fuzz.XXXXXX");
    if (!mkdtemp(dir)) abort();
  }
  return dir;
}

/* Writes data as dir/name (FUZZ_PLAIN), gzip-compresses it into dir/name.gz (FUZZ_GZIP), or
 * writes it unchanged as dir/name.gz (FUZZ_RAW_GZ_NAME: a corrupt or non-gzip .gz). Any older
 * file of either name is removed first, since the readers prefer the plain one. */
static inline void fuzz_write(const char *name, const uint8_t *data, size_t n, int how) {
  char plain[256], gz[260];
  snprintf(plain, sizeof plain, "%s/%s", fuzz_dir(), name);
  snprintf(gz, sizeof gz, "%s.gz", plain);
  unlink(plain);
  unlink(gz);
  if (how == FUZZ_GZIP) {
    gzFile f = gzopen(gz, "wb1");
    if (!f) abort();
    if (n && gzwrite(f, data, (unsigned)n) != (int)n) abort();
    gzclose(f);
    return;
  }
  FILE *f = fopen(how == FUZZ_PLAIN ? plain : gz, "wb");
  if (!f) abort();
  if (n && fwrite(data, 1, n, f) != n) abort();
  fclose(f);
}

/* Stops the fuzzer with a crash report: a property of the code under test does not hold. */
#define FUZZ_ASSERT(cond)                                                              \
  do {                                                                                 \
    if (!(cond)) {                                                                     \
      fprintf(stderr, "%s:%d: fuzz property failed: %s\n", __FILE__, __LINE__, #cond); \
      abort();                                                                         \
    }                                                                                  \
  } while (0)

#endif
