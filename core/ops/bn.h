/* BatchNorm forward with per-image InstCal calibration, and BN folding.
 *
 * One BN layer holds source statistics (mean, var: PyTorch running buffers),
 * a frozen affine (gamma, beta) and eps. InstCal mixes the source statistics
 * with the statistics of the current image, per image and per channel:
 *   mu  = (1 - m_mu)  mu_s  + m_mu  mu_t      mu_t  = mean over H x W
 *   var = (1 - m_var) var_s + m_var var_t     var_t = unbiased variance over H x W
 *   y   = x * scale + bias, scale = gamma / sqrt(var + eps), bias = beta - mu * scale
 * (docs/calibration.md §1). m = 0 is eval-mode BN, m = 1 is pure
 * instance statistics. Strengths come per channel (InstCal-U, manual, TBN:
 * same for every image) or per image and channel (InstCal-C). Instance
 * statistics are computed by the caller with ic_bn_instance_stats() so that
 * the same numbers can feed InstCal-C's MLPs.
 *
 * Training lives here too:
 *  - training-mode BN (PyTorch BatchNorm2d.train()): batch statistics over
 *    (N, H, W), biased variance to normalise, running statistics updated with
 *    the unbiased one; its backward differentiates through the statistics;
 *  - the calibrated backward (InstCal-U / InstCal-C / TBN / TENT): instance
 *    statistics are stop-gradient constants, as in InstCal-Pano, so the layer
 *    is affine in x and gradients reach gamma, beta and the strengths only
 *    through the normalisation formula.
 * With bn.mixture set the calibrated variance also carries the mixture's
 * mean-difference term m_var (1 - m_var) (mu_t - mu_s)^2, in every forward
 * and backward below (the statistics stay constants, so the term adds
 * (1 - 2 m_var) (mu_t - mu_s)^2 to d var / d m_var).
 * Every backward ACCUMULATES (dx += ..., dgamma += ..., ...) so gradients of
 * shared parameters and of branches sum without temporaries; callers zero the
 * buffers before the first backward of a step. */
#ifndef IC_OPS_BN_H
#define IC_OPS_BN_H

#include <stddef.h>

#include "base/tensor.h"

/* One BN layer; the struct only points at weights it does not own. */
typedef struct ic_bn {
    int c;              /* channels */
    const float *gamma; /* (C), NULL = all ones (affine=False) */
    const float *beta;  /* (C), NULL = all zeros */
    const float *mean;  /* (C) source running mean mu_s */
    const float *var;   /* (C) source running variance var_s (unbiased, as PyTorch keeps it) */
    float eps;          /* PyTorch/detectron2 default 1e-5 */
    /* 0: var = (1 - m_var) var_s + m_var var_t (InstCal). 1: the variance of
     * the two-component mixture, adding m_var (1 - m_var) (mu_t - mu_s)^2
     * (InstCal-G; needs mean_t wherever m_var is given). */
    int mixture;
} ic_bn;

/* Per-image, per-channel statistics of x (N, C, H, W) over H x W:
 * mean_t (N, C) and the UNBIASED variance var_t (N, C) (divided by HW - 1;
 * 0 when HW < 2, as InstCal falls back to the biased estimate there). One pass
 * per plane with sums of shifted values in double, so large means do not
 * cancel the variance. Both outputs are caller-owned arrays of N*C floats;
 * either may be NULL when not wanted. */
void ic_bn_instance_stats(float *mean_t, float *var_t, const ic_tensor *x);

/* Reference for tests: two passes in double per plane. */
void ic_bn_instance_stats_ref(float *mean_t, float *var_t, const ic_tensor *x);

/* Fills the calibrated per-(image, channel) affine that the forward applies:
 * scale (N, C), bias (N, C), caller-owned. Arguments as for
 * ic_bn_forward_calibrated(); `n` is the batch size. Returns 0 or IC_EINVAL. */
int ic_bn_calibrated_affine(float *scale, float *bias, int n, const ic_bn *bn, const float *m_mu,
                            const float *m_var, int per_image, const float *mean_t,
                            const float *var_t);

/* Calibrated BN (+ optional fused ReLU) over x (N, C, H, W) into y, same
 * shape; y may alias x (in place). Strengths: m_mu, m_var are arrays of C
 * (per_image = 0) or N*C indexed [n*C + c] (per_image = 1); NULL means m = 0
 * for that statistic. mean_t / var_t (N, C) are the instance statistics from
 * ic_bn_instance_stats(); each is needed only when its strength array is
 * given (may be NULL otherwise). relu != 0 applies max(y, 0) in the same pass
 * (NaN stays NaN, like torch.relu). Nothing is allocated.
 * Returns 0, IC_ESHAPE (x->c != bn->c or y's shape differs), IC_EINVAL
 * (missing statistics or weights). */
int ic_bn_forward_calibrated(ic_tensor *y, const ic_tensor *x, const ic_bn *bn, const float *m_mu,
                             const float *m_var, int per_image, const float *mean_t,
                             const float *var_t, int relu);

/* ic_bn_instance_stats() and ic_bn_forward_calibrated() (per_image
 * strengths) in one pass per plane: each plane's statistics are computed
 * and written to mean_t, var_t (N, C), then the plane is normalised while
 * it is still in cache. For strengths that do not depend on the statistics
 * (every mode but InstCal-C). Same results, bit for bit. y may be x.
 * Returns 0, IC_EINVAL or IC_ESHAPE. */
int ic_bn_forward_instance(ic_tensor *y, const ic_tensor *x, const ic_bn *bn, const float *m_mu,
                           const float *m_var, float *mean_t, float *var_t, int relu);

/* Reference for tests: the textbook formula gamma (x - mu) / sqrt(var + eps)
 * + beta per element, with the same arguments and return codes. */
int ic_bn_forward_calibrated_ref(ic_tensor *y, const ic_tensor *x, const ic_bn *bn,
                                 const float *m_mu, const float *m_var, int per_image,
                                 const float *mean_t, const float *var_t, int relu);

/* Eval-mode BN (m = 0) with optional fused ReLU; y may alias x.
 * Returns 0, IC_ESHAPE, IC_EINVAL. */
int ic_bn_forward_inference(ic_tensor *y, const ic_tensor *x, const ic_bn *bn, int relu);

/* Folds eval-mode BN into the preceding convolution with weights
 * w (cout, weights_per_out) and optional bias b (cout) (NULL = no bias):
 *   w_out[o, k] = w[o, k] * scale[o],  b_out[o] = beta[o] + (b[o] - mean[o]) * scale[o]
 * with scale = gamma / sqrt(var + eps). Outputs are caller-owned, w_out may
 * alias w and b_out may alias b. Valid only for m = 0 (calibrated BN depends on
 * the image). Returns 0, IC_ESHAPE (cout != bn->c), IC_EINVAL. */
int ic_bn_fold(float *w_out, float *b_out, const float *w, const float *b, const ic_bn *bn, int cout,
               size_t weights_per_out);

/* ---- training ---- */

/* Training-mode BN forward, exactly PyTorch BatchNorm2d in train mode:
 * per channel, mean and biased variance over (N, H, W) (sums in double),
 * invstd = 1 / sqrt(var + eps), y = (x - mean) * invstd * gamma + beta.
 * save_mean / save_invstd (C) receive what the backward needs (may be NULL).
 * running_mean / running_var (C), when not NULL, are updated in place:
 *   r = (1 - momentum) r + momentum * batch value,
 * with the UNBIASED batch variance (divided by N*H*W - 1) for running_var.
 * gamma/beta NULL mean ones/zeros. y may alias x, but the backward needs x.
 * Returns 0, IC_ESHAPE, IC_EINVAL (a single value per channel, which PyTorch
 * refuses too, or c != number of channels of x). */
int ic_bn_forward_train(ic_tensor *y, float *save_mean, float *save_invstd, float *running_mean,
                        float *running_var, const ic_tensor *x, const float *gamma,
                        const float *beta, float eps, float momentum);

/* Backward of ic_bn_forward_train through the batch statistics:
 *   xhat = (x - mean) * invstd, M = N*H*W,
 *   dx     += gamma * invstd * (dy - sum(dy) / M - xhat * sum(dy * xhat) / M)
 *   dgamma += sum(dy * xhat),  dbeta += sum(dy)      (sums per channel)
 * Any of dx, dgamma (C), dbeta (C) may be NULL. save_mean / save_invstd come
 * from the forward, x is its input, gamma NULL means ones. dx must not
 * overlap dy. Returns 0, IC_EINVAL (missing cache), IC_ESHAPE. */
int ic_bn_backward_train(ic_tensor *dx, float *dgamma, float *dbeta, const ic_tensor *dy,
                         const float *save_mean, const float *save_invstd, const ic_tensor *x,
                         const float *gamma);

/* Backward of ic_bn_forward_calibrated (same bn, strengths, per_image,
 * instance statistics and relu flag). The instance statistics are constants,
 * so with s = gamma / sqrt(var + eps) and A = sum_hw dy (x - mu) per (n, c):
 *   dx     += dy * s
 *   dgamma += A / sqrt(var + eps)           dbeta += sum_hw dy
 *   dm_mu  += -s * sum_hw dy * (mu_t - mu_s)
 *   dm_var += -gamma A / (2 (var + eps)^1.5) * (var_t - var_s)
 * where dy is first masked by y > 0 when relu != 0 (y is the forward's output,
 * read only then). dgamma and dbeta (C) sum over images. dm_mu / dm_var have
 * the strengths' layout: (C), summed over images, when per_image = 0
 * (InstCal-U, manual) and (N, C) when per_image = 1 (InstCal-C: the caller
 * chains them into the MLP, the clamp and the basis). A strength array may be
 * NULL (m = 0) and its gradient still be asked for; asking for dm_mu needs
 * mean_t and dm_var needs var_t. Every output may be NULL. dx must not
 * overlap dy. Returns 0, IC_EINVAL, IC_ESHAPE. */
int ic_bn_backward_calibrated(ic_tensor *dx, float *dgamma, float *dbeta, float *dm_mu,
                              float *dm_var, const ic_tensor *dy, const ic_tensor *y,
                              const ic_tensor *x, const ic_bn *bn, const float *m_mu,
                              const float *m_var, int per_image, const float *mean_t,
                              const float *var_t, int relu);

/* The calibrated backward with pure instance statistics (m = 1, TBN), the
 * setting in which TENT adapts gamma and beta with the statistics held
 * constant: dx, dgamma, dbeta as in ic_bn_backward_calibrated with m_mu =
 * m_var = 1 for every image. mean_t and var_t (N, C) are required. (TENT as
 * published runs BN in train mode and differentiates through the statistics;
 * for one image that is ic_bn_backward_train with N = 1.)
 * Returns 0, IC_EINVAL, IC_ESHAPE. */
int ic_bn_backward_instance(ic_tensor *dx, float *dgamma, float *dbeta, const ic_tensor *dy,
                            const ic_tensor *y, const ic_tensor *x, const ic_bn *bn,
                            const float *mean_t, const float *var_t, int relu);

#endif
