/* HDF5 helpers (see h5util.h). */
#include "bench/harness/h5util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void mf_h5_quiet(void) {
  H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
}

static int write_attr(hid_t object, const char *name, hid_t type, const void *value) {
  if (H5Aexists(object, name) > 0) H5Adelete(object, name);
  hid_t space = H5Screate(H5S_SCALAR);
  hid_t attr = H5Acreate2(object, name, type, space, H5P_DEFAULT, H5P_DEFAULT);
  int rc = attr < 0 || H5Awrite(attr, type, value) < 0 ? -1 : 0;
  if (attr >= 0) H5Aclose(attr);
  H5Sclose(space);
  return rc;
}

int mf_h5_attr_string(hid_t object, const char *name, const char *value) {
  hid_t type = H5Tcopy(H5T_C_S1);
  H5Tset_size(type, strlen(value) + 1);
  H5Tset_strpad(type, H5T_STR_NULLTERM);
  int rc = write_attr(object, name, type, value);
  H5Tclose(type);
  return rc;
}

int mf_h5_attr_int(hid_t object, const char *name, int64_t value) {
  return write_attr(object, name, H5T_NATIVE_INT64, &value);
}

int mf_h5_attr_double(hid_t object, const char *name, double value) {
  return write_attr(object, name, H5T_NATIVE_DOUBLE, &value);
}

static int read_attr(hid_t object, const char *name, hid_t memtype, void *value) {
  if (H5Aexists(object, name) <= 0) return -1;
  hid_t attr = H5Aopen(object, name, H5P_DEFAULT);
  if (attr < 0) return -1;
  int rc = H5Aread(attr, memtype, value) < 0 ? -1 : 0;
  H5Aclose(attr);
  return rc;
}

int mf_h5_read_attr_int(hid_t object, const char *name, int64_t *value) {
  return read_attr(object, name, H5T_NATIVE_INT64, value);
}

int mf_h5_read_attr_double(hid_t object, const char *name, double *value) {
  return read_attr(object, name, H5T_NATIVE_DOUBLE, value);
}

int mf_h5_read_attr_string(hid_t object, const char *name, char *value, size_t size) {
  if (H5Aexists(object, name) <= 0 || size == 0) return -1;
  hid_t attr = H5Aopen(object, name, H5P_DEFAULT);
  if (attr < 0) return -1;
  hid_t filetype = H5Aget_type(attr);
  int rc = -1;
  if (H5Tget_class(filetype) == H5T_STRING && !H5Tis_variable_str(filetype)) {
    size_t stored = H5Tget_size(filetype);
    char *buffer = calloc(stored + 1, 1);
    hid_t memtype = H5Tcopy(H5T_C_S1);
    H5Tset_size(memtype, stored + 1);
    if (buffer && H5Aread(attr, memtype, buffer) >= 0) {
      snprintf(value, size, "%s", buffer);
      rc = 0;
    }
    H5Tclose(memtype);
    free(buffer);
  }
  H5Tclose(filetype);
  H5Aclose(attr);
  return rc;
}

hid_t mf_h5_group(hid_t file, const char *path) {
  char partial[256];
  size_t n = strlen(path);
  if (n >= sizeof partial) return -1;
  for (size_t i = 1; i <= n; i++) {
    if (path[i] != '/' && path[i] != '\0') continue;
    memcpy(partial, path, i);
    partial[i] = '\0';
    if (H5Lexists(file, partial, H5P_DEFAULT) <= 0) {
      hid_t g = H5Gcreate2(file, partial, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
      if (g < 0) return -1;
      H5Gclose(g);
    }
  }
  return H5Gopen2(file, path, H5P_DEFAULT);
}

hid_t mf_h5_growing_create(hid_t parent, const char *name, hid_t type, hsize_t columns,
                           hsize_t chunk_rows) {
  int rank = columns ? 2 : 1;
  hsize_t dims[2] = {0, columns}, max[2] = {H5S_UNLIMITED, columns};
  hsize_t chunk[2] = {chunk_rows ? chunk_rows : 64, columns};
  hid_t space = H5Screate_simple(rank, dims, max);
  hid_t plist = H5Pcreate(H5P_DATASET_CREATE);
  H5Pset_chunk(plist, rank, chunk);
  /* Rows are only appended: cache the chunk being filled and one more, not HDF5's default 1 MiB
   * of chunks per dataset, which filled up with finished chunks over a long run. */
  hid_t access = H5Pcreate(H5P_DATASET_ACCESS);
  const size_t chunk_bytes = (size_t)chunk[0] * (columns ? columns : 1) * H5Tget_size(type);
  H5Pset_chunk_cache(access, 11, 2 * chunk_bytes, 1.0);
  hid_t dataset = H5Dcreate2(parent, name, type, space, H5P_DEFAULT, plist, access);
  H5Pclose(access);
  H5Pclose(plist);
  H5Sclose(space);
  return dataset;
}

int mf_h5_growing_write(hid_t dataset, hsize_t at, hsize_t rows, hid_t memtype, const void *data) {
  hid_t space = H5Dget_space(dataset);
  int rank = H5Sget_simple_extent_ndims(space);
  hsize_t dims[2] = {0, 0};
  H5Sget_simple_extent_dims(space, dims, NULL);
  H5Sclose(space);
  if (at + rows > dims[0]) {
    dims[0] = at + rows;
    if (H5Dset_extent(dataset, dims) < 0) return -1;
  }
  if (rows == 0) return 0;
  hsize_t start[2] = {at, 0}, count[2] = {rows, rank == 2 ? dims[1] : 1};
  hid_t filespace = H5Dget_space(dataset);
  H5Sselect_hyperslab(filespace, H5S_SELECT_SET, start, NULL, count, NULL);
  hid_t memspace = H5Screate_simple(rank, count, NULL);
  int rc = H5Dwrite(dataset, memtype, memspace, filespace, H5P_DEFAULT, data) < 0 ? -1 : 0;
  H5Sclose(memspace);
  H5Sclose(filespace);
  return rc;
}

int mf_h5_write_array(hid_t parent, const char *name, hid_t filetype, hid_t memtype, int rank,
                      const hsize_t *dims, const void *data) {
  hid_t space = H5Screate_simple(rank, dims, NULL);
  hid_t dataset = H5Dcreate2(parent, name, filetype, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  int rc =
      dataset < 0 || H5Dwrite(dataset, memtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0 ? -1 : 0;
  if (dataset >= 0) H5Dclose(dataset);
  H5Sclose(space);
  return rc;
}

int mf_h5_result_complete(const char *path) {
  hid_t file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
  if (file < 0) return -1;
  char suite[32] = "";
  int64_t complete = 0;
  int result = -1;
  if (mf_h5_read_attr_string(file, "suite", suite, sizeof suite) == 0 &&
      strcmp(suite, "mayfly") == 0)
    result = mf_h5_read_attr_int(file, "complete", &complete) == 0 && complete == 1 ? 1 : 0;
  H5Fclose(file);
  return result;
}
