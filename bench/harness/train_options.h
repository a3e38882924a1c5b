/* mayfly-train's option table (one table drives parsing, --help, the header and /config). */
#ifndef MAYFLY_BENCH_TRAIN_OPTIONS_H
#define MAYFLY_BENCH_TRAIN_OPTIONS_H

#include "bench/harness/options.h"

extern const mf_program mf_train_program;

/* Option values shared by the programs that name models (MF_OPT_CUSTOM parse/format). */
int mf_option_parse_model(const char *text, void *field, char *err, size_t errlen);
void mf_option_format_string(const void *field, char *out, size_t size);

#endif
