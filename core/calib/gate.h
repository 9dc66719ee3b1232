/* InstCal-G: shift-gated calibration strengths (issue 15), forward and
 * backward.
 *
 * The learned modes of InstCal move the statistics of every image, clean
 * ones included, and so cost points on the source domain. InstCal-G opens
 * the calibration only as far as the image looks shifted. Per BN layer of
 * width C and per image:
 *
 *   h_c = 1 - sqrt(2 sqrt(a b) / (a + b)) exp(-(mu_t - mu_s)^2 / (4 (a + b)))
 *         with a = var_s + eps, b = var_t + eps: the squared Hellinger
 *         distance between N(mu_s, var_s) and N(mu_t, var_t), in [0, 1]
 *   d   = mean_c h_c                           the layer's drift (bounded, so
 *                                              no channel can dominate it)
 *   z   = log(max(d, 1e-12))
 *   g   = sigmoid(k (z - t))                   gate; k, t learned per layer
 *   m_mu[c]  = g * clamp(u_mu[c],  eps, 1 - eps)
 *   m_var[c] = g * clamp(u_var[c], eps, 1 - eps)
 *
 * and the BN uses the mixture variance (ops/bn.h, bn.mixture): the variance
 * of the blend of the two Gaussians, including m (1 - m) (mu_t - mu_s)^2,
 * which InstCal drops. The statistics are stop-gradient constants, as in
 * InstCal, so gradients reach u_mu, u_var, k and t through the strengths
 * only. The u are projected into [eps, 1 - eps] after each step, as
 * InstCal-U's are.
 *
 * Tensors per BN layer (docs/model-config.md): `<layer>.norm.instcal_g.mean`
 * and `.var` (C) are u_mu and u_var, `.gate` (2) is {k, t}. */
#ifndef IC_CALIB_GATE_H
#define IC_CALIB_GATE_H

#include <stddef.h>

/* eps inside the drift (the BN eps of detectron2). */
#define IC_CALIB_G_EPS 1e-5f

/* InstCal-G tensors of one BN layer (u[0] == NULL when absent). */
typedef struct ic_calib_g_layer {
    const float *u[2];  /* [stat] (C) full strengths, stat 0 = mean, 1 = var */
    const float *gate;  /* (2) slope k, threshold t */
} ic_calib_g_layer;

/* The layer's drift d in [0, 1] for one image (C channels). */
double ic_calib_g_drift(int c, const float *mean_t, const float *var_t, const float *mean_s,
                        const float *var_s);

/* z = log(max(d, 1e-12)) for the drift of one image. */
double ic_calib_g_log_drift(int c, const float *mean_t, const float *var_t, const float *mean_s,
                            const float *var_s);

/* Strengths m_mu, m_var (n, C) of n images (statistics (n, C), source (C));
 * `gate_out` (n), when not NULL, receives each image's gate. */
void ic_calib_g_strengths(float *m_mu, float *m_var, float *gate_out, const ic_calib_g_layer *g,
                          float clamp_eps, int n, int c, const float *mean_t, const float *var_t,
                          const float *mean_s, const float *var_s);

/* Gradient buffers of one layer (same shapes as the tensors). */
typedef struct ic_calib_g_grads {
    float *u[2]; /* (C) */
    float *gate; /* (2) */
} ic_calib_g_grads;

/* Backward of ic_calib_g_strengths for one image: accumulates into g the
 * gradients of u_mu, u_var, k and t from dm_mu, dm_var (C), recomputing the
 * gate from the (constant) statistics. */
void ic_calib_g_backward(const ic_calib_g_grads *gr, const float *dm_mu, const float *dm_var,
                         const ic_calib_g_layer *g, float clamp_eps, int c, const float *mean_t,
                         const float *var_t, const float *mean_s, const float *var_s);

#endif
