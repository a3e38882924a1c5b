/* The watchdog behind every blocking MPI call that could stall (spawn, disconnect): a real-time
 * timer whose signal handler reports what stalled and ends the process. Open MPI 4.1.4 can hang
 * inside MPI_Comm_spawn (notes/platform.md); a benchmark that silently holds an allocation
 * forever is worse than one that fails loudly, and mpirun tears the job down once a rank is
 * gone. Only async-signal-safe calls in the handler. */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include "comm/worker_pool.h"

static char watchdog_message[256];
static size_t watchdog_message_length;

static void watchdog_fire(int signal_number) {
  (void)signal_number;
  ssize_t ignored = write(STDERR_FILENO, watchdog_message, watchdog_message_length);
  (void)ignored;
  _exit(70);
}

void cm_watchdog_arm(double seconds, const char *what) {
  int n = snprintf(watchdog_message, sizeof watchdog_message,
                   "mayfly: error: %s did not complete within %g s; aborting (a stalled "
                   "MPI call, README \"Launching\"; bench/scripts/launch.sh -r re-runs it)\n",
                   what, seconds);
  watchdog_message_length = n < 0                                 ? 0
                            : (size_t)n < sizeof watchdog_message ? (size_t)n
                                                                  : sizeof watchdog_message - 1;
  struct sigaction action;
  memset(&action, 0, sizeof action);
  action.sa_handler = watchdog_fire;
  sigaction(SIGALRM, &action, NULL);
  struct itimerval timer = {{0, 0},
                            {(time_t)seconds, (suseconds_t)((seconds - (time_t)seconds) * 1e6)}};
  if (timer.it_value.tv_sec == 0 && timer.it_value.tv_usec == 0) timer.it_value.tv_usec = 1;
  setitimer(ITIMER_REAL, &timer, NULL);
}

void cm_watchdog_disarm(void) {
  struct itimerval off = {{0, 0}, {0, 0}};
  setitimer(ITIMER_REAL, &off, NULL);
}
