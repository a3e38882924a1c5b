/* spawn_host: MPI_Comm_spawn onto a named node, for tests/integration/virtual_cluster.sh.
 *
 * Why it exists: bin/mayfly-spawn spawns beside its parent and has no way to name a host; the
 * virtual cluster's test must show that a child lands on another node of the allocation when
 * the spawn info key "host" names it. Run as `mpirun -np 1 spawn_host HOST`: the parent spawns
 * one copy of itself with info host=HOST (and map_by :OVERSUBSCRIBE, the slots being taken by
 * the job's own tasks), the child sends its host name back over the intercommunicator, and the
 * parent prints "parent P child C" and exits 0 only when C is HOST. Compiled by the test with
 * mpicc (not part of the suite's build). */
#include <mpi.h>
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  char name[MPI_MAX_PROCESSOR_NAME] = {0};
  int length = 0;
  MPI_Get_processor_name(name, &length);
  MPI_Comm parent;
  MPI_Comm_get_parent(&parent);
  if (parent != MPI_COMM_NULL) {
    MPI_Send(name, MPI_MAX_PROCESSOR_NAME, MPI_CHAR, 0, 0, parent);
    MPI_Comm_disconnect(&parent);
    MPI_Finalize();
    return 0;
  }
  if (argc != 2) {
    fprintf(stderr, "usage: spawn_host HOST\n");
    MPI_Abort(MPI_COMM_WORLD, 2);
  }
  MPI_Info info;
  MPI_Info_create(&info);
  MPI_Info_set(info, "host", argv[1]);
  MPI_Info_set(info, "map_by", ":OVERSUBSCRIBE");
  MPI_Comm children;
  int code = MPI_SUCCESS;
  char *child_argv[] = {argv[1], NULL};
  MPI_Comm_spawn(argv[0], child_argv, 1, info, 0, MPI_COMM_SELF, &children, &code);
  MPI_Info_free(&info);
  char child[MPI_MAX_PROCESSOR_NAME] = {0};
  MPI_Recv(child, MPI_MAX_PROCESSOR_NAME, MPI_CHAR, 0, 0, children, MPI_STATUS_IGNORE);
  MPI_Comm_disconnect(&children);
  printf("parent %s child %s\n", name, child);
  fflush(stdout);
  int ok = strcmp(child, argv[1]) == 0;
  MPI_Finalize();
  return ok ? 0 : 1;
}
