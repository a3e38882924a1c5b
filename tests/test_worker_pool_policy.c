/* Unit test of the worker pool's sizing policy (bench/harness/train.h, mode_cold.c): --workers
 * parses into fixed / schedule / auto and refuses malformed schedules, the free slots are the
 * smallest of the available sources per peer, a Slurm allocation is read from whichever variable is
 * set, and each round's target follows the policy. Pure functions: no MPI run needed. */
#include <stdio.h>
#include <string.h>

#include "bench/harness/options.h"
#include "bench/harness/train.h"
#include "bench/harness/train_options.h"
#include "tests/check.h"

static int parse(const char *workers, mf_workers_policy *out) {
  mf_train_config config;
  memset(&config, 0, sizeof config);
  char *argv[] = {"mayfly-train", "--workers", (char *)workers, NULL};
  int status = mf_options_parse(&mf_train_program, 3, argv, &config, 1);
  *out = config.workers;
  return status;
}

static void test_option(void) {
  mf_workers_policy p;
  CHECK(parse("auto", &p) == MF_OPTIONS_OK && p.length == 0);
  CHECK(parse("5", &p) == MF_OPTIONS_OK && p.length == 1 && p.sizes[0] == 5);
  CHECK(parse("2,1,3", &p) == MF_OPTIONS_OK && p.length == 3 && p.sizes[0] == 2 &&
        p.sizes[1] == 1 && p.sizes[2] == 3);
  const char *bad[] = {"2,,1", "0,1", "2,x", "0", ",", "2,", ",2", "4097", "x", "1, 2", "+2", ""};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    CHECK_MSG(parse(bad[i], &p) == MF_OPTIONS_USAGE_ERROR, "'%s' was accepted", bad[i]);
  char many[400] = "1";
  for (int i = 1; i < MF_WORKERS_SCHEDULE_MAX; i++) strcat(many, ",1");
  CHECK(parse(many, &p) == MF_OPTIONS_OK && p.length == MF_WORKERS_SCHEDULE_MAX);
  strcat(many, ",1");
  CHECK(parse(many, &p) == MF_OPTIONS_USAGE_ERROR);

  char text[128];
  parse("2,1,2", &p);
  mf_workers_policy_describe(&p, text, sizeof text);
  CHECK(strcmp(text, "schedule 2,1,2") == 0);
  parse("3", &p);
  mf_workers_policy_describe(&p, text, sizeof text);
  CHECK(strcmp(text, "fixed 3") == 0);
  parse("auto", &p);
  mf_workers_policy_describe(&p, text, sizeof text);
  CHECK(strcmp(text, "auto") == 0);
}

static void test_slurm(void) {
  CHECK(mf_slurm_slots(NULL, NULL, NULL) == -1);
  CHECK(mf_slurm_slots("8", "6", "4") == 8); /* SLURM_NTASKS first */
  CHECK(mf_slurm_slots(NULL, "6", "4") == 6);
  CHECK(mf_slurm_slots("", NULL, "4") == 4);
  CHECK(mf_slurm_slots(NULL, NULL, "72(x2),36") == 180);
  CHECK(mf_slurm_slots(NULL, NULL, "2(x3)") == 6);
  CHECK(mf_slurm_slots("0", NULL, "4") == 4); /* a nonsensical count is skipped */
  CHECK(mf_slurm_slots(NULL, NULL, "4(x") == -1);
  CHECK(mf_slurm_slots(NULL, NULL, "four") == -1);
  CHECK(mf_slurm_slots(NULL, NULL, "4,") == 4);
}

static void test_free_slots(void) {
  mf_slot_sources none = {
      .universe = -1, .slurm = -1, .node_cores = -1, .peers = 2, .node_peers = 2, .allocation = -1};
  CHECK(mf_free_slots(&none) == -1);
  mf_slot_sources s = none;
  s.universe = 8; /* (8 - 2) / 2 = 3 */
  CHECK(mf_free_slots(&s) == 3);
  s.node_cores = 4; /* (4 - 2) / 2 = 1 < 3 */
  CHECK(mf_free_slots(&s) == 1);
  s.slurm = 2; /* (2 - 2) / 2 = 0 */
  CHECK(mf_free_slots(&s) == 0);
  s = none;
  s.node_cores = 2; /* more peers than cores: no free slot, not a negative count */
  s.node_peers = 4;
  CHECK(mf_free_slots(&s) == 0);
  s = none;
  s.universe = 11; /* (11 - 2) / 2 = 4 (rounded down) */
  s.slurm = 64;
  CHECK(mf_free_slots(&s) == 4);
  s.allocation = 2; /* the share of the allocation's nodes is taken as it is */
  CHECK(mf_free_slots(&s) == 2);
  s.allocation = 9;
  CHECK(mf_free_slots(&s) == 4);
}

static void test_target(void) {
  mf_workers_policy automatic = {0}, fixed = {1, {4}}, schedule = {3, {2, 1, 3}};
  CHECK(mf_pool_target(&automatic, 0, 3, -1) == 1); /* no source: at least 1 */
  CHECK(mf_pool_target(&automatic, 0, 3, 0) == 1);
  CHECK(mf_pool_target(&automatic, 0, 3, 2) == 2);
  CHECK(mf_pool_target(&automatic, 0, 3, 9) == 3); /* never more than the tasks */
  CHECK(mf_pool_target(&fixed, 7, 3, 0) == 3);
  CHECK(mf_pool_target(&fixed, 7, 8, 0) == 4); /* fixed ignores the free slots */
  int expected[] = {2, 1, 3, 2, 1, 3, 2};
  for (int round = 0; round < 7; round++)
    CHECK_MSG(mf_pool_target(&schedule, round, 8, 0) == expected[round], "round %d", round);
  CHECK(mf_pool_target(&schedule, 2, 2, 0) == 2); /* capped at the tasks */
}

int main(void) {
  test_option();
  test_slurm();
  test_free_slots();
  test_target();
  return check_summary("test_worker_pool_policy");
}
