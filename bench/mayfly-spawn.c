/* mayfly-spawn: the cold-start and keep-alive microbenchmark behind the serverless modes.
 * Rank 0 spawns copies of this program (the child role: MPI_Comm_get_parent is not NULL) and
 * measures
 *   1. spawn latency vs number of children (MPI_Comm_spawn call, split into the child's
 *      process start, its MPI_Init and the connection back), and the disconnect time;
 *   2. drift over repeated spawn/disconnect cycles: cycle time, parent RSS, open fds;
 *   3. parent <-> child ping-pong latency (8 B) and bandwidth (1 MiB) over the
 *      intercommunicator, next to the same between ranks 0 and 1 of MPI_COMM_WORLD (run with
 *      2 ranks for that column; rank 1 takes part only in that test).
 * Why: a warm pool pays (1) once, a cold pool every round; (2) says whether a long run of cold
 * rounds degrades; (3) is what every task's gradient pays to travel back.
 * Run through bench/scripts/launch.sh, e.g. bench/scripts/launch.sh -n 2 -t 300 --
 * bin/mayfly-spawn. */
#include <dirent.h>
#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench/harness/h5util.h"
#include "bench/harness/launch_check.h"
#include "bench/harness/options.h"
#include "bench/harness/util.h"
#include "comm/worker_pool.h" /* cm_watchdog_arm */

enum { TAG_TIMES = 1, TAG_PING = 2, TAG_STOP = 3 };
enum { MAX_COUNTS = 16, SMALL_BYTES = 8, LARGE_BYTES = 1 << 20 };

typedef struct {
  int iterations, warmup;
  const char *children;
  int cycles;
  int messages;
  const char *output;
  int csv;
  int force;
  double timeout;
  int allow_unsafe_spawn;
} spawn_config;

#define FIELD(name) offsetof(spawn_config, name)
static const mf_option spawn_options[] = {
    {"iterations", 'i', MF_OPT_INT, FIELD(iterations), "N", "10",
     "measured spawn/disconnect cycles per children count", 1, 100000, NULL, NULL, NULL},
    {"warmup", 'x', MF_OPT_INT, FIELD(warmup), "N", "1",
     "unmeasured cycles before those (per children count)", 0, 100000, NULL, NULL, NULL},
    {"children", 'c', MF_OPT_STRING, FIELD(children), "LIST", "1,2,4,8",
     "comma-separated children counts for the spawn-latency table", 0, 0, NULL, NULL, NULL},
    {"cycles", 0, MF_OPT_INT, FIELD(cycles), "N", "30",
     "repeated 1-child spawn/disconnect cycles for the drift test (0: skip)", 0, 1000000, NULL,
     NULL, NULL},
    {"messages", 'm', MF_OPT_INT, FIELD(messages), "N", "200",
     "ping-pong round trips per message size (0: skip)", 0, 10000000, NULL, NULL, NULL},
    {"output", 'o', MF_OPT_STRING, FIELD(output), "FILE.h5", NULL,
     "HDF5 file for every raw sample (empty: none)", 0, 0, NULL, NULL, NULL},
    {"csv", 0, MF_OPT_FLAG, FIELD(csv), NULL, NULL,
     "print the spawn table as CSV (header line, one row per children count) instead of text", 0, 0,
     NULL, NULL, NULL},
    {"force", 'f', MF_OPT_FLAG, FIELD(force), NULL, NULL, "overwrite an existing complete -o file",
     0, 0, NULL, NULL, NULL},
    {"timeout", 0, MF_OPT_DOUBLE, FIELD(timeout), "S", "120",
     "seconds one spawn or disconnect may take before the watchdog aborts", 0.001, 1e6, NULL, NULL,
     NULL},
    {"allow-unsafe-spawn", 0, MF_OPT_FLAG, FIELD(allow_unsafe_spawn), NULL, NULL,
     "experts: spawn even where the launch is known to stall or fail MPI_Comm_spawn "
     "(bench/harness/launch_check.h); recorded in the -o file's /environment",
     0, 0, NULL, NULL, NULL},
};
static const mf_program spawn_program = {
    .name = "mayfly-spawn",
    .summary =
        "MPI_Comm_spawn cold-start microbenchmark: spawn latency vs children, disconnect, "
        "repeated-spawn drift, parent<->child latency and bandwidth vs MPI_COMM_WORLD.",
    .usage = "[OPTIONS]",
    .options = spawn_options,
    .count = MF_OPTION_COUNT(spawn_options),
    .epilogue =
        "Examples:\n"
        "  bench/scripts/launch.sh -n 2 -t 600 -- bin/mayfly-spawn -o spawn.h5\n"
        "  bench/scripts/launch.sh -n 1 -t 120 -- bin/mayfly-spawn -c 1,2 -i 5 --csv\n",
};

/* Wall-clock time shared by parent and children on one host (MPI_Wtime need not be). */
static double realtime(void) {
  struct timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  return (double)now.tv_sec + 1e-9 * (double)now.tv_nsec;
}

/* ---- child role ---------------------------------------------------------------------------- */

static double cpu_seconds(void) { /* this process's CPU time since it started */
  struct timespec now;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &now);
  return (double)now.tv_sec + 1e-9 * (double)now.tv_nsec;
}

static int child_main(MPI_Comm parent, const double times[4]) {
  MPI_Send(times, 4, MPI_DOUBLE, 0, TAG_TIMES, parent);
  char *buffer = malloc(LARGE_BYTES);
  for (int running = 1; running && buffer;) {
    /* Spin for 20 ms after a message (a ping-pong must not measure our sleeps), then poll with
     * a sleeping back-off: a blocking probe spins a core for good, and on a small node that
     * core is what the next children's start-up needs (the reason of worker_link.c too). */
    MPI_Status status;
    long backoff = 1000;
    double spin_until = MPI_Wtime() + 0.02;
    for (int ready = 0; !ready;) {
      MPI_Iprobe(0, MPI_ANY_TAG, parent, &ready, &status);
      if (ready || MPI_Wtime() < spin_until) continue;
      struct timespec pause = {0, backoff};
      nanosleep(&pause, NULL);
      if (backoff < 200000) backoff *= 2;
    }
    int bytes = 0;
    MPI_Get_count(&status, MPI_BYTE, &bytes);
    if (bytes > LARGE_BYTES) break;
    MPI_Recv(buffer, bytes, MPI_BYTE, 0, status.MPI_TAG, parent, MPI_STATUS_IGNORE);
    if (status.MPI_TAG == TAG_STOP)
      running = 0;
    else
      MPI_Send(buffer, bytes, MPI_BYTE, 0, TAG_PING, parent);
  }
  free(buffer);
  MPI_Comm_disconnect(&parent);
  return 0;
}

/* ---- parent role --------------------------------------------------------------------------- */

typedef struct {
  double spawn, disconnect;   /* seconds of the two calls */
  double exec, init, connect; /* spawn split: to the slowest child's main, its MPI_Init, rest */
  double exec_cpu, init_cpu;  /* the slowest child's CPU seconds before main, in MPI_Init */
} cycle_sample;

static void read_process_state(int64_t *rss_bytes, int *open_fds) {
  *rss_bytes = 0;
  *open_fds = 0;
  FILE *f = fopen("/proc/self/status", "r");
  char line[256];
  while (f && fgets(line, sizeof line, f))
    if (strncmp(line, "VmRSS:", 6) == 0) *rss_bytes = 1024 * atoll(line + 6);
  if (f) fclose(f);
  DIR *d = opendir("/proc/self/fd");
  for (struct dirent *e; d && (e = readdir(d));)
    if (e->d_name[0] != '.') (*open_fds)++;
  if (d) closedir(d);
}

/* One spawn of n children, a ping of 0 bytes to be sure all are up, STOP and disconnect. */
static int spawn_cycle(const char *self, int n, double timeout, MPI_Comm *keep,
                       cycle_sample *sample) {
  MPI_Comm children;
  int *codes = calloc((size_t)n, sizeof *codes);
  char what[64];
  snprintf(what, sizeof what, "MPI_Comm_spawn of %d children", n);
  double start_real = realtime(), start = MPI_Wtime();
  cm_watchdog_arm(timeout, what);
  int rc =
      MPI_Comm_spawn(self, MPI_ARGV_NULL, n, MPI_INFO_NULL, 0, MPI_COMM_SELF, &children, codes);
  cm_watchdog_disarm();
  double spawned = MPI_Wtime(), spawned_real = realtime();
  for (int i = 0; i < n && rc == MPI_SUCCESS; i++)
    if (codes[i] != MPI_SUCCESS) rc = codes[i];
  free(codes);
  if (rc != MPI_SUCCESS) return -1;
  double last_entered = 0, last_initialized = 0;
  sample->exec_cpu = sample->init_cpu = 0;
  for (int i = 0; i < n; i++) {
    double times[4];
    MPI_Recv(times, 4, MPI_DOUBLE, i, TAG_TIMES, children, MPI_STATUS_IGNORE);
    if (times[0] > last_entered) last_entered = times[0];
    if (times[1] > last_initialized) last_initialized = times[1];
    if (times[2] > sample->exec_cpu) sample->exec_cpu = times[2];
    if (times[3] - times[2] > sample->init_cpu) sample->init_cpu = times[3] - times[2];
  }
  sample->spawn = spawned - start;
  sample->exec = last_entered - start_real;
  sample->init = last_initialized - last_entered;
  sample->connect = spawned_real - last_initialized;
  if (keep) { /* the caller measures on it and disconnects */
    *keep = children;
    return 0;
  }
  for (int i = 0; i < n; i++) MPI_Send(NULL, 0, MPI_BYTE, i, TAG_STOP, children);
  double disconnect_start = MPI_Wtime();
  cm_watchdog_arm(timeout, "MPI_Comm_disconnect from the children");
  MPI_Comm_disconnect(&children);
  cm_watchdog_disarm();
  sample->disconnect = MPI_Wtime() - disconnect_start;
  return 0;
}

/* Round-trip ping-pong from the caller to `peer` on comm: one-way latency in seconds. */
static double ping_pong(MPI_Comm comm, int peer, char *buffer, int bytes, int iterations,
                        int initiator) {
  for (int warm = 0; warm < 2; warm++) {
    int rounds = warm == 0 ? (iterations < 10 ? iterations : 10) : iterations;
    double start = MPI_Wtime();
    for (int i = 0; i < rounds; i++) {
      if (initiator) {
        MPI_Send(buffer, bytes, MPI_BYTE, peer, TAG_PING, comm);
        MPI_Recv(buffer, bytes, MPI_BYTE, peer, TAG_PING, comm, MPI_STATUS_IGNORE);
      } else {
        MPI_Recv(buffer, bytes, MPI_BYTE, peer, TAG_PING, comm, MPI_STATUS_IGNORE);
        MPI_Send(buffer, bytes, MPI_BYTE, peer, TAG_PING, comm);
      }
    }
    if (warm == 1) return (MPI_Wtime() - start) / (2.0 * rounds);
  }
  return NAN;
}

static int parse_counts(const char *text, int *counts, int *n) {
  *n = 0;
  const char *p = text;
  while (*p) {
    char *end = NULL;
    long v = strtol(p, &end, 10);
    if (end == p || v < 1 || v > 1024 || *n == MAX_COUNTS || (*end && *end != ',')) return -1;
    counts[(*n)++] = (int)v;
    p = *end ? end + 1 : end;
  }
  return *n > 0 ? 0 : -1;
}

typedef struct {
  int counts[MAX_COUNTS], ncounts;
  cycle_sample *samples; /* [ncounts][iterations] */
  double *drift_seconds;
  int64_t *drift_rss;
  int *drift_fds;
  double latency[2][2]; /* [intercomm, world][8 B, 1 MiB] one-way seconds */
} spawn_results;

static double median_of(const cycle_sample *s, int n, size_t offset) {
  double *v = malloc(sizeof(double) * (size_t)n);
  for (int i = 0; i < n; i++) v[i] = *(const double *)((const char *)&s[i] + offset);
  double m = mf_quantile(v, (size_t)n, 0.5);
  free(v);
  return m;
}

static double quantile_of(const cycle_sample *s, int n, size_t offset, double q) {
  double *v = malloc(sizeof(double) * (size_t)n);
  for (int i = 0; i < n; i++) v[i] = *(const double *)((const char *)&s[i] + offset);
  double m = mf_quantile(v, (size_t)n, q);
  free(v);
  return m;
}

#define SAMPLE_FIELD(f) offsetof(cycle_sample, f)

static void print_table(const spawn_config *c, const spawn_results *r) {
  const int n = c->iterations;
  if (c->csv) {
    printf(
        "children,iterations,spawn_median_ms,spawn_p95_ms,spawn_min_ms,exec_median_ms,"
        "init_median_ms,connect_median_ms,disconnect_median_ms,exec_cpu_median_ms,"
        "init_cpu_median_ms\n");
  } else {
    printf("# spawn latency, %d measured cycles each (%d warm-up), ms\n", n, c->warmup);
    printf("# %8s %10s %10s %10s %10s %10s %10s %10s %10s %10s\n", "children", "spawn_med",
           "spawn_p95", "spawn_min", "exec_med", "init_med", "conn_med", "disc_med", "exec_cpu",
           "init_cpu");
  }
  for (int k = 0; k < r->ncounts; k++) {
    const cycle_sample *s = r->samples + (size_t)k * n;
    double values[9] = {
        median_of(s, n, SAMPLE_FIELD(spawn)),        quantile_of(s, n, SAMPLE_FIELD(spawn), 0.95),
        quantile_of(s, n, SAMPLE_FIELD(spawn), 0.0), median_of(s, n, SAMPLE_FIELD(exec)),
        median_of(s, n, SAMPLE_FIELD(init)),         median_of(s, n, SAMPLE_FIELD(connect)),
        median_of(s, n, SAMPLE_FIELD(disconnect)),   median_of(s, n, SAMPLE_FIELD(exec_cpu)),
        median_of(s, n, SAMPLE_FIELD(init_cpu))};
    if (c->csv) {
      printf("%d,%d", r->counts[k], n);
      for (int i = 0; i < 9; i++) printf(",%.3f", 1e3 * values[i]);
      printf("\n");
    } else {
      printf("  %8d", r->counts[k]);
      for (int i = 0; i < 9; i++) printf(" %10.3f", 1e3 * values[i]);
      printf("\n");
    }
  }
  if (c->csv) return;
  if (c->cycles > 0) {
    int m = c->cycles, tenth = m >= 10 ? m / 10 : 1;
    double first = 0, last = 0;
    for (int i = 0; i < tenth; i++)
      first += r->drift_seconds[i], last += r->drift_seconds[m - 1 - i];
    printf(
        "# drift over %d spawn/disconnect cycles of 1 child: cycle %.3f ms (first %d) -> "
        "%.3f ms (last %d); parent RSS %.1f -> %.1f MiB (%+.1f kiB/cycle); open fds %d -> %d\n",
        m, 1e3 * first / tenth, tenth, 1e3 * last / tenth, tenth, r->drift_rss[0] / 1048576.0,
        r->drift_rss[m - 1] / 1048576.0,
        m > 1 ? (double)(r->drift_rss[m - 1] - r->drift_rss[0]) / 1024.0 / (m - 1) : 0.0,
        r->drift_fds[0], r->drift_fds[m - 1]);
  }
  if (c->messages > 0) {
    printf("# ping-pong, one-way: %14s %14s\n", "intercomm", "MPI_COMM_WORLD");
    printf("#   8 B latency us:    %14.2f %14.2f\n", 1e6 * r->latency[0][0],
           1e6 * r->latency[1][0]);
    printf("#   1 MiB time us:     %14.1f %14.1f\n", 1e6 * r->latency[0][1],
           1e6 * r->latency[1][1]);
    printf("#   1 MiB bandwidth GB/s: %11.3f %14.3f\n", LARGE_BYTES / r->latency[0][1] / 1e9,
           LARGE_BYTES / r->latency[1][1] / 1e9);
  }
}

static int write_results(const spawn_config *c, const spawn_results *r, int peers) {
  mf_h5_quiet();
  if (access(c->output, F_OK) == 0 && !c->force && mf_h5_result_complete(c->output) == 1) {
    mf_error(spawn_program.name, "%s: a complete result file exists; use --force", c->output);
    return -1;
  }
  hid_t file = H5Fcreate(c->output, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  if (file < 0) {
    mf_error(spawn_program.name, "%s: cannot create the results file", c->output);
    return -1;
  }
  int rc = 0;
  rc |= mf_h5_attr_string(file, "suite", "mayfly");
  rc |= mf_h5_attr_string(file, "program", spawn_program.name);
  rc |= mf_h5_attr_string(file, "suite_version", mf_suite_version);
  rc |= mf_h5_attr_string(file, "git_revision", mf_git_revision);
  rc |= mf_h5_attr_int(file, "complete", 0);
  rc |= mf_h5_attr_int(file, "peers", peers);
  hid_t environment = mf_h5_group(file, "/environment");
  rc |= mf_launch_record(environment);
  H5Gclose(environment);
  const char *env[] = {"OMPI_MCA_pml", "OMPI_MCA_btl", "OMPI_MCA_mpi_yield_when_idle"};
  for (int i = 0; i < 3; i++)
    rc |= mf_h5_attr_string(file, env[i], getenv(env[i]) ? getenv(env[i]) : "");
  hid_t g = mf_h5_group(file, "/spawn");
  hsize_t dims[2] = {(hsize_t)r->ncounts, (hsize_t)c->iterations};
  rc |= mf_h5_write_array(g, "children", H5T_STD_I32LE, H5T_NATIVE_INT, 1, dims, r->counts);
  const char *names[] = {"spawn_seconds",   "disconnect_seconds", "exec_seconds",    "init_seconds",
                         "connect_seconds", "exec_cpu_seconds",   "init_cpu_seconds"};
  const size_t offsets[] = {SAMPLE_FIELD(spawn),   SAMPLE_FIELD(disconnect), SAMPLE_FIELD(exec),
                            SAMPLE_FIELD(init),    SAMPLE_FIELD(connect),    SAMPLE_FIELD(exec_cpu),
                            SAMPLE_FIELD(init_cpu)};
  double *values = malloc(sizeof(double) * dims[0] * dims[1]);
  for (int f = 0; f < 7 && values; f++) {
    for (hsize_t i = 0; i < dims[0] * dims[1]; i++)
      values[i] = *(const double *)((const char *)&r->samples[i] + offsets[f]);
    rc |= mf_h5_write_array(g, names[f], H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 2, dims, values);
  }
  free(values);
  H5Gclose(g);
  if (c->cycles > 0) {
    g = mf_h5_group(file, "/drift");
    hsize_t m = (hsize_t)c->cycles;
    rc |= mf_h5_write_array(g, "cycle_seconds", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 1, &m,
                            r->drift_seconds);
    rc |= mf_h5_write_array(g, "rss_bytes", H5T_STD_I64LE, H5T_NATIVE_INT64, 1, &m, r->drift_rss);
    rc |= mf_h5_write_array(g, "open_fds", H5T_STD_I32LE, H5T_NATIVE_INT, 1, &m, r->drift_fds);
    H5Gclose(g);
  }
  if (c->messages > 0) {
    g = mf_h5_group(file, "/pingpong");
    rc |= mf_h5_attr_double(g, "intercomm_8B_seconds", r->latency[0][0]);
    rc |= mf_h5_attr_double(g, "intercomm_1MiB_seconds", r->latency[0][1]);
    rc |= mf_h5_attr_double(g, "world_8B_seconds", r->latency[1][0]);
    rc |= mf_h5_attr_double(g, "world_1MiB_seconds", r->latency[1][1]);
    rc |= mf_h5_attr_int(g, "round_trips", c->messages);
    H5Gclose(g);
  }
  rc |= mf_h5_attr_int(file, "complete", rc == 0);
  if (H5Fclose(file) < 0 || rc) {
    mf_error(spawn_program.name, "%s: writing the results failed", c->output);
    return -1;
  }
  return 0;
}

static int parent_main(const spawn_config *c, int rank, int peers) {
  spawn_results r = {0};
  char self[4096];
  if (parse_counts(c->children, r.counts, &r.ncounts) != 0) {
    if (rank == 0)
      mf_error(spawn_program.name,
               "--children: '%s' is not a list of counts 1..1024 (at most "
               "%d)",
               c->children, MAX_COUNTS);
    return 2;
  }
  ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
  if (len <= 0) {
    mf_error(spawn_program.name, "cannot locate this program (/proc/self/exe)");
    return 1;
  }
  self[len] = '\0';
  char *buffer = calloc(1, LARGE_BYTES);
  /* World ping-pong first, while no children compete for the cores. */
  r.latency[1][0] = r.latency[1][1] = NAN;
  if (c->messages > 0 && peers >= 2 && rank <= 1) {
    r.latency[1][0] =
        ping_pong(MPI_COMM_WORLD, 1 - rank, buffer, SMALL_BYTES, c->messages, rank == 0);
    r.latency[1][1] = ping_pong(MPI_COMM_WORLD, 1 - rank, buffer, LARGE_BYTES,
                                c->messages / 10 > 0 ? c->messages / 10 : 1, rank == 0);
  }
  int code = 0;
  if (rank == 0) {
    r.samples = calloc((size_t)r.ncounts * c->iterations, sizeof *r.samples);
    r.drift_seconds = calloc((size_t)c->cycles + 1, sizeof(double));
    r.drift_rss = calloc((size_t)c->cycles + 1, sizeof(int64_t));
    r.drift_fds = calloc((size_t)c->cycles + 1, sizeof(int));
    for (int k = 0; k < r.ncounts && code == 0; k++)
      for (int i = -c->warmup; i < c->iterations && code == 0; i++) {
        cycle_sample s;
        if (spawn_cycle(self, r.counts[k], c->timeout, NULL, &s) != 0) code = 1;
        if (i >= 0) r.samples[(size_t)k * c->iterations + i] = s;
      }
    for (int i = 0; i < c->cycles && code == 0; i++) {
      cycle_sample s;
      double start = MPI_Wtime();
      if (spawn_cycle(self, 1, c->timeout, NULL, &s) != 0) code = 1;
      r.drift_seconds[i] = MPI_Wtime() - start;
      read_process_state(&r.drift_rss[i], &r.drift_fds[i]);
    }
    if (c->messages > 0 && code == 0) {
      MPI_Comm child;
      cycle_sample s;
      if (spawn_cycle(self, 1, c->timeout, &child, &s) != 0) {
        code = 1;
      } else {
        r.latency[0][0] = ping_pong(child, 0, buffer, SMALL_BYTES, c->messages, 1);
        r.latency[0][1] = ping_pong(child, 0, buffer, LARGE_BYTES,
                                    c->messages / 10 > 0 ? c->messages / 10 : 1, 1);
        MPI_Send(NULL, 0, MPI_BYTE, 0, TAG_STOP, child);
        MPI_Comm_disconnect(&child);
      }
    }
    if (code != 0) mf_error(spawn_program.name, "a spawn failed (see the MPI message above)");
    if (code == 0) {
      if (!c->csv)
        printf("# mayfly-spawn %s (git %s); peers %d; OMPI_MCA_pml=%s OMPI_MCA_btl=%s\n",
               mf_suite_version, mf_git_revision, peers,
               getenv("OMPI_MCA_pml") ? getenv("OMPI_MCA_pml") : "(unset)",
               getenv("OMPI_MCA_btl") ? getenv("OMPI_MCA_btl") : "(unset)");
      print_table(c, &r);
      if (c->output[0] && write_results(c, &r, peers) != 0) code = 1;
    }
  }
  free(buffer);
  free(r.samples);
  free(r.drift_seconds);
  free(r.drift_rss);
  free(r.drift_fds);
  /* Other ranks wait here for the whole spawn series: sleep-poll, do not spin. */
  MPI_Request request;
  MPI_Ibcast(&code, 1, MPI_INT, 0, MPI_COMM_WORLD, &request);
  cm_wait_until(&request, NULL, MPI_Wtime() + 1e9);
  return code;
}

int main(int argc, char **argv) {
  double times[4] = {realtime(), 0, cpu_seconds(), 0}; /* entered, initialized; CPU of both */
  mf_launch_prepare(); /* parent and children: the PMIx store spawns need (launch_check.h) */
  MPI_Init(&argc, &argv);
  times[1] = realtime();
  times[3] = cpu_seconds();
  MPI_Comm parent;
  MPI_Comm_get_parent(&parent);
  if (parent != MPI_COMM_NULL) {
    int code = child_main(parent, times);
    MPI_Finalize();
    return code;
  }
  int rank = 0, peers = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &peers);
  spawn_config config = {.output = ""};
  int status = mf_options_parse(&spawn_program, argc, argv, &config, rank != 0);
  int code = status == MF_OPTIONS_USAGE_ERROR ? 2 : 0;
  if (status == MF_OPTIONS_OK)
    code = mf_launch_check(MPI_COMM_WORLD, spawn_program.name, "spawn", config.allow_unsafe_spawn);
  if (status == MF_OPTIONS_OK && code == 0) code = parent_main(&config, rank, peers);
  MPI_Finalize();
  mf_report_exit(rank, code);
  return code;
}
