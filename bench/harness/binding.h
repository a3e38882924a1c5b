/* Placement of peers and their workers on the cores of a node (issue #4, item 3).
 *
 * Why: on a node shared by peers and spawned workers, the kernel's scheduler moves processes
 * between cores, so two compute-bound processes can share a core while another idles, and a
 * timing then measures the scheduler. With `--bind cores` peer i of a node (rank in the node's
 * MPI_COMM_TYPE_SHARED communicator) gets cores [i*T, (i+1)*T) for its T threads, and the cores
 * left over are split into disjoint slices, one per peer, for that peer's workers (each worker
 * its own cores). Where there are not enough cores nothing is bound and the record says why: a
 * process that was not given a core of its own is never recorded as if it had one.
 *
 * Three layers: a pure planning function (unit-tested, no MPI, no hwloc); the peer side
 * (mf_binding_setup: plan, apply with hwloc_set_cpubind(HWLOC_CPUBIND_PROCESS), so the OpenBLAS
 * threads are bound too; what to tell the workers; the /environment strings); and the worker
 * side (mf_binding_worker_apply: bind from the peer's plan right after MPI_Init, report what it
 * got into a file of the peer's report directory, read back for /environment). */
#ifndef MAYFLY_BENCH_BINDING_H
#define MAYFLY_BENCH_BINDING_H

#include <mpi.h>
#include <stddef.h>

#define MF_BIND_TEXT 256 /* the length of every binding string (also the HDF5 string size) */

typedef struct {
  int enabled;      /* 0: --bind none */
  int cores;        /* cores of the node this job may use */
  int node_peers;   /* peers on the node */
  int local_rank;   /* this peer's index among them */
  int peer_cores;   /* cores one peer needs (its threads), >= 1 */
  int workers;      /* workers this peer may run at once (largest pool), >= 0 */
  int worker_cores; /* cores one worker needs (its threads), >= 1 */
} mf_bind_request;

typedef struct {
  int peer_core; /* first core (logical index) of the peer's peer_cores, -1: unbound */
  /* Workers 0 .. workers_bound-1 get cores first_worker_core + w*worker_cores onwards (their
   * own, disjoint from every other process of the node); the others stay unbound and share
   * the node's cores. */
  int workers_bound;
  int first_worker_core;
  int free_cores;                 /* cores of this peer's slice for its workers */
  char peer_note[MF_BIND_TEXT];   /* "bound" or "unbound: why" */
  char worker_note[MF_BIND_TEXT]; /* why the workers past workers_bound are unbound ("" if none) */
} mf_bind_plan;

/* Pure: the plan of one peer of a node. */
void mf_bind_plan_make(const mf_bind_request *request, mf_bind_plan *plan);

/* Peer side, collective over comm: finds the node's peers (MPI_COMM_TYPE_SHARED) and cores
 * (hwloc), plans, binds this process, and prepares the workers' instructions and a report
 * directory for them (serverless modes: workers > 0). Binding failures are not fatal: they are
 * printed as a warning and recorded. -1 only when the node cannot even be examined. */
int mf_binding_setup(MPI_Comm comm, const char *mode, int peer_threads, int workers,
                     int worker_threads, char *err, size_t errlen);
int mf_binding_active(void); /* 1 after mf_binding_setup succeeded */

/* This peer's records: "HOST:cores=LIST:bound" / "HOST:cores=none:unbound: why" (planned), and
 * "HOST:cpus=LIST:bound" / "HOST:cpus=LIST:unbound: why" / "...:bind failed: why" (actual). */
void mf_binding_peer_planned(char *out, size_t size);
void mf_binding_peer_actual(char *out, size_t size);
/* The plan for this peer's workers in one line (for /environment and the header). */
void mf_binding_workers_planned(char *out, size_t size);
/* What worker `index` of this peer last reported ("HOST:cpus=LIST:bound", ...), or
 * "not reported" (never started, or started on another node). */
void mf_binding_worker_reported(int index, char *out, size_t size);
/* 1 + the highest worker slot that reported (0: none). */
int mf_binding_worker_slots_seen(void);

/* The argument of the worker's --bind-cpus: "PLAN@DIR", PLAN = "none" or one entry per worker
 * index separated by ';' (a core range "1" or "2-3", or "-": unbound), DIR where the worker
 * reports. */
void mf_binding_worker_argument(char *out, size_t size);
/* The spawn info key "host" for this peer's workers under --placement local: its own node's
 * name when the peers span several nodes (so the workers run where the plan's cores are), else
 * NULL (Open MPI's default mapping, which on one node is that node). Other placements name
 * their hosts themselves (bench/harness/placement.h). */
const char *mf_binding_worker_host(void);
/* One line: where workers are placed and why (for /environment). */
void mf_binding_placement(char *out, size_t size);
/* Removes the report directory (end of run). */
void mf_binding_cleanup(void);

/* Worker side: takes the lowest free worker slot of the peer's report directory (a lock file;
 * index_hint, the rank in its spawn group, when there is no directory), binds the calling
 * process as `argument` (mf_binding_worker_argument) says for that slot (a slot past the bound
 * ones: the whole node, explicitly), and writes what it got to the report directory. -1 with a
 * message on a malformed argument; a failed bind is reported, not fatal. */
int mf_binding_worker_apply(const char *argument, int index_hint, char *err, size_t errlen);
/* What mf_binding_worker_apply got, "HOST:cpus=LIST:status" (also sent back with every
 * reply, so the peer knows the binding of a worker on another node). */
const char *mf_binding_worker_line(void);
/* Frees the worker slot (before the worker disconnects, so the next pool finds it free). */
void mf_binding_worker_release(void);

#endif
