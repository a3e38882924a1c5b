/* mayfly-exchange's latency-bandwidth model: time = alpha + beta * bytes per algorithm, fitted
 * over the measured sizes. alpha and beta are what results/tools/projection.py scales a
 * gradient exchange with, so the fit is its own small file with its own reasons. */
#include <math.h>

#include "bench/exchange/exchange.h"

double ex_busbw_factor(int peers) {
  return 2.0 * (peers - 1) / peers;
}

/* time = alpha + beta * bytes by weighted least squares with weights 1/time^2, i.e. minimising
 * the relative error: plain least squares over sizes that grow by powers of two would fit the
 * largest sizes only and give a meaningless (often negative) alpha. Empty messages are left out
 * (they communicate nothing). Returns 0, or -1 with fewer than two distinct non-empty sizes. */
static int fit_alpha_beta(const double *bytes, const double *seconds, int n, double *alpha,
                          double *beta) {
  double sw = 0, sx = 0, sy = 0, sxx = 0, sxy = 0;
  int used = 0;
  double first = -1;
  int distinct = 0;
  for (int k = 0; k < n; k++) {
    if (bytes[k] <= 0 || !(seconds[k] > 0)) continue;
    double w = 1.0 / (seconds[k] * seconds[k]);
    sw += w, sx += w * bytes[k], sy += w * seconds[k];
    sxx += w * bytes[k] * bytes[k], sxy += w * bytes[k] * seconds[k];
    if (first < 0) first = bytes[k];
    if (bytes[k] != first) distinct = 1;
    used++;
  }
  double det = sw * sxx - sx * sx;
  if (used < 2 || !distinct || det == 0) return -1;
  *beta = (sw * sxy - sx * sy) / det;
  *alpha = (sy - *beta * sx) / sw;
  return 0;
}

int ex_fit_algorithm(const ex_measured_row *rows, int n, int a, double *bytes, double *seconds,
                     int *m, double *alpha, double *beta) {
  *m = 0;
  for (int k = 0; k < n; k++)
    if (rows[k].algorithm == a) {
      bytes[*m] = (double)rows[k].size.count * sizeof(float);
      seconds[*m] = rows[k].time.median;
      (*m)++;
    }
  *alpha = *beta = NAN;
  return fit_alpha_beta(bytes, seconds, *m, alpha, beta);
}
