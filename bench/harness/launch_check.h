/* Makes MPI_Comm_spawn safe however mpirun was started, and refuses launches where it cannot be.
 *
 * Why: Debian's Open MPI 4.1.4 with its external PMIx 4.2.2 stalls in MPI_Comm_spawn now and
 * then (a freshly spawned child never completes PMIx_Init) while PMIx's shared-memory data store
 * (gds ds21/ds12) is in use; plain `mpirun -np 2 mayfly-train --mode cold` stalled in 9 of 10
 * runs. With every process of the job on the hash store (PMIX_MCA_gds=hash) no run stalled,
 * whether mpirun itself had it (its PMIx server) or only the job's processes (the PMIx clients).
 * The clients must agree: a parent on hash spawning children on ds21, or the reverse, fails in
 * the first MPI_Comm_spawn (results/spawn_hang.md). So every mayfly program that spawns or is
 * spawned calls mf_launch_prepare() before MPI_Init; it picks hash for the PMIx client when the
 * user left PMIX_MCA_gds unset and the server offers hash, the same rule in parent and child
 * (a singleton's MPI_Init forks its own server, which inherits the choice).
 *
 * What it cannot fix it detects right after MPI_Init: a user's PMIX_MCA_gds that selects a
 * shared-memory store on Open MPI 4.1.x with an external PMIx, or a launcher whose PMIx server
 * has no spawn (srun direct launch). Serverless runs refuse those with one error line and exit 2
 * (--allow-unsafe-spawn runs anyway), before any results file exists. The facts land in
 * /environment (mf_launch_record). */
#ifndef MAYFLY_BENCH_LAUNCH_CHECK_H
#define MAYFLY_BENCH_LAUNCH_CHECK_H

#include <hdf5.h>
#include <mpi.h>
#include <stddef.h>

/* Before MPI_Init: sets PMIX_MCA_gds=hash for this process when the launcher left it unset and
 * its PMIx server offers hash (PMIX_GDS_MODULE) or it runs as a singleton. Remembers what the
 * launcher gave. */
void mf_launch_prepare(void);

/* After MPI_Init, collective over comm. spawner: what in the run calls MPI_Comm_spawn (the
 * option named in the error line, e.g. "--mode cold"); NULL when nothing spawns (baseline: never
 * refused). allow_unsafe: the expert override. Returns 0 when the run may go on; 2 when it is
 * refused, after the lowest refusing rank printed one line
 * "PROGRAM: error: SPAWNER: cause; remedy (--allow-unsafe-spawn runs anyway)". */
int mf_launch_check(MPI_Comm comm, const char *program, const char *spawner, int allow_unsafe);

/* One line describing the launch for headers: launcher, PMIx versions, gds and who chose it. */
void mf_launch_describe(char *out, size_t size);

/* The launch facts as attributes of group (rank 0's view; /environment): launcher,
 * pmix_version, pmix_server_version, gds_requested, gds_offered, gds, gds_set_by, spawn_check,
 * allow_unsafe_spawn. */
int mf_launch_record(hid_t group);

#endif
