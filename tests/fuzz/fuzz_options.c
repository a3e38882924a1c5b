/* libFuzzer target: the option parser (bench/harness/options.c) on mayfly-train's option table
 * (bench/harness/train_options.c, which also reaches the dataset-spec parser and the model, mode
 * and exchange tables). The input is argv after the program name, arguments separated by NUL bytes.
 * Parsing runs twice per input, as getopt keeps state between calls, and both results must agree; a
 * successful parse must leave every numeric field inside its table range. Found so far: options.c
 * reset getopt with optind = 1, which keeps glibc's hidden state, and a later parse read a freed
 * argument (ASan heap-use-after-free in strtol, within 20-60 s of fuzzing); fixed with optind = 0.
 * The crash needs state left by earlier inputs, so no single input replays it and there is no
 * regressions/ file for it. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bench/harness/options.h"
#include "bench/harness/train.h"
#include "bench/harness/train_options.h"
#include "tests/fuzz/fuzz_common.h"

#define MAX_ARGS 64

static void visit(const char *name, const char *value, void *context) {
  *(size_t *)context += strlen(name) + strlen(value);
}

static int parse(const char *data, size_t size, mf_train_config *config) {
  char *copy = malloc(size + 1);
  char *argv[MAX_ARGS + 2];
  int argc = 0;
  FUZZ_ASSERT(copy);
  memcpy(copy, data, size);
  copy[size] = '\0';
  argv[argc++] = "mayfly-train";
  for (char *p = copy; p <= copy + size && argc <= MAX_ARGS; p += strlen(p) + 1) argv[argc++] = p;
  argv[argc] = NULL;
  memset(config, 0, sizeof *config);
  int status = mf_options_parse(&mf_train_program, argc, argv, config, 1);
  if (status == MF_OPTIONS_OK) {
    for (int i = 0; i < mf_train_program.count; i++) {
      const mf_option *o = &mf_train_program.options[i];
      const void *field = (const char *)config + o->offset;
      if (o->type == MF_OPT_INT && (o->min || o->max))
        FUZZ_ASSERT(*(const int *)field >= o->min && *(const int *)field <= o->max);
      if (o->type == MF_OPT_DOUBLE && (o->min || o->max))
        FUZZ_ASSERT(*(const double *)field >= o->min && *(const double *)field <= o->max);
    }
    size_t total = 0;
    mf_options_visit(&mf_train_program, config, visit, &total);
    FUZZ_ASSERT(total > 0);
  }
  free(copy); /* config's strings point into copy: not used after this */
  return status;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size > 4096) return 0;
  mf_train_config first, second;
  int a = parse((const char *)data, size, &first);
  int b = parse((const char *)data, size, &second);
  FUZZ_ASSERT(a == b);
  if (a == MF_OPTIONS_OK) {
    FUZZ_ASSERT(first.batch == second.batch && first.tasks == second.tasks &&
                first.rounds == second.rounds && first.seed == second.seed);
  }
  return 0;
}
