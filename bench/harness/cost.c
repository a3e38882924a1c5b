/* The cost model (see cost.h) and the reader of price tables (results/prices/README.md). */
#include "bench/harness/cost.h"

#include <errno.h>
#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench/harness/h5util.h"
#include "bench/harness/options.h"
#include "bench/harness/util.h"

static int parse_price(const char *text, double *value) {
  if (!text) return -1;
  char *end = NULL;
  errno = 0;
  double v = strtod(text, &end);
  if (end == text || *end || errno || !isfinite(v) || v < 0) return -1;
  *value = v;
  return 0;
}

int mf_prices_load(const char *path, mf_prices *p, char *err, size_t errlen) {
  memset(p, 0, sizeof *p);
  p->peer_instance = -1;
  FILE *f = fopen(path, "r");
  if (!f) {
    snprintf(err, errlen, "%s: cannot open the price table (%s)", path, strerror(errno));
    return -1;
  }
  char line[512], peer_name[32] = "";
  int number = 0, rc = 0, seen_function = 0, seen_core = 0;
  while (rc == 0 && fgets(line, sizeof line, f)) {
    number++;
    char *hash = strchr(line, '#');
    if (hash) *hash = '\0';
    char *key = strtok(line, " \t\r\n");
    if (!key) continue;
    char *a = strtok(NULL, " \t\r\n"), *b = strtok(NULL, " \t\r\n");
    char *extra = strtok(NULL, " \t\r\n");
    double value = 0;
    int instance = strcmp(key, "instance") == 0;
    if (extra || !a || (instance != (b != NULL))) {
      snprintf(err, errlen, "%s:%d: expected '%s' followed by %s", path, number, key,
               instance ? "a type name and an hourly price" : "one value");
      rc = -1;
    } else if (strcmp(key, "name") == 0) {
      snprintf(p->name, sizeof p->name, "%s", a);
    } else if (strcmp(key, "currency") == 0) {
      snprintf(p->currency, sizeof p->currency, "%s", a);
    } else if (strcmp(key, "peer_instance") == 0) {
      snprintf(peer_name, sizeof peer_name, "%s", a);
    } else if (instance) {
      if (p->instance_count == MF_PRICES_MAX_INSTANCES || parse_price(b, &value) != 0) {
        snprintf(err, errlen, "%s:%d: instance %s: '%s' is not a price (or more than %d types)",
                 path, number, a, b, MF_PRICES_MAX_INSTANCES);
        rc = -1;
      } else {
        snprintf(p->instances[p->instance_count].name, sizeof p->instances[0].name, "%s", a);
        p->instances[p->instance_count++].hourly = value;
      }
    } else {
      static const char *const keys[] = {"function_gb_second", "function_requests_per_million",
                                         "transitions_per_1000", "core_hour"};
      int k = 0;
      while (k < 4 && strcmp(key, keys[k]) != 0) k++;
      if (k == 4) {
        snprintf(err, errlen, "%s:%d: unknown key '%s' (see results/prices/README.md)", path,
                 number, key);
        rc = -1;
      } else if (parse_price(a, &value) != 0) {
        snprintf(err, errlen, "%s:%d: %s: '%s' is not a price (a number >= 0)", path, number, key,
                 a);
        rc = -1;
      } else if (k == 0) {
        p->function_gb_second = value, seen_function |= 1;
      } else if (k == 1) {
        p->function_request = value / 1e6, seen_function |= 2;
      } else if (k == 2) {
        p->transition = value / 1e3, seen_function |= 4;
      } else {
        p->core_hour = value, seen_core = 1;
      }
    }
  }
  fclose(f);
  if (rc != 0) return -1;
  if (!p->name[0] || !p->currency[0]) {
    snprintf(err, errlen, "%s: a price table needs 'name' and 'currency' lines", path);
    return -1;
  }
  if (seen_core && seen_function) {
    snprintf(err, errlen,
             "%s: has both core_hour and function prices; a table is one or the "
             "other",
             path);
    return -1;
  }
  if (seen_core) {
    p->kind = MF_PRICES_CORE_HOUR;
    return 0;
  }
  if (seen_function != 7 || !peer_name[0]) {
    snprintf(err, errlen,
             "%s: a cloud table needs function_gb_second, "
             "function_requests_per_million, transitions_per_1000 and peer_instance (or a "
             "core_hour line for an on-premise table)",
             path);
    return -1;
  }
  for (int i = 0; i < p->instance_count; i++)
    if (strcmp(p->instances[i].name, peer_name) == 0) p->peer_instance = i;
  if (p->peer_instance < 0) {
    snprintf(err, errlen, "%s: peer_instance %s has no 'instance %s PRICE' line", path, peer_name,
             peer_name);
    return -1;
  }
  p->kind = MF_PRICES_CLOUD;
  return 0;
}

int mf_prices_resolve(const char *value, const char *program_dir, char *path, size_t size,
                      char *err, size_t errlen) {
  if (strchr(value, '/') || access(value, R_OK) == 0) {
    snprintf(path, size, "%s", value);
    return 0;
  }
  char first[4096] = "", second[4096];
  if (program_dir) {
    snprintf(first, sizeof first, "%s/../results/prices/%s.txt", program_dir, value);
    if (access(first, R_OK) == 0) {
      snprintf(path, size, "%s", first);
      return 0;
    }
  }
  snprintf(second, sizeof second, "results/prices/%s.txt", value);
  if (access(second, R_OK) == 0) {
    snprintf(path, size, "%s", second);
    return 0;
  }
  snprintf(err, errlen, "--prices: no price table '%s' (not a file; looked for %.1500s%s%s)", value,
           first, first[0] ? " and " : "", second);
  return -1;
}

void mf_cost_compute(const mf_prices *p, const mf_cost_input *in, mf_cost *c) {
  const mf_worker_usage *u = &in->usage;
  memset(c, 0, sizeof *c);
  c->invocations = u->invocations;
  /* An orchestrator (a Step Functions Map state) enters and leaves one Task state per attempt. */
  c->transitions = 2 * u->invocations;
  c->worker_gb_seconds = u->worker_seconds * in->worker_memory_mb / 1024.0;
  c->measured_gb_seconds = u->measured_byte_seconds / (1024.0 * 1024.0 * 1024.0);
  const double worker_core_seconds = u->worker_seconds * in->worker_threads;
  const double peer_core_seconds = in->peers * in->wall_seconds * in->peer_threads;
  c->core_seconds = worker_core_seconds + peer_core_seconds;
  c->peer_instance_hours = in->peers * in->wall_seconds / 3600.0;
  if (p->kind == MF_PRICES_CORE_HOUR) {
    c->usd_serverless = worker_core_seconds / 3600.0 * p->core_hour;
    c->usd_instances = peer_core_seconds / 3600.0 * p->core_hour;
  } else {
    c->usd_serverless = c->worker_gb_seconds * p->function_gb_second +
                        (double)c->invocations * p->function_request +
                        (double)c->transitions * p->transition;
    c->usd_instances = c->peer_instance_hours * p->instances[p->peer_instance].hourly;
  }
  c->usd_total = c->usd_serverless + c->usd_instances;
  c->ratio = c->usd_instances > 0 ? c->usd_serverless / c->usd_instances : NAN;
}

int mf_cost_write(hid_t file, const mf_prices *p, const char *prices_path, const mf_cost *c) {
  hid_t group = mf_h5_group(file, "/cost");
  if (group < 0) return -1;
  int rc = 0;
  rc |= mf_h5_attr_string(group, "prices", p->name);
  rc |= mf_h5_attr_string(group, "prices_file", prices_path);
  rc |= mf_h5_attr_string(group, "prices_kind", p->kind == MF_PRICES_CLOUD ? "cloud" : "core-hour");
  rc |= mf_h5_attr_string(group, "currency", p->currency);
  if (p->kind == MF_PRICES_CLOUD)
    rc |= mf_h5_attr_string(group, "peer_instance", p->instances[p->peer_instance].name);
  rc |= mf_h5_attr_int(group, "invocations", c->invocations);
  rc |= mf_h5_attr_int(group, "transitions", c->transitions);
  rc |= mf_h5_attr_double(group, "worker_gb_seconds", c->worker_gb_seconds);
  rc |= mf_h5_attr_double(group, "measured_gb_seconds", c->measured_gb_seconds);
  rc |= mf_h5_attr_double(group, "core_seconds", c->core_seconds);
  rc |= mf_h5_attr_double(group, "peer_instance_hours", c->peer_instance_hours);
  rc |= mf_h5_attr_double(group, "usd_serverless", c->usd_serverless);
  rc |= mf_h5_attr_double(group, "usd_instances", c->usd_instances);
  rc |= mf_h5_attr_double(group, "usd_total", c->usd_total);
  rc |= mf_h5_attr_double(group, "ratio", c->ratio);
  H5Gclose(group);
  return rc ? -1 : 0;
}

int mf_cost_prepare(mf_train *t, char *err, size_t errlen) {
  char dir[PATH_MAX - 64];
  int have_dir = mf_program_dir(dir, sizeof dir) == 0;
  if (mf_prices_resolve(t->config.prices, have_dir ? dir : NULL, t->prices_path,
                        sizeof t->prices_path, err, errlen) != 0)
    return -1;
  mf_prices prices;
  return mf_prices_load(t->prices_path, &prices, err, errlen);
}

int mf_cost_record(const mf_train *t, hid_t file, double train_seconds) {
  double mine[2] = {t->usage.worker_seconds, t->usage.measured_byte_seconds}, sums[2] = {0, 0};
  int64_t counts[3] = {t->usage.invocations, t->usage.pools, t->usage.workers_spawned};
  int64_t count_sums[3] = {0, 0, 0};
  MPI_Reduce(mine, sums, 2, MPI_DOUBLE, MPI_SUM, 0, MPI_COMM_WORLD);
  MPI_Reduce(counts, count_sums, 3, MPI_INT64_T, MPI_SUM, 0, MPI_COMM_WORLD);
  int ok = 1;
  if (t->rank == 0) {
    mf_prices prices;
    char err[1024];
    mf_cost_input in = {.peers = t->peers,
                        .peer_threads = t->config.peer_threads,
                        .worker_threads = t->config.worker_threads,
                        .worker_memory_mb = t->config.worker_memory,
                        .wall_seconds = train_seconds};
    in.usage = (mf_worker_usage){.worker_seconds = sums[0],
                                 .measured_byte_seconds = sums[1],
                                 .invocations = count_sums[0],
                                 .pools = count_sums[1],
                                 .workers_spawned = count_sums[2]};
    mf_cost c;
    if (mf_prices_load(t->prices_path, &prices, err, sizeof err) != 0) {
      mf_error(t->program, "%s", err);
      ok = 0;
    } else {
      mf_cost_compute(&prices, &in, &c);
      hid_t group = -1;
      ok = mf_cost_write(file, &prices, t->prices_path, &c) == 0 &&
           (group = H5Gopen2(file, "/cost", H5P_DEFAULT)) >= 0 &&
           mf_h5_attr_int(group, "pools", in.usage.pools) == 0 &&
           mf_h5_attr_int(group, "workers_spawned", in.usage.workers_spawned) == 0 &&
           mf_h5_attr_double(group, "worker_seconds", in.usage.worker_seconds) == 0 &&
           mf_h5_attr_double(group, "train_seconds", train_seconds) == 0 &&
           mf_h5_attr_int(group, "worker_memory_mb", t->config.worker_memory) == 0;
      if (group >= 0) H5Gclose(group);
      if (!ok) mf_error(t->program, "%s: writing /cost failed", t->config.output);
      printf(
          "# cost (%s): %lld invocations, %.1f worker GB-s billed (%.1f measured), %.1f "
          "core-s, %.4f peer instance-h; %s %.6f serverless + %.6f instances = %.6f "
          "(ratio %.3f)\n",
          prices.name, (long long)c.invocations, c.worker_gb_seconds, c.measured_gb_seconds,
          c.core_seconds, c.peer_instance_hours, prices.currency, c.usd_serverless, c.usd_instances,
          c.usd_total, c.ratio);
    }
  }
  MPI_Bcast(&ok, 1, MPI_INT, 0, MPI_COMM_WORLD);
  return ok ? 0 : -1;
}
