/* AUROC by ranks and quantiles (see auroc.h). */
#include "metrics/auroc.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int ic_auroc(const double *neg, size_t n_neg, const double *pos, size_t n_pos, double *scratch,
             double *ret)
{
    if (!neg || !pos || !scratch || !ret || n_neg == 0 || n_pos == 0)
        return ic_error_set(IC_EINVAL, "auroc: needs at least one negative and one positive");
    for (size_t i = 0; i < n_neg; i++)
        if (!isfinite(neg[i]))
            return ic_error_set(IC_EINVAL, "auroc: negative score %zu is not finite", i);
    for (size_t i = 0; i < n_pos; i++)
        if (!isfinite(pos[i]))
            return ic_error_set(IC_EINVAL, "auroc: positive score %zu is not finite", i);
    /* U = sum over positives of (#negatives below + 1/2 #negatives equal),
     * with the negatives sorted once and two binary searches per positive. */
    memcpy(scratch, neg, n_neg * sizeof *scratch);
    qsort(scratch, n_neg, sizeof *scratch, cmp_double);
    double u = 0;
    for (size_t i = 0; i < n_pos; i++) {
        size_t lo = 0, hi = n_neg; /* first index with scratch[k] >= pos[i] */
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            if (scratch[mid] < pos[i])
                lo = mid + 1;
            else
                hi = mid;
        }
        size_t below = lo;
        hi = n_neg; /* first index with scratch[k] > pos[i] */
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            if (scratch[mid] <= pos[i])
                lo = mid + 1;
            else
                hi = mid;
        }
        u += (double)below + 0.5 * (double)(lo - below);
    }
    *ret = u / ((double)n_neg * (double)n_pos);
    return 0;
}

int ic_quantile(double *x, size_t n, double q, double *ret)
{
    if (!x || !ret || n == 0 || !(q >= 0 && q <= 1))
        return ic_error_set(IC_EINVAL, "quantile: needs values and q in [0, 1]");
    qsort(x, n, sizeof *x, cmp_double);
    double h = q * (double)(n - 1);
    size_t k = (size_t)floor(h);
    if (k + 1 >= n) {
        *ret = x[n - 1];
        return 0;
    }
    *ret = x[k] + (h - (double)k) * (x[k + 1] - x[k]);
    return 0;
}

double ic_fraction_above(const double *x, size_t n, double t)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        k += x[i] > t;
    return n ? (double)k / (double)n : 0.0;
}
