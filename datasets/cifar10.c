/* The CIFAR-10 reader ("binary version": data_batch_1..5.bin for training, test_batch.bin for
 * testing). Each record is 1 label byte followed by 3072 pixel bytes in CHW order (3x32x32),
 * which is already mayfly's layout, so loading only splits labels from pixels. The training
 * split is the concatenation of the five batches in order; a global sample index maps to
 * (file, record) through the per-file record counts, which come from the file lengths, so no
 * number inside a file ever decides an allocation. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "datasets/internal.h"

#define CIFAR_PIXELS 3072
#define CIFAR_RECORD (1 + CIFAR_PIXELS)
#define CIFAR_MAX_FILES 5
#define CIFAR_CHUNK_RECORDS 256

typedef struct {
  int files;
  char path[CIFAR_MAX_FILES][DS_PATH_MAX];
  int64_t count[CIFAR_MAX_FILES];
  int64_t total;
} cifar_split;

/* Finds the split's files and their record counts from their lengths. */
static int cifar_scan(const ds_source *src, ds_split split, cifar_split *cs, char *err,
                      size_t errlen) {
  memset(cs, 0, sizeof(*cs));
  cs->files = split == DS_TRAIN ? CIFAR_MAX_FILES : 1;
  for (int f = 0; f < cs->files; f++) {
    char name[32];
    if (split == DS_TRAIN)
      snprintf(name, sizeof(name), "data_batch_%d.bin", f + 1);
    else
      snprintf(name, sizeof(name), "test_batch.bin");
    if (ds_join_path(cs->path[f], DS_PATH_MAX, src->dir, name, err, errlen) != 0) return -1;
    struct stat st;
    if (stat(cs->path[f], &st) != 0)
      return ds_fail(err, errlen, "%s: %s", cs->path[f],
                     errno == ENOENT ? "missing" : strerror(errno));
    if (!S_ISREG(st.st_mode)) return ds_fail(err, errlen, "%s: not a regular file", cs->path[f]);
    if (st.st_size == 0) return ds_fail(err, errlen, "%s: empty file", cs->path[f]);
    if (st.st_size % CIFAR_RECORD != 0)
      return ds_fail(err, errlen,
                     "%s: length %lld is not a multiple of the %d-byte record (1 label + 3x32x32 "
                     "pixels)",
                     cs->path[f], (long long)st.st_size, CIFAR_RECORD);
    cs->count[f] = st.st_size / CIFAR_RECORD;
    cs->total += cs->count[f];
  }
  if (cs->total > DS_MAX_COUNT)
    return ds_fail(err, errlen, "%s: %lld records exceed the limit of %lld", src->dir,
                   (long long)cs->total, DS_MAX_COUNT);
  return 0;
}

static void cifar_geometry(int64_t count, ds_set *set) {
  memset(set, 0, sizeof(*set));
  set->count = count;
  set->channels = 3;
  set->height = 32;
  set->width = 32;
  set->classes = DS_CLASSES;
}

static int check_label(const char *path, uint8_t label, int64_t index, char *err, size_t errlen) {
  if (label < DS_CLASSES) return 0;
  return ds_fail(err, errlen, "%s: label %u at index %lld is out of range (0..%d)", path, label,
                 (long long)index, DS_CLASSES - 1);
}

static int open_file(const char *path, char *err, size_t errlen) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) ds_fail(err, errlen, "%s: cannot open: %s", path, strerror(errno));
  return fd;
}

int ds_cifar10_probe(const ds_source *src, ds_split split, ds_set *geometry, char *err,
                     size_t errlen) {
  cifar_split cs;
  if (cifar_scan(src, split, &cs, err, errlen) != 0) return -1;
  cifar_geometry(cs.total, geometry);
  return 0;
}

int ds_cifar10_load(const ds_source *src, ds_split split, ds_set *out, char *err, size_t errlen) {
  cifar_split cs;
  memset(out, 0, sizeof(*out));
  if (cifar_scan(src, split, &cs, err, errlen) != 0) return -1;
  uint8_t *pixels = malloc((size_t)(cs.total * CIFAR_PIXELS));
  uint8_t *labels = malloc((size_t)cs.total);
  uint8_t *chunk = malloc((size_t)CIFAR_CHUNK_RECORDS * CIFAR_RECORD);
  if (!pixels || !labels || !chunk) {
    ds_fail(err, errlen, "%s: out of memory for %lld records", src->dir, (long long)cs.total);
    goto fail;
  }
  int64_t sample = 0;
  for (int f = 0; f < cs.files; f++) {
    int fd = open_file(cs.path[f], err, errlen);
    if (fd < 0) goto fail;
    for (int64_t first = 0; first < cs.count[f]; first += CIFAR_CHUNK_RECORDS) {
      int64_t records = cs.count[f] - first;
      if (records > CIFAR_CHUNK_RECORDS) records = CIFAR_CHUNK_RECORDS;
      if (ds_pread_exact(fd, cs.path[f], chunk, records * CIFAR_RECORD, first * CIFAR_RECORD, err,
                         errlen) != 0) {
        close(fd);
        goto fail;
      }
      for (int64_t r = 0; r < records; r++, sample++) {
        const uint8_t *rec = chunk + r * CIFAR_RECORD;
        if (check_label(cs.path[f], rec[0], first + r, err, errlen) != 0) {
          close(fd);
          goto fail;
        }
        labels[sample] = rec[0];
        memcpy(pixels + sample * CIFAR_PIXELS, rec + 1, CIFAR_PIXELS);
      }
    }
    close(fd);
  }
  free(chunk);
  cifar_geometry(cs.total, out);
  out->pixels = pixels;
  out->labels = labels;
  return 0;
fail:
  free(pixels);
  free(labels);
  free(chunk);
  return -1;
}

int ds_cifar10_fetch(const ds_source *src, ds_split split, const int64_t *indices, int n,
                     uint8_t *pixels, uint8_t *labels, char *err, size_t errlen) {
  cifar_split cs;
  if (n < 0) return ds_fail(err, errlen, "ds_fetch: negative sample count %d", n);
  if (cifar_scan(src, split, &cs, err, errlen) != 0) return -1;
  for (int k = 0; k < n; k++)
    if (indices[k] < 0 || indices[k] >= cs.total)
      return ds_fail(err, errlen, "%s%s: index %lld is out of range (0..%lld)", cs.path[0],
                     cs.files > 1 ? " (and the following batches)" : "", (long long)indices[k],
                     (long long)cs.total - 1);
  int fds[CIFAR_MAX_FILES];
  for (int f = 0; f < cs.files; f++) fds[f] = -1;
  int rc = -1;
  for (int k = 0; k < n; k++) {
    int f = 0;
    int64_t local = indices[k];
    while (local >= cs.count[f]) local -= cs.count[f++];
    if (fds[f] < 0 && (fds[f] = open_file(cs.path[f], err, errlen)) < 0) goto done;
    uint8_t rec[CIFAR_RECORD];
    if (ds_pread_exact(fds[f], cs.path[f], rec, CIFAR_RECORD, local * CIFAR_RECORD, err, errlen) !=
        0)
      goto done;
    if (check_label(cs.path[f], rec[0], local, err, errlen) != 0) goto done;
    labels[k] = rec[0];
    memcpy(pixels + (int64_t)k * CIFAR_PIXELS, rec + 1, CIFAR_PIXELS);
  }
  rc = 0;
done:
  for (int f = 0; f < cs.files; f++)
    if (fds[f] >= 0) close(fds[f]);
  return rc;
}
