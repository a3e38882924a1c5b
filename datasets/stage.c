/* Staging: the "upload to object storage" step. Workers fetch single records; from a gzip file
 * that means decompressing everything before the record, so before the first round the peers
 * write plain copies of gzip idx files into a directory, and workers then pread their records.
 * Copies are validated while they are written and appear atomically (temp file + rename), so
 * a reader never sees half a file; stagers of one directory take turns (a lock file), and an
 * existing valid copy of the right size is reused, so a node (or a shared directory) is staged
 * once. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "datasets/internal.h"

/* mkdir -p */
static int make_dirs(const char *dir, char *err, size_t errlen) {
  char path[DS_PATH_MAX];
  size_t len = strlen(dir);
  if (len == 0 || len >= sizeof(path))
    return ds_fail(err, errlen, "%s: bad staging directory", dir);
  memcpy(path, dir, len + 1);
  for (size_t i = 1; i <= len; i++) {
    if (path[i] != '/' && path[i] != '\0') continue;
    char saved = path[i];
    path[i] = '\0';
    if (mkdir(path, 0755) != 0 && errno != EEXIST)
      return ds_fail(err, errlen, "%s: cannot create directory: %s", path, strerror(errno));
    path[i] = saved;
  }
  struct stat st;
  if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
    return ds_fail(err, errlen, "%s: not a directory", dir);
  return 0;
}

/* A plain copy is reusable if its header is valid and its length is exactly what both its own
 * header and the source's header announce. */
static int staged_copy_valid(const char *src_path, const char *dst_path, int is_images) {
  struct stat st;
  if (stat(dst_path, &st) != 0 || !S_ISREG(st.st_mode)) return 0;
  int64_t want = 0, have = 0;
  char ignored[DS_ERROR_MAX];
  if (ds_idx_expected_size(src_path, is_images, &want, ignored, sizeof(ignored)) != 0) return 0;
  if (ds_idx_expected_size(dst_path, is_images, &have, ignored, sizeof(ignored)) != 0) return 0;
  return want == have && st.st_size == have;
}

static int stage_file(const char *src_path, const char *dir, const char *basename, int is_images,
                      char *err, size_t errlen) {
  char dst[DS_PATH_MAX], tmp[DS_PATH_MAX];
  if (ds_join_path(dst, sizeof(dst), dir, basename, err, errlen) != 0) return -1;
  if (staged_copy_valid(src_path, dst, is_images)) return 0;
  int len = snprintf(tmp, sizeof(tmp), "%s/.%s.tmp.XXXXXX", dir, basename);
  if (len < 0 || (size_t)len >= sizeof(tmp)) return ds_fail(err, errlen, "%s: path too long", dir);
  int fd = mkstemp(tmp);
  if (fd < 0)
    return ds_fail(err, errlen, "%s: cannot create temporary file: %s", tmp, strerror(errno));
  fchmod(fd, 0644); /* mkstemp's 0600 would hide the copy from workers of another user */
  int rc = ds_idx_copy_validated(src_path, is_images, fd, tmp, err, errlen);
  if (close(fd) != 0 && rc == 0)
    rc = ds_fail(err, errlen, "%s: write error: %s", tmp, strerror(errno));
  if (rc == 0 && rename(tmp, dst) != 0)
    rc = ds_fail(err, errlen, "%s: cannot rename to %s: %s", tmp, dst, strerror(errno));
  if (rc != 0) unlink(tmp);
  return rc;
}

int ds_stage(const ds_source *src, const char *dir, ds_source *staged, char *err, size_t errlen) {
  if (src->kind != DS_KIND_IDX) {
    *staged = *src;
    return 0;
  }
  struct {
    const char *basename;
    int is_images;
    char path[DS_PATH_MAX];
    int is_gzip;
  } files[4] = {{ds_idx_images_name(DS_TRAIN), 1, "", 0},
                {ds_idx_labels_name(DS_TRAIN), 0, "", 0},
                {ds_idx_images_name(DS_TEST), 1, "", 0},
                {ds_idx_labels_name(DS_TEST), 0, "", 0}};
  int any_gzip = 0;
  for (int f = 0; f < 4; f++) {
    if (ds_idx_resolve(src->dir, files[f].basename, files[f].path, DS_PATH_MAX, &files[f].is_gzip,
                       err, errlen) != 0)
      return -1;
    any_gzip |= files[f].is_gzip;
  }
  if (!any_gzip) {
    *staged = *src;
    return 0;
  }
  if (!dir || !*dir) return ds_fail(err, errlen, "ds_stage: no staging directory given");
  if (strlen(dir) >= sizeof(staged->dir)) return ds_fail(err, errlen, "%s: path too long", dir);
  if (make_dirs(dir, err, errlen) != 0) return -1;
  /* One stager per directory at a time (peers and workers of a node, or of every node on a
   * shared directory): the others wait, then find valid copies and reuse them, so a node
   * decompresses once. The lock goes with the process if it dies. */
  char lock_path[DS_PATH_MAX];
  if (ds_join_path(lock_path, sizeof lock_path, dir, ".mayfly-stage.lock", err, errlen) != 0)
    return -1;
  int lock = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
  if (lock < 0)
    return ds_fail(err, errlen, "%s: cannot create the staging lock: %s", lock_path,
                   strerror(errno));
  while (flock(lock, LOCK_EX) != 0 && errno == EINTR) {
  }
  int rc = 0;
  /* Plain files are copied too, so the staged directory holds a complete split. */
  for (int f = 0; f < 4 && rc == 0; f++)
    rc = stage_file(files[f].path, dir, files[f].basename, files[f].is_images, err, errlen);
  close(lock); /* releases the lock */
  if (rc != 0) return -1;
  *staged = *src;
  snprintf(staged->dir, sizeof(staged->dir), "%s", dir);
  return 0;
}
