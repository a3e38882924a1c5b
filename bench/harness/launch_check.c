/* Safe MPI_Comm_spawn from any launcher (see launch_check.h for why and what was measured). */
#include "bench/harness/launch_check.h"

#include <dlfcn.h>
#include <link.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/harness/h5util.h"
#include "bench/harness/options.h"

#define FACT 256

static struct {
  int prepared;
  char launcher[32];          /* mpirun, srun, singleton, unknown: who started this process */
  char requested[FACT];       /* PMIX_MCA_gds as the launcher gave it ("" when unset) */
  int set_by_mayfly;          /* mf_launch_prepare chose hash */
  char spawn_check[4 * FACT]; /* the verdict of mf_launch_check */
  int allow_unsafe;
} launch = {.launcher = "unknown", .spawn_check = "not checked"};

static const char *env_or_empty(const char *name) {
  const char *value = getenv(name);
  return value ? value : "";
}

/* Whether the comma-separated list names item. */
static int list_has(const char *list, const char *item) {
  size_t n = strlen(item);
  for (const char *p = list; p && *p;) {
    const char *end = strchr(p, ',');
    size_t len = end ? (size_t)(end - p) : strlen(p);
    if (len == n && strncmp(p, item, n) == 0) return 1;
    p = end ? end + 1 : NULL;
  }
  return 0;
}

/* Who started this process, from the launcher's variables: mpirun (ORTE) gives its ranks and
 * their spawned children its URI; srun's PMIx plugin gives a PMIx rank inside a job step and no
 * ORTE; a singleton has neither (before MPI_Init: a singleton adds its own later). */
static void detect_launcher(void) {
  if (getenv("OMPI_MCA_orte_hnp_uri"))
    snprintf(launch.launcher, sizeof launch.launcher, "mpirun");
  else if ((getenv("SLURM_STEP_ID") || getenv("SLURM_STEPID")) && getenv("PMIX_RANK"))
    snprintf(launch.launcher, sizeof launch.launcher, "srun");
  else if (!getenv("PMIX_RANK") && !getenv("OMPI_COMM_WORLD_SIZE"))
    snprintf(launch.launcher, sizeof launch.launcher, "singleton");
}

void mf_launch_prepare(void) {
  const char *requested = getenv("PMIX_MCA_gds"), *offered = getenv("PMIX_GDS_MODULE");
  snprintf(launch.requested, sizeof launch.requested, "%s", requested ? requested : "");
  detect_launcher();
  /* A singleton's MPI_Init forks its own mpirun (the PMIx server), which inherits this. */
  int singleton = strcmp(launch.launcher, "singleton") == 0;
  if ((!requested || !*requested) && ((offered && list_has(offered, "hash")) || singleton)) {
    setenv("PMIX_MCA_gds", "hash", 1);
    launch.set_by_mayfly = 1;
  }
  launch.prepared = 1;
}

/* Without mf_launch_prepare (a program that never spawns): what the launcher gave. */
static void remember_launch(void) {
  if (launch.prepared) return;
  snprintf(launch.requested, sizeof launch.requested, "%s", env_or_empty("PMIX_MCA_gds"));
  detect_launcher();
  launch.prepared = 1;
}

/* The store this process's PMIx client uses: the highest-priority module (ds21, ds12, hash)
 * that the server offers (PMIX_GDS_MODULE) and PMIX_MCA_gds allows ("a,b" or "^a,b"). */
static const char *gds_in_use(void) {
  const char *offered = getenv("PMIX_GDS_MODULE"), *wanted = getenv("PMIX_MCA_gds");
  if (!offered || !*offered) return "unknown";
  static const char *const by_priority[] = {"ds21", "ds12", "hash"};
  for (int i = 0; i < 3; i++) {
    const char *m = by_priority[i];
    if (!list_has(offered, m)) continue;
    if (wanted && *wanted) {
      int excluding = wanted[0] == '^', named = list_has(wanted + excluding, m);
      if (excluding == named) continue;
    }
    return m;
  }
  return "none";
}

static int dstore(const char *gds) {
  return strcmp(gds, "ds21") == 0 || strcmp(gds, "ds12") == 0;
}

/* The external PMIx library's own version ("4.2.2rc2"), "" when none is loaded: Open MPI's
 * internal PMIx is linked into its component and has no libpmix.so of its own. */
static int find_libpmix(struct dl_phdr_info *info, size_t size, void *data) {
  (void)size;
  if (!info->dlpi_name || !strstr(info->dlpi_name, "/libpmix.so")) return 0;
  snprintf(data, FACT, "%s", info->dlpi_name);
  return 1;
}

static void pmix_library_version(char *out, size_t size) {
  char path[FACT] = "";
  out[0] = '\0';
  dl_iterate_phdr(find_libpmix, path);
  if (!path[0]) return;
  void *library = dlopen(path, RTLD_LAZY | RTLD_NOLOAD);
  const char *(*get_version)(void) =
      library ? (const char *(*)(void))dlsym(library, "PMIx_Get_version") : NULL;
  const char *text = get_version ? get_version() : NULL; /* "OpenPMIx 4.2.2rc2 (...)" */
  const char *space = text ? strchr(text, ' ') : NULL;
  snprintf(out, size, "%.*s", space ? (int)strcspn(space + 1, " ,") : 7,
           space ? space + 1 : "unknown");
  if (library) dlclose(library);
}

/* "4.1.4" from "Open MPI v4.1.4, package: ...", "" for another MPI. */
static void open_mpi_version(char *out, size_t size) {
  char text[MPI_MAX_LIBRARY_VERSION_STRING];
  int length = 0;
  MPI_Get_library_version(text, &length);
  const char *v = strncmp(text, "Open MPI v", 10) == 0 ? text + 10 : "";
  snprintf(out, size, "%.*s", (int)strcspn(v, ", \n"), v);
}

/* Why this process cannot spawn safely ("" when it can), with the remedy. */
static void spawn_hazard(const char *what, char *out, size_t size) {
  char ompi[32], pmix[FACT];
  open_mpi_version(ompi, sizeof ompi);
  pmix_library_version(pmix, sizeof pmix);
  const char *gds = gds_in_use();
  out[0] = '\0';
  if (strcmp(launch.launcher, "srun") == 0) {
    snprintf(
        out, size,
        "%s: started by srun directly, and Slurm's PMIx server cannot MPI_Comm_spawn; "
        "start mpirun inside the allocation (e.g. bench/scripts/launch.sh in the batch script; "
        "baseline runs need no spawn)",
        what);
  } else if (strncmp(ompi, "4.1.", 4) == 0 && pmix[0] && dstore(gds)) {
    char cause[2 * FACT];
    if (launch.requested[0])
      snprintf(cause, sizeof cause, "PMIX_MCA_gds=%.200s selects", launch.requested);
    else
      snprintf(cause, sizeof cause, "the launcher (%s, gds offered: %.200s) leaves",
               launch.launcher, env_or_empty("PMIX_GDS_MODULE"));
    snprintf(out, size,
             "%s: %s PMIx's shared-memory store %s, with which Open MPI %s and PMIx %s stall "
             "in MPI_Comm_spawn (results/spawn_hang.md); export PMIX_MCA_gds=hash before "
             "mpirun, or start it with bench/scripts/launch.sh",
             what, cause, gds, ompi, pmix);
  }
}

int mf_launch_check(MPI_Comm comm, const char *program, const char *spawner, int allow_unsafe) {
  remember_launch();
  const int spawns = spawner != NULL;
  int rank = 0, size = 1;
  MPI_Comm_rank(comm, &rank);
  MPI_Comm_size(comm, &size);
  launch.allow_unsafe = allow_unsafe;
  char hazard[4 * FACT] = "";
  if (spawns) spawn_hazard(spawner, hazard, sizeof hazard);
  if (!spawns)
    snprintf(launch.spawn_check, sizeof launch.spawn_check, "not checked: no spawns");
  else if (!hazard[0])
    snprintf(launch.spawn_check, sizeof launch.spawn_check, "safe: gds %s, launcher %s",
             gds_in_use(), launch.launcher);
  else
    snprintf(launch.spawn_check, sizeof launch.spawn_check, "%s: %s",
             allow_unsafe ? "unsafe, run anyway (--allow-unsafe-spawn)" : "refused", hazard);
  /* The lowest refusing rank reports, so the user reads one line, not one per rank. */
  int refusing = hazard[0] && !allow_unsafe, mine = refusing ? rank : size, first = size;
  MPI_Allreduce(&mine, &first, 1, MPI_INT, MPI_MIN, comm);
  if (first == size) return 0;
  if (rank == first) mf_error(program, "%s (--allow-unsafe-spawn runs anyway)", hazard);
  return 2;
}

void mf_launch_describe(char *out, size_t size) {
  remember_launch();
  char pmix[FACT];
  pmix_library_version(pmix, sizeof pmix);
  snprintf(out, size, "%s; PMIx %s (server %s); gds %s (%s; offered %s)", launch.launcher,
           pmix[0] ? pmix : "internal", getenv("PMIX_VERSION") ? getenv("PMIX_VERSION") : "none",
           gds_in_use(),
           launch.set_by_mayfly  ? "set by mayfly"
           : launch.requested[0] ? "PMIX_MCA_gds from the launcher"
                                 : "PMIx default",
           getenv("PMIX_GDS_MODULE") ? getenv("PMIX_GDS_MODULE") : "none");
}

int mf_launch_record(hid_t group) {
  remember_launch();
  char pmix[FACT];
  pmix_library_version(pmix, sizeof pmix);
  int rc = 0;
  rc |= mf_h5_attr_string(group, "launcher", launch.launcher);
  rc |= mf_h5_attr_string(group, "pmix_version", pmix[0] ? pmix : "internal");
  rc |= mf_h5_attr_string(group, "pmix_server_version", env_or_empty("PMIX_VERSION"));
  rc |= mf_h5_attr_string(group, "gds_requested", launch.requested);
  rc |= mf_h5_attr_string(group, "gds_offered", env_or_empty("PMIX_GDS_MODULE"));
  rc |= mf_h5_attr_string(group, "gds", gds_in_use());
  rc |= mf_h5_attr_string(group, "gds_set_by",
                          launch.set_by_mayfly  ? "mayfly"
                          : launch.requested[0] ? "launcher"
                                                : "default");
  rc |= mf_h5_attr_string(group, "spawn_check", launch.spawn_check);
  rc |= mf_h5_attr_int(group, "allow_unsafe_spawn", launch.allow_unsafe);
  return rc;
}
