/* Unit test of worker placement across an allocation (bench/harness/placement.h): Slurm's
 * compressed host lists and per-node counts, Open MPI hostfiles, and the sharing of every node's
 * free slots among the peers under --placement local, remote and any, including the fairness
 * invariants on many generated allocations. Multi-node allocations are simulated by the
 * strings Slurm would put in the environment. Pure functions: no MPI run needed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench/harness/placement.h"
#include "tests/check.h"

static mf_hosts hosts; /* large: static */

static int expand(const char *list) {
  char err[256];
  hosts.count = 0;
  return mf_hostlist_expand(list, &hosts, err, sizeof err);
}

static int names_are(const char *joined) {
  char text[1024] = "";
  for (int h = 0; h < hosts.count; h++) {
    if (h) strcat(text, ",");
    strcat(text, hosts.name[h]);
  }
  if (strcmp(text, joined) != 0) fprintf(stderr, "  got '%s', want '%s'\n", text, joined);
  return strcmp(text, joined) == 0;
}

static void test_hostlist(void) {
  CHECK(expand("node[1-3],gpu05") == 0 && names_are("node1,node2,node3,gpu05"));
  CHECK(expand("n[01-03,7]") == 0 && names_are("n01,n02,n03,n7"));
  CHECK(expand("n[098-101]") == 0 && names_are("n098,n099,n100,n101"));
  CHECK(expand("r[1-2]n[01-02]") == 0 && names_are("r1n01,r1n02,r2n01,r2n02"));
  CHECK(expand("mfnode[1-3]") == 0 && names_are("mfnode1,mfnode2,mfnode3"));
  CHECK(expand("solo") == 0 && names_are("solo"));
  CHECK(expand("a,b[2],c") == 0 && names_are("a,b2,c"));
  CHECK(expand("rack1-node[1-2].cluster") == 0 &&
        names_are("rack1-node1.cluster,rack1-node2.cluster"));
  const char *bad[] = {"",   "n[1-", "n[3-1]", "n[a]",  "a,,b",  "a,",
                       ",a", "n[]",  "n[1-]",  "n[1,]", "n[[1]]"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    CHECK_MSG(expand(bad[i]) == -1, "'%s' was accepted", bad[i]);
  char err[256];
  hosts.count = 0;
  CHECK(mf_hostlist_expand("n[1-500],m[1-20]", &hosts, err, sizeof err) == -1 &&
        strstr(err, "more than"));
}

static void test_counts(void) {
  int c[8];
  CHECK(mf_counts_expand("2(x3),1", c, 8) == 4 && c[0] == 2 && c[1] == 2 && c[2] == 2 && c[3] == 1);
  CHECK(mf_counts_expand("72(x2),36", c, 8) == 3 && c[0] == 72 && c[2] == 36);
  CHECK(mf_counts_expand("4", c, 8) == 1 && c[0] == 4);
  CHECK(mf_counts_expand("1(x8)", c, 8) == 8);
  CHECK(mf_counts_expand("1(x9)", c, 8) == -1); /* more than fits */
  const char *bad[] = {"", "2(x0)", "2(x", "x", "2,", "2(x3", "2(y3)", "-1", "2 ,1"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    CHECK_MSG(mf_counts_expand(bad[i], c, 8) == -1, "'%s' was accepted", bad[i]);
}

static void test_slurm(void) {
  char err[256];
  CHECK(mf_allocation_from_slurm(NULL, "2", "2", &hosts, err, sizeof err) == 1);
  CHECK(mf_allocation_from_slurm("mfnode[1-3]", "2(x3)", "4(x3)", &hosts, err, sizeof err) == 0);
  CHECK(hosts.count == 3 && hosts.slots[0] == 2 && hosts.slots[2] == 2); /* tasks first */
  CHECK(mf_allocation_from_slurm("a,b[1-2]", NULL, "8,4(x2)", &hosts, err, sizeof err) == 0);
  CHECK(hosts.count == 3 && hosts.slots[0] == 8 && hosts.slots[1] == 4 && hosts.slots[2] == 4);
  CHECK(mf_allocation_from_slurm("a,b", NULL, NULL, &hosts, err, sizeof err) == 0);
  CHECK(hosts.count == 2 && hosts.slots[0] == -1); /* no counts: unknown */
  CHECK(mf_allocation_from_slurm("n[1-3]", "2(x2)", NULL, &hosts, err, sizeof err) == -1);
  CHECK(strstr(err, "SLURM_TASKS_PER_NODE") && strstr(err, "3 nodes"));
  CHECK(mf_allocation_from_slurm("n[1-", "2", NULL, &hosts, err, sizeof err) == -1);
  CHECK(mf_hosts_find(&hosts, "n1") == -1);
  mf_allocation_from_slurm("node1,node2", "1,1", NULL, &hosts, err, sizeof err);
  CHECK(mf_hosts_find(&hosts, "node2") == 1);
  CHECK(mf_hosts_find(&hosts, "node2.cluster.example") == 1); /* FQDN vs short name */
  CHECK(mf_hosts_find(&hosts, "node3") == -1);
}

static void test_hostfile(void) {
  char path[] = "/tmp/mayfly-test-hostfile.XXXXXX", err[256];
  int fd = mkstemp(path);
  CHECK(fd >= 0);
  FILE *f = fdopen(fd, "w");
  fprintf(f,
          "# the cluster\nalpha slots=4\n\nbeta   slots=2 max_slots=8 # comment\ngamma\n"
          "beta slots=1\n");
  fclose(f);
  hosts.count = 0;
  CHECK(mf_hostfile_read(path, &hosts, err, sizeof err) == 0);
  CHECK(hosts.count == 3 && strcmp(hosts.name[1], "beta") == 0);
  CHECK(hosts.slots[0] == 4 && hosts.slots[1] == 3 && hosts.slots[2] == 1);
  f = fopen(path, "w");
  fprintf(f, "alpha slots=4\nbeta slots=two\n");
  fclose(f);
  hosts.count = 0;
  CHECK(mf_hostfile_read(path, &hosts, err, sizeof err) == -1 && strstr(err, ":2:") &&
        strstr(err, "slots=two"));
  f = fopen(path, "w");
  fprintf(f, "# nothing\n");
  fclose(f);
  hosts.count = 0;
  CHECK(mf_hostfile_read(path, &hosts, err, sizeof err) == -1 && strstr(err, "names no host"));
  unlink(path);
  hosts.count = 0;
  CHECK(mf_hostfile_read(path, &hosts, err, sizeof err) == -1 && strstr(err, path));
}

static void make_hosts(int n, const int *slots) {
  hosts.count = n;
  for (int h = 0; h < n; h++) {
    snprintf(hosts.name[h], MF_HOST_NAME, "node%d", h + 1);
    hosts.slots[h] = slots[h];
  }
}

static int total(const int *share, int p, int n) {
  int sum = 0;
  for (int h = 0; h < n; h++) sum += share[p * n + h];
  return sum;
}

static void test_share_examples(void) {
  int share[64];
  /* sbatch -N 3 --ntasks-per-node=2, both peers on node 1: remote uses nodes 2 and 3, one each */
  make_hosts(3, (int[]){2, 2, 2});
  int on_first[] = {0, 0};
  CHECK(mf_placement_share(MF_PLACEMENT_REMOTE, &hosts, 2, on_first, share) == 2);
  CHECK(share[0] == 0 && share[1] == 2 && share[2] == 0); /* peer 0: node2 x2 */
  CHECK(share[3] == 0 && share[4] == 0 && share[5] == 2); /* peer 1: node3 x2 */
  /* any: node 1 has no free slot, the same two nodes */
  CHECK(mf_placement_share(MF_PLACEMENT_ANY, &hosts, 2, on_first, share) == 3);
  CHECK(share[1] == 2 && share[5] == 2 && share[0] == 0 && share[3] == 0);
  /* local: nothing free beside the peers */
  CHECK(mf_placement_share(MF_PLACEMENT_LOCAL, &hosts, 2, on_first, share) == 1);
  CHECK(total(share, 0, 3) == 0 && total(share, 1, 3) == 0);

  /* every node holds a peer: remote cannot be satisfied */
  int spread[] = {0, 1, 2};
  CHECK(mf_placement_share(MF_PLACEMENT_REMOTE, &hosts, 3, spread, share) == 0);
  CHECK(total(share, 0, 3) == 0);

  /* any, a peer on each of 3 nodes with 4 slots: each peer's 3 slots on its own node */
  make_hosts(3, (int[]){4, 4, 4});
  CHECK(mf_placement_share(MF_PLACEMENT_ANY, &hosts, 3, spread, share) == 3);
  for (int p = 0; p < 3; p++) CHECK_MSG(share[p * 3 + p] == 3, "peer %d", p);

  /* any, 2 peers on node 1 (4 slots), node 2 (4 slots): 6 free, 3 each, node 2 not overfilled */
  make_hosts(2, (int[]){4, 4});
  CHECK(mf_placement_share(MF_PLACEMENT_ANY, &hosts, 2, on_first, share) == 2);
  CHECK(total(share, 0, 2) == 3 && total(share, 1, 2) == 3);
  CHECK(share[0] + share[2] == 2 && share[1] + share[3] == 4);

  /* any, 3 peers on node 1: 5 free slots give 1 each (equal shares, never 2-2-1) */
  int three[] = {0, 0, 0};
  make_hosts(2, (int[]){4, 4});
  mf_placement_share(MF_PLACEMENT_ANY, &hosts, 3, three, share);
  for (int p = 0; p < 3; p++) CHECK_MSG(total(share, p, 2) == 1, "peer %d", p);

  /* local: each node's free slots split among its own peers, rounded down */
  make_hosts(2, (int[]){5, 3});
  int mixed[] = {0, 0, 1};
  CHECK(mf_placement_share(MF_PLACEMENT_LOCAL, &hosts, 3, mixed, share) == 2);
  CHECK(share[0] == 1 && share[2] == 1 && share[5] == 2 && share[1] == 0 && share[4] == 0);

  /* unknown slots give nothing */
  make_hosts(2, (int[]){-1, -1});
  CHECK(mf_placement_share(MF_PLACEMENT_ANY, &hosts, 2, on_first, share) == 2);
  CHECK(total(share, 0, 2) == 0 && total(share, 1, 2) == 0);

  CHECK(mf_placement_parse("any") == MF_PLACEMENT_ANY);
  CHECK(mf_placement_parse("remote") == MF_PLACEMENT_REMOTE);
  CHECK(mf_placement_parse("local") == MF_PLACEMENT_LOCAL);
  CHECK(mf_placement_parse("elsewhere") == -1);
}

/* The invariants on many allocations: no node gives more than its free slots; remote never uses
 * a node with a peer; remote/any give every peer the same total and leave fewer free eligible
 * slots than peers (another fair pass was impossible); local stays on the peer's node. */
static void test_share_invariants(void) {
  unsigned seed = 12345;
  int share[16 * 8], peer_host[16], on[8];
  for (int trial = 0; trial < 3000; trial++) {
    seed = seed * 1103515245u + 12345u;
    int n = 1 + (int)(seed >> 16) % 8, peers = 1 + (int)(seed >> 8) % 12;
    int slots[8];
    for (int h = 0; h < n; h++) {
      seed = seed * 1103515245u + 12345u;
      slots[h] = (int)(seed >> 16) % 9 - 1; /* -1 .. 7 */
    }
    make_hosts(n, slots);
    memset(on, 0, sizeof on);
    for (int p = 0; p < peers; p++) {
      seed = seed * 1103515245u + 12345u;
      peer_host[p] = (int)(seed >> 16) % n;
      on[peer_host[p]]++;
    }
    for (int kind = 0; kind < 3; kind++) {
      mf_placement_share((mf_placement_kind)kind, &hosts, peers, peer_host, share);
      int left_eligible = 0, ok = 1;
      for (int h = 0; h < n; h++) {
        int free_slots = slots[h] - on[h] > 0 ? slots[h] - on[h] : 0, used = 0;
        for (int p = 0; p < peers; p++) {
          used += share[p * n + h];
          if (kind == MF_PLACEMENT_LOCAL && h != peer_host[p] && share[p * n + h]) ok = 0;
        }
        if (used > free_slots) ok = 0;
        if (kind == MF_PLACEMENT_REMOTE && on[h] > 0 && used > 0) ok = 0;
        if (kind == MF_PLACEMENT_ANY || (kind == MF_PLACEMENT_REMOTE && on[h] == 0))
          left_eligible += free_slots - used;
      }
      if (kind != MF_PLACEMENT_LOCAL) {
        for (int p = 1; p < peers; p++)
          if (total(share, p, n) != total(share, 0, n)) ok = 0;
        if (left_eligible >= peers) ok = 0;
      }
      CHECK_MSG(ok, "trial %d, placement %s, %d nodes, %d peers", trial,
                mf_placement_name((mf_placement_kind)kind), n, peers);
    }
  }
}

int main(void) {
  test_hostlist();
  test_counts();
  test_slurm();
  test_hostfile();
  test_share_examples();
  test_share_invariants();
  return check_summary("test_placement");
}
