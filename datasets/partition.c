/* The IID partition: one seeded permutation of the training set (Fisher-Yates driven by the
 * module's own splitmix64, so every machine derives the same order from the same seed), cut
 * into `peers` equal contiguous shards with the remainder dropped. Peers and workers both
 * derive "minibatch i of peer p" from it, so no index lists travel between processes. */
#include <stdlib.h>
#include <string.h>

#include "datasets/internal.h"

int ds_partition_make(int64_t total, int peers, uint64_t seed, ds_partition *out, char *err,
                      size_t errlen) {
  memset(out, 0, sizeof(*out));
  if (peers < 1) return ds_fail(err, errlen, "partition: %d peers (need at least 1)", peers);
  if (total < 1 || total > DS_MAX_COUNT)
    return ds_fail(err, errlen, "partition: %lld samples is out of range (1..%lld)",
                   (long long)total, DS_MAX_COUNT);
  if (total / peers == 0)
    return ds_fail(err, errlen, "partition: %lld samples cannot give each of %d peers a sample",
                   (long long)total, peers);
  int64_t *order = malloc(sizeof(*order) * (size_t)total);
  if (!order)
    return ds_fail(err, errlen, "partition: out of memory for %lld samples", (long long)total);
  for (int64_t i = 0; i < total; i++) order[i] = i;
  uint64_t state = seed;
  for (int64_t i = total - 1; i > 0; i--) {
    int64_t j = (int64_t)ds_uniform_below(&state, (uint64_t)i + 1);
    int64_t t = order[i];
    order[i] = order[j];
    order[j] = t;
  }
  out->total = total;
  out->peers = peers;
  out->shard_size = total / peers;
  out->order = order;
  return 0;
}

void ds_partition_free(ds_partition *p) {
  if (!p) return;
  free(p->order);
  p->order = NULL;
}

int64_t ds_minibatch_count(const ds_partition *p, int batch) {
  if (batch < 1) return 0;
  return p->shard_size / batch;
}

void ds_minibatch_indices(const ds_partition *p, int peer, int batch, int64_t i, int64_t *out) {
  const int64_t *first = p->order + (int64_t)peer * p->shard_size + i * batch;
  memcpy(out, first, sizeof(*out) * (size_t)batch);
}
