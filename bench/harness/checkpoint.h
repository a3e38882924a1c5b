/* Model checkpoints as HDF5 files laid out like a PyTorch state_dict, so weights move between
 * mayfly and torch with h5py in a few lines:
 *   every parameter and batch-norm buffer is a float32 dataset at the file root, named exactly as
 *   in the state_dict ("features.0.weight", "features.0.1.running_mean"), with the tensor's shape;
 *   every batch-norm layer also has "<layer>.num_batches_tracked", an int64 scalar (PyTorch keeps
 *   it as an int64 buffer; mayfly's float buffer block does not, so it travels as one count).
 * Python: torch.save-free round trip
 *   with h5py.File(p, "w") as f: [f.create_dataset(k, data=v.numpy()) for k, v in sd.items()]
 *   sd = {k: torch.from_numpy(f[k][()]) for k in f.keys()}
 * Why HDF5 and here: results are HDF5 already; kernels/ must not depend on HDF5 (DESIGN.md), so
 * the file format lives in bench/. Errors are one line naming the tensor and the file. */
#ifndef MAYFLY_BENCH_CHECKPOINT_H
#define MAYFLY_BENCH_CHECKPOINT_H

#include <hdf5.h>
#include <stddef.h>
#include <stdint.h>

#include "kernels/model.h"

/* Writes all parameters and buffers of m to path (truncating it). num_batches_tracked is stored
 * for every batch-norm layer (a layer is recognised by its "X.running_mean" buffer).
 * Returns 0, or -1 with a message in err. */
int mf_checkpoint_save(const char *path, const kn_model *m, int64_t num_batches_tracked, char *err,
                       size_t errlen);

/* Reads every parameter and buffer of m from path. A missing dataset, a shape other than the
 * model's or a dtype other than float32 (int for num_batches_tracked) is an error naming the
 * tensor and the file; the model may then be partly overwritten. Extra datasets are ignored.
 * *num_batches_tracked (may be NULL) receives the first layer's count, 0 without batch norm. */
int mf_checkpoint_load(const char *path, kn_model *m, int64_t *num_batches_tracked, char *err,
                       size_t errlen);

/* The same two on a file the caller holds open (bench/harness/resume.c adds its own groups beside
 * the state_dict); `path` only names the file in messages. */
int mf_checkpoint_write_model(hid_t file, const char *path, const kn_model *m,
                              int64_t num_batches_tracked, char *err, size_t errlen);
int mf_checkpoint_read_model(hid_t file, const char *path, kn_model *m,
                             int64_t *num_batches_tracked, char *err, size_t errlen);

/* ---- helpers shared with mayfly-grad and the golden tests -------------------------------- */

/* Shape and element type of dataset `name` in `file`; -1 when it does not exist. */
int mf_h5_tensor_shape(hid_t file, const char *name, int *rank, int64_t shape[KN_MAX_RANK],
                       H5T_class_t *type_class, size_t *type_size);

/* Reads dataset `name` (class `type_class` of any size, converted by HDF5 to memtype) that must
 * have exactly `rank`/`shape` (rank 0: scalar). `path` only names the file in messages. */
int mf_h5_read_tensor(hid_t file, const char *path, const char *name, H5T_class_t type_class,
                      hid_t memtype, int rank, const int64_t *shape, void *out, char *err,
                      size_t errlen);

/* Writes a float32 dataset (rank 0: scalar); "a/b" creates group a on the way. */
int mf_h5_write_tensor(hid_t parent, const char *name, int rank, const int64_t *shape,
                       const float *data);

#endif
