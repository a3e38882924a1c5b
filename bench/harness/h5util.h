/* Small HDF5 helpers shared by every program that writes or reads result files: attributes in
 * one call, datasets that grow by one row at a time (chunked, unlimited first dimension), and
 * error capture that turns HDF5's error stack into one message instead of a page of output.
 * All functions return 0 on success and -1 on failure. */
#ifndef MAYFLY_BENCH_H5UTIL_H
#define MAYFLY_BENCH_H5UTIL_H

#include <hdf5.h>
#include <stddef.h>
#include <stdint.h>

/* Silences HDF5's automatic error printing for this process (errors become return values). */
void mf_h5_quiet(void);

int mf_h5_attr_string(hid_t object, const char *name, const char *value);
int mf_h5_attr_int(hid_t object, const char *name, int64_t value);
int mf_h5_attr_double(hid_t object, const char *name, double value);
/* Reads; -1 when absent or of another kind. */
int mf_h5_read_attr_int(hid_t object, const char *name, int64_t *value);
int mf_h5_read_attr_double(hid_t object, const char *name, double *value);
int mf_h5_read_attr_string(hid_t object, const char *name, char *value, size_t size);

/* Creates group path (and parents) if missing; returns the open group or -1. */
hid_t mf_h5_group(hid_t file, const char *path);

/* A dataset of `type` with shape [0, columns] (columns 0: shape [0]) that grows by rows. */
hid_t mf_h5_growing_create(hid_t parent, const char *name, hid_t type, hsize_t columns,
                           hsize_t chunk_rows);
/* Appends `rows` rows (each `columns` elements of the dataset's type) at row `at`. */
int mf_h5_growing_write(hid_t dataset, hsize_t at, hsize_t rows, hid_t memtype, const void *data);

/* Writes a whole 1-D or 2-D dataset in one go. */
int mf_h5_write_array(hid_t parent, const char *name, hid_t filetype, hid_t memtype, int rank,
                      const hsize_t *dims, const void *data);

/* Checks the suite's root attributes: suite == "mayfly" and complete == 1. 1: complete,
 * 0: a mayfly file that is not complete, -1: not readable as a mayfly result file. */
int mf_h5_result_complete(const char *path);

#endif
