/* Process-level helpers every mayfly program shares: the exit-status report the launcher relies
 * on (bench/scripts/launch.sh), peak memory, order statistics for summaries. */
#ifndef MAYFLY_BENCH_UTIL_H
#define MAYFLY_BENCH_UTIL_H

#include <stddef.h>
#include <stdint.h>

/* Writes `code` to $MAYFLY_STATUS_DIR/rank-<rank> (if the variable is set). Call after
 * MPI_Finalize, just before returning from main: it tells the launcher this rank is done even
 * when mpirun itself hangs on exit. */
void mf_report_exit(int rank, int code);

/* Peak resident set size of this process (VmHWM), bytes; 0 if unknown. */
int64_t mf_peak_rss_bytes(void);

/* The q-quantile (0..1) of values[0..n) by linear interpolation; values are copied, not sorted
 * in place. NaN when n == 0. */
double mf_quantile(const double *values, size_t n, double q);

/* Directory holding this executable (for finding sibling programs such as mayfly-worker). */
int mf_program_dir(char *out, size_t size);

#endif
