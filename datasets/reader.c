/* Repeated record fetches from one split: what a warm worker does task after task.
 *
 * Why: ds_fetch opens both files, re-reads their headers and issues one pread per image and one
 * per label on every call: for a minibatch of 1024 Fashion-MNIST samples that is ~2,000 system
 * calls and ~4 ms, a quarter of an MLP task. A warm function keeps its handle on the data it
 * reads; so does the reader: a plain idx split is validated and mapped once, and a fetch copies
 * the requested records out of the page cache (the bytes are still read on every task, as a
 * function reads its minibatch; only the per-record system calls go). Other sources (gzip,
 * CIFAR-10, synthetic) go through ds_fetch unchanged.
 *
 * The mapped files must not shrink while mapped (a read past a truncated end is SIGBUS): the
 * reader is meant for the staged copies mayfly writes itself (ds_stage). */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "datasets/internal.h"

enum { IMAGES_HEADER = 16, LABELS_HEADER = 8 };

struct ds_reader {
  ds_source source;
  ds_split split;
  const uint8_t *images, *labels; /* mapped plain idx files; NULL: use ds_fetch */
  size_t images_length, labels_length;
  int64_t count, record_bytes;
  char images_path[DS_PATH_MAX], labels_path[DS_PATH_MAX];
};

/* Maps `path` read-only after checking that it holds at least `expected` bytes. */
static const uint8_t *map_file(const char *path, int64_t expected, size_t *length, char *err,
                               size_t errlen) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    ds_fail(err, errlen, "%s: cannot open", path);
    return NULL;
  }
  struct stat st;
  void *map = MAP_FAILED;
  if (fstat(fd, &st) != 0)
    ds_fail(err, errlen, "%s: cannot stat", path);
  else if ((int64_t)st.st_size < expected)
    ds_fail(err, errlen, "%s: truncated: expected %lld bytes, file has %lld", path,
            (long long)expected, (long long)st.st_size);
  else if ((map = mmap(NULL, (size_t)expected, PROT_READ, MAP_PRIVATE, fd, 0)) == MAP_FAILED)
    ds_fail(err, errlen, "%s: cannot map %lld bytes", path, (long long)expected);
  close(fd);
  if (map == MAP_FAILED) return NULL;
  *length = (size_t)expected;
  return map;
}

static int map_idx_split(ds_reader *r, char *err, size_t errlen) {
  char *images_path = r->images_path;
  int images_gzip = 0, labels_gzip = 0;
  if (ds_idx_resolve(r->source.dir, ds_idx_images_name(r->split), images_path,
                     sizeof r->images_path, &images_gzip, err, errlen) != 0 ||
      ds_idx_resolve(r->source.dir, ds_idx_labels_name(r->split), r->labels_path,
                     sizeof r->labels_path, &labels_gzip, err, errlen) != 0)
    return -1;
  if (images_gzip || labels_gzip) return 0; /* streamed by ds_fetch */
  ds_set geometry;
  int64_t images_size = 0, labels_size = 0;
  if (ds_idx_probe(&r->source, r->split, &geometry, err, errlen) != 0 ||
      ds_idx_expected_size(images_path, 1, &images_size, err, errlen) != 0 ||
      ds_idx_expected_size(r->labels_path, 0, &labels_size, err, errlen) != 0)
    return -1;
  r->count = geometry.count;
  r->record_bytes = (int64_t)geometry.channels * geometry.height * geometry.width;
  if (images_size != IMAGES_HEADER + r->count * r->record_bytes ||
      labels_size != LABELS_HEADER + r->count)
    return ds_fail(err, errlen, "%s: header sizes disagree with the split's geometry", images_path);
  r->images = map_file(images_path, images_size, &r->images_length, err, errlen);
  if (!r->images) return -1;
  r->labels = map_file(r->labels_path, labels_size, &r->labels_length, err, errlen);
  if (!r->labels) {
    munmap((void *)r->images, r->images_length);
    r->images = NULL;
    return -1;
  }
  return 0;
}

int ds_reader_open(const ds_source *src, ds_split split, ds_reader **out, char *err,
                   size_t errlen) {
  *out = NULL;
  if (split != DS_TRAIN && split != DS_TEST)
    return ds_fail(err, errlen, "datasets: unknown split %d", (int)split);
  ds_reader *r = calloc(1, sizeof *r);
  if (!r) return ds_fail(err, errlen, "datasets: out of memory for a reader");
  r->source = *src;
  r->split = split;
  if (src->kind == DS_KIND_IDX && map_idx_split(r, err, errlen) != 0) {
    free(r);
    return -1;
  }
  *out = r;
  return 0;
}

int ds_reader_fetch(ds_reader *r, const int64_t *indices, int n, uint8_t *pixels, uint8_t *labels,
                    char *err, size_t errlen) {
  if (!r->images) return ds_fetch(&r->source, r->split, indices, n, pixels, labels, err, errlen);
  if (n < 0) return ds_fail(err, errlen, "ds_reader_fetch: negative sample count %d", n);
  for (int k = 0; k < n; k++) {
    int64_t index = indices[k];
    if (index < 0 || index >= r->count)
      return ds_fail(err, errlen, "%s: index %lld is out of range (0..%lld)", r->images_path,
                     (long long)index, (long long)r->count - 1);
    memcpy(pixels + (int64_t)k * r->record_bytes,
           r->images + IMAGES_HEADER + index * r->record_bytes, (size_t)r->record_bytes);
    labels[k] = r->labels[LABELS_HEADER + index];
    if (labels[k] >= DS_CLASSES)
      return ds_fail(err, errlen, "%s: label %u at index %lld is out of range (0..%d)",
                     r->labels_path, labels[k], (long long)index, DS_CLASSES - 1);
  }
  return 0;
}

void ds_reader_close(ds_reader *r) {
  if (!r) return;
  if (r->images) munmap((void *)r->images, r->images_length);
  if (r->labels) munmap((void *)r->labels, r->labels_length);
  free(r);
}
