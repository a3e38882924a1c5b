/* Environment capture for result files (see environment.h). Without it a number in a results
 * file cannot be traced to the machine, library and placement that produced it. */
#include "bench/harness/environment.h"

#include <cblas.h>
#include <hwloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench/harness/binding.h"
#include "bench/harness/h5util.h"
#include "bench/harness/launch_check.h"
#include "bench/harness/options.h"
#include "bench/harness/placement.h"

#define LINE 256

void mf_mpi_library(char *out, size_t size) {
  char version[MPI_MAX_LIBRARY_VERSION_STRING];
  int length = 0;
  MPI_Get_library_version(version, &length);
  char *newline = strchr(version, '\n');
  if (newline) *newline = '\0';
  char *comma = strchr(version, ',');
  if (comma) *comma = '\0';
  snprintf(out, size, "%s", version);
}

void mf_binding(char *out, size_t size) {
  char host[128] = "?";
  gethostname(host, sizeof host);
  host[sizeof host - 1] = '\0';
  hwloc_topology_t topology;
  char *cpus = NULL;
  if (hwloc_topology_init(&topology) == 0 && hwloc_topology_load(topology) == 0) {
    hwloc_bitmap_t set = hwloc_bitmap_alloc();
    if (hwloc_get_cpubind(topology, set, HWLOC_CPUBIND_PROCESS) == 0)
      hwloc_bitmap_list_asprintf(&cpus, set);
    hwloc_bitmap_free(set);
    hwloc_topology_destroy(topology);
  }
  snprintf(out, size, "%s:cpus=%s", host, cpus ? cpus : "?");
  free(cpus);
}

static int write_topology_xml(hid_t group) {
  hwloc_topology_t topology;
  if (hwloc_topology_init(&topology) != 0) return -1;
  int rc = -1;
  char *xml = NULL;
  int length = 0;
  if (hwloc_topology_load(topology) == 0 &&
      hwloc_topology_export_xmlbuffer(topology, &xml, &length, 0) == 0) {
    hid_t type = H5Tcopy(H5T_C_S1);
    H5Tset_size(type, (size_t)length > 0 ? (size_t)length : 1);
    hid_t space = H5Screate(H5S_SCALAR);
    hid_t dataset =
        H5Dcreate2(group, "hwloc_topology", type, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    rc = dataset >= 0 && H5Dwrite(dataset, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, xml) >= 0 ? 0 : -1;
    if (dataset >= 0) H5Dclose(dataset);
    H5Sclose(space);
    H5Tclose(type);
    hwloc_free_xmlbuffer(topology, xml);
  }
  hwloc_topology_destroy(topology);
  return rc;
}

/* Gathers `count` MF_BIND_TEXT strings per rank to rank 0 and writes them as a string dataset
 * of /environment shaped [peers] (count 0: one string each) or [peers, count]. */
static int gather_strings(hid_t file, MPI_Comm comm, const char *name, const char *mine,
                          int count) {
  const int columns = count > 0;
  if (count == 0) count = 1;
  int rank, peers;
  MPI_Comm_rank(comm, &rank);
  MPI_Comm_size(comm, &peers);
  const size_t per_rank = (size_t)count * MF_BIND_TEXT;
  char *all = rank == 0 ? calloc((size_t)peers, per_rank) : NULL;
  MPI_Gather(mine, (int)per_rank, MPI_CHAR, all, (int)per_rank, MPI_CHAR, 0, comm);
  if (rank != 0) return 0;
  if (!all) return -1;
  hid_t group = mf_h5_group(file, "/environment");
  hsize_t dims[2] = {(hsize_t)peers, (hsize_t)count};
  hid_t string_type = H5Tcopy(H5T_C_S1);
  H5Tset_size(string_type, MF_BIND_TEXT);
  int rc = mf_h5_write_array(group, name, string_type, string_type, columns ? 2 : 1, dims, all);
  H5Tclose(string_type);
  H5Gclose(group);
  free(all);
  return rc;
}

static int record_peer_bindings(hid_t file, MPI_Comm comm) {
  char text[MF_BIND_TEXT] = "";
  int rc = 0;
  mf_binding_peer_planned(text, sizeof text);
  rc |= gather_strings(file, comm, "peer_binding_plan", text, 0);
  mf_binding_peer_actual(text, sizeof text);
  rc |= gather_strings(file, comm, "peer_bindings", text, 0);
  mf_binding_workers_planned(text, sizeof text);
  rc |= gather_strings(file, comm, "worker_binding_plan", text, 0);
  int rank;
  MPI_Comm_rank(comm, &rank);
  if (rank == 0) {
    hid_t group = mf_h5_group(file, "/environment");
    char placement[4096];
    if (mf_placement_hosts()) { /* serverless modes: the nodes and what the placement allows */
      mf_placement_describe(placement, sizeof placement);
      rc |= mf_h5_attr_string(group, "placement", placement);
    }
    if (mf_placement_places())
      snprintf(text, sizeof text, "spawn info host=<the nodes --placement chose> per worker");
    else
      mf_binding_placement(text, sizeof text);
    rc |= mf_h5_attr_string(group, "worker_placement", text);
    H5Gclose(group);
  }
  return rc;
}

int mf_environment_record_lines(hid_t file, MPI_Comm comm, const char *name, const char *lines,
                                int count, char *err, size_t errlen) {
  int most = 0;
  MPI_Allreduce(&count, &most, 1, MPI_INT, MPI_MAX, comm);
  if (most == 0) return 0;
  char *padded = calloc((size_t)most, MF_BIND_TEXT);
  if (!padded) { /* the others wait in the gather: end the job rather than hang it */
    fprintf(stderr, "mayfly: error: out of memory for /environment/%s\n", name);
    MPI_Abort(comm, 1);
  }
  memcpy(padded, lines, (size_t)count * MF_BIND_TEXT);
  int rc = gather_strings(file, comm, name, padded, most);
  free(padded);
  if (rc) snprintf(err, errlen, "writing /environment/%s failed", name);
  return rc ? -1 : 0;
}

int mf_environment_record(hid_t file, MPI_Comm comm, char *err, size_t errlen) {
  int rank, peers;
  MPI_Comm_rank(comm, &rank);
  MPI_Comm_size(comm, &peers);
  char mine[LINE];
  mf_binding(mine, sizeof mine);
  char *all = rank == 0 ? calloc((size_t)peers, LINE) : NULL;
  MPI_Gather(mine, LINE, MPI_CHAR, all, LINE, MPI_CHAR, 0, comm);
  int active = mf_binding_active(), all_active = 0;
  MPI_Allreduce(&active, &all_active, 1, MPI_INT, MPI_MIN, comm);
  int rc = all_active ? record_peer_bindings(file, comm) : 0;
  if (rank != 0) return 0;

  hid_t group = mf_h5_group(file, "/environment");
  char text[LINE * 4];
  mf_mpi_library(text, sizeof text);
  rc |= mf_h5_attr_string(group, "mpi_library_version", text);
  int major, minor;
  MPI_Get_version(&major, &minor);
  snprintf(text, sizeof text, "%d.%d", major, minor);
  rc |= mf_h5_attr_string(group, "mpi_standard_version", text);
  /* hostnames: the distinct hosts, in rank order */
  size_t used = 0;
  text[0] = '\0';
  for (int r = 0; r < peers; r++) {
    char host[LINE];
    snprintf(host, sizeof host, "%s", all + (size_t)r * LINE);
    char *colon = strchr(host, ':');
    if (colon) *colon = '\0';
    if (!strstr(text, host) && used < sizeof text)
      used += (size_t)snprintf(text + used, sizeof text - used, "%s%s", used ? "," : "", host);
  }
  rc |= mf_h5_attr_string(group, "hostnames", text);
  const char *job = getenv("SLURM_JOB_ID");
  rc |= mf_h5_attr_string(group, "slurm_job_id", job ? job : "");
  rc |= mf_launch_record(group);
  rc |= mf_h5_attr_string(group, "openblas_config", openblas_get_config());
  rc |= mf_h5_attr_int(group, "openblas_threads", openblas_get_num_threads());
  const char *coretype = getenv("OPENBLAS_CORETYPE");
  rc |= mf_h5_attr_string(group, "openblas_coretype", coretype ? coretype : "");
  rc |= mf_h5_attr_string(group, "compiler", "gcc " __VERSION__);
  rc |= mf_h5_attr_string(group, "compiler_flags", mf_build_flags);
  rc |= mf_h5_attr_string(group, "hwloc_version", HWLOC_VERSION);
  hsize_t dims[1] = {(hsize_t)peers};
  hid_t string_type = H5Tcopy(H5T_C_S1);
  H5Tset_size(string_type, LINE);
  rc |= mf_h5_write_array(group, "rank_bindings", string_type, string_type, 1, dims, all);
  H5Tclose(string_type);
  rc |= write_topology_xml(group);
  H5Gclose(group);
  free(all);
  if (rc != 0) snprintf(err, errlen, "writing /environment failed");
  return rc ? -1 : 0;
}

int mf_environment_record_workers(hid_t file, MPI_Comm comm, char *err, size_t errlen) {
  int active = mf_binding_active(), all_active = 0;
  MPI_Allreduce(&active, &all_active, 1, MPI_INT, MPI_MIN, comm);
  if (!all_active) return 0;
  int mine = mf_binding_worker_slots_seen(), slots = 0;
  MPI_Allreduce(&mine, &slots, 1, MPI_INT, MPI_MAX, comm);
  if (slots == 0) return 0;
  char *reports = calloc((size_t)slots, MF_BIND_TEXT);
  if (!reports) {
    snprintf(err, errlen, "out of memory");
    return -1;
  }
  for (int w = 0; w < slots; w++)
    mf_binding_worker_reported(w, reports + (size_t)w * MF_BIND_TEXT, MF_BIND_TEXT);
  int rc = gather_strings(file, comm, "worker_bindings", reports, slots);
  free(reports);
  if (rc) snprintf(err, errlen, "writing /environment/worker_bindings failed");
  return rc ? -1 : 0;
}
