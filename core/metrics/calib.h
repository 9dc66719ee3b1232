/* Confidence statistics and calibration error (ECE) of per-pixel softmax
 * outputs, accumulable over images.
 *
 * Confidence is the max softmax probability of a pixel. Both accumulators
 * use IC_CALIB_BINS = 15 equal-width bins with intervals (lo, hi] as the
 * reference _ECELoss (gpleiss/temperature_scaling); a confidence of exactly
 * 0 (impossible for a softmax) goes to the first bin. Counts are 64-bit and
 * sums double: a Cityscapes val pass is ~1e9 pixels.
 *
 * ECE is pixel-weighted and pooled over everything accumulated (not a mean
 * of per-image ECEs): ECE = sum_b |B_b|/N * |acc_b - conf_b|, over pixels
 * whose ground truth is not the ignore label. */
#ifndef IC_METRICS_CALIB_H
#define IC_METRICS_CALIB_H

#include <stddef.h>
#include <stdint.h>

#define IC_CALIB_BINS 15

/* Label-free confidence statistics (what every response can report). */
typedef struct ic_conf_stats {
    uint64_t n;                       /* pixels */
    double sum_conf;                  /* sum of max probabilities */
    double sum_entropy;               /* sum of -sum_k p_k ln p_k (nats) */
    uint64_t hist[IC_CALIB_BINS];     /* pixels per confidence bin */
} ic_conf_stats;

/* Reliability accumulator: pixels with a ground truth label. */
typedef struct ic_ece {
    uint64_t n;                       /* labelled pixels */
    uint64_t count[IC_CALIB_BINS];
    double sum_conf[IC_CALIB_BINS];
    uint64_t correct[IC_CALIB_BINS];
} ic_ece;

/* One reliability-diagram bar. */
typedef struct ic_ece_bin {
    double lo, hi;     /* interval (lo, hi] */
    uint64_t count;
    double mean_conf;  /* 0 for an empty bin */
    double accuracy;   /* 0 for an empty bin */
} ic_ece_bin;

/* Bin of a confidence: (b/15, (b+1)/15] -> b, with the bounds rounded to
 * float as the reference's float32 linspace; <= 0 and NaN go to bin 0,
 * > 1 to the last bin. */
int ic_calib_bin(float conf);

/* Zeroes an accumulator. */
void ic_conf_stats_init(ic_conf_stats *s);
void ic_ece_init(ic_ece *e);

/* Adds n pixels given their max probability and entropy (either may be
 * computed elsewhere, e.g. fused into the softmax). */
void ic_conf_stats_add(ic_conf_stats *s, const float *conf, const float *entropy, size_t n);

/* Adds n labelled pixels: confidence, predicted class, ground truth; pixels
 * whose gt equals `ignore` (255 for Cityscapes train ids) are skipped. */
void ic_ece_add(ic_ece *e, const float *conf, const int32_t *pred, const int32_t *gt, size_t n,
                int32_t ignore);

/* One pass over softmax probabilities probs (C, n) (planar, as an NCHW
 * plane): adds every pixel to `s` (if not NULL) and, when gt is not NULL,
 * the labelled pixels to `e`. The prediction is the argmax (first max on
 * ties). Errors: IC_EINVAL for C <= 0 or a NULL probs. */
int ic_calib_add_probs(ic_conf_stats *s, ic_ece *e, const float *probs, int c, size_t n,
                       const int32_t *gt, int32_t ignore);

/* Mean max probability and mean entropy (0 when empty). */
double ic_conf_stats_mean_conf(const ic_conf_stats *s);
double ic_conf_stats_mean_entropy(const ic_conf_stats *s);

/* Merges `src` into `dst` (e.g. per-worker accumulators). */
void ic_conf_stats_merge(ic_conf_stats *dst, const ic_conf_stats *src);
void ic_ece_merge(ic_ece *dst, const ic_ece *src);

/* Expected calibration error, 0 when nothing was accumulated. */
double ic_ece_value(const ic_ece *e);

/* Maximum calibration error: the largest |acc - conf| over non-empty bins. */
double ic_ece_max(const ic_ece *e);

/* Fills the IC_CALIB_BINS reliability bars. */
void ic_ece_bins(const ic_ece *e, ic_ece_bin out[IC_CALIB_BINS]);

#endif
