/* Where the workers run across the whole allocation (issue #12): `--placement local|remote|any`
 * and the free worker slots of every node of the job.
 *
 * Why: mayfly's peers hand their gradient work to compute elsewhere, and on a cluster the
 * free cores are on other nodes too. The allocation is read from Slurm (SLURM_JOB_NODELIST with
 * SLURM_TASKS_PER_NODE or SLURM_JOB_CPUS_PER_NODE), else from the hostfile mpirun was given
 * through OMPI_MCA_orte_default_hostfile, else it is the peers' own nodes; each node's free slots
 * (its slots minus the peers on it) are shared among the peers as the placement says:
 *   local   only the peer's own node (the slots of a node split evenly among its peers);
 *   remote  only nodes that hold no peer;
 *   any     every node; slots are handed out one per peer per pass, each to the node with the
 *           most slots left (the peer's own node on a tie), so every peer gets the same number
 *           and no node fills while another idles.
 * Pure parsers and the sharing function are unit-tested (tests/test_placement.c); the MPI side
 * (mf_placement_setup, ..._round) gathers the peers' hosts once and re-reads the allocation
 * every round. */
#ifndef MAYFLY_BENCH_PLACEMENT_H
#define MAYFLY_BENCH_PLACEMENT_H

#include <mpi.h>
#include <stddef.h>

#define MF_HOST_NAME 64  /* a host name, also the HDF5 string size of the task rows' host */
#define MF_HOSTS_MAX 512 /* nodes of an allocation mayfly can place workers on */

typedef enum { MF_PLACEMENT_LOCAL, MF_PLACEMENT_REMOTE, MF_PLACEMENT_ANY } mf_placement_kind;
/* "local", "remote", "any" -> kind; -1 for anything else. */
int mf_placement_parse(const char *text);
const char *mf_placement_name(mf_placement_kind kind);

typedef struct {
  int count;
  char name[MF_HOSTS_MAX][MF_HOST_NAME];
  int slots[MF_HOSTS_MAX]; /* -1: unknown */
} mf_hosts;

/* Slurm's compressed host list ("node[1-3,07],gpu05", "r[1-2]n[01-02]") appended to out with
 * unknown slots. 0, or -1 with a message. */
int mf_hostlist_expand(const char *list, mf_hosts *out, char *err, size_t errlen);
/* Slurm's per-node counts ("2(x3),1") into counts[0..max): how many, or -1 when malformed or
 * longer than max. */
int mf_counts_expand(const char *text, int *counts, int max);
/* The nodes of a Slurm allocation from its variables' values: nodelist with tasks_per_node
 * (preferred: what Open MPI counts as slots) or cpus_per_node. 0 (out->count > 0), -1 with a
 * message when they are set but malformed or disagree, 1 when nodelist is unset. */
int mf_allocation_from_slurm(const char *nodelist, const char *tasks_per_node,
                             const char *cpus_per_node, mf_hosts *out, char *err, size_t errlen);
/* An Open MPI hostfile ("host slots=N", "#" comments; a host without slots= has 1, a repeated
 * host adds up). 0, or -1 with a message naming the file and line. */
int mf_hostfile_read(const char *path, mf_hosts *out, char *err, size_t errlen);
/* Index of host in hosts (exact, or equal up to the first '.'), or -1. */
int mf_hosts_find(const mf_hosts *hosts, const char *host);

/* Shares the free slots of the hosts among the peers. peer_host[p]: index of peer p's host in
 * hosts. share[p * hosts->count + h] receives peer p's slots on host h. A host with unknown
 * slots (-1) has none to give. Returns how many hosts the placement may use (0: none). */
int mf_placement_share(mf_placement_kind kind, const mf_hosts *hosts, int peers,
                       const int *peer_host, int *share);

/* ---- MPI side ---- */

/* Collective over comm, once before the pool exists: gathers every peer's host, reads the
 * allocation and checks that the placement can be satisfied (remote: a node without a peer).
 * -1 with one message (the same on every rank) when it cannot. */
int mf_placement_setup(MPI_Comm comm, const char *placement, char *err, size_t errlen);
/* Re-reads the allocation's slots (not collective: every peer reads the same) and shares them;
 * returns this peer's free slots in total (-1: no node's slots known). */
int mf_placement_round(void);
/* The hosts of the allocation as set up, and this round's free slots (slots minus peers, -1
 * unknown) of each, for /pool. */
const mf_hosts *mf_placement_hosts(void);
void mf_placement_free_slots(int *out);
/* 1 when workers are placed by this module: an allocation of several nodes, under any
 * placement. The spawn then names a host for every worker (under local, the peer's own node:
 * without a host Open MPI would map the children over the whole allocation). On one node
 * bench/harness/binding.h's placement applies. */
int mf_placement_places(void);
/* 1 when workers may run on a node other than their peer's (remote, or any, on several nodes):
 * the peer's node's cores then do not bound its workers. */
int mf_placement_off_node(void);
/* Chooses the hosts of `workers` new workers for this peer given how many of its live workers
 * already run on each host (alive_on[h]): fills hosts[] with distinct indices and counts[],
 * returns how many hosts are used. Hosts with free share first; past the share, round robin. */
int mf_placement_choose(int workers, const int *alive_on, int *hosts, int *counts);
/* One line: the placement, the allocation's source and its nodes (for /environment, /pool). */
void mf_placement_describe(char *out, size_t size);
/* Frees the run's placement (end of run). */
void mf_placement_cleanup(void);

#endif
