/* Recording handler for SIGTERM / SIGINT and the collective that turns one peer's signal into
 * every peer's decision to stop (see signals.h for why). */
#include "bench/harness/signals.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static volatile sig_atomic_t received_signal = 0;
static int output_is_forwarded = 0;

/* Under mpirun, stdout/stderr are mpirun's forwarding ptys. A signalled mpirun stops reading
 * them while it waits between SIGCONT, SIGTERM and SIGKILL to its ranks (observed), so rank 0's
 * round rows fill the pty and its write() blocks past the SIGKILL: with
 * odls_base_sigkill_timeout=10, rank 0 sat in wait_woken (tty write) from 5 s on and never
 * reached the end of its round.
 * Non-blocking output after a stop signal makes that write return (EAGAIN, text dropped that
 * nobody reads) so the peer can finish its round and close the results file. fcntl is
 * async-signal-safe; restricted to mpirun because a terminal's flags are shared with the
 * shell. */
static void unblock_output(int fd) {
  int flags = fcntl(fd, F_GETFL);
  if (flags >= 0) fcntl(fd, F_SETFL, flags | O_NONBLOCK);
}

static void record_signal(int signo) {
  int saved_errno = errno;
  if (!received_signal) received_signal = signo;
  if (output_is_forwarded) {
    unblock_output(STDOUT_FILENO);
    unblock_output(STDERR_FILENO);
  }
  errno = saved_errno;
}

int mf_signals_install(void) {
  output_is_forwarded = getenv("OMPI_COMM_WORLD_RANK") != NULL;
  struct sigaction action;
  memset(&action, 0, sizeof action);
  action.sa_handler = record_signal;
  sigemptyset(&action.sa_mask);
  /* SA_RESTART: MPI, HDF5 and file reads must not see EINTR because of us.
   * SA_RESETHAND: the second signal kills at once, the usual "press Ctrl-C again" contract. */
  action.sa_flags = SA_RESTART | SA_RESETHAND;
  int rc = 0;
  if (sigaction(SIGTERM, &action, NULL) != 0) rc = -1;
  if (sigaction(SIGINT, &action, NULL) != 0) rc = -1;
  return rc;
}

int mf_signals_agree(MPI_Comm comm) {
  int mine = (int)received_signal, any = 0;
  MPI_Allreduce(&mine, &any, 1, MPI_INT, MPI_MAX, comm);
  return any;
}

const char *mf_signal_name(int signo) {
  static char other[32];
  if (signo == SIGTERM) return "SIGTERM";
  if (signo == SIGINT) return "SIGINT";
  snprintf(other, sizeof other, "signal %d", signo);
  return other;
}
