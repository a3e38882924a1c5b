/* A tiny test framework for mayfly's unit tests: CHECK-style assertions that report file:line
 * and keep going, and one summary line per test binary ("N passed, N failed") that
 * tests/run.sh folds into the suite's total. Header-only so each tests/test_*.c is one file. */
#ifndef MAYFLY_TESTS_CHECK_H
#define MAYFLY_TESTS_CHECK_H

#include <math.h>
#include <stdio.h>
#include <string.h>

static int check_passed, check_failed;

#define CHECK(cond)                                                            \
  do {                                                                         \
    if (cond) {                                                                \
      check_passed++;                                                          \
    } else {                                                                   \
      check_failed++;                                                          \
      fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
    }                                                                          \
  } while (0)

#define CHECK_MSG(cond, ...)                                                   \
  do {                                                                         \
    if (cond) {                                                                \
      check_passed++;                                                          \
    } else {                                                                   \
      check_failed++;                                                          \
      fprintf(stderr, "%s:%d: CHECK failed: %s: ", __FILE__, __LINE__, #cond); \
      fprintf(stderr, __VA_ARGS__);                                            \
      fputc('\n', stderr);                                                     \
    }                                                                          \
  } while (0)

#define CHECK_NEAR(a, b, tol)                                                               \
  CHECK_MSG(fabs((double)(a) - (double)(b)) <= (tol), "%.9g vs %.9g (tol %g)", (double)(a), \
            (double)(b), (double)(tol))

/* Prints the summary line and returns the exit code for main(). A binary that ran no check
 * at all fails: it tested nothing (a skipped suite, an early return), which must not pass. */
static inline int check_summary(const char *name) {
  printf("%s: %d passed, %d failed\n", name, check_passed, check_failed);
  if (check_passed + check_failed == 0) {
    fprintf(stderr, "%s: error: no check ran\n", name);
    return 1;
  }
  return check_failed ? 1 : 0;
}

#endif
