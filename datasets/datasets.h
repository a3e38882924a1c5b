/* Datasets: readers for idx (MNIST, Fashion-MNIST; gzip or plain) and CIFAR-10 binary files,
 * seeded synthetic data, the IID partition into peer shards, and record-level fetching so a
 * worker can load "minibatch i of peer p" straight from the file, as a cloud function reads its
 * minibatch from object storage.
 *
 * Why one header: the peer (whole split in memory) and the worker (a few records from the file)
 * must agree on the sample numbering, the pixel layout and the partition. Everything that reads a
 * file validates it first: no size read from a file drives an allocation before it is checked
 * against the file's real length. Errors are returned as values with a message naming the file.
 * No MPI here; zlib only. */
#ifndef MAYFLY_DATASETS_H
#define MAYFLY_DATASETS_H

#include <stddef.h>
#include <stdint.h>

#define DS_PATH_MAX 1024
#define DS_ERROR_MAX 512

typedef enum { DS_TRAIN = 0, DS_TEST = 1 } ds_split;
typedef enum { DS_KIND_IDX, DS_KIND_CIFAR10, DS_KIND_SYNTHETIC } ds_kind;

/* Where samples come from: parsed from a --dataset spec. Cheap to copy; no file is opened. */
typedef struct {
  ds_kind kind;
  char name[64];                           /* "fashion-mnist", "idx", "cifar10", "synthetic" */
  char dir[DS_PATH_MAX];                   /* idx / cifar10: the directory holding the files */
  uint64_t synthetic_seed;                 /* synthetic: generator seed */
  int64_t synthetic_train, synthetic_test; /* synthetic: sample counts */
} ds_source;

/* One split, fully in memory. pixels are uint8, sample-major, each sample C*H*W (CHW). */
typedef struct {
  int64_t count;
  int channels, height, width;
  int classes;
  uint8_t *pixels;
  uint8_t *labels;
} ds_set;

/* Parses "fashion-mnist" (Debian's dataset-fashion-mnist files under
 * /usr/share/datasets/fashion-mnist), "idx:DIR" (train-images-idx3-ubyte[.gz] etc.),
 * "cifar10:DIR" (data_batch_1..5.bin, test_batch.bin), "synthetic" or
 * "synthetic:TRAIN:TEST[:SEED]". 0 or -1 + err. */
int ds_source_parse(const char *spec, ds_source *out, char *err, size_t errlen);

/* Loads a whole split (validated). 0 or -1 + err ("FILE: what is wrong"). */
int ds_load(const ds_source *src, ds_split split, ds_set *out, char *err, size_t errlen);
void ds_free(ds_set *set);

/* Geometry and count of a split without loading the pixels (headers only). */
int ds_probe(const ds_source *src, ds_split split, ds_set *geometry, char *err, size_t errlen);

/* Reads the samples with the given indices (any order, repeats allowed) straight from the
 * source's files into pixels [n, C*H*W] and labels [n]. For gzip files this decompresses up to
 * the largest index; plain files are read with pread per record. 0 or -1 + err. */
int ds_fetch(const ds_source *src, ds_split split, const int64_t *indices, int n, uint8_t *pixels,
             uint8_t *labels, char *err, size_t errlen);

/* A split opened for repeated fetches (datasets/reader.c): plain idx files are validated and
 * mapped once, so a fetch is a copy per record instead of a pread per record; other sources
 * fall back to ds_fetch. Same results and errors as ds_fetch. */
typedef struct ds_reader ds_reader;
int ds_reader_open(const ds_source *src, ds_split split, ds_reader **out, char *err, size_t errlen);
int ds_reader_fetch(ds_reader *reader, const int64_t *indices, int n, uint8_t *pixels,
                    uint8_t *labels, char *err, size_t errlen);
void ds_reader_close(ds_reader *reader);

/* If the source's files are gzip-compressed, writes plain copies into dir (created if needed)
 * and points *staged at them, so that workers can fetch records without decompressing:
 * the "upload to object storage" step. Otherwise *staged = *src. 0 or -1 + err. */
int ds_stage(const ds_source *src, const char *dir, ds_source *staged, char *err, size_t errlen);

/* Converts n samples of geometry (c,h,w) to float model input of geometry (C,H,W):
 * value = pixel / 255; channels replicated when c == 1 and C == 3; zero-padded (centred) when
 * H,W are larger, centre-cropped when smaller. labels are widened to int32. */
void ds_to_input(const uint8_t *pixels, const uint8_t *labels, int n, int c, int h, int w, int C,
                 int H, int W, float *x, int32_t *y);

/* The IID partition: one seeded permutation of the training set, cut into `peers` equal
 * contiguous shards (the remainder is dropped), as in the study's code. */
typedef struct {
  int64_t total; /* samples in the training split */
  int peers;
  int64_t shard_size; /* samples per peer */
  int64_t *order;     /* [total] permutation */
} ds_partition;

int ds_partition_make(int64_t total, int peers, uint64_t seed, ds_partition *out, char *err,
                      size_t errlen);
void ds_partition_free(ds_partition *p);

/* Minibatches in one peer's shard (incomplete last batch dropped). */
int64_t ds_minibatch_count(const ds_partition *p, int batch);
/* The sample indices of minibatch i of peer `peer`: out[batch]. */
void ds_minibatch_indices(const ds_partition *p, int peer, int batch, int64_t i, int64_t *out);

#endif
