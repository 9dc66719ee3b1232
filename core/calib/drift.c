/* The drift score's distance and its accumulation over layers (drift.h). */
#include "calib/drift.h"

#include <math.h>
#include <stddef.h>

double ic_drift_channel(double mean_t, double var_t, double mean_s, double var_s, double eps)
{
    double a = var_t + eps, b = var_s + eps, d = (mean_t - mean_s) * (mean_t - mean_s);
    return 0.25 * (a / b + b / a - 2.0 + d * (1.0 / a + 1.0 / b));
}

double ic_drift_layer(int c, const float *mean_t, const float *var_t, const float *mean_s,
                      const float *var_s, float eps)
{
    if (c <= 0)
        return 0.0;
    double s = 0;
    for (int i = 0; i < c; i++)
        s += ic_drift_channel(mean_t[i], var_t[i], mean_s[i], var_s[i], eps);
    return s / c;
}

void ic_drift_unfold_stats(int c, float *mean, float *var, const float *gamma, const float *beta,
                           const float *mean_s, const float *var_s, float eps)
{
    for (int i = 0; i < c; i++) {
        double g = gamma ? gamma[i] : 1.0, s = g / sqrt((double)var_s[i] + eps);
        if (s == 0.0 || !isfinite(s)) {
            mean[i] = mean_s[i];
            var[i] = var_s[i];
            continue;
        }
        mean[i] = (float)(mean_s[i] + ((double)mean[i] - (beta ? beta[i] : 0.0)) / s);
        var[i] = (float)((double)var[i] / (s * s));
    }
}

void ic_drift_acc_init(ic_drift_acc *acc, int n, double *sum)
{
    acc->n = n;
    acc->layers = 0;
    acc->sum = sum;
    for (int i = 0; i < n; i++)
        sum[i] = 0.0;
}

void ic_drift_acc_add(ic_drift_acc *acc, int c, const float *mean_t, const float *var_t,
                      const float *mean_s, const float *var_s, float eps)
{
    for (int i = 0; i < acc->n; i++)
        acc->sum[i] += ic_drift_layer(c, mean_t + (size_t)i * c, var_t + (size_t)i * c, mean_s,
                                      var_s, eps);
    acc->layers++;
}

double ic_drift_acc_score(const ic_drift_acc *acc, int i)
{
    return acc->layers ? acc->sum[i] / acc->layers : 0.0;
}
