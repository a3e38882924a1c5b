/* mayfly-train's option table (one table drives parsing, --help, the header and /config). */
#ifndef MAYFLY_BENCH_TRAIN_OPTIONS_H
#define MAYFLY_BENCH_TRAIN_OPTIONS_H

#include "bench/options.h"

extern const mf_program mf_train_program;

#endif
