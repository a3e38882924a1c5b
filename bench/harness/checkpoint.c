/* HDF5 checkpoints in PyTorch state_dict naming (see checkpoint.h), plus the small typed
 * read/write helpers mayfly-grad and the golden tests share. */
#include "bench/harness/checkpoint.h"

#include <stdio.h>
#include <string.h>

#include "bench/harness/h5util.h"

static const char *class_name(H5T_class_t c) {
  switch (c) {
    case H5T_INTEGER:
      return "integer";
    case H5T_FLOAT:
      return "float";
    case H5T_STRING:
      return "string";
    default:
      return "non-numeric";
  }
}

int mf_h5_tensor_shape(hid_t file, const char *name, int *rank, int64_t shape[KN_MAX_RANK],
                       H5T_class_t *type_class, size_t *type_size) {
  if (H5Lexists(file, name, H5P_DEFAULT) <= 0) return -1;
  hid_t d = H5Dopen2(file, name, H5P_DEFAULT);
  if (d < 0) return -1;
  hid_t space = H5Dget_space(d), type = H5Dget_type(d);
  int r = space >= 0 ? H5Sget_simple_extent_ndims(space) : -1;
  hsize_t dims[H5S_MAX_RANK];
  int ok =
      r >= 0 && r <= KN_MAX_RANK && type >= 0 && H5Sget_simple_extent_dims(space, dims, NULL) >= 0;
  if (ok) {
    *rank = r;
    for (int i = 0; i < r; i++) shape[i] = (int64_t)dims[i];
    if (type_class) *type_class = H5Tget_class(type);
    if (type_size) *type_size = H5Tget_size(type);
  } else if (r > KN_MAX_RANK) {
    *rank = r; /* caller reports the rank mismatch */
    ok = 1;
    if (type_class) *type_class = H5Tget_class(type);
    if (type_size) *type_size = H5Tget_size(type);
  }
  if (type >= 0) H5Tclose(type);
  if (space >= 0) H5Sclose(space);
  H5Dclose(d);
  return ok ? 0 : -1;
}

static void format_shape(char *out, size_t len, int rank, const int64_t *shape) {
  size_t used = (size_t)snprintf(out, len, "[");
  for (int i = 0; i < rank && used < len; i++)
    used += (size_t)snprintf(out + used, len - used, "%s%lld", i ? "," : "", (long long)shape[i]);
  if (used < len) snprintf(out + used, len - used, "]");
}

int mf_h5_read_tensor(hid_t file, const char *path, const char *name, H5T_class_t type_class,
                      hid_t memtype, int rank, const int64_t *shape, void *out, char *err,
                      size_t errlen) {
  int got_rank;
  int64_t got[KN_MAX_RANK] = {0};
  H5T_class_t got_class;
  size_t got_size;
  if (mf_h5_tensor_shape(file, name, &got_rank, got, &got_class, &got_size) != 0) {
    snprintf(err, errlen, "%s: tensor '%s' is missing", path, name);
    return -1;
  }
  int same = got_rank == rank;
  for (int i = 0; same && i < rank; i++) same = got[i] == shape[i];
  if (!same) {
    char want[96], have[96];
    format_shape(want, sizeof want, rank, shape);
    format_shape(have, sizeof have, got_rank > KN_MAX_RANK ? 0 : got_rank, got);
    snprintf(err, errlen, "%s: tensor '%s' has shape %s%s, expected %s", path, name, have,
             got_rank > KN_MAX_RANK ? " (rank > 4)" : "", want);
    return -1;
  }
  int float32_only = type_class == H5T_FLOAT && H5Tget_size(memtype) == 4;
  if (got_class != type_class || (float32_only && got_size != 4)) {
    snprintf(err, errlen, "%s: tensor '%s' has dtype %s%zu, expected %s%s", path, name,
             class_name(got_class), got_size * 8, class_name(type_class), float32_only ? "32" : "");
    return -1;
  }
  hid_t d = H5Dopen2(file, name, H5P_DEFAULT);
  herr_t rc = d >= 0 ? H5Dread(d, memtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, out) : -1;
  if (d >= 0) H5Dclose(d);
  if (rc < 0) {
    snprintf(err, errlen, "%s: cannot read tensor '%s'", path, name);
    return -1;
  }
  return 0;
}

int mf_h5_write_tensor(hid_t parent, const char *name, int rank, const int64_t *shape,
                       const float *data) {
  hsize_t dims[KN_MAX_RANK];
  for (int i = 0; i < rank; i++) dims[i] = (hsize_t)shape[i];
  hid_t space = rank ? H5Screate_simple(rank, dims, NULL) : H5Screate(H5S_SCALAR);
  hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
  if (lcpl >= 0) H5Pset_create_intermediate_group(lcpl, 1);
  hid_t d = space >= 0 && lcpl >= 0
                ? H5Dcreate2(parent, name, H5T_IEEE_F32LE, space, lcpl, H5P_DEFAULT, H5P_DEFAULT)
                : -1;
  herr_t rc = d >= 0 ? H5Dwrite(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) : -1;
  if (d >= 0) H5Dclose(d);
  if (lcpl >= 0) H5Pclose(lcpl);
  if (space >= 0) H5Sclose(space);
  return rc < 0 ? -1 : 0;
}

/* "features.0.1.running_mean" -> "features.0.1.num_batches_tracked"; 0 if not a BN mean. */
static int tracked_name(const char *buffer_name, char *out, size_t len) {
  static const char suffix[] = ".running_mean";
  size_t n = strlen(buffer_name), s = sizeof suffix - 1;
  if (n < s || strcmp(buffer_name + n - s, suffix) != 0) return 0;
  return snprintf(out, len, "%.*s.num_batches_tracked", (int)(n - s), buffer_name) < (int)len;
}

int mf_checkpoint_write_model(hid_t f, const char *path, const kn_model *m,
                              int64_t num_batches_tracked, char *err, size_t errlen) {
  int rc = mf_h5_attr_string(f, "model", m->kind->name);
  for (int i = 0; rc == 0 && i < m->num_param_tensors; i++) {
    const kn_tensor_info *t = &m->param_tensors[i];
    if (mf_h5_write_tensor(f, t->name, t->rank, t->shape, m->params + t->offset) != 0) {
      snprintf(err, errlen, "%s: cannot write tensor '%s'", path, t->name);
      rc = -1;
    }
  }
  for (int i = 0; rc == 0 && i < m->num_buffer_tensors; i++) {
    const kn_tensor_info *t = &m->buffer_tensors[i];
    char name[128];
    if (mf_h5_write_tensor(f, t->name, t->rank, t->shape, m->buffers + t->offset) != 0) {
      snprintf(err, errlen, "%s: cannot write tensor '%s'", path, t->name);
      rc = -1;
    } else if (tracked_name(t->name, name, sizeof name)) {
      hid_t space = H5Screate(H5S_SCALAR);
      hid_t d = H5Dcreate2(f, name, H5T_STD_I64LE, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
      if (d < 0 ||
          H5Dwrite(d, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, &num_batches_tracked) < 0) {
        snprintf(err, errlen, "%s: cannot write tensor '%s'", path, name);
        rc = -1;
      }
      if (d >= 0) H5Dclose(d);
      H5Sclose(space);
    }
  }
  return rc;
}

int mf_checkpoint_save(const char *path, const kn_model *m, int64_t num_batches_tracked, char *err,
                       size_t errlen) {
  mf_h5_quiet();
  hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  if (f < 0) {
    snprintf(err, errlen, "%s: cannot create checkpoint file", path);
    return -1;
  }
  int rc = mf_checkpoint_write_model(f, path, m, num_batches_tracked, err, errlen);
  if (H5Fclose(f) < 0 && rc == 0) {
    snprintf(err, errlen, "%s: cannot close checkpoint file", path);
    rc = -1;
  }
  return rc;
}

int mf_checkpoint_read_model(hid_t f, const char *path, kn_model *m, int64_t *num_batches_tracked,
                             char *err, size_t errlen) {
  if (num_batches_tracked) *num_batches_tracked = 0;
  int rc = 0, first = 1;
  for (int i = 0; rc == 0 && i < m->num_param_tensors; i++) {
    const kn_tensor_info *t = &m->param_tensors[i];
    rc = mf_h5_read_tensor(f, path, t->name, H5T_FLOAT, H5T_NATIVE_FLOAT, t->rank, t->shape,
                           m->params + t->offset, err, errlen);
  }
  for (int i = 0; rc == 0 && i < m->num_buffer_tensors; i++) {
    const kn_tensor_info *t = &m->buffer_tensors[i];
    char name[128];
    rc = mf_h5_read_tensor(f, path, t->name, H5T_FLOAT, H5T_NATIVE_FLOAT, t->rank, t->shape,
                           m->buffers + t->offset, err, errlen);
    if (rc == 0 && tracked_name(t->name, name, sizeof name)) {
      int64_t count = 0;
      rc = mf_h5_read_tensor(f, path, name, H5T_INTEGER, H5T_NATIVE_INT64, 0, NULL, &count, err,
                             errlen);
      if (rc == 0 && first && num_batches_tracked) *num_batches_tracked = count;
      first = 0;
    }
  }
  return rc;
}

int mf_checkpoint_load(const char *path, kn_model *m, int64_t *num_batches_tracked, char *err,
                       size_t errlen) {
  mf_h5_quiet();
  if (num_batches_tracked) *num_batches_tracked = 0;
  hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
  if (f < 0) {
    snprintf(err, errlen, "%s: cannot open as an HDF5 checkpoint", path);
    return -1;
  }
  int rc = mf_checkpoint_read_model(f, path, m, num_batches_tracked, err, errlen);
  H5Fclose(f);
  return rc;
}
