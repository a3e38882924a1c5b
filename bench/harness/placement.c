/* Worker placement across the allocation (see placement.h): parsers of Slurm's host lists and
 * per-node counts and of Open MPI hostfiles, the fair sharing of free slots among peers, and
 * the per-run state the pool engine (mode_cold.c) asks every round. */
#include "bench/harness/placement.h"

#include <ctype.h>
#include <errno.h>
#include <hwloc.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *const kind_names[] = {"local", "remote", "any"};

int mf_placement_parse(const char *text) {
  for (int k = 0; k < 3; k++)
    if (text && strcmp(text, kind_names[k]) == 0) return k;
  return -1;
}

const char *mf_placement_name(mf_placement_kind kind) {
  return kind >= 0 && kind < 3 ? kind_names[kind] : "?";
}

/* ---- parsers ---- */

static int add_host(mf_hosts *out, const char *name, size_t length, char *err, size_t errlen) {
  if (length == 0 || length >= MF_HOST_NAME) {
    snprintf(err, errlen, "host name '%.*s' is empty or longer than %d characters",
             (int)(length < 80 ? length : 80), name, MF_HOST_NAME - 1);
    return -1;
  }
  if (out->count == MF_HOSTS_MAX) {
    snprintf(err, errlen, "more than %d nodes", MF_HOSTS_MAX);
    return -1;
  }
  memcpy(out->name[out->count], name, length);
  out->name[out->count][length] = '\0';
  out->slots[out->count++] = -1;
  return 0;
}

/* Expands one item ("pre[1-3,5]mid[01-02]post") onto prefix (already expanded text). */
static int expand_item(const char *prefix, const char *item, size_t length, mf_hosts *out,
                       char *err, size_t errlen) {
  const char *open = memchr(item, '[', length);
  char head[MF_HOST_NAME * 2];
  if (!open) {
    int n = snprintf(head, sizeof head, "%s%.*s", prefix, (int)length, item);
    return add_host(out, head, n < 0 ? 0 : (size_t)n, err, errlen);
  }
  const char *close = memchr(open, ']', length - (size_t)(open - item));
  if (!close || memchr(open + 1, '[', (size_t)(close - open - 1))) {
    snprintf(err, errlen, "'%.*s': unbalanced '['", (int)length, item);
    return -1;
  }
  int n = snprintf(head, sizeof head, "%s%.*s", prefix, (int)(open - item), item);
  if (n < 0 || n >= MF_HOST_NAME) {
    snprintf(err, errlen, "'%.*s': host name too long", (int)length, item);
    return -1;
  }
  if (close == open + 1 || close[-1] == ',') {
    snprintf(err, errlen, "'%.*s': an empty range in '[]'", (int)length, item);
    return -1;
  }
  const char *rest = close + 1;
  const size_t rest_length = length - (size_t)(rest - item);
  for (const char *p = open + 1; p < close;) {
    const char *end = memchr(p, ',', (size_t)(close - p));
    if (!end) end = close;
    char *stop = NULL;
    if (!isdigit((unsigned char)*p)) goto bad_range;
    long low = strtol(p, &stop, 10), high = low;
    int width = (int)(stop - p);
    if (stop < end && *stop == '-') {
      const char *second = stop + 1;
      if (!isdigit((unsigned char)*second)) goto bad_range;
      high = strtol(second, &stop, 10);
    }
    if (stop != end || high < low || high - low >= MF_HOSTS_MAX) goto bad_range;
    for (long v = low; v <= high; v++) {
      char name[MF_HOST_NAME * 2 + 32];
      snprintf(name, sizeof name, "%s%0*ld", head, width, v);
      if (strlen(name) >= MF_HOST_NAME) {
        snprintf(err, errlen, "'%.*s': host name too long", (int)length, item);
        return -1;
      }
      if (expand_item(name, rest, rest_length, out, err, errlen) != 0) return -1;
    }
    p = end < close ? end + 1 : close;
    continue;
  bad_range:
    snprintf(err, errlen, "'%.*s': '%.*s' is not a number or a range A-B", (int)length, item,
             (int)(end - p), p);
    return -1;
  }
  return 0;
}

int mf_hostlist_expand(const char *list, mf_hosts *out, char *err, size_t errlen) {
  if (!list || !*list) {
    snprintf(err, errlen, "empty host list");
    return -1;
  }
  const char *p = list;
  while (*p) {
    const char *q = p; /* the item ends at a comma outside brackets */
    int depth = 0;
    while (*q && (depth > 0 || *q != ',')) {
      if (*q == '[') depth++;
      if (*q == ']') depth--;
      q++;
    }
    if (q == p) {
      snprintf(err, errlen, "'%s': empty entry", list);
      return -1;
    }
    char why[160];
    if (expand_item("", p, (size_t)(q - p), out, why, sizeof why) != 0) {
      snprintf(err, errlen, "host list '%.100s': %s", list, why);
      return -1;
    }
    p = *q ? q + 1 : q;
    if (*q && !*p) {
      snprintf(err, errlen, "'%s': empty entry", list);
      return -1;
    }
  }
  return 0;
}

int mf_counts_expand(const char *text, int *counts, int max) {
  if (!text || !*text) return -1;
  int n = 0;
  const char *p = text;
  while (*p) {
    char *end = NULL;
    if (!isdigit((unsigned char)*p)) return -1;
    long value = strtol(p, &end, 10), repeat = 1;
    p = end;
    if (strncmp(p, "(x", 2) == 0) {
      if (!isdigit((unsigned char)p[2])) return -1;
      repeat = strtol(p + 2, &end, 10);
      if (*end != ')' || repeat < 1) return -1;
      p = end + 1;
    }
    if (value > 1 << 24 || repeat > max - n) return -1;
    for (long r = 0; r < repeat; r++) counts[n++] = (int)value;
    if (*p == ',' && p[1])
      p++;
    else if (*p)
      return -1;
  }
  return n;
}

int mf_allocation_from_slurm(const char *nodelist, const char *tasks_per_node,
                             const char *cpus_per_node, mf_hosts *out, char *err, size_t errlen) {
  out->count = 0;
  if (!nodelist || !*nodelist) return 1;
  if (mf_hostlist_expand(nodelist, out, err, errlen) != 0) return -1;
  const char *names[] = {"SLURM_TASKS_PER_NODE", "SLURM_JOB_CPUS_PER_NODE"};
  const char *values[] = {tasks_per_node, cpus_per_node};
  for (int i = 0; i < 2; i++) {
    if (!values[i] || !*values[i]) continue;
    int n = mf_counts_expand(values[i], out->slots, MF_HOSTS_MAX);
    if (n != out->count) {
      snprintf(err, errlen,
               "%s='%.60s' does not give one count for each of the %d nodes of '%.80s'", names[i],
               values[i], out->count, nodelist);
      return -1;
    }
    return 0;
  }
  return 0; /* slots unknown (-1) */
}

int mf_hosts_find(const mf_hosts *hosts, const char *host) {
  for (int h = 0; h < hosts->count; h++)
    if (strcmp(hosts->name[h], host) == 0) return h;
  size_t short_length = strcspn(host, ".");
  for (int h = 0; h < hosts->count; h++) {
    size_t length = strcspn(hosts->name[h], ".");
    if (length == short_length && strncmp(hosts->name[h], host, length) == 0) return h;
  }
  return -1;
}

int mf_hostfile_read(const char *path, mf_hosts *out, char *err, size_t errlen) {
  FILE *file = fopen(path, "r");
  if (!file) {
    snprintf(err, errlen, "%s: cannot open the hostfile: %s", path, strerror(errno));
    return -1;
  }
  char line[512];
  int number = 0, rc = 0;
  while (rc == 0 && fgets(line, sizeof line, file)) {
    number++;
    line[strcspn(line, "#\n")] = '\0';
    char *save = NULL, *host = strtok_r(line, " \t", &save);
    if (!host) continue;
    long slots = 1;
    for (char *word; (word = strtok_r(NULL, " \t", &save));) {
      if (strncmp(word, "slots=", 6) == 0) {
        char *end = NULL;
        slots = strtol(word + 6, &end, 10);
        if (end == word + 6 || *end || slots < 0 || slots > 1 << 24) {
          snprintf(err, errlen, "%s:%d: '%s' is not slots=N", path, number, word);
          rc = -1;
        }
      }
    }
    if (rc != 0) break;
    int h = mf_hosts_find(out, host);
    if (h < 0) {
      char why[160];
      if (add_host(out, host, strlen(host), why, sizeof why) != 0) {
        snprintf(err, errlen, "%s:%d: %s", path, number, why);
        rc = -1;
        break;
      }
      h = out->count - 1;
      out->slots[h] = 0;
    }
    out->slots[h] += (int)slots;
  }
  fclose(file);
  if (rc == 0 && out->count == 0) {
    snprintf(err, errlen, "%s: the hostfile names no host", path);
    rc = -1;
  }
  return rc;
}

/* ---- sharing ---- */

int mf_placement_share(mf_placement_kind kind, const mf_hosts *hosts, int peers,
                       const int *peer_host, int *share) {
  const int n = hosts->count;
  int *on = calloc((size_t)n + 1, sizeof *on), *left = calloc((size_t)n + 1, sizeof *left);
  int *taken = calloc((size_t)peers + 1, sizeof *taken);
  memset(share, 0, sizeof *share * (size_t)peers * (size_t)n);
  if (!on || !left || !taken) {
    free(on), free(left), free(taken);
    return 0;
  }
  for (int p = 0; p < peers; p++)
    if (peer_host[p] >= 0 && peer_host[p] < n) on[peer_host[p]]++;
  int usable = 0;
  for (int h = 0; h < n; h++) {
    int free_slots = hosts->slots[h] - on[h];
    left[h] = hosts->slots[h] < 0 || free_slots < 0 ? 0 : free_slots;
    if (kind == MF_PLACEMENT_ANY || (kind == MF_PLACEMENT_REMOTE && on[h] == 0) ||
        (kind == MF_PLACEMENT_LOCAL && on[h] > 0))
      usable++;
  }
  if (kind == MF_PLACEMENT_LOCAL) { /* a node's free slots split evenly among its peers */
    for (int p = 0; p < peers; p++)
      if (peer_host[p] >= 0 && peer_host[p] < n)
        share[(size_t)p * n + peer_host[p]] = left[peer_host[p]] / on[peer_host[p]];
  } else {
    /* Passes: each peer takes one slot on the eligible node with the most left (its own node,
     * then the lowest index, on a tie); a pass that cannot serve every peer is undone, so all
     * peers end with the same number of slots. */
    for (;;) {
      int complete = 1;
      for (int p = 0; p < peers && complete; p++) {
        int best = -1;
        for (int h = 0; h < n; h++) {
          if (left[h] <= 0 || (kind == MF_PLACEMENT_REMOTE && on[h] > 0)) continue;
          if (best < 0 || left[h] > left[best] || (left[h] == left[best] && h == peer_host[p]))
            best = h;
        }
        if (best < 0) {
          complete = 0;
          for (int q = 0; q < p; q++) { /* undo this pass's slots of the earlier peers */
            share[(size_t)q * n + taken[q]]--;
            left[taken[q]]++;
          }
          break;
        }
        taken[p] = best;
        left[best]--;
        share[(size_t)p * n + best]++;
      }
      if (!complete) break;
    }
  }
  free(on), free(left), free(taken);
  return usable;
}

/* ---- the run's placement (MPI side) ---- */

static struct {
  int active;
  mf_placement_kind kind;
  int rank, peers;
  mf_hosts *hosts;  /* the allocation, then any peer's node it did not name */
  char source[256]; /* where the allocation came from */
  int *peer_host;   /* [peers] index into hosts */
  int *peer_cores;  /* [peers] hwloc cores of each peer's node */
  int *share;       /* [peers * hosts] this round's shares */
  int *free_slots;  /* [hosts] this round's slots minus peers (-1 unknown) */
  int next;         /* round robin cursor past the share */
} run;

static int node_cores(void) {
  int cores = -1;
  hwloc_topology_t topology;
  if (hwloc_topology_init(&topology) != 0) return -1;
  hwloc_topology_set_all_types_filter(topology, HWLOC_TYPE_FILTER_KEEP_NONE);
  hwloc_topology_set_type_filter(topology, HWLOC_OBJ_CORE, HWLOC_TYPE_FILTER_KEEP_ALL);
  if (hwloc_topology_load(topology) == 0)
    cores = hwloc_get_nbobjs_by_type(topology, HWLOC_OBJ_CORE);
  hwloc_topology_destroy(topology);
  return cores > 0 ? cores : -1;
}

/* The allocation from the environment: Slurm, else the hostfile mpirun was given through the
 * environment, else nothing (count 0). */
static int read_allocation(mf_hosts *out, char *source, size_t size, char *err, size_t errlen) {
  out->count = 0;
  const char *nodelist = getenv("SLURM_JOB_NODELIST");
  if (!nodelist || !*nodelist) nodelist = getenv("SLURM_NODELIST");
  const char *tasks = getenv("SLURM_TASKS_PER_NODE"), *cpus = getenv("SLURM_JOB_CPUS_PER_NODE");
  int rc = mf_allocation_from_slurm(nodelist, tasks, cpus, out, err, errlen);
  if (rc < 0) return -1;
  if (rc == 0) {
    snprintf(source, size, "Slurm: SLURM_JOB_NODELIST=%.80s, %s=%.60s", nodelist,
             tasks && *tasks ? "SLURM_TASKS_PER_NODE" : "SLURM_JOB_CPUS_PER_NODE",
             tasks && *tasks ? tasks
             : cpus          ? cpus
                             : "unset");
    return 0;
  }
  const char *hostfile = getenv("OMPI_MCA_orte_default_hostfile");
  if (hostfile && *hostfile) {
    if (mf_hostfile_read(hostfile, out, err, errlen) != 0) return -1;
    snprintf(source, size, "hostfile %.200s (OMPI_MCA_orte_default_hostfile)", hostfile);
    return 0;
  }
  snprintf(source, size, "the peers' nodes (no Slurm allocation, no hostfile; hwloc cores)");
  return 0;
}

/* Adds the peers' nodes the allocation did not name, and gives nodes of unknown slots the cores
 * their peers found (identical on every rank: from gathered values). */
static int complete_hosts(mf_hosts *hosts, const char *names, char *err, size_t errlen) {
  for (int p = 0; p < run.peers; p++) {
    const char *name = names + (size_t)p * MF_HOST_NAME;
    int h = mf_hosts_find(hosts, name);
    if (h < 0) {
      if (add_host(hosts, name, strlen(name), err, errlen) != 0) return -1;
      h = hosts->count - 1;
    }
    run.peer_host[p] = h;
  }
  for (int p = 0; p < run.peers; p++)
    if (hosts->slots[run.peer_host[p]] < 0) hosts->slots[run.peer_host[p]] = run.peer_cores[p];
  return 0;
}

/* Ranks that mpirun starts on the other nodes of a Slurm job run inside their node's orted step
 * (an srun), whose SLURM_TASKS_PER_NODE, SLURM_NTASKS and SLURM_NPROCS describe that step (one
 * task on one node), not the job; only the ranks beside mpirun, in the batch step, see the
 * job's. The lowest rank outside any step hands its values to the ranks inside one, so that
 * every peer reads the same allocation now and in every later re-read (--workers auto too).
 * Measured on the virtual cluster: a peer on mfnode2 of -N 2 --ntasks-per-node=3 saw
 * SLURM_TASKS_PER_NODE=1 and SLURM_STEP_ID=0 beside SLURM_JOB_NODELIST=mfnode[1-2]. */
static void share_job_view(MPI_Comm comm) {
  static const char *const names[] = {"SLURM_JOB_NODELIST",      "SLURM_NODELIST",
                                      "SLURM_TASKS_PER_NODE",    "SLURM_NTASKS",
                                      "SLURM_JOB_CPUS_PER_NODE", "SLURM_NPROCS"};
  enum { COUNT = sizeof names / sizeof names[0], VALUE = 4096 };
  const int in_step = getenv("SLURM_STEP_ID") || getenv("SLURM_STEPID");
  int candidate = in_step || !getenv("SLURM_JOB_ID") ? INT_MAX : run.rank, source = INT_MAX;
  MPI_Allreduce(&candidate, &source, 1, MPI_INT, MPI_MIN, comm);
  if (source == INT_MAX) return; /* no rank outside a step: each keeps its own view */
  static char values[COUNT][VALUE];
  int set[COUNT] = {0};
  if (run.rank == source)
    for (int i = 0; i < COUNT; i++) {
      const char *v = getenv(names[i]);
      set[i] = v && strlen(v) < VALUE;
      snprintf(values[i], VALUE, "%s", set[i] ? v : "");
    }
  MPI_Bcast(set, COUNT, MPI_INT, source, comm);
  MPI_Bcast(values, COUNT * VALUE, MPI_CHAR, source, comm);
  if (!in_step) return;
  for (int i = 0; i < COUNT; i++) {
    if (set[i])
      setenv(names[i], values[i], 1);
    else
      unsetenv(names[i]);
  }
}

void mf_placement_cleanup(void) {
  free(run.hosts), free(run.peer_host), free(run.peer_cores), free(run.share);
  free(run.free_slots);
  memset(&run, 0, sizeof run);
}

int mf_placement_setup(MPI_Comm comm, const char *placement, char *err, size_t errlen) {
  mf_placement_cleanup();
  MPI_Comm_rank(comm, &run.rank);
  MPI_Comm_size(comm, &run.peers);
  share_job_view(comm);
  int kind = mf_placement_parse(placement);
  run.kind = kind < 0 ? MF_PLACEMENT_LOCAL : (mf_placement_kind)kind;
  char host[MF_HOST_NAME] = "?";
  gethostname(host, sizeof host);
  host[sizeof host - 1] = '\0';
  int cores = node_cores();
  char *names = calloc((size_t)run.peers, MF_HOST_NAME);
  run.peer_host = calloc((size_t)run.peers, sizeof *run.peer_host);
  run.peer_cores = calloc((size_t)run.peers, sizeof *run.peer_cores);
  run.hosts = calloc(1, sizeof *run.hosts);
  int ok = names && run.peer_host && run.peer_cores && run.hosts;
  if (ok) {
    MPI_Allgather(host, MF_HOST_NAME, MPI_CHAR, names, MF_HOST_NAME, MPI_CHAR, comm);
    MPI_Allgather(&cores, 1, MPI_INT, run.peer_cores, 1, MPI_INT, comm);
  }
  if (!ok)
    snprintf(err, errlen, "out of memory");
  else if (read_allocation(run.hosts, run.source, sizeof run.source, err, errlen) != 0 ||
           complete_hosts(run.hosts, names, err, errlen) != 0)
    ok = 0;
  free(names);
  if (ok) {
    const int n = run.hosts->count;
    run.share = calloc((size_t)run.peers * n + 1, sizeof *run.share);
    run.free_slots = calloc((size_t)n + 1, sizeof *run.free_slots);
    ok = run.share && run.free_slots;
    if (!ok) snprintf(err, errlen, "out of memory");
  }
  if (ok && mf_placement_share(run.kind, run.hosts, run.peers, run.peer_host, run.share) == 0) {
    snprintf(err, errlen,
             "--placement %s: every node of the allocation holds a peer, so no worker can run on "
             "a node without one (allocation: %s; nodes: %d); use --placement any or local, or "
             "allocate more nodes",
             mf_placement_name(run.kind), run.source, run.hosts->count);
    ok = 0;
  }
  int all = 0;
  MPI_Allreduce(&ok, &all, 1, MPI_INT, MPI_MIN, comm);
  if (!all && ok) snprintf(err, errlen, "--placement: another peer could not read the allocation");
  run.active = all;
  return all ? 0 : -1;
}

int mf_placement_round(void) {
  if (!run.active) return -1;
  const int n = run.hosts->count;
  /* Re-read: a hostfile or a grown allocation may give other counts; same nodes only. */
  mf_hosts *fresh = malloc(sizeof *fresh);
  char source[sizeof run.source], err[256];
  if (fresh && read_allocation(fresh, source, sizeof source, err, sizeof err) == 0) {
    for (int h = 0; h < fresh->count; h++) {
      int at = mf_hosts_find(run.hosts, fresh->name[h]);
      if (at >= 0 && fresh->slots[h] >= 0) run.hosts->slots[at] = fresh->slots[h];
    }
  }
  free(fresh);
  mf_placement_share(run.kind, run.hosts, run.peers, run.peer_host, run.share);
  int known = 0, total = 0;
  for (int h = 0; h < n; h++) {
    int on = 0;
    for (int p = 0; p < run.peers; p++) on += run.peer_host[p] == h;
    run.free_slots[h] = run.hosts->slots[h] < 0    ? -1
                        : run.hosts->slots[h] > on ? run.hosts->slots[h] - on
                                                   : 0;
    known |= run.hosts->slots[h] >= 0;
    total += run.share[(size_t)run.rank * n + h];
  }
  return known ? total : -1;
}

const mf_hosts *mf_placement_hosts(void) {
  return run.active ? run.hosts : NULL;
}

void mf_placement_free_slots(int *out) {
  if (run.active) memcpy(out, run.free_slots, sizeof *out * (size_t)run.hosts->count);
}

int mf_placement_places(void) {
  return run.active && run.hosts->count > 1;
}

int mf_placement_off_node(void) {
  return mf_placement_places() && run.kind != MF_PLACEMENT_LOCAL;
}

static int eligible(int h) {
  if (run.kind == MF_PLACEMENT_ANY) return 1;
  int on = 0;
  for (int p = 0; p < run.peers; p++) on += run.peer_host[p] == h;
  return run.kind == MF_PLACEMENT_REMOTE ? on == 0 : h == run.peer_host[run.rank];
}

int mf_placement_choose(int workers, const int *alive_on, int *hosts, int *counts) {
  const int n = run.hosts->count;
  int *want = calloc((size_t)n + 1, sizeof *want);
  if (!want) return 0;
  int left = workers;
  for (int h = 0; h < n && left > 0; h++) { /* first the peer's share not yet in use */
    int room = run.share[(size_t)run.rank * n + h] - alive_on[h];
    if (room > 0) {
      int take = room < left ? room : left;
      want[h] += take;
      left -= take;
    }
  }
  for (int tries = 0; left > 0 && tries < n * (left + 1); tries++) { /* past it: round robin */
    int h = run.next++ % n;
    if (!eligible(h)) continue;
    want[h]++;
    left--;
  }
  int used = 0;
  for (int h = 0; h < n; h++)
    if (want[h] > 0) hosts[used] = h, counts[used++] = want[h];
  free(want);
  return used;
}

void mf_placement_describe(char *out, size_t size) {
  if (!run.active) {
    snprintf(out, size, "not set up");
    return;
  }
  const char *what = run.kind == MF_PLACEMENT_LOCAL    ? "workers on their peer's node"
                     : run.kind == MF_PLACEMENT_REMOTE ? "workers only on nodes without a peer"
                                                       : "workers on every node, shared fairly";
  size_t used =
      (size_t)snprintf(out, size, "%s: %s; allocation from %s; nodes:", mf_placement_name(run.kind),
                       what, run.source);
  for (int h = 0; h < run.hosts->count && used < size; h++) {
    int on = 0;
    for (int p = 0; p < run.peers; p++) on += run.peer_host[p] == h;
    used += (size_t)snprintf(out + used, size - used, " %s=%d slots (%d peer%s)",
                             run.hosts->name[h], run.hosts->slots[h], on, on == 1 ? "" : "s");
  }
}
