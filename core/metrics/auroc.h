/* Area under the ROC curve of a scalar score that should be higher for
 * positives than for negatives (e.g. the drift score of shifted images
 * against source images, docs/drift.md), and empirical quantiles for
 * picking an alert threshold on the negatives alone. */
#ifndef IC_METRICS_AUROC_H
#define IC_METRICS_AUROC_H

#include <stddef.h>

/* The probability that a random positive scores above a random negative,
 * ties counted as 1/2 (the Mann-Whitney U statistic over n_neg * n_pos):
 * 1 = perfect separation, 0.5 = chance. Non-finite scores are refused.
 * `scratch` needs n_neg + n_pos doubles. Returns 0 and *ret, or IC_EINVAL
 * (an empty side, NULL, a NaN or infinite score). */
int ic_auroc(const double *neg, size_t n_neg, const double *pos, size_t n_pos, double *scratch,
             double *ret);

/* The q-quantile (0 <= q <= 1) of x with linear interpolation between
 * order statistics (numpy's default): sorts x in place. Returns 0, or
 * IC_EINVAL for n = 0 or q outside [0, 1]. */
int ic_quantile(double *x, size_t n, double q, double *ret);

/* Fraction of x strictly above t. */
double ic_fraction_above(const double *x, size_t n, double t);

#endif
