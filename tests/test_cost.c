/* Unit test of the cost model (bench/harness/cost.h): the shipped price tables parse, a hand-worked
 * run is priced as computed below by hand, and malformed tables are refused with a message
 * naming the file and line. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench/harness/cost.h"
#include "tests/check.h"

static void write_file(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  fputs(text, f);
  fclose(f);
}

/* 2 peers for 100 s; workers lived 40 s in total (e.g. 2 workers x 20 s), 10 invocations,
 * each worker peaked at 0.5 GiB (0.5 GiB x 40 s = 20 GiB-s). */
static mf_cost_input example_run(void) {
  mf_cost_input in = {.peers = 2,
                      .peer_threads = 1,
                      .worker_threads = 1,
                      .worker_memory_mb = 2048,
                      .wall_seconds = 100};
  in.usage.worker_seconds = 40;
  in.usage.measured_byte_seconds = 20.0 * 1024 * 1024 * 1024;
  in.usage.invocations = 10;
  in.usage.pools = 5;
  in.usage.workers_spawned = 10;
  return in;
}

static void test_cloud_by_hand(void) {
  mf_prices p;
  char err[512] = "";
  int rc = mf_prices_load("results/prices/aws-us-east-1.txt", &p, err, sizeof err);
  CHECK_MSG(rc == 0, "%s", err);
  if (rc != 0) return;
  CHECK(p.kind == MF_PRICES_CLOUD);
  CHECK(strcmp(p.name, "aws-us-east-1") == 0);
  CHECK(p.instance_count == 3);
  mf_cost_input in = example_run();
  mf_cost c;
  mf_cost_compute(&p, &in, &c);
  /* By hand: 40 s x 2 GB = 80 GB-s x 0.0000166667 = 0.001333336;
   * 10 requests x 0.20/1e6 = 0.000002; 20 transitions x 0.025/1000 = 0.0005;
   * serverless = 0.001835336. Peers: 2 x 100 s = 0.0555... h x 0.0464 (t2.medium) =
   * 0.0025777... ; ratio = 0.001835336 / 0.00257777... = 0.711984... */
  CHECK(c.invocations == 10);
  CHECK(c.transitions == 20);
  CHECK_NEAR(c.worker_gb_seconds, 80.0, 1e-12);
  CHECK_NEAR(c.measured_gb_seconds, 20.0, 1e-12);
  CHECK_NEAR(c.core_seconds, 40.0 + 200.0, 1e-12);
  CHECK_NEAR(c.peer_instance_hours, 200.0 / 3600.0, 1e-15);
  CHECK_NEAR(c.usd_serverless, 0.001835336, 1e-12);
  CHECK_NEAR(c.usd_instances, 0.0464 * 200.0 / 3600.0, 1e-15);
  CHECK_NEAR(c.usd_total, 0.001835336 + 0.0464 * 200.0 / 3600.0, 1e-12);
  CHECK_NEAR(c.ratio, 0.001835336 / (0.0464 * 200.0 / 3600.0), 1e-9);
}

static void test_core_hour_by_hand(void) {
  mf_prices p;
  char err[512] = "";
  int rc = mf_prices_load("results/prices/on-premise.txt", &p, err, sizeof err);
  CHECK_MSG(rc == 0, "%s", err);
  if (rc != 0) return;
  CHECK(p.kind == MF_PRICES_CORE_HOUR);
  mf_cost_input in = example_run();
  in.worker_threads = 2; /* 80 worker core-seconds */
  mf_cost c;
  mf_cost_compute(&p, &in, &c);
  CHECK_NEAR(c.core_seconds, 80.0 + 200.0, 1e-12);
  CHECK_NEAR(c.usd_serverless, 80.0 / 3600.0 * p.core_hour, 1e-15);
  CHECK_NEAR(c.usd_instances, 200.0 / 3600.0 * p.core_hour, 1e-15);
  CHECK_NEAR(c.ratio, 0.4, 1e-12);
}

static void test_baseline_costs_no_functions(void) {
  mf_prices p;
  char err[512];
  if (mf_prices_load("results/prices/aws-us-east-1.txt", &p, err, sizeof err) != 0) return;
  mf_cost_input in = {.peers = 2,
                      .peer_threads = 1,
                      .worker_threads = 1,
                      .worker_memory_mb = 1769,
                      .wall_seconds = 3600};
  mf_cost c;
  mf_cost_compute(&p, &in, &c);
  CHECK(c.usd_serverless == 0);
  CHECK_NEAR(c.usd_instances, 2 * 0.0464, 1e-12);
  CHECK(c.ratio == 0);
}

static void expect_refused(const char *text, const char *needle) {
  char path[] = "/tmp/mayfly-test-cost-XXXXXX";
  int fd = mkstemp(path);
  if (fd < 0) return;
  close(fd);
  write_file(path, text);
  mf_prices p;
  char err[512] = "";
  int rc = mf_prices_load(path, &p, err, sizeof err);
  CHECK_MSG(rc == -1, "accepted a bad table: %s", text);
  CHECK_MSG(strstr(err, needle) != NULL, "message '%s' lacks '%s'", err, needle);
  CHECK_MSG(strstr(err, path) != NULL, "message '%s' does not name the file", err);
  unlink(path);
}

static void test_bad_tables(void) {
  expect_refused("name x\ncurrency USD\ncore_hour abc\n", ":3: core_hour: 'abc' is not a price");
  expect_refused("name x\ncurrency USD\ncore_hour -1\n", "is not a price");
  expect_refused("name x\ncurrency USD\nbogus 1\n", ":3: unknown key 'bogus'");
  expect_refused("name x\ncurrency USD\ncore_hour\n", ":3: expected 'core_hour'");
  expect_refused("currency USD\ncore_hour 1\n", "needs 'name' and 'currency'");
  expect_refused("name x\ncurrency USD\nfunction_gb_second 1\n", "a cloud table needs");
  expect_refused(
      "name x\ncurrency USD\nfunction_gb_second 1\nfunction_requests_per_million 1\n"
      "transitions_per_1000 1\npeer_instance m5\ninstance t2 1\n",
      "peer_instance m5 has no");
  mf_prices p;
  char err[512] = "";
  CHECK(mf_prices_load("/nonexistent/prices.txt", &p, err, sizeof err) == -1);
  CHECK(strstr(err, "/nonexistent/prices.txt: cannot open") != NULL);
}

static void test_resolve(void) {
  char path[4096], err[512] = "";
  CHECK(mf_prices_resolve("aws-us-east-1", NULL, path, sizeof path, err, sizeof err) == 0);
  CHECK(strcmp(path, "results/prices/aws-us-east-1.txt") == 0);
  CHECK(mf_prices_resolve("no-such-table", NULL, path, sizeof path, err, sizeof err) == -1);
  CHECK(strstr(err, "no-such-table") != NULL);
}

int main(void) {
  /* Tests run from the repository root (tests/run.sh); the tables are read from there. */
  test_cloud_by_hand();
  test_core_hour_by_hand();
  test_baseline_costs_no_functions();
  test_bad_tables();
  test_resolve();
  return check_summary("test_cost");
}
