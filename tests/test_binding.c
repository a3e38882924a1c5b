/* Unit test of the placement plan (bench/harness/binding.h): the shapes the brief names (1 peer and
 * 2 workers on 2 cores, 2 peers on 2 cores, more peers than cores, --bind none), peers with several
 * threads, and a sweep over node shapes asserting the plan's invariants: every bound process has
 * cores of its own inside the node, peers are bound exactly when they fit, and a worker left
 * unbound is always explained. Then the worker side: a malformed plan is refused, workers take
 * distinct slots, and each reports the cpus it got. */
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench/harness/binding.h"
#include "tests/check.h"

static mf_bind_plan plan_for(int cores, int peers, int rank, int workers, int threads) {
  mf_bind_request request = {.enabled = 1,
                             .cores = cores,
                             .node_peers = peers,
                             .local_rank = rank,
                             .peer_cores = threads,
                             .workers = workers,
                             .worker_cores = threads};
  mf_bind_plan plan;
  mf_bind_plan_make(&request, &plan);
  return plan;
}

static void test_brief_shapes(void) {
  /* 1 peer + 2 workers on 2 cores: peer on core 0, worker 0 on core 1, worker 1 shares. */
  mf_bind_plan p = plan_for(2, 1, 0, 2, 1);
  CHECK(p.peer_core == 0);
  CHECK(strcmp(p.peer_note, "bound") == 0);
  CHECK(p.workers_bound == 1 && p.first_worker_core == 1 && p.free_cores == 1);
  CHECK_MSG(strstr(p.worker_note, "unbound: no free core") == p.worker_note, "%s", p.worker_note);
  CHECK(strstr(p.worker_note, "shares") != NULL);

  /* 2 peers on 2 cores: cores 0 and 1, no core left for workers. */
  for (int rank = 0; rank < 2; rank++) {
    p = plan_for(2, 2, rank, 2, 1);
    CHECK(p.peer_core == rank);
    CHECK(p.workers_bound == 0 && p.first_worker_core == -1 && p.free_cores == 0);
    CHECK(strncmp(p.worker_note, "unbound: no free core", 21) == 0);
  }

  /* 3 peers on 2 cores: nobody is bound, and the note says why. */
  p = plan_for(2, 3, 2, 2, 1);
  CHECK(p.peer_core == -1 && p.workers_bound == 0);
  CHECK_MSG(strcmp(p.peer_note, "unbound: 3 peers x 1 thread need 3 cores, the node has 2") == 0,
            "%s", p.peer_note);
  CHECK(strncmp(p.worker_note, "unbound:", 8) == 0);

  /* --bind none: nothing bound, recorded as such. */
  mf_bind_request none = {
      .enabled = 0, .cores = 64, .node_peers = 1, .peer_cores = 1, .workers = 2, .worker_cores = 1};
  mf_bind_plan_make(&none, &p);
  CHECK(p.peer_core == -1 && p.workers_bound == 0);
  CHECK(strcmp(p.peer_note, "unbound: --bind none") == 0);
  CHECK(strcmp(p.worker_note, "unbound: --bind none") == 0);

  /* Baseline (no workers): no worker note. */
  p = plan_for(2, 1, 0, 0, 1);
  CHECK(p.peer_core == 0 && p.workers_bound == 0 && p.worker_note[0] == '\0');
}

static void test_larger_nodes(void) {
  /* 8 cores, 2 peers with 3 workers each: peers 0 and 1, workers 2-4 and 5-7, all bound. */
  mf_bind_plan a = plan_for(8, 2, 0, 3, 1), b = plan_for(8, 2, 1, 3, 1);
  CHECK(a.peer_core == 0 && b.peer_core == 1);
  CHECK(a.workers_bound == 3 && a.first_worker_core == 2);
  CHECK(b.workers_bound == 3 && b.first_worker_core == 5);
  CHECK(a.worker_note[0] == '\0' && b.worker_note[0] == '\0');

  /* 7 cores, 2 peers, 4 workers each: 5 free cores split 2 + 3. */
  a = plan_for(7, 2, 0, 4, 1), b = plan_for(7, 2, 1, 4, 1);
  CHECK(a.first_worker_core == 2 && a.workers_bound == 2);
  CHECK(b.first_worker_core == 4 && b.workers_bound == 3);

  /* Two threads each: 8 cores, 2 peers (0-1, 2-3), one 2-core worker each (4-5, 6-7). */
  a = plan_for(8, 2, 0, 2, 2), b = plan_for(8, 2, 1, 2, 2);
  CHECK(a.peer_core == 0 && b.peer_core == 2);
  CHECK(a.workers_bound == 1 && a.first_worker_core == 4);
  CHECK(b.workers_bound == 1 && b.first_worker_core == 6);
  CHECK(strstr(a.worker_note, "2 threads per worker") != NULL);
}

/* Every node shape up to 16 cores: bound ranges are disjoint and inside the node. */
static void test_invariants(void) {
  int violations = 0, shapes = 0;
  for (int cores = 0; cores <= 16; cores++)
    for (int peers = 1; peers <= 6; peers++)
      for (int workers = 0; workers <= 5; workers++)
        for (int threads = 1; threads <= 3; threads++) {
          int owner[16];
          for (int c = 0; c < 16; c++) owner[c] = -1;
          int fits = peers * threads <= cores;
          for (int rank = 0; rank < peers; rank++) {
            mf_bind_plan p = plan_for(cores, peers, rank, workers, threads);
            shapes++;
            violations += (p.peer_core >= 0) != fits;
            violations += p.workers_bound < 0 || p.workers_bound > workers;
            violations += p.workers_bound < workers && strncmp(p.worker_note, "unbound", 7) != 0;
            /* a peer's slice holds as many workers as fit, up to its pool */
            int fit = p.free_cores / threads;
            violations += fits && p.workers_bound != (fit < workers ? fit : workers);
            int first[1 + 5], count = 0;
            if (p.peer_core >= 0) first[count++] = p.peer_core;
            for (int w = 0; w < p.workers_bound; w++)
              first[count++] = p.first_worker_core + w * threads;
            for (int i = 0; i < count; i++)
              for (int c = first[i]; c < first[i] + threads; c++) {
                if (c < 0 || c >= cores || owner[c] != -1) {
                  violations++;
                  continue;
                }
                owner[c] = rank * 10 + i;
              }
          }
        }
  CHECK_MSG(violations == 0, "%d violations over %d plans", violations, shapes);
  CHECK(shapes > 1000);
}

static int read_line(const char *path, char *out, size_t size) {
  FILE *f = fopen(path, "r");
  if (!f) return -1;
  int ok = fgets(out, (int)size, f) != NULL;
  fclose(f);
  out[strcspn(out, "\n")] = '\0';
  return ok ? 0 : -1;
}

static void test_worker_side(void) {
  char err[512] = "", argument[512], path[512], line[512];
  CHECK(mf_binding_worker_apply("1;x", 0, err, sizeof err) == -1);
  CHECK_MSG(strstr(err, "--bind-cpus") != NULL, "%s", err);
  CHECK(mf_binding_worker_apply("2-1", 0, err, sizeof err) == -1);
  CHECK(mf_binding_worker_apply("none", 0, err, sizeof err) == 0); /* no directory: no report */

  char dir[] = "/tmp/mayfly-test-binding.XXXXXX";
  CHECK(mkdtemp(dir) != NULL);
  /* Two workers of one peer (here: one process claiming twice): slot 0 bound to core 0,
   * slot 1 past the plan's one entry, so unbound over the whole node. */
  snprintf(argument, sizeof argument, "0@%s", dir);
  CHECK(mf_binding_worker_apply(argument, 7, err, sizeof err) == 0);
  snprintf(path, sizeof path, "%s/worker-0", dir);
  CHECK(read_line(path, line, sizeof line) == 0);
  CHECK_MSG(strstr(line, ":cpus=0:bound") != NULL, "%s", line);
  CHECK(mf_binding_worker_apply(argument, 7, err, sizeof err) == 0);
  snprintf(path, sizeof path, "%s/worker-1", dir);
  CHECK(read_line(path, line, sizeof line) == 0);
  CHECK_MSG(strstr(line, ":unbound: no free core") != NULL, "%s", line);
  CHECK_MSG(strstr(line, ":cpus=0:") == NULL, "unbound worker still on core 0: %s", line);
  mf_binding_worker_release();

  /* A worker on another node than its peer finds no slot directory: it stays unbound. */
  cpu_set_t before, after;
  sched_getaffinity(0, sizeof before, &before);
  CHECK(mf_binding_worker_apply("0@/nonexistent/mayfly-bind", 0, err, sizeof err) == 0);
  sched_getaffinity(0, sizeof after, &after);
  CHECK(CPU_EQUAL(&before, &after));

  /* --bind none: reported, not touched. */
  snprintf(argument, sizeof argument, "none@%s", dir);
  CHECK(mf_binding_worker_apply(argument, 0, err, sizeof err) == 0);
  mf_binding_worker_release();
  char cleanup[600];
  snprintf(cleanup, sizeof cleanup, "rm -rf '%s'", dir);
  CHECK(system(cleanup) == 0);
}

int main(void) {
  test_brief_shapes();
  test_larger_nodes();
  test_invariants();
  test_worker_side();
  return check_summary("test_binding");
}
