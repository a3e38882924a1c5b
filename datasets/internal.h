/* Private contract between the files of datasets/: error formatting, the byte-stream reader that
 * hides plain-vs-gzip, the seeded random generator, and the per-format entry points that
 * source.c dispatches to. Not part of the public interface (datasets.h); nothing outside
 * datasets/ includes it. */
#ifndef MAYFLY_DATASETS_INTERNAL_H
#define MAYFLY_DATASETS_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include <zlib.h>

#include "datasets/datasets.h"

/* Limits that every header is checked against before its numbers are used. */
#define DS_MAX_SIDE 4096
#define DS_MAX_COUNT 100000000LL
#define DS_CLASSES 10

/* printf into err (if err and errlen allow); always returns -1 so callers can
 * `return ds_fail(err, errlen, ...)`. */
int ds_fail(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* ---- byte streams: one sequential reader for plain and gzip files (file.c) ---- */

typedef struct {
  char path[DS_PATH_MAX];
  int is_gzip;
  int fd;       /* plain files */
  gzFile gz;    /* gzip files */
  int64_t size; /* plain: length on disk; gzip: -1 (known only after streaming) */
  int64_t pos;  /* bytes delivered so far (decompressed bytes for gzip) */
} ds_stream;

int ds_stream_open(ds_stream *s, const char *path, char *err, size_t errlen);
/* Reads up to len bytes; returns the count (short only at end of data) or -1 + err (I/O
 * error, corrupt gzip data). */
int64_t ds_stream_read(ds_stream *s, void *buf, int64_t len, char *err, size_t errlen);
/* Discards len bytes; returns the count discarded (short at end of data) or -1 + err. */
int64_t ds_stream_skip(ds_stream *s, int64_t len, char *err, size_t errlen);
void ds_stream_close(ds_stream *s);

/* Reads [offset, offset+len) of a plain file descriptor exactly; -1 + err on error or EOF. */
int ds_pread_exact(int fd, const char *path, void *buf, int64_t len, int64_t offset, char *err,
                   size_t errlen);

/* "dir/name" into out; -1 + err if it does not fit. */
int ds_join_path(char *out, size_t outlen, const char *dir, const char *name, char *err,
                 size_t errlen);

/* ---- random numbers (random.c): integer-only, so identical on every machine ---- */

uint64_t ds_splitmix64(uint64_t *state);
/* A well-mixed 64-bit hash of a, b (splitmix64 finaliser over a combination). */
uint64_t ds_hash2(uint64_t a, uint64_t b);
/* Uniform integer in [0, bound) without modulo bias; bound > 0. */
uint64_t ds_uniform_below(uint64_t *state, uint64_t bound);

/* ---- formats: same contracts as the public ds_load / ds_probe / ds_fetch ---- */

int ds_idx_load(const ds_source *src, ds_split split, ds_set *out, char *err, size_t errlen);
int ds_idx_probe(const ds_source *src, ds_split split, ds_set *geometry, char *err, size_t errlen);
int ds_idx_fetch(const ds_source *src, ds_split split, const int64_t *indices, int n,
                 uint8_t *pixels, uint8_t *labels, char *err, size_t errlen);
/* The path of an idx file (basename without .gz): the plain file if it exists, else the .gz
 * one; is_gzip says which. -1 + err if neither exists. */
int ds_idx_resolve(const char *dir, const char *basename, char *path, size_t pathlen, int *is_gzip,
                   char *err, size_t errlen);
/* Basenames of the idx files of a split (without .gz). */
const char *ds_idx_images_name(ds_split split);
const char *ds_idx_labels_name(ds_split split);
/* Streams one idx file (plain or gzip) to out_fd (named out_path in messages) while
 * validating it completely (magic, dimensions, exact length, labels in range). 0 or -1 + err. */
int ds_idx_copy_validated(const char *path, int is_images, int out_fd, const char *out_path,
                          char *err, size_t errlen);
/* Reads and checks just the header of an idx file; *expected_size = header + payload bytes. */
int ds_idx_expected_size(const char *path, int is_images, int64_t *expected_size, char *err,
                         size_t errlen);

int ds_cifar10_load(const ds_source *src, ds_split split, ds_set *out, char *err, size_t errlen);
int ds_cifar10_probe(const ds_source *src, ds_split split, ds_set *geometry, char *err,
                     size_t errlen);
int ds_cifar10_fetch(const ds_source *src, ds_split split, const int64_t *indices, int n,
                     uint8_t *pixels, uint8_t *labels, char *err, size_t errlen);

int ds_synthetic_load(const ds_source *src, ds_split split, ds_set *out, char *err, size_t errlen);
int ds_synthetic_probe(const ds_source *src, ds_split split, ds_set *geometry, char *err,
                       size_t errlen);
int ds_synthetic_fetch(const ds_source *src, ds_split split, const int64_t *indices, int n,
                       uint8_t *pixels, uint8_t *labels, char *err, size_t errlen);

#endif
