/* Placement of peers and workers on cores (see binding.h). The plan is a pure function so it
 * can be tested for any node shape; applying it is hwloc; workers learn their cores from the
 * peer's plan and take a worker slot by locking a file in the peer's report directory, so
 * workers of several spawn groups (a pool that grew) never get the same cores, and a slot
 * frees itself when its worker ends (flock is released when the process dies). */
#include "bench/harness/binding.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <hwloc.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#define MAX_WORKER_SLOTS 4096

static const char *plural(long n) {
  return n == 1 ? "" : "s";
}

void mf_bind_plan_make(const mf_bind_request *r, mf_bind_plan *p) {
  memset(p, 0, sizeof *p);
  p->peer_core = -1;
  p->first_worker_core = -1;
  const int peer_cores = r->peer_cores < 1 ? 1 : r->peer_cores;
  const int worker_cores = r->worker_cores < 1 ? 1 : r->worker_cores;
  const int workers = r->workers < 0 ? 0 : r->workers;
  if (!r->enabled) {
    snprintf(p->peer_note, sizeof p->peer_note, "unbound: --bind none");
    if (workers) snprintf(p->worker_note, sizeof p->worker_note, "unbound: --bind none");
    return;
  }
  const long need = (long)r->node_peers * peer_cores;
  if (r->cores < 1 || r->node_peers < 1 || need > r->cores) {
    snprintf(p->peer_note, sizeof p->peer_note,
             "unbound: %d peer%s x %d thread%s need %ld cores, the node has %d", r->node_peers,
             plural(r->node_peers), peer_cores, plural(peer_cores), need, r->cores);
    if (workers)
      snprintf(p->worker_note, sizeof p->worker_note,
               "unbound: no free core (the peers alone need more cores than the node has)");
    return;
  }
  p->peer_core = r->local_rank * peer_cores;
  snprintf(p->peer_note, sizeof p->peer_note, "bound");
  /* The cores after the peers', split into one slice per peer as evenly as integers allow. */
  const long left = r->cores - need;
  const int begin = (int)(need + left * r->local_rank / r->node_peers);
  const int end = (int)(need + left * (r->local_rank + 1) / r->node_peers);
  p->free_cores = end - begin;
  const int fit = p->free_cores / worker_cores;
  p->workers_bound = fit < workers ? fit : workers;
  if (p->workers_bound > 0) p->first_worker_core = begin;
  if (p->workers_bound < workers)
    snprintf(p->worker_note, sizeof p->worker_note,
             "unbound: no free core (this peer's share: %d free core%s, %d thread%s per "
             "worker); shares the node's cores",
             p->free_cores, plural(p->free_cores), worker_cores, plural(worker_cores));
}

/* ---- hwloc helpers ---- */

/* A topology for binding only. Workers pass fast: no plugins (PCI, GL, OpenCL: dlopen'ed
 * libraries, ~20-50 ms here) and no x86 CPUID backend (it migrates the thread to every core,
 * slow on a busy node); the Linux backend alone knows the cores. That keeps a cold start's
 * binding at ~2 ms. The user's own HWLOC_* settings win. */
static int load_topology(hwloc_topology_t *topology, int fast) {
  if (fast) {
    setenv("HWLOC_COMPONENTS", "-x86", 0);
    setenv("HWLOC_PLUGINS_BLACKLIST", "hwloc_pci,hwloc_gl,hwloc_opencl,hwloc_xml_libxml", 0);
  }
  if (hwloc_topology_init(topology) != 0) return -1;
  if (fast) {
    hwloc_topology_set_all_types_filter(*topology, HWLOC_TYPE_FILTER_KEEP_NONE);
    hwloc_topology_set_type_filter(*topology, HWLOC_OBJ_CORE, HWLOC_TYPE_FILTER_KEEP_ALL);
  }
  if (hwloc_topology_load(*topology) != 0) {
    hwloc_topology_destroy(*topology);
    return -1;
  }
  return 0;
}

/* The PUs of cores [first, first+count), or NULL when the node has fewer cores. */
static hwloc_bitmap_t cores_cpuset(hwloc_topology_t topology, int first, int count) {
  hwloc_bitmap_t set = hwloc_bitmap_alloc();
  for (int c = first; c < first + count; c++) {
    hwloc_obj_t core = hwloc_get_obj_by_type(topology, HWLOC_OBJ_CORE, (unsigned)c);
    if (!core || !core->cpuset) {
      hwloc_bitmap_free(set);
      return NULL;
    }
    hwloc_bitmap_or(set, set, core->cpuset);
  }
  return set;
}

static void bitmap_text(hwloc_const_bitmap_t set, char *out, size_t size) {
  char *text = NULL;
  if (set && hwloc_bitmap_list_asprintf(&text, set) >= 0)
    snprintf(out, size, "%s", text);
  else
    snprintf(out, size, "?");
  free(text);
}

static void current_cpus(hwloc_topology_t topology, char *out, size_t size) {
  hwloc_bitmap_t set = hwloc_bitmap_alloc();
  if (hwloc_get_cpubind(topology, set, HWLOC_CPUBIND_PROCESS) == 0)
    bitmap_text(set, out, size);
  else
    snprintf(out, size, "?");
  hwloc_bitmap_free(set);
}

static void core_range_text(int first, int count, char *out, size_t size) {
  if (count == 1)
    snprintf(out, size, "%d", first);
  else
    snprintf(out, size, "%d-%d", first, first + count - 1);
}

/* Binds the process to `set` (NULL: the whole allowed set, i.e. explicitly unbound). Returns
 * "" or why it failed. */
static void bind_process(hwloc_topology_t topology, hwloc_const_bitmap_t set, char *why,
                         size_t size) {
  hwloc_const_bitmap_t target = set ? set : hwloc_topology_get_allowed_cpuset(topology);
  why[0] = '\0';
  if (hwloc_set_cpubind(topology, target, HWLOC_CPUBIND_PROCESS) != 0)
    snprintf(why, size, "%s", strerror(errno));
}

/* ---- peer side ---- */

static struct {
  int active;
  char host[128];
  int nodes;
  mf_bind_request request;
  mf_bind_plan plan;
  char planned_cpus[MF_BIND_TEXT]; /* the peer's planned cores as PUs */
  char actual[MF_BIND_TEXT];
  char worker_list[MF_BIND_TEXT * 2]; /* "none", or entries joined by ';' */
  char worker_cpus[MF_BIND_TEXT];     /* the bound workers' cores as PUs, for the record */
  char report_dir[PATH_MAX - 64];
} peer;

/* Report directories are named mayfly-bind.<peer pid>.XXXXXX. A run that was killed leaves its
 * directory behind; the next peer on the node removes those whose peer no longer exists. */
static void remove_stale_report_dirs(const char *tmp) {
  DIR *top = opendir(tmp);
  if (!top) return;
  struct dirent *entry;
  while ((entry = readdir(top))) {
    long pid = 0;
    if (sscanf(entry->d_name, "mayfly-bind.%ld.", &pid) != 1 || pid <= 0) continue;
    if (kill((pid_t)pid, 0) == 0 || errno != ESRCH) continue; /* alive, or not ours to judge */
    char dir[PATH_MAX], path[PATH_MAX + 300];
    snprintf(dir, sizeof dir, "%s/%s", tmp, entry->d_name);
    DIR *stale = opendir(dir);
    struct dirent *file;
    while (stale && (file = readdir(stale)))
      if (strncmp(file->d_name, "worker-", 7) == 0) {
        snprintf(path, sizeof path, "%s/%s", dir, file->d_name);
        unlink(path);
      }
    if (stale) closedir(stale);
    rmdir(dir);
  }
  closedir(top);
}

int mf_binding_active(void) {
  return peer.active;
}

/* Binds this peer's process to its planned cores (when binding is on) and records what it got
 * in peer.actual; a failed binding is a warning, not an error (the run goes on unbound). */
static void bind_peer(hwloc_topology_t topology, int rank) {
  const mf_bind_plan *p = &peer.plan;
  const int peer_cores = peer.request.peer_cores < 1 ? 1 : peer.request.peer_cores;
  char why[MF_BIND_TEXT] = "", cpus[MF_BIND_TEXT];
  if (peer.request.enabled) {
    hwloc_bitmap_t set =
        p->peer_core >= 0 ? cores_cpuset(topology, p->peer_core, peer_cores) : NULL;
    if (p->peer_core >= 0 && !set)
      snprintf(why, sizeof why, "core %d not found", p->peer_core);
    else
      bind_process(topology, set, why, sizeof why);
    if (set) bitmap_text(set, peer.planned_cpus, sizeof peer.planned_cpus);
    hwloc_bitmap_free(set);
  }
  current_cpus(topology, cpus, sizeof cpus);
  if (why[0]) {
    fprintf(stderr, "mayfly-train: warning: peer %d: binding to core %d failed: %s\n", rank,
            p->peer_core, why);
    snprintf(peer.actual, sizeof peer.actual, "%.60s:cpus=%.60s:bind failed: %.100s", peer.host,
             cpus, why);
  } else {
    snprintf(peer.actual, sizeof peer.actual, "%.60s:cpus=%.60s:%.100s", peer.host, cpus,
             p->peer_note);
  }
}

/* What the workers are told: one entry per bound worker slot; later slots are unbound. */
static void plan_workers(hwloc_topology_t topology) {
  const mf_bind_plan *p = &peer.plan;
  const int worker_cores = peer.request.worker_cores < 1 ? 1 : peer.request.worker_cores;
  size_t used = 0;
  if (!peer.request.enabled)
    used = (size_t)snprintf(peer.worker_list, sizeof peer.worker_list, "none");
  for (int w = 0; w < p->workers_bound && used < sizeof peer.worker_list; w++) {
    char range[32];
    core_range_text(p->first_worker_core + w * worker_cores, worker_cores, range, sizeof range);
    used += (size_t)snprintf(peer.worker_list + used, sizeof peer.worker_list - used, "%s%s",
                             w ? ";" : "", range);
  }
  if (used == 0) snprintf(peer.worker_list, sizeof peer.worker_list, "-");
  if (p->workers_bound > 0) {
    hwloc_bitmap_t set =
        cores_cpuset(topology, p->first_worker_core, p->workers_bound * worker_cores);
    bitmap_text(set, peer.worker_cpus, sizeof peer.worker_cpus);
    hwloc_bitmap_free(set);
  }
}

/* The directory the workers report their cpus into (under $TMPDIR, stale ones removed first). */
static int make_report_dir(char *err, size_t errlen) {
  const char *tmp = getenv("TMPDIR");
  if (!tmp || !*tmp) tmp = "/tmp";
  remove_stale_report_dirs(tmp);
  snprintf(peer.report_dir, sizeof peer.report_dir, "%s/mayfly-bind.%ld.XXXXXX", tmp,
           (long)getpid());
  if (!mkdtemp(peer.report_dir)) {
    snprintf(err, errlen, "--bind: cannot create a directory %s for the workers' reports: %s",
             peer.report_dir, strerror(errno));
    peer.report_dir[0] = '\0';
    return -1;
  }
  return 0;
}

int mf_binding_setup(MPI_Comm comm, const char *mode, int peer_threads, int workers,
                     int worker_threads, char *err, size_t errlen) {
  memset(&peer, 0, sizeof peer);
  snprintf(peer.host, sizeof peer.host, "?");
  gethostname(peer.host, sizeof peer.host);
  peer.host[sizeof peer.host - 1] = '\0';
  int rank = 0, local_rank = 0, node_peers = 1;
  MPI_Comm_rank(comm, &rank);
  MPI_Comm node;
  MPI_Comm_split_type(comm, MPI_COMM_TYPE_SHARED, rank, MPI_INFO_NULL, &node);
  MPI_Comm_rank(node, &local_rank);
  MPI_Comm_size(node, &node_peers);
  MPI_Comm_free(&node);
  int leader = local_rank == 0;
  MPI_Allreduce(&leader, &peer.nodes, 1, MPI_INT, MPI_SUM, comm);

  hwloc_topology_t topology;
  if (load_topology(&topology, 0) != 0) {
    snprintf(err, errlen, "--bind: hwloc cannot read this node's topology");
    return -1;
  }
  peer.request = (mf_bind_request){
      .enabled = strcmp(mode, "none") != 0,
      .cores = hwloc_get_nbobjs_by_type(topology, HWLOC_OBJ_CORE),
      .node_peers = node_peers,
      .local_rank = local_rank,
      .peer_cores = peer_threads,
      .workers = workers,
      .worker_cores = worker_threads,
  };
  mf_bind_plan_make(&peer.request, &peer.plan);
  bind_peer(topology, rank);
  plan_workers(topology);
  hwloc_topology_destroy(topology);

  if (workers > 0 && make_report_dir(err, errlen) != 0) return -1;
  peer.active = 1;
  return 0;
}

void mf_binding_peer_planned(char *out, size_t size) {
  const mf_bind_plan *p = &peer.plan;
  if (p->peer_core < 0) {
    snprintf(out, size, "%s:cores=none:%s", peer.host, p->peer_note);
    return;
  }
  char range[32];
  core_range_text(p->peer_core, peer.request.peer_cores < 1 ? 1 : peer.request.peer_cores, range,
                  sizeof range);
  snprintf(out, size, "%s:cores=%s:cpus=%s:%s", peer.host, range, peer.planned_cpus, p->peer_note);
}

void mf_binding_peer_actual(char *out, size_t size) {
  snprintf(out, size, "%s", peer.actual);
}

void mf_binding_workers_planned(char *out, size_t size) {
  const mf_bind_plan *p = &peer.plan;
  if (peer.request.workers <= 0) {
    snprintf(out, size, "%s:no workers", peer.host);
    return;
  }
  size_t used = (size_t)snprintf(out, size, "%s:", peer.host);
  if (p->workers_bound > 0 && used < size)
    used += (size_t)snprintf(out + used, size - used, "workers 0-%d on cores %s (cpus %s), bound",
                             p->workers_bound - 1, peer.worker_list, peer.worker_cpus);
  if (p->workers_bound < peer.request.workers && used < size)
    snprintf(out + used, size - used, "%sworkers %d and up %s", p->workers_bound ? "; " : "",
             p->workers_bound, p->worker_note);
}

static void report_path(const char *dir, int index, char *out, size_t size) {
  snprintf(out, size, "%s/worker-%d", dir, index);
}

void mf_binding_worker_reported(int index, char *out, size_t size) {
  snprintf(out, size, "not reported");
  if (!peer.report_dir[0]) return;
  char path[PATH_MAX];
  report_path(peer.report_dir, index, path, sizeof path);
  FILE *file = fopen(path, "r");
  if (!file) return;
  char line[MF_BIND_TEXT];
  if (fgets(line, sizeof line, file)) {
    line[strcspn(line, "\n")] = '\0';
    snprintf(out, size, "%s", line);
  }
  fclose(file);
}

int mf_binding_worker_slots_seen(void) {
  if (!peer.report_dir[0]) return 0;
  char path[PATH_MAX];
  int seen = 0;
  for (int i = 0; i < MAX_WORKER_SLOTS; i++) {
    snprintf(path, sizeof path, "%s/worker-%d.lock", peer.report_dir, i);
    if (access(path, F_OK) != 0) break; /* slots are taken lowest first */
    report_path(peer.report_dir, i, path, sizeof path);
    if (access(path, F_OK) == 0) seen = i + 1;
  }
  return seen;
}

void mf_binding_worker_argument(char *out, size_t size) {
  snprintf(out, size, "%s@%s", peer.worker_list, peer.report_dir);
}

const char *mf_binding_worker_host(void) {
  return peer.active && peer.nodes > 1 ? peer.host : NULL;
}

void mf_binding_placement(char *out, size_t size) {
  if (peer.nodes > 1)
    snprintf(out, size,
             "spawn info host=<the peer's node> (%d nodes): workers run beside their peer",
             peer.nodes);
  else
    snprintf(out, size, "Open MPI default mapping (1 node)");
}

void mf_binding_cleanup(void) {
  if (!peer.report_dir[0]) return;
  char path[PATH_MAX];
  for (int i = 0; i < MAX_WORKER_SLOTS; i++) {
    int gone = 0;
    report_path(peer.report_dir, i, path, sizeof path);
    gone += unlink(path) != 0;
    size_t n = strlen(path);
    snprintf(path + n, sizeof path - n, ".lock");
    gone += unlink(path) != 0;
    if (gone == 2) break;
  }
  rmdir(peer.report_dir);
  peer.report_dir[0] = '\0';
}

/* ---- worker side ---- */

static int worker_slot_fd = -1;
static char worker_line[MF_BIND_TEXT] = "not bound yet";

const char *mf_binding_worker_line(void) {
  return worker_line;
}

/* Takes the lowest free slot of the report directory: -1 when there is none (no directory:
 * the worker runs on another node than its peer). */
static int claim_slot(const char *dir) {
  char path[PATH_MAX];
  for (int i = 0; i < MAX_WORKER_SLOTS; i++) {
    snprintf(path, sizeof path, "%s/worker-%d.lock", dir, i);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) return -1;
    if (flock(fd, LOCK_EX | LOCK_NB) == 0) {
      worker_slot_fd = fd;
      return i;
    }
    close(fd);
  }
  return -1;
}

/* Entry `index` of a plan list ("1;2-3;-"): 1 with [first, last], 0 when the list has no such
 * entry or it is "-", -1 when the list is malformed. */
static int plan_entry(const char *list, int index, int *first, int *last) {
  int found = 0;
  const char *at = list;
  for (int i = 0; *at; i++) {
    int a = -1, b = -1, consumed = 0;
    if (*at == '-') {
      consumed = 1;
    } else if (sscanf(at, "%d%n", &a, &consumed) == 1 && a >= 0) {
      b = a;
      if (at[consumed] == '-') {
        int extra = 0;
        if (sscanf(at + consumed + 1, "%d%n", &b, &extra) != 1 || b < a) return -1;
        consumed += 1 + extra;
      }
    } else {
      return -1;
    }
    at += consumed;
    if (*at != ';' && *at != '\0') return -1;
    if (*at == ';') at++;
    if (i == index && a >= 0) {
      *first = a;
      *last = b;
      found = 1;
    }
  }
  return found;
}

int mf_binding_worker_apply(const char *argument, int index_hint, char *err, size_t errlen) {
  char list[MF_BIND_TEXT * 2];
  const char *sep = strchr(argument, '@');
  size_t list_len = sep ? (size_t)(sep - argument) : strlen(argument);
  if (list_len >= sizeof list) list_len = sizeof list - 1;
  memcpy(list, argument, list_len);
  list[list_len] = '\0';
  const char *dir = sep && sep[1] ? sep + 1 : NULL;
  const int none = strcmp(list, "none") == 0;
  int first = 0, last = 0;
  if (!none && plan_entry(list, 0, &first, &last) < 0) {
    snprintf(err, errlen, "--bind-cpus: '%s' is not 'none' or a ';' list of cores or '-'", list);
    return -1;
  }
  const int slot = dir ? claim_slot(dir) : -1;
  const int index = dir ? slot : index_hint;

  char host[128] = "?", cpus[MF_BIND_TEXT], why[MF_BIND_TEXT] = "", status[MF_BIND_TEXT];
  gethostname(host, sizeof host);
  host[sizeof host - 1] = '\0';
  hwloc_topology_t topology;
  if (load_topology(&topology, 1) != 0) {
    snprintf(err, errlen, "--bind-cpus: hwloc cannot read this node's topology");
    return -1;
  }
  if (none) {
    snprintf(status, sizeof status, "unbound: --bind none");
  } else if (dir && slot < 0) {
    /* No slot in the peer's directory: not on the peer's node, whose cores the plan names. */
    snprintf(status, sizeof status, "unbound: no worker slot in %.200s", dir);
  } else if (plan_entry(list, index, &first, &last) == 1) {
    hwloc_bitmap_t set = cores_cpuset(topology, first, last - first + 1);
    if (!set)
      snprintf(why, sizeof why, "cores %d-%d not on this node", first, last);
    else
      bind_process(topology, set, why, sizeof why);
    hwloc_bitmap_free(set);
    snprintf(status, sizeof status, "bound");
  } else {
    bind_process(topology, NULL, why, sizeof why);
    snprintf(status, sizeof status, "unbound: no free core, shares the node's cores");
  }
  current_cpus(topology, cpus, sizeof cpus);
  hwloc_topology_destroy(topology);
  if (why[0]) snprintf(status, sizeof status, "bind failed: %.200s", why);
  snprintf(worker_line, sizeof worker_line, "%.60s:cpus=%.60s:%.120s", host, cpus, status);
  if (!dir || slot < 0) return 0; /* nowhere to report (another node): its replies say so */

  char path[PATH_MAX], temp[PATH_MAX + 32];
  report_path(dir, slot, path, sizeof path);
  snprintf(temp, sizeof temp, "%s.%ld", path, (long)getpid());
  FILE *file = fopen(temp, "w");
  if (file) {
    fprintf(file, "%s:cpus=%s:%s\n", host, cpus, status);
    if (fclose(file) == 0) rename(temp, path); /* readers see a whole line or none */
  }
  return 0;
}

void mf_binding_worker_release(void) {
  if (worker_slot_fd >= 0) close(worker_slot_fd);
  worker_slot_fd = -1;
}
