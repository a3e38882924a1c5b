/* One option table per program drives both command-line parsing (getopt_long) and --help, so
 * the two cannot drift (the OSU micro-benchmarks' habit). Values land in the program's config
 * struct through offsets; defaults are written as text and parsed like user input, so --help
 * shows exactly what a run will use. Errors are one line:
 *   PROGRAM: error: --OPTION: what is wrong
 * and parsing returns MF_OPTIONS_USAGE_ERROR (the program exits 2). */
#ifndef MAYFLY_BENCH_OPTIONS_H
#define MAYFLY_BENCH_OPTIONS_H

#include <stddef.h>
#include <stdio.h>

typedef enum {
  MF_OPT_FLAG,   /* int: 1 when given */
  MF_OPT_INT,    /* int within [min, max] */
  MF_OPT_DOUBLE, /* double within [min, max] */
  MF_OPT_STRING, /* const char *: the argument itself */
  MF_OPT_CHOICE, /* const char *: one of choices[] */
  MF_OPT_CUSTOM, /* parsed by parse() into the field */
} mf_option_type;

typedef struct mf_option {
  const char *name; /* long name without the dashes */
  char short_name;  /* 0 for none */
  mf_option_type type;
  size_t offset;            /* of the field in the config struct */
  const char *metavar;      /* "N", "FILE", ... (NULL for flags) */
  const char *default_text; /* parsed before argv; NULL: field stays as the caller set it */
  const char *help;
  double min, max;            /* MF_OPT_INT / MF_OPT_DOUBLE; both 0: no limit */
  const char *const *choices; /* MF_OPT_CHOICE: NULL-terminated */
  /* MF_OPT_CUSTOM: 0 or -1 with a message ("'x' is not ...") in err. */
  int (*parse)(const char *text, void *field, char *err, size_t errlen);
  /* MF_OPT_CUSTOM: prints the field's value (for headers and /config). */
  void (*format)(const void *field, char *out, size_t outlen);
} mf_option;

typedef struct {
  const char *name;    /* "mayfly-train" */
  const char *summary; /* one line */
  const char *usage;   /* "[OPTIONS]" */
  const mf_option *options;
  int count;
  const char *epilogue; /* free text after the option list (examples), may be NULL */
} mf_program;

enum { MF_OPTIONS_OK = 0, MF_OPTIONS_EXIT = 1, MF_OPTIONS_USAGE_ERROR = 2 };

#define MF_OPTION_COUNT(table) ((int)(sizeof(table) / sizeof((table)[0])))

/* Parses argv into config. --help and --version are built in (printed unless quiet; returns
 * MF_OPTIONS_EXIT). Errors are printed unless quiet (MPI ranks other than 0 pass quiet). */
int mf_options_parse(const mf_program *program, int argc, char **argv, void *config, int quiet);

void mf_options_print_help(const mf_program *program, FILE *out);

/* Calls visit(name, value_text) for every option, in table order (for headers and /config). */
void mf_options_visit(const mf_program *program, const void *config,
                      void (*visit)(const char *name, const char *value, void *context),
                      void *context);

/* Prints "PROGRAM: error: " + the message, one line, to stderr. */
void mf_error(const char *program, const char *format, ...) __attribute__((format(printf, 2, 3)));

/* Suite version and the git revision the binary was built from. */
extern const char mf_suite_version[];
extern const char mf_git_revision[];
extern const char mf_build_flags[]; /* optimisation and sanitizer flags of this build */

#endif
