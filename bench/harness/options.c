/* The option-table parser behind every mayfly program (see options.h for why). */
#include "bench/harness/options.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

void mf_error(const char *program, const char *format, ...) {
  va_list args;
  va_start(args, format);
  fprintf(stderr, "%s: error: ", program);
  vfprintf(stderr, format, args);
  fputc('\n', stderr);
  va_end(args);
}

static void *field_of(void *config, const mf_option *o) {
  return (char *)config + o->offset;
}

static int has_range(const mf_option *o) {
  return o->min != 0 || o->max != 0;
}

static int parse_int(const mf_option *o, const char *text, int *out, char *err, size_t n) {
  errno = 0;
  char *end = NULL;
  long long v = strtoll(text, &end, 10);
  if (text[0] == '\0' || *end != '\0') {
    snprintf(err, n, "'%s' is not an integer", text);
    return -1;
  }
  if (errno == ERANGE || v < INT_MIN || v > INT_MAX) {
    snprintf(err, n, "'%s' is too large", text);
    return -1;
  }
  if (has_range(o) && (v < o->min || v > o->max)) {
    snprintf(err, n, "%lld is out of range (%.0f..%.0f)", v, o->min, o->max);
    return -1;
  }
  *out = (int)v;
  return 0;
}

static int parse_double(const mf_option *o, const char *text, double *out, char *err, size_t n) {
  errno = 0;
  char *end = NULL;
  double v = strtod(text, &end);
  if (text[0] == '\0' || *end != '\0' || !isfinite(v)) {
    snprintf(err, n, "'%s' is not a finite number", text);
    return -1;
  }
  if (errno == ERANGE) {
    snprintf(err, n, "'%s' is out of the representable range", text);
    return -1;
  }
  if (has_range(o) && (v < o->min || v > o->max)) {
    snprintf(err, n, "%s is out of range (%g..%g)", text, o->min, o->max);
    return -1;
  }
  *out = v;
  return 0;
}

static int parse_value(const mf_option *o, const char *text, void *config, char *err, size_t n) {
  void *field = field_of(config, o);
  switch (o->type) {
    case MF_OPT_FLAG:
      *(int *)field = 1;
      return 0;
    case MF_OPT_INT:
      return parse_int(o, text, (int *)field, err, n);
    case MF_OPT_DOUBLE:
      return parse_double(o, text, (double *)field, err, n);
    case MF_OPT_STRING:
      if (text[0] == '\0') {
        snprintf(err, n, "empty value");
        return -1;
      }
      *(const char **)field = text;
      return 0;
    case MF_OPT_CHOICE:
      for (int i = 0; o->choices[i]; i++)
        if (strcmp(o->choices[i], text) == 0) {
          *(const char **)field = o->choices[i];
          return 0;
        }
      {
        size_t used = (size_t)snprintf(err, n, "'%s' is not one of", text);
        for (int i = 0; o->choices[i] && used < n; i++)
          used += (size_t)snprintf(err + used, n - used, "%s %s", i ? "," : "", o->choices[i]);
      }
      return -1;
    case MF_OPT_CUSTOM:
      return o->parse(text, field, err, n);
  }
  return -1;
}

static void format_value(const mf_option *o, const void *config, char *out, size_t n) {
  const void *field = (const char *)config + o->offset;
  switch (o->type) {
    case MF_OPT_FLAG:
    case MF_OPT_INT:
      snprintf(out, n, "%d", *(const int *)field);
      break;
    case MF_OPT_DOUBLE:
      snprintf(out, n, "%g", *(const double *)field);
      break;
    case MF_OPT_STRING:
    case MF_OPT_CHOICE: {
      const char *s = *(const char *const *)field;
      snprintf(out, n, "%s", s ? s : "");
      break;
    }
    case MF_OPT_CUSTOM:
      o->format(field, out, n);
      break;
  }
}

void mf_options_visit(const mf_program *program, const void *config,
                      void (*visit)(const char *name, const char *value, void *context),
                      void *context) {
  char value[512];
  for (int i = 0; i < program->count; i++) {
    format_value(&program->options[i], config, value, sizeof value);
    visit(program->options[i].name, value, context);
  }
}

void mf_options_print_help(const mf_program *program, FILE *out) {
  fprintf(out, "Usage: %s %s\n%s\n\nOptions:\n", program->name, program->usage, program->summary);
  for (int i = 0; i < program->count; i++) {
    const mf_option *o = &program->options[i];
    char left[96];
    int used = o->short_name ? snprintf(left, sizeof left, "  -%c, --%s", o->short_name, o->name)
                             : snprintf(left, sizeof left, "      --%s", o->name);
    if (o->metavar) snprintf(left + used, sizeof left - (size_t)used, " %s", o->metavar);
    fprintf(out, "%-30s %s", left, o->help);
    if (o->type == MF_OPT_CHOICE) {
      fprintf(out, " (");
      for (int c = 0; o->choices[c]; c++) fprintf(out, "%s%s", c ? ", " : "", o->choices[c]);
      fprintf(out, ")");
    }
    if (o->default_text) fprintf(out, " [default: %s]", o->default_text);
    fputc('\n', out);
  }
  fprintf(out, "%-30s %s\n%-30s %s\n", "  -h, --help", "print this help and exit",
          "      --version", "print the version and exit");
  if (program->epilogue) fprintf(out, "\n%s", program->epilogue);
}

enum { HELP_CODE = 0x10000, VERSION_CODE = 0x10001, FIRST_LONG_CODE = 0x20000 };

int mf_options_parse(const mf_program *program, int argc, char **argv, void *config, int quiet) {
  char err[512];
  for (int i = 0; i < program->count; i++) {
    const mf_option *o = &program->options[i];
    if (!o->default_text) continue;
    if (o->type == MF_OPT_FLAG) continue; /* flags default to whatever the caller zeroed */
    if (parse_value(o, o->default_text, config, err, sizeof err) != 0) {
      if (!quiet) mf_error(program->name, "default of --%s: %s", o->name, err);
      return MF_OPTIONS_USAGE_ERROR;
    }
  }

  struct option *longs = calloc((size_t)program->count + 3, sizeof *longs);
  char shorts[2 * 64 + 4] = ":h";
  size_t short_used = 2;
  if (!longs) return MF_OPTIONS_USAGE_ERROR;
  for (int i = 0; i < program->count; i++) {
    const mf_option *o = &program->options[i];
    int takes_value = o->type != MF_OPT_FLAG;
    longs[i] = (struct option){o->name, takes_value ? required_argument : no_argument, NULL,
                               o->short_name ? o->short_name : FIRST_LONG_CODE + i};
    if (o->short_name && short_used + 3 < sizeof shorts) {
      shorts[short_used++] = o->short_name;
      if (takes_value) shorts[short_used++] = ':';
      shorts[short_used] = '\0';
    }
  }
  longs[program->count] = (struct option){"help", no_argument, NULL, HELP_CODE};
  longs[program->count + 1] = (struct option){"version", no_argument, NULL, VERSION_CODE};

  int status = MF_OPTIONS_OK;
  opterr = 0;
  /* 0, not 1: glibc then resets all of getopt's hidden state (the position inside a cluster of
   * short options, the permutation bounds). With 1 a second parse (a test, a fuzzer, a sweep)
   * can resume inside the previous argv: the fuzzer found strtol reading a freed argument. */
  optind = 0;
  while (status == MF_OPTIONS_OK) {
    int code = getopt_long(argc, argv, shorts, longs, NULL);
    if (code == -1) break;
    if (code == 'h' || code == HELP_CODE) {
      if (!quiet) mf_options_print_help(program, stdout);
      status = MF_OPTIONS_EXIT;
    } else if (code == VERSION_CODE) {
      if (!quiet) printf("%s %s (git %s)\n", program->name, mf_suite_version, mf_git_revision);
      status = MF_OPTIONS_EXIT;
    } else if (code == '?' || code == ':') {
      const char *given = argv[optind - 1];
      if (!quiet) {
        if (code == ':')
          mf_error(program->name, "%s: missing value", given);
        else if (optopt)
          mf_error(program->name, "-%c: unknown option (see --help)", optopt);
        else
          mf_error(program->name, "%s: unknown option (see --help)", given);
      }
      status = MF_OPTIONS_USAGE_ERROR;
    } else {
      const mf_option *o = NULL;
      for (int i = 0; i < program->count && !o; i++) {
        const mf_option *c = &program->options[i];
        if ((c->short_name && c->short_name == code) || code == FIRST_LONG_CODE + i) o = c;
      }
      if (!o || parse_value(o, optarg, config, err, sizeof err) != 0) {
        if (!quiet && o) mf_error(program->name, "--%s: %s", o->name, err);
        status = MF_OPTIONS_USAGE_ERROR;
      }
    }
  }
  if (status == MF_OPTIONS_OK && optind < argc) {
    if (!quiet) mf_error(program->name, "'%s': unexpected argument (see --help)", argv[optind]);
    status = MF_OPTIONS_USAGE_ERROR;
  }
  free(longs);
  return status;
}
