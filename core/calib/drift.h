/* The per-image drift (domain-shift) score: how far this image's BatchNorm
 * statistics are from the stored (source) ones (docs/drift.md).
 *
 * For one channel of one BN layer, with this image's statistics of the BN
 * input (mean mu_t, unbiased variance var_t over H x W) and the stored
 * ones (mu_s, var_s), the distance is the symmetric Kullback-Leibler
 * divergence between N(mu_t, var_t + eps) and N(mu_s, var_s + eps), eps
 * being the layer's own BN eps (so a dead channel stays finite):
 *   a = var_t + eps, b = var_s + eps, d = (mu_t - mu_s)^2
 *   D = (KL(t || s) + KL(s || t)) / 2 = (a/b + b/a - 2 + d (1/a + 1/b)) / 4
 * which is 0 for identical statistics and unchanged by any affine map of
 * the channel. A layer's distance is the mean of D over its channels; the
 * score of an image is the mean over all BN layers of the network.
 *
 * Calibrated modes have the instance statistics anyway; `none` folds BN
 * into the convolution and measures the statistics of the folded output
 * instead, which ic_drift_unfold_stats() maps back. The score is that of
 * the forward that ran: in calibrated modes later layers see calibrated
 * inputs, so each mode has its own scale (docs/drift.md gives thresholds
 * per mode). */
#ifndef IC_CALIB_DRIFT_H
#define IC_CALIB_DRIFT_H

/* D of one channel (formula above), in double. */
double ic_drift_channel(double mean_t, double var_t, double mean_s, double var_s, double eps);

/* Mean of D over the c channels of one image's layer: mean_t, var_t are
 * this image's statistics, mean_s, var_s the stored ones (c each). */
double ic_drift_layer(int c, const float *mean_t, const float *var_t, const float *mean_s,
                      const float *var_s, float eps);

/* Turns the statistics (mean, var; c each, in place) of a folded BN
 * layer's output z = s (u - mu_s) + beta, with s = gamma / sqrt(var_s +
 * eps), into those of the BN input u: mu_s + (mean - beta) / s and var /
 * s^2. gamma / beta NULL mean ones / zeros. A channel with gamma = 0 says
 * nothing about u and gets the stored statistics (distance 0). */
void ic_drift_unfold_stats(int c, float *mean, float *var, const float *gamma, const float *beta,
                           const float *mean_s, const float *var_s, float eps);

/* Sums layer distances for a batch of n images (caller-owned sums). */
typedef struct ic_drift_acc {
    int n;        /* images */
    int layers;   /* layers added so far */
    double *sum;  /* (n) sums of layer distances */
} ic_drift_acc;

/* Starts an accumulator over `sum` (n doubles, zeroed here). */
void ic_drift_acc_init(ic_drift_acc *acc, int n, double *sum);

/* Adds one layer of width c: mean_t, var_t (n, c) per image. */
void ic_drift_acc_add(ic_drift_acc *acc, int c, const float *mean_t, const float *var_t,
                      const float *mean_s, const float *var_s, float eps);

/* The score of image i: the mean layer distance (0 when no layer was added). */
double ic_drift_acc_score(const ic_drift_acc *acc, int i);

#endif
