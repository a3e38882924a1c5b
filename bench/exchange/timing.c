/* mayfly-exchange's timed loop and link probe. Before every iteration a barrier (outside the
 * timed region), then MPI_Wtime around one call; an iteration's time is the max over peers,
 * the reported time the median over iterations (ReproMPI's and the OSU benchmarks' method).
 * Warm-up iterations are timed and kept too, but left out of the summary. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mpi.h>

#include "bench/exchange/exchange.h"
#include "bench/harness/util.h"

int ex_buffers_alloc(ex_buffers *b, uint64_t largest, int iterations, int warmup, int peers) {
  const int total = warmup + iterations;
  b->data = malloc(sizeof(float) * (size_t)(largest ? largest : 1));
  b->local = malloc(sizeof(double) * (size_t)total);
  b->gathered = malloc(sizeof(double) * (size_t)total * (size_t)peers);
  b->per_rank = malloc(sizeof(double) * (size_t)iterations * (size_t)peers);
  b->iteration_max = malloc(sizeof(double) * (size_t)iterations);
  b->warmup_max = malloc(sizeof(double) * (size_t)(warmup ? warmup : 1));
  return b->data && b->local && b->gathered && b->per_rank && b->iteration_max && b->warmup_max
             ? 0
             : -1;
}

void ex_buffers_free(ex_buffers *b) {
  free(b->data);
  free(b->local);
  free(b->gathered);
  free(b->per_rank);
  free(b->iteration_max);
  free(b->warmup_max);
}

void ex_run_once(const cm_exchange_algorithm *a, float *data, size_t count, uint64_t bytes) {
  char err[512] = "";
  int rc = a->allreduce_mean(data, count, MPI_COMM_WORLD, err, sizeof err);
  if (rc != MPI_SUCCESS) {
    int rank;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    fprintf(stderr, "%s: error: rank %d: %s at %llu bytes: %s\n", EX_PROGRAM, rank, a->name,
            (unsigned long long)bytes, err);
    MPI_Abort(MPI_COMM_WORLD, 1);
  }
}

/* Rank 0 gets the raw times: per_rank [iterations][peers], iteration_max [iterations],
 * warmup_max [warmup]. */
ex_summary ex_measure(const cm_exchange_algorithm *a, ex_buffers *b, size_t count, int iterations,
                      int warmup, int rank, int peers) {
  const uint64_t bytes = (uint64_t)count * sizeof(float);
  ex_fill_rounding_inputs(b->data, count, rank);
  const int total = warmup + iterations;
  for (int it = 0; it < total; it++) {
    MPI_Barrier(MPI_COMM_WORLD);
    double start = MPI_Wtime();
    ex_run_once(a, b->data, count, bytes);
    b->local[it] = MPI_Wtime() - start;
  }
  MPI_Gather(b->local, total, MPI_DOUBLE, b->gathered, total, MPI_DOUBLE, 0, MPI_COMM_WORLD);
  ex_summary s = {0, 0, 0};
  if (rank != 0) return s;
  for (int it = 0; it < total; it++) {
    double worst = 0;
    for (int q = 0; q < peers; q++) {
      double t = b->gathered[(size_t)q * total + it];
      if (t > worst) worst = t;
      if (it >= warmup) b->per_rank[(size_t)(it - warmup) * peers + q] = t;
    }
    if (it < warmup)
      b->warmup_max[it] = worst;
    else
      b->iteration_max[it - warmup] = worst;
  }
  s.median = mf_quantile(b->iteration_max, (size_t)iterations, 0.5);
  s.min = mf_quantile(b->iteration_max, (size_t)iterations, 0.0);
  s.max = mf_quantile(b->iteration_max, (size_t)iterations, 1.0);
  return s;
}

/* The link bandwidth the bound uses: the best bandwidth MPI itself reaches between neighbours.
 * Every peer sends a message to its right neighbour while receiving one from its left one
 * (MPI_Sendrecv, exactly a ring step), for messages of 64 KiB, 256 KiB, 1 MiB, 4 MiB and
 * 16 MiB; per size the median over 5 repetitions (after 1 warm-up) of the max over peers; the
 * link bandwidth is the best of those, in bytes per second, and *best_bytes the size that
 * reached it. On shared memory mid-sized messages that stay in cache are fastest, so the best
 * is usually not the largest. */
double ex_link_bandwidth(int rank, int peers, size_t *best_bytes) {
  *best_bytes = 0;
  if (peers < 2) return 0;
  const size_t largest = (size_t)16 << 20;
  char *out = malloc(largest), *in = malloc(largest);
  if (!out || !in) {
    fprintf(stderr, "%s: error: out of memory for the link probe\n", EX_PROGRAM);
    MPI_Abort(MPI_COMM_WORLD, 1);
  }
  memset(out, 1, largest);
  memset(in, 0, largest);
  enum { PROBES = 5 };
  double best = 0;
  for (size_t bytes = (size_t)64 << 10; bytes <= largest; bytes *= 4) {
    double times[PROBES];
    for (int it = -1; it < PROBES; it++) {
      MPI_Barrier(MPI_COMM_WORLD);
      double start = MPI_Wtime();
      MPI_Sendrecv(out, (int)bytes, MPI_BYTE, (rank + 1) % peers, 1, in, (int)bytes, MPI_BYTE,
                   (rank + peers - 1) % peers, 1, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
      double t = MPI_Wtime() - start, worst;
      MPI_Allreduce(&t, &worst, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
      if (it >= 0) times[it] = worst;
    }
    double bandwidth = (double)bytes / mf_quantile(times, PROBES, 0.5);
    if (bandwidth > best) best = bandwidth, *best_bytes = bytes;
  }
  free(out);
  free(in);
  return best;
}
