/* The suite's version and the git revision it was built from (stamped by the Makefile), so
 * every result file and header can say exactly what code produced it. */
#include "bench/harness/options.h"

#ifndef MAYFLY_GIT_REVISION
#define MAYFLY_GIT_REVISION "unknown"
#endif

#ifndef MAYFLY_BUILD_FLAGS
#define MAYFLY_BUILD_FLAGS "unknown"
#endif

const char mf_build_flags[] = MAYFLY_BUILD_FLAGS;
const char mf_suite_version[] = "0.1.0";
const char mf_git_revision[] = MAYFLY_GIT_REVISION;
