/* The public face of the datasets module: parsing a --dataset spec into a ds_source, and
 * dispatching load / probe / fetch to the reader of the source's kind. Kept apart from the
 * readers so adding a format is one new file plus one case here. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "datasets/internal.h"

#define FASHION_MNIST_DIR "/usr/share/datasets/fashion-mnist"
#define SYNTHETIC_DEFAULT_TRAIN 6000
#define SYNTHETIC_DEFAULT_TEST 1000
#define SYNTHETIC_DEFAULT_SEED 1

static int set_dir(ds_source *out, const char *spec, const char *dir, char *err, size_t errlen) {
  size_t len = strlen(dir);
  if (len == 0) return ds_fail(err, errlen, "--dataset %s: missing directory after ':'", spec);
  if (len >= sizeof(out->dir))
    return ds_fail(err, errlen, "--dataset %s: directory too long", spec);
  memcpy(out->dir, dir, len + 1);
  while (len > 1 && out->dir[len - 1] == '/') out->dir[--len] = '\0';
  return 0;
}

/* A whole-string unsigned decimal number; no sign, no trailing text. */
static int parse_u64(const char *text, size_t len, uint64_t *value) {
  if (len == 0 || len > 20) return -1;
  char buf[24];
  memcpy(buf, text, len);
  buf[len] = '\0';
  for (size_t i = 0; i < len; i++)
    if (buf[i] < '0' || buf[i] > '9') return -1;
  errno = 0;
  char *end;
  unsigned long long v = strtoull(buf, &end, 10);
  if (errno != 0 || *end != '\0') return -1;
  *value = v;
  return 0;
}

static int parse_synthetic(const char *spec, const char *args, ds_source *out, char *err,
                           size_t errlen) {
  uint64_t fields[3] = {SYNTHETIC_DEFAULT_TRAIN, SYNTHETIC_DEFAULT_TEST, SYNTHETIC_DEFAULT_SEED};
  int nfields = 0;
  if (args) {
    const char *p = args;
    for (;;) {
      const char *colon = strchr(p, ':');
      size_t len = colon ? (size_t)(colon - p) : strlen(p);
      if (nfields == 3 || parse_u64(p, len, &fields[nfields]) != 0)
        return ds_fail(err, errlen,
                       "--dataset %s: expected synthetic:TRAIN:TEST[:SEED] with decimal numbers",
                       spec);
      nfields++;
      if (!colon) break;
      p = colon + 1;
    }
    if (nfields < 2)
      return ds_fail(err, errlen, "--dataset %s: expected synthetic:TRAIN:TEST[:SEED]", spec);
  }
  for (int f = 0; f < 2; f++)
    if (fields[f] < 1 || fields[f] > (uint64_t)DS_MAX_COUNT)
      return ds_fail(err, errlen, "--dataset %s: %s count %llu is out of range (1..%lld)", spec,
                     f == 0 ? "train" : "test", (unsigned long long)fields[f], DS_MAX_COUNT);
  out->kind = DS_KIND_SYNTHETIC;
  snprintf(out->name, sizeof(out->name), "synthetic");
  out->synthetic_train = (int64_t)fields[0];
  out->synthetic_test = (int64_t)fields[1];
  out->synthetic_seed = fields[2];
  return 0;
}

int ds_source_parse(const char *spec, ds_source *out, char *err, size_t errlen) {
  memset(out, 0, sizeof(*out));
  if (!spec || !*spec) return ds_fail(err, errlen, "--dataset: empty dataset spec");
  const char *colon = strchr(spec, ':');
  size_t head = colon ? (size_t)(colon - spec) : strlen(spec);
  const char *rest = colon ? colon + 1 : NULL;
#define HEAD_IS(word) (head == strlen(word) && strncmp(spec, word, head) == 0)
  if (HEAD_IS("fashion-mnist")) {
    out->kind = DS_KIND_IDX;
    snprintf(out->name, sizeof(out->name), "fashion-mnist");
    return set_dir(out, spec, rest ? rest : FASHION_MNIST_DIR, err, errlen);
  }
  if (HEAD_IS("idx") && rest) {
    out->kind = DS_KIND_IDX;
    snprintf(out->name, sizeof(out->name), "idx");
    return set_dir(out, spec, rest, err, errlen);
  }
  if (HEAD_IS("cifar10") && rest) {
    out->kind = DS_KIND_CIFAR10;
    snprintf(out->name, sizeof(out->name), "cifar10");
    return set_dir(out, spec, rest, err, errlen);
  }
  if (HEAD_IS("synthetic")) return parse_synthetic(spec, rest, out, err, errlen);
#undef HEAD_IS
  return ds_fail(err, errlen,
                 "--dataset %s: unknown dataset (expected fashion-mnist, idx:DIR, cifar10:DIR, "
                 "synthetic or synthetic:TRAIN:TEST[:SEED])",
                 spec);
}

static int check_split(ds_split split, char *err, size_t errlen) {
  if (split != DS_TRAIN && split != DS_TEST)
    return ds_fail(err, errlen, "datasets: unknown split %d", (int)split);
  return 0;
}

int ds_load(const ds_source *src, ds_split split, ds_set *out, char *err, size_t errlen) {
  memset(out, 0, sizeof(*out));
  if (check_split(split, err, errlen) != 0) return -1;
  switch (src->kind) {
    case DS_KIND_IDX:
      return ds_idx_load(src, split, out, err, errlen);
    case DS_KIND_CIFAR10:
      return ds_cifar10_load(src, split, out, err, errlen);
    case DS_KIND_SYNTHETIC:
      return ds_synthetic_load(src, split, out, err, errlen);
  }
  return ds_fail(err, errlen, "datasets: unknown source kind %d", (int)src->kind);
}

int ds_probe(const ds_source *src, ds_split split, ds_set *geometry, char *err, size_t errlen) {
  memset(geometry, 0, sizeof(*geometry));
  if (check_split(split, err, errlen) != 0) return -1;
  switch (src->kind) {
    case DS_KIND_IDX:
      return ds_idx_probe(src, split, geometry, err, errlen);
    case DS_KIND_CIFAR10:
      return ds_cifar10_probe(src, split, geometry, err, errlen);
    case DS_KIND_SYNTHETIC:
      return ds_synthetic_probe(src, split, geometry, err, errlen);
  }
  return ds_fail(err, errlen, "datasets: unknown source kind %d", (int)src->kind);
}

int ds_fetch(const ds_source *src, ds_split split, const int64_t *indices, int n, uint8_t *pixels,
             uint8_t *labels, char *err, size_t errlen) {
  if (check_split(split, err, errlen) != 0) return -1;
  switch (src->kind) {
    case DS_KIND_IDX:
      return ds_idx_fetch(src, split, indices, n, pixels, labels, err, errlen);
    case DS_KIND_CIFAR10:
      return ds_cifar10_fetch(src, split, indices, n, pixels, labels, err, errlen);
    case DS_KIND_SYNTHETIC:
      return ds_synthetic_fetch(src, split, indices, n, pixels, labels, err, errlen);
  }
  return ds_fail(err, errlen, "datasets: unknown source kind %d", (int)src->kind);
}

void ds_free(ds_set *set) {
  if (!set) return;
  free(set->pixels);
  free(set->labels);
  set->pixels = set->labels = NULL;
  set->count = 0;
}
