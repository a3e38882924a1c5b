/* The idx reader (MNIST, Fashion-MNIST): whole splits for peers, single records for workers,
 * and a validating stream copy for staging. Files may be plain or gzip; the plain one wins if
 * both exist. Every header is checked (magic, non-zero and bounded dimensions, images and
 * labels agree) and every length is checked exactly before a size taken from the file is
 * trusted: plain files against their length on disk before allocating, gzip files by growing
 * the buffer only as decompressed bytes actually arrive, so a tiny file claiming 10^9 images
 * fails fast instead of allocating gigabytes. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "datasets/internal.h"

#define IDX_MAGIC_IMAGES 0x00000803u /* unsigned byte, 3 dimensions */
#define IDX_MAGIC_LABELS 0x00000801u /* unsigned byte, 1 dimension */
#define IDX_FIRST_CHUNK (1 << 20)
#define IDX_COPY_CHUNK (1 << 20)
#define IDX_TRAILING_COUNT_MAX (64LL << 20)

typedef struct {
  int is_images;
  int64_t count;
  int rows, cols;        /* 1 x 1 for labels */
  int64_t header_bytes;  /* 16 for images, 8 for labels */
  int64_t record_bytes;  /* rows * cols, or 1 */
  int64_t expected_size; /* header + count * record */
} idx_header;

const char *ds_idx_images_name(ds_split split) {
  return split == DS_TRAIN ? "train-images-idx3-ubyte" : "t10k-images-idx3-ubyte";
}

const char *ds_idx_labels_name(ds_split split) {
  return split == DS_TRAIN ? "train-labels-idx1-ubyte" : "t10k-labels-idx1-ubyte";
}

int ds_idx_resolve(const char *dir, const char *basename, char *path, size_t pathlen, int *is_gzip,
                   char *err, size_t errlen) {
  struct stat st;
  if (ds_join_path(path, pathlen, dir, basename, err, errlen) != 0) return -1;
  if (stat(path, &st) == 0) {
    *is_gzip = 0;
    return 0;
  }
  size_t len = strlen(path);
  if (len + 3 >= pathlen) return ds_fail(err, errlen, "%s.gz: path too long", path);
  memcpy(path + len, ".gz", 4);
  if (stat(path, &st) == 0) {
    *is_gzip = 1;
    return 0;
  }
  path[len] = '\0';
  return ds_fail(err, errlen, "%s: missing (neither it nor %s.gz exists)", path, basename);
}

static uint32_t be32(const uint8_t *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

static const char *decompressed_note(const ds_stream *s) {
  return s->is_gzip ? " (decompressed)" : "";
}

/* Reads and validates the header; for plain files also the exact file length. */
static int idx_read_header(ds_stream *s, int is_images, idx_header *h, char *err, size_t errlen) {
  memset(h, 0, sizeof(*h));
  h->is_images = is_images;
  h->header_bytes = is_images ? 16 : 8;
  uint8_t raw[16];
  int64_t got = ds_stream_read(s, raw, h->header_bytes, err, errlen);
  if (got < 0) return -1;
  if (got < h->header_bytes)
    return ds_fail(err, errlen, "%s: truncated header: expected %lld bytes, file has %lld%s",
                   s->path, (long long)h->header_bytes, (long long)got, decompressed_note(s));

  uint32_t magic = be32(raw), want = is_images ? IDX_MAGIC_IMAGES : IDX_MAGIC_LABELS;
  if (magic != want)
    return ds_fail(err, errlen, "%s: bad magic 0x%08x, expected 0x%08x (idx %s)", s->path, magic,
                   want, is_images ? "images" : "labels");
  uint32_t count = be32(raw + 4);
  uint32_t rows = is_images ? be32(raw + 8) : 1, cols = is_images ? be32(raw + 12) : 1;
  if (count == 0 || rows == 0 || cols == 0)
    return ds_fail(err, errlen, "%s: zero dimension (count %u, rows %u, cols %u)", s->path, count,
                   rows, cols);
  if (count > DS_MAX_COUNT)
    return ds_fail(err, errlen, "%s: count %u exceeds the limit of %lld", s->path, count,
                   DS_MAX_COUNT);
  if (rows > DS_MAX_SIDE || cols > DS_MAX_SIDE)
    return ds_fail(err, errlen, "%s: image size %ux%u exceeds the limit of %dx%d", s->path, rows,
                   cols, DS_MAX_SIDE, DS_MAX_SIDE);
  h->count = count;
  h->rows = (int)rows;
  h->cols = (int)cols;
  h->record_bytes = (int64_t)rows * cols;
  h->expected_size = h->header_bytes + h->count * h->record_bytes;

  if (!s->is_gzip && s->size < h->expected_size)
    return ds_fail(err, errlen, "%s: truncated: expected %lld bytes, file has %lld", s->path,
                   (long long)h->expected_size, (long long)s->size);
  if (!s->is_gzip && s->size > h->expected_size)
    return ds_fail(err, errlen, "%s: trailing garbage: expected %lld bytes, file has %lld", s->path,
                   (long long)h->expected_size, (long long)s->size);
  return 0;
}

/* After the payload: a gzip file must end exactly there too. */
static int idx_check_end(ds_stream *s, const idx_header *h, char *err, size_t errlen) {
  if (!s->is_gzip) return 0;
  /* Counting the excess is only for the message; stop early on a decompression bomb. */
  int64_t extra = ds_stream_skip(s, IDX_TRAILING_COUNT_MAX + 1, err, errlen);
  if (extra < 0) return -1;
  if (extra > IDX_TRAILING_COUNT_MAX)
    return ds_fail(err, errlen,
                   "%s: trailing garbage: expected %lld bytes, file has more than %lld%s", s->path,
                   (long long)h->expected_size, (long long)(s->pos - 1), decompressed_note(s));
  if (extra > 0)
    return ds_fail(err, errlen, "%s: trailing garbage: expected %lld bytes, file has %lld%s",
                   s->path, (long long)h->expected_size, (long long)s->pos, decompressed_note(s));
  return 0;
}

static int idx_check_labels(const char *path, const uint8_t *labels, int64_t n, int64_t first,
                            char *err, size_t errlen) {
  for (int64_t i = 0; i < n; i++)
    if (labels[i] >= DS_CLASSES)
      return ds_fail(err, errlen, "%s: label %u at index %lld is out of range (0..%d)", path,
                     labels[i], (long long)(first + i), DS_CLASSES - 1);
  return 0;
}

/* Reads the whole payload. The buffer grows with the data actually delivered, capped at the
 * size the header announces, so the header alone never decides how much memory is taken. */
static int idx_read_payload(ds_stream *s, const idx_header *h, uint8_t **out, char *err,
                            size_t errlen) {
  int64_t want = h->count * h->record_bytes;
  int64_t cap = s->is_gzip && want > IDX_FIRST_CHUNK ? IDX_FIRST_CHUNK : want;
  int64_t have = 0;
  uint8_t *buf = malloc((size_t)cap);
  if (!buf) return ds_fail(err, errlen, "%s: out of memory (%lld bytes)", s->path, (long long)cap);
  for (;;) {
    if (have == cap) {
      if (cap == want) break;
      int64_t next = cap * 2 < want ? cap * 2 : want;
      uint8_t *grown = realloc(buf, (size_t)next);
      if (!grown) {
        free(buf);
        return ds_fail(err, errlen, "%s: out of memory (%lld bytes)", s->path, (long long)next);
      }
      buf = grown;
      cap = next;
    }
    int64_t got = ds_stream_read(s, buf + have, cap - have, err, errlen);
    if (got < 0) {
      free(buf);
      return -1;
    }
    have += got;
    if (got == 0) break;
  }
  if (have < want) {
    free(buf);
    return ds_fail(err, errlen, "%s: truncated: expected %lld bytes, file has %lld%s", s->path,
                   (long long)h->expected_size, (long long)(h->header_bytes + have),
                   decompressed_note(s));
  }
  if (idx_check_end(s, h, err, errlen) != 0) {
    free(buf);
    return -1;
  }
  *out = buf;
  return 0;
}

/* Opens both files of a split and validates their headers against each other. */
static int idx_open_split(const ds_source *src, ds_split split, ds_stream *images,
                          ds_stream *labels, idx_header *hi, idx_header *hl, char *err,
                          size_t errlen) {
  char path[DS_PATH_MAX];
  int gz;
  images->fd = labels->fd = -1;
  images->gz = labels->gz = NULL;
  if (ds_idx_resolve(src->dir, ds_idx_images_name(split), path, sizeof(path), &gz, err, errlen))
    return -1;
  if (ds_stream_open(images, path, err, errlen) != 0) return -1;
  if (idx_read_header(images, 1, hi, err, errlen) != 0) goto fail;
  if (ds_idx_resolve(src->dir, ds_idx_labels_name(split), path, sizeof(path), &gz, err, errlen))
    goto fail;
  if (ds_stream_open(labels, path, err, errlen) != 0) goto fail;
  if (idx_read_header(labels, 0, hl, err, errlen) != 0) goto fail;
  if (hi->count != hl->count) {
    ds_fail(err, errlen, "%s: %lld labels, but %s has %lld images", labels->path,
            (long long)hl->count, images->path, (long long)hi->count);
    goto fail;
  }
  return 0;
fail:
  ds_stream_close(images);
  ds_stream_close(labels);
  return -1;
}

static void idx_geometry(const idx_header *hi, ds_set *set) {
  memset(set, 0, sizeof(*set));
  set->count = hi->count;
  set->channels = 1;
  set->height = hi->rows;
  set->width = hi->cols;
  set->classes = DS_CLASSES;
}

int ds_idx_probe(const ds_source *src, ds_split split, ds_set *geometry, char *err, size_t errlen) {
  ds_stream images, labels;
  idx_header hi, hl;
  if (idx_open_split(src, split, &images, &labels, &hi, &hl, err, errlen) != 0) return -1;
  ds_stream_close(&images);
  ds_stream_close(&labels);
  idx_geometry(&hi, geometry);
  return 0;
}

int ds_idx_load(const ds_source *src, ds_split split, ds_set *out, char *err, size_t errlen) {
  ds_stream images, labels;
  idx_header hi, hl;
  uint8_t *pixels = NULL, *labs = NULL;
  memset(out, 0, sizeof(*out));
  if (idx_open_split(src, split, &images, &labels, &hi, &hl, err, errlen) != 0) return -1;
  int rc = -1;
  if (idx_read_payload(&images, &hi, &pixels, err, errlen) != 0) goto done;
  if (idx_read_payload(&labels, &hl, &labs, err, errlen) != 0) goto done;
  if (idx_check_labels(labels.path, labs, hl.count, 0, err, errlen) != 0) goto done;
  idx_geometry(&hi, out);
  out->pixels = pixels;
  out->labels = labs;
  pixels = labs = NULL;
  rc = 0;
done:
  free(pixels);
  free(labs);
  ds_stream_close(&images);
  ds_stream_close(&labels);
  return rc;
}

/* ---- record-level fetch ---- */

typedef struct {
  int64_t index;
  int position; /* where the record goes in the caller's output */
} fetch_slot;

static int compare_slots(const void *a, const void *b) {
  const fetch_slot *x = a, *y = b;
  if (x->index != y->index) return x->index < y->index ? -1 : 1;
  return x->position - y->position;
}

/* Plain file: one pread per requested record, in the caller's order. */
static int fetch_plain(ds_stream *s, const idx_header *h, const int64_t *indices, int n,
                       uint8_t *out, char *err, size_t errlen) {
  for (int k = 0; k < n; k++) {
    int64_t offset = h->header_bytes + indices[k] * h->record_bytes;
    if (ds_pread_exact(s->fd, s->path, out + (int64_t)k * h->record_bytes, h->record_bytes, offset,
                       err, errlen) != 0)
      return -1;
  }
  return 0;
}

/* Gzip file: one forward pass, decompressing up to the largest requested index. */
static int fetch_gzip(ds_stream *s, const idx_header *h, const fetch_slot *slots, int n,
                      uint8_t *out, char *err, size_t errlen) {
  int64_t next_record = 0; /* the record the stream is positioned at */
  for (int k = 0; k < n; k++) {
    uint8_t *dst = out + (int64_t)slots[k].position * h->record_bytes;
    if (k > 0 && slots[k].index == slots[k - 1].index) {
      memcpy(dst, out + (int64_t)slots[k - 1].position * h->record_bytes, (size_t)h->record_bytes);
      continue;
    }
    int64_t gap = (slots[k].index - next_record) * h->record_bytes;
    int64_t skipped = ds_stream_skip(s, gap, err, errlen);
    if (skipped < 0) return -1;
    int64_t got = skipped < gap ? 0 : ds_stream_read(s, dst, h->record_bytes, err, errlen);
    if (got < 0) return -1;
    if (got < h->record_bytes)
      return ds_fail(err, errlen,
                     "%s: truncated: expected %lld bytes, file ends at %lld%s (reading record "
                     "%lld)",
                     s->path, (long long)h->expected_size, (long long)s->pos, decompressed_note(s),
                     (long long)slots[k].index);
    next_record = slots[k].index + 1;
  }
  return 0;
}

int ds_idx_fetch(const ds_source *src, ds_split split, const int64_t *indices, int n,
                 uint8_t *pixels, uint8_t *labels, char *err, size_t errlen) {
  ds_stream images, labs;
  idx_header hi, hl;
  if (n < 0) return ds_fail(err, errlen, "ds_fetch: negative sample count %d", n);
  if (idx_open_split(src, split, &images, &labs, &hi, &hl, err, errlen) != 0) return -1;
  int rc = -1;
  fetch_slot *slots = NULL;
  for (int k = 0; k < n; k++)
    if (indices[k] < 0 || indices[k] >= hi.count) {
      ds_fail(err, errlen, "%s: index %lld is out of range (0..%lld)", images.path,
              (long long)indices[k], (long long)hi.count - 1);
      goto done;
    }
  if (images.is_gzip || labs.is_gzip) {
    slots = malloc(sizeof(*slots) * (size_t)(n > 0 ? n : 1));
    if (!slots) {
      ds_fail(err, errlen, "ds_fetch: out of memory for %d indices", n);
      goto done;
    }
    for (int k = 0; k < n; k++) slots[k] = (fetch_slot){indices[k], k};
    qsort(slots, (size_t)n, sizeof(*slots), compare_slots);
  }
  if (images.is_gzip ? fetch_gzip(&images, &hi, slots, n, pixels, err, errlen)
                     : fetch_plain(&images, &hi, indices, n, pixels, err, errlen))
    goto done;
  if (labs.is_gzip ? fetch_gzip(&labs, &hl, slots, n, labels, err, errlen)
                   : fetch_plain(&labs, &hl, indices, n, labels, err, errlen))
    goto done;
  for (int k = 0; k < n; k++)
    if (labels[k] >= DS_CLASSES) {
      ds_fail(err, errlen, "%s: label %u at index %lld is out of range (0..%d)", labs.path,
              labels[k], (long long)indices[k], DS_CLASSES - 1);
      goto done;
    }
  rc = 0;
done:
  free(slots);
  ds_stream_close(&images);
  ds_stream_close(&labs);
  return rc;
}

/* ---- validation for staging ---- */

int ds_idx_expected_size(const char *path, int is_images, int64_t *expected_size, char *err,
                         size_t errlen) {
  ds_stream s;
  idx_header h;
  if (ds_stream_open(&s, path, err, errlen) != 0) return -1;
  int rc = idx_read_header(&s, is_images, &h, err, errlen);
  ds_stream_close(&s);
  if (rc == 0) *expected_size = h.expected_size;
  return rc;
}

static int write_all(int fd, const char *path, const void *buf, int64_t len, char *err,
                     size_t errlen) {
  const uint8_t *p = buf;
  while (len > 0) {
    ssize_t put = write(fd, p, (size_t)len);
    if (put < 0 && errno == EINTR) continue;
    if (put < 0) return ds_fail(err, errlen, "%s: write error: %s", path, strerror(errno));
    p += put;
    len -= put;
  }
  return 0;
}

int ds_idx_copy_validated(const char *path, int is_images, int out_fd, const char *out_path,
                          char *err, size_t errlen) {
  ds_stream s;
  idx_header h;
  uint8_t *chunk = NULL;
  if (ds_stream_open(&s, path, err, errlen) != 0) return -1;
  int rc = -1;
  uint8_t raw[16];
  if (idx_read_header(&s, is_images, &h, err, errlen) != 0) goto done;
  /* Re-create the header bytes from the validated values (they are what was read). */
  uint32_t fields[4] = {is_images ? IDX_MAGIC_IMAGES : IDX_MAGIC_LABELS, (uint32_t)h.count,
                        (uint32_t)h.rows, (uint32_t)h.cols};
  for (int f = 0; f < 4; f++)
    for (int b = 0; b < 4; b++) raw[f * 4 + b] = (uint8_t)(fields[f] >> (24 - 8 * b));
  if (write_all(out_fd, out_path, raw, h.header_bytes, err, errlen) != 0) goto done;

  chunk = malloc(IDX_COPY_CHUNK);
  if (!chunk) {
    ds_fail(err, errlen, "%s: out of memory", path);
    goto done;
  }
  int64_t want = h.count * h.record_bytes, have = 0;
  while (have < want) {
    int64_t step = want - have < IDX_COPY_CHUNK ? want - have : IDX_COPY_CHUNK;
    int64_t got = ds_stream_read(&s, chunk, step, err, errlen);
    if (got < 0) goto done;
    if (!is_images && idx_check_labels(path, chunk, got, have, err, errlen) != 0) goto done;
    if (write_all(out_fd, out_path, chunk, got, err, errlen) != 0) goto done;
    have += got;
    if (got < step) break;
  }
  if (have < want) {
    ds_fail(err, errlen, "%s: truncated: expected %lld bytes, file has %lld%s", path,
            (long long)h.expected_size, (long long)(h.header_bytes + have), decompressed_note(&s));
    goto done;
  }
  if (idx_check_end(&s, &h, err, errlen) != 0) goto done;
  rc = 0;
done:
  free(chunk);
  ds_stream_close(&s);
  return rc;
}
