/* Unit test of `--exchange auto` (comm/exchange_auto.c): the crossover table picks the algorithm
 * results/exchange.md measured fastest at each size, the boundaries fall where the table says,
 * the answer never depends on anything a peer could see differently (only size and peer count),
 * and cm_exchange_resolve leaves named algorithms alone. Pure functions: no MPI run needed. */
#include <stdint.h>
#include <string.h>

#include "comm/exchange.h"
#include "tests/check.h"

static const char *pick(size_t bytes, int peers) {
  return cm_exchange_auto(bytes, peers)->name;
}

static void test_crossovers(void) {
  for (int peers = 1; peers <= 64; peers *= 2) {
    CHECK(strcmp(pick(0, peers), "recursive-doubling") == 0);
    CHECK(strcmp(pick(4, peers), "recursive-doubling") == 0);
    CHECK(strcmp(pick(2048, peers), "recursive-doubling") == 0);
    CHECK(strcmp(pick(2052, peers), "store") == 0);
    CHECK(strcmp(pick(512 * 1024, peers), "store") == 0);
    CHECK(strcmp(pick(512 * 1024 + 4, peers), "ring") == 0);
    /* The study's models: mlp 235,146 floats, VGG11 128,807,306 floats. */
    CHECK(strcmp(pick(235146 * sizeof(float), peers), "ring") == 0);
    CHECK(strcmp(pick(128807306 * sizeof(float), peers), "ring") == 0);
    CHECK(strcmp(pick(SIZE_MAX, peers), "ring") == 0);
  }
}

static void test_resolve(void) {
  const cm_exchange_algorithm *automatic = cm_exchange_find("auto");
  CHECK(automatic != NULL);
  if (!automatic) return;
  CHECK(cm_exchange_resolve(automatic, 1024, 2) == cm_exchange_find("recursive-doubling"));
  CHECK(cm_exchange_resolve(automatic, 100000, 4) == cm_exchange_find("store"));
  CHECK(cm_exchange_resolve(automatic, 1u << 30, 3) == cm_exchange_find("ring"));
  /* Never "auto" itself, whatever the size. */
  for (size_t bytes = 1; bytes < ((size_t)1 << 40); bytes *= 3)
    CHECK_MSG(cm_exchange_auto(bytes, 2) != automatic, "%zu bytes", bytes);
  const char *named[] = {"mpi", "ring", "recursive-doubling", "rabenseifner", "store"};
  for (size_t i = 0; i < sizeof named / sizeof named[0]; i++) {
    const cm_exchange_algorithm *a = cm_exchange_find(named[i]);
    CHECK_MSG(a && cm_exchange_resolve(a, 1u << 30, 2) == a, "%s", named[i]);
  }
}

int main(void) {
  test_crossovers();
  test_resolve();
  return check_summary("test_exchange_auto");
}
