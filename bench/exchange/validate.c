/* mayfly-exchange -c: is an algorithm's allreduce-mean right? Three counts, summed over peers
 * (the method, with the error bound, is written at the top of bench/mayfly-exchange.c):
 * exact results on inputs whose sums are exact in any order, every peer holding rank 0's bits,
 * and results within the worst-case rounding bound of any order of float additions. A speed
 * figure is only reported next to its wrong-value count (HPCG's VALID/INVALID habit). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mpi.h>

#include "bench/exchange/exchange.h"

static uint64_t mix(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

/* Multiples of 1/64 in [-16, 16): sums of up to 16384 of them are exact in float. */
static float exact_value(int rank, uint64_t i) {
  uint64_t h = mix(((uint64_t)rank << 40) ^ i ^ 0x5EED0001ull);
  return (float)((int)(h >> 53) - 1024) / 64.0f;
}

/* Full 24-bit mantissas, exponents 2^-4..2^3, both signs: rounding depends on the order. */
static float rounding_value(int rank, uint64_t i) {
  uint64_t h = mix(((uint64_t)rank << 40) ^ i ^ 0x5EED0002ull);
  float unit = (float)(h >> 40) / 16777216.0f; /* [0, 1), 24 bits */
  float scale = ldexpf(1.0f, (int)((h >> 8) & 7) - 4);
  return (h & 1 ? -unit : unit) * scale;
}

static void fill(float *data, size_t count, int rank, float (*value)(int, uint64_t)) {
  for (size_t i = 0; i < count; i++) data[i] = value(rank, i);
}

void ex_fill_rounding_inputs(float *data, size_t count, int rank) {
  fill(data, count, rank, rounding_value);
}

/* --corrupt-rank: proves that validation notices one wrong bit on one peer. */
static void corrupt(float *data, size_t count, int rank, int corrupt_rank) {
  if (rank != corrupt_rank || count == 0) return;
  uint32_t bits;
  memcpy(&bits, &data[count / 2], sizeof bits);
  bits ^= 1;
  memcpy(&data[count / 2], &bits, sizeof bits);
}

/* Bit identity: rank 0's result travels to everyone with the MPI library's own broadcast. */
static int64_t count_not_identical(const float *data, size_t count, int rank) {
  enum { CHUNK = 1 << 20 };
  int64_t differ = 0;
  float *theirs = malloc(sizeof(float) * (count < CHUNK ? (count ? count : 1) : CHUNK));
  if (!theirs) {
    fprintf(stderr, "%s: error: out of memory for the identity check\n", EX_PROGRAM);
    MPI_Abort(MPI_COMM_WORLD, 1);
  }
  for (size_t first = 0; first < count; first += CHUNK) {
    size_t n = count - first < CHUNK ? count - first : CHUNK;
    if (rank == 0) memcpy(theirs, data + first, n * sizeof(float));
    MPI_Bcast(theirs, (int)n, MPI_FLOAT, 0, MPI_COMM_WORLD);
    for (size_t i = 0; i < n; i++)
      if (memcmp(&theirs[i], &data[first + i], sizeof(float)) != 0) differ++;
  }
  free(theirs);
  return differ;
}

ex_check_counts ex_validate(const cm_exchange_algorithm *a, float *data, size_t count, int rank,
                            int peers, int corrupt_rank) {
  ex_check_counts local = {0, 0, 0}, total;
  const uint64_t bytes = (uint64_t)count * sizeof(float);

  fill(data, count, rank, exact_value);
  ex_run_once(a, data, count, bytes);
  corrupt(data, count, rank, corrupt_rank);
  for (size_t i = 0; i < count; i++) {
    double sum = 0;
    for (int q = 0; q < peers; q++) sum += exact_value(q, i);
    float expected = (float)sum / (float)peers;
    if (memcmp(&expected, &data[i], sizeof expected) != 0) local.wrong_exact++;
  }

  fill(data, count, rank, rounding_value);
  ex_run_once(a, data, count, bytes);
  corrupt(data, count, rank, corrupt_rank);
  const double u = ldexp(1.0, -24), k = (double)(peers - 1);
  const double gamma = k * u / (1 - k * u);
  for (size_t i = 0; i < count; i++) {
    double sum = 0, magnitude = 0;
    for (int q = 0; q < peers; q++) {
      double v = rounding_value(q, i);
      sum += v, magnitude += fabs(v);
    }
    double tolerance = (gamma * magnitude * (1 + u) + u * fabs(sum)) / peers * (1 + 1e-9);
    if (!(fabs((double)data[i] - sum / peers) <= tolerance)) local.out_of_tolerance++;
  }
  local.not_identical = count_not_identical(data, count, rank);
  MPI_Allreduce(&local, &total, 3, MPI_INT64_T, MPI_SUM, MPI_COMM_WORLD);
  return total;
}
