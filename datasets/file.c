/* Byte streams over dataset files: one sequential reader for plain and gzip files, exact pread
 * for record-level access, and error formatting. It exists so that the format readers (idx,
 * CIFAR-10) validate the same way whether a file is compressed or not, and so that every zlib
 * failure (CRC mismatch, corrupt deflate data, gzip stream cut short) becomes one message
 * naming the file instead of silently short data. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "datasets/internal.h"

/* zlib's gzread takes an unsigned int; stay well below it. */
#define GZ_CHUNK_MAX (1 << 30)
/* A larger gzip input buffer than zlib's 8 KiB default roughly halves read() calls. */
#define GZ_BUFFER_BYTES (256 * 1024)

int ds_fail(char *err, size_t errlen, const char *fmt, ...) {
  if (err && errlen > 0) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
  }
  return -1;
}

int ds_join_path(char *out, size_t outlen, const char *dir, const char *name, char *err,
                 size_t errlen) {
  int len = snprintf(out, outlen, "%s/%s", dir, name);
  if (len < 0 || (size_t)len >= outlen)
    return ds_fail(err, errlen, "%s/%s: path too long (limit %zu bytes)", dir, name, outlen - 1);
  return 0;
}

/* zlib prefixes its messages with the path given to gzdopen ("<fd:N>"); keep only the reason. */
static const char *gz_reason(gzFile gz, int *errnum) {
  const char *msg = gzerror(gz, errnum);
  const char *colon = msg ? strstr(msg, ": ") : NULL;
  if (colon && strncmp(msg, "<fd:", 4) == 0) return colon + 2;
  return msg ? msg : "unknown error";
}

int ds_stream_open(ds_stream *s, const char *path, char *err, size_t errlen) {
  memset(s, 0, sizeof(*s));
  s->fd = -1;
  if (snprintf(s->path, sizeof(s->path), "%s", path) >= (int)sizeof(s->path))
    return ds_fail(err, errlen, "%s: path too long", path);
  size_t plen = strlen(path);
  s->is_gzip = plen > 3 && strcmp(path + plen - 3, ".gz") == 0;

  s->fd = open(path, O_RDONLY | O_CLOEXEC);
  if (s->fd < 0) return ds_fail(err, errlen, "%s: cannot open: %s", path, strerror(errno));
  struct stat st;
  if (fstat(s->fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    close(s->fd);
    s->fd = -1;
    return ds_fail(err, errlen, "%s: not a regular file", path);
  }
  s->size = st.st_size;
  if (st.st_size == 0) {
    close(s->fd);
    s->fd = -1;
    return ds_fail(err, errlen, "%s: empty file", path);
  }
  if (!s->is_gzip) return 0;

  s->gz = gzdopen(s->fd, "rb");
  if (!s->gz) {
    close(s->fd);
    s->fd = -1;
    return ds_fail(err, errlen, "%s: cannot open as gzip", path);
  }
  s->fd = -1; /* owned by gz now */
  s->size = -1;
  gzbuffer(s->gz, GZ_BUFFER_BYTES);
  /* zlib reads non-gzip data transparently; a .gz name that is not gzip is a broken file. */
  if (gzdirect(s->gz)) {
    ds_stream_close(s);
    return ds_fail(err, errlen, "%s: not a gzip file (no gzip header)", path);
  }
  return 0;
}

int64_t ds_stream_read(ds_stream *s, void *buf, int64_t len, char *err, size_t errlen) {
  uint8_t *dst = buf;
  int64_t done = 0;
  while (done < len) {
    int64_t want = len - done;
    if (s->is_gzip) {
      if (want > GZ_CHUNK_MAX) want = GZ_CHUNK_MAX;
      int got = gzread(s->gz, dst + done, (unsigned)want);
      int errnum = Z_OK;
      const char *reason = gz_reason(s->gz, &errnum);
      if (got < 0 || errnum != Z_OK)
        return ds_fail(err, errlen, "%s: corrupt gzip data: %s", s->path, reason);
      if (got == 0) break;
      done += got;
    } else {
      ssize_t got = read(s->fd, dst + done, (size_t)want);
      if (got < 0 && errno == EINTR) continue;
      if (got < 0) return ds_fail(err, errlen, "%s: read error: %s", s->path, strerror(errno));
      if (got == 0) break;
      done += got;
    }
  }
  s->pos += done;
  return done;
}

int64_t ds_stream_skip(ds_stream *s, int64_t len, char *err, size_t errlen) {
  if (!s->is_gzip) {
    int64_t room = s->size - s->pos;
    int64_t step = len < room ? len : room;
    if (step < 0) step = 0;
    if (lseek(s->fd, (off_t)(s->pos + step), SEEK_SET) < 0)
      return ds_fail(err, errlen, "%s: seek error: %s", s->path, strerror(errno));
    s->pos += step;
    return step;
  }
  uint8_t scratch[64 * 1024];
  int64_t done = 0;
  while (done < len) {
    int64_t want = len - done;
    if (want > (int64_t)sizeof(scratch)) want = (int64_t)sizeof(scratch);
    int64_t got = ds_stream_read(s, scratch, want, err, errlen);
    if (got < 0) return -1;
    done += got;
    if (got < want) break;
  }
  return done;
}

void ds_stream_close(ds_stream *s) {
  if (s->gz) gzclose(s->gz);
  if (s->fd >= 0) close(s->fd);
  s->gz = NULL;
  s->fd = -1;
}

int ds_pread_exact(int fd, const char *path, void *buf, int64_t len, int64_t offset, char *err,
                   size_t errlen) {
  uint8_t *dst = buf;
  int64_t done = 0;
  while (done < len) {
    ssize_t got = pread(fd, dst + done, (size_t)(len - done), (off_t)(offset + done));
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) return ds_fail(err, errlen, "%s: read error: %s", path, strerror(errno));
    if (got == 0)
      return ds_fail(err, errlen, "%s: truncated: no data at byte %lld", path,
                     (long long)(offset + done));
    done += got;
  }
  return 0;
}
