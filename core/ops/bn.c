/* BatchNorm with InstCal calibration: forward, training mode and backward
 * (see bn.h).
 *
 * The forward is two cheap passes over each (n, c) plane: one to gather the
 * instance statistics (done by the caller, ic_bn_instance_stats) and one fused
 * x * scale + bias (+ ReLU) pass. Calibration must cost at most a few percent
 * of a forward, so neither pass allocates and both stream each plane once.
 * The training-mode and backward passes compute their per-channel sums in
 * double: they run once per step, and gradient checks need them exact. */
#include "ops/bn.h"

#include <math.h>

#include "base/err.h"
#include "base/parallel.h"

/* ---- instance statistics ---- */

/* Mean and unbiased variance of one plane of n floats, in two passes (sum,
 * then squared deviations from the mean, so no cancellation when |mean| >>
 * std). Each pass adds float lanes over blocks of STATS_BLOCK values (the
 * compiler vectorises them without reassociating: the build has no
 * fast-math) and the block sums in double, so the error is that of
 * STATS_BLOCK / STATS_LANES float additions, not of n. The old one-pass
 * all-double loop was 8% of the shipped model's instcal-u forward. */
#define STATS_LANES 16
#define STATS_BLOCK 512

static double blocked_sum(const float *p, size_t n, float center, int square)
{
    double total = 0;
    size_t i = 0;
    for (; i + STATS_BLOCK <= n; i += STATS_BLOCK) {
        float acc[STATS_LANES] = {0};
        for (size_t b = 0; b < STATS_BLOCK; b += STATS_LANES)
            for (int j = 0; j < STATS_LANES; j++) {
                const float d = p[i + b + (size_t)j] - center;
                acc[j] += square ? d * d : d;
            }
        double block = 0;
        for (int j = 0; j < STATS_LANES; j++)
            block += acc[j];
        total += block;
    }
    for (; i < n; i++) {
        const double d = (double)p[i] - center;
        total += square ? d * d : d;
    }
    return total;
}

static void plane_stats(double *mean, double *var, const float *p, size_t n)
{
    /* centre the first pass on p[0] too, so that a large offset costs no
     * float precision in the block sums */
    const float k = p[0];
    const double m = k + blocked_sum(p, n, k, 0) / (double)n;
    *mean = m;
    if (n < 2) {
        *var = 0;
        return;
    }
    /* the second pass is centred on the float mean; the deviation of that
     * from the exact mean, dm, enters as q - n dm^2 */
    const float mf = (float)m;
    const double dm = (double)mf - m;
    double q = blocked_sum(p, n, mf, 1) - (double)n * dm * dm;
    *var = q > 0 ? q / (double)(n - 1) : 0;
}

typedef struct stats_job {
    float *mean_t, *var_t;
    const ic_tensor *x;
} stats_job;

/* Planes [lo, hi), numbered n * C + c. */
static void stats_range(void *ctx, int lo, int hi)
{
    const stats_job *j = ctx;
    const size_t hw = ic_tensor_plane(j->x);
    for (int u = lo; u < hi; u++) {
        double m, v;
        plane_stats(&m, &v, ic_tensor_at(j->x, u / j->x->c, u % j->x->c), hw);
        if (j->mean_t)
            j->mean_t[u] = (float)m;
        if (j->var_t)
            j->var_t[u] = (float)v;
    }
}

void ic_bn_instance_stats(float *mean_t, float *var_t, const ic_tensor *x)
{
    stats_job j = {mean_t, var_t, x};
    ic_parallel_for(stats_range, &j, x->n * x->c, ic_parallel_threads_for(ic_tensor_numel(x)));
}

void ic_bn_instance_stats_ref(float *mean_t, float *var_t, const ic_tensor *x)
{
    size_t hw = ic_tensor_plane(x);
    for (int n = 0; n < x->n; n++) {
        for (int c = 0; c < x->c; c++) {
            const float *p = ic_tensor_at(x, n, c);
            double s = 0, q = 0;
            for (size_t i = 0; i < hw; i++)
                s += p[i];
            double m = s / (double)hw;
            for (size_t i = 0; i < hw; i++)
                q += ((double)p[i] - m) * ((double)p[i] - m);
            size_t i = (size_t)n * (size_t)x->c + (size_t)c;
            if (mean_t)
                mean_t[i] = (float)m;
            if (var_t)
                var_t[i] = hw < 2 ? 0.0f : (float)(q / (double)(hw - 1));
        }
    }
}

/* ---- calibrated affine ---- */

static int check_bn(const ic_bn *bn)
{
    if (!bn || bn->c <= 0 || !bn->mean || !bn->var)
        return ic_error_set(IC_EINVAL, "bn: missing running statistics");
    return 0;
}

static int check_strengths(const ic_bn *bn, const float *m_mu, const float *m_var,
                           const float *mean_t, const float *var_t)
{
    if ((m_mu && !mean_t) || (m_var && (!var_t || (bn->mixture && !mean_t))))
        return ic_error_set(IC_EINVAL, "bn: calibration strengths given without instance statistics");
    return 0;
}

/* scale and bias of image n, channel c. Mixing is done in float in the same
 * order as the PyTorch module so that m = 0 reproduces eval BN exactly. */
static void affine_at(float *scale, float *bias, const ic_bn *bn, int n, int c, const float *m_mu,
                      const float *m_var, int per_image, const float *mean_t, const float *var_t)
{
    size_t nc = (size_t)n * (size_t)bn->c + (size_t)c;
    size_t mi = per_image ? nc : (size_t)c;
    float mu = bn->mean[c], var = bn->var[c];
    if (m_mu)
        mu = (1.0f - m_mu[mi]) * mu + m_mu[mi] * mean_t[nc];
    if (m_var) {
        var = (1.0f - m_var[mi]) * var + m_var[mi] * var_t[nc];
        if (bn->mixture) {
            float d = mean_t[nc] - bn->mean[c];
            var += m_var[mi] * (1.0f - m_var[mi]) * d * d;
        }
    }
    float g = bn->gamma ? bn->gamma[c] : 1.0f;
    float b = bn->beta ? bn->beta[c] : 0.0f;
    float s = g / sqrtf(var + bn->eps);
    *scale = s;
    *bias = b - mu * s;
}

int ic_bn_calibrated_affine(float *scale, float *bias, int n, const ic_bn *bn, const float *m_mu,
                            const float *m_var, int per_image, const float *mean_t,
                            const float *var_t)
{
    int rc = check_bn(bn);
    if (rc == 0)
        rc = check_strengths(bn, m_mu, m_var, mean_t, var_t);
    if (rc)
        return rc;
    for (int i = 0; i < n; i++)
        for (int c = 0; c < bn->c; c++) {
            size_t k = (size_t)i * (size_t)bn->c + (size_t)c;
            affine_at(&scale[k], &bias[k], bn, i, c, m_mu, m_var, per_image, mean_t, var_t);
        }
    return 0;
}

/* ---- forward ---- */

static int check_shapes(const ic_tensor *y, const ic_tensor *x, const ic_bn *bn)
{
    if (x->c != bn->c)
        return ic_error_set(IC_ESHAPE, "bn: input has %d channels, layer has %d", x->c, bn->c);
    if (!ic_tensor_same_shape(y, x))
        return ic_error_set(IC_ESHAPE, "bn: output shape differs from input");
    return 0;
}

/* y = x * s + b (+ ReLU) over one plane; y may equal x. `v < 0 ? 0 : v`
 * keeps NaN, as torch.relu does. */
static void apply_plane(float *y, const float *x, size_t n, float s, float b, int relu)
{
    if (relu) {
        for (size_t i = 0; i < n; i++) {
            float v = x[i] * s + b;
            y[i] = v < 0.0f ? 0.0f : v;
        }
    } else {
        for (size_t i = 0; i < n; i++)
            y[i] = x[i] * s + b;
    }
}

typedef struct apply_job {
    ic_tensor *y;
    const ic_tensor *x;
    const ic_bn *bn;
    const float *m_mu, *m_var, *mean_t, *var_t;
    int per_image, relu;
} apply_job;

/* Planes [lo, hi), numbered n * C + c. */
static void apply_range(void *ctx, int lo, int hi)
{
    const apply_job *j = ctx;
    const size_t hw = ic_tensor_plane(j->x);
    for (int u = lo; u < hi; u++) {
        const int n = u / j->x->c, c = u % j->x->c;
        float s, b;
        affine_at(&s, &b, j->bn, n, c, j->m_mu, j->m_var, j->per_image, j->mean_t, j->var_t);
        apply_plane(ic_tensor_at(j->y, n, c), ic_tensor_at(j->x, n, c), hw, s, b, j->relu);
    }
}

int ic_bn_forward_calibrated(ic_tensor *y, const ic_tensor *x, const ic_bn *bn, const float *m_mu,
                             const float *m_var, int per_image, const float *mean_t,
                             const float *var_t, int relu)
{
    int rc = check_bn(bn);
    if (rc == 0)
        rc = check_shapes(y, x, bn);
    if (rc == 0)
        rc = check_strengths(bn, m_mu, m_var, mean_t, var_t);
    if (rc)
        return rc;
    apply_job j = {y, x, bn, m_mu, m_var, mean_t, var_t, per_image, relu};
    ic_parallel_for(apply_range, &j, x->n * x->c, ic_parallel_threads_for(ic_tensor_numel(x)));
    return 0;
}

typedef struct fused_job {
    apply_job a;
    float *mean_t, *var_t;
} fused_job;

/* Planes [lo, hi): statistics, then scale and shift from cache. */
static void fused_range(void *ctx, int lo, int hi)
{
    const fused_job *j = ctx;
    const size_t hw = ic_tensor_plane(j->a.x);
    for (int u = lo; u < hi; u++) {
        const int n = u / j->a.x->c, c = u % j->a.x->c;
        const float *xp = ic_tensor_at(j->a.x, n, c);
        double m, v;
        plane_stats(&m, &v, xp, hw);
        j->mean_t[u] = (float)m;
        j->var_t[u] = (float)v;
        float s, b;
        affine_at(&s, &b, j->a.bn, n, c, j->a.m_mu, j->a.m_var, 1, j->mean_t, j->var_t);
        apply_plane(ic_tensor_at(j->a.y, n, c), xp, hw, s, b, j->a.relu);
    }
}

int ic_bn_forward_instance(ic_tensor *y, const ic_tensor *x, const ic_bn *bn, const float *m_mu,
                           const float *m_var, float *mean_t, float *var_t, int relu)
{
    if (!mean_t || !var_t)
        return ic_error_set(IC_EINVAL, "bn: instance forward needs buffers for the statistics");
    int rc = check_bn(bn);
    if (rc == 0)
        rc = check_shapes(y, x, bn);
    if (rc)
        return rc;
    fused_job j = {{y, x, bn, m_mu, m_var, mean_t, var_t, 1, relu}, mean_t, var_t};
    ic_parallel_for(fused_range, &j, x->n * x->c, ic_parallel_threads_for(ic_tensor_numel(x)));
    return 0;
}

int ic_bn_forward_calibrated_ref(ic_tensor *y, const ic_tensor *x, const ic_bn *bn,
                                 const float *m_mu, const float *m_var, int per_image,
                                 const float *mean_t, const float *var_t, int relu)
{
    int rc = check_bn(bn);
    if (rc == 0)
        rc = check_shapes(y, x, bn);
    if (rc == 0)
        rc = check_strengths(bn, m_mu, m_var, mean_t, var_t);
    if (rc)
        return rc;
    size_t hw = ic_tensor_plane(x);
    for (int n = 0; n < x->n; n++)
        for (int c = 0; c < x->c; c++) {
            size_t nc = (size_t)n * (size_t)x->c + (size_t)c;
            size_t mi = per_image ? nc : (size_t)c;
            double a = m_mu ? m_mu[mi] : 0.0, av = m_var ? m_var[mi] : 0.0;
            double mu = (1 - a) * bn->mean[c] + (m_mu ? a * mean_t[nc] : 0.0);
            double var = (1 - av) * bn->var[c] + (m_var ? av * var_t[nc] : 0.0);
            if (m_var && bn->mixture) {
                double d = (double)mean_t[nc] - bn->mean[c];
                var += av * (1 - av) * d * d;
            }
            double g = bn->gamma ? bn->gamma[c] : 1.0, be = bn->beta ? bn->beta[c] : 0.0;
            const float *xp = ic_tensor_at(x, n, c);
            float *yp = ic_tensor_at(y, n, c);
            for (size_t i = 0; i < hw; i++) {
                double v = g * ((double)xp[i] - mu) / sqrt(var + (double)bn->eps) + be;
                if (relu && v < 0)
                    v = 0;
                yp[i] = (float)v;
            }
        }
    return 0;
}

int ic_bn_forward_inference(ic_tensor *y, const ic_tensor *x, const ic_bn *bn, int relu)
{
    return ic_bn_forward_calibrated(y, x, bn, NULL, NULL, 0, NULL, NULL, relu);
}

/* ---- folding ---- */

int ic_bn_fold(float *w_out, float *b_out, const float *w, const float *b, const ic_bn *bn, int cout,
               size_t weights_per_out)
{
    int rc = check_bn(bn);
    if (rc)
        return rc;
    if (cout != bn->c)
        return ic_error_set(IC_ESHAPE, "bn fold: conv has %d outputs, BN has %d channels", cout, bn->c);
    if (!w_out || !b_out || !w)
        return ic_error_set(IC_EINVAL, "bn fold: missing weights");
    for (int o = 0; o < cout; o++) {
        float s, bias;
        affine_at(&s, &bias, bn, 0, o, NULL, NULL, 0, NULL, NULL);
        const float *wo = w + (size_t)o * weights_per_out;
        float *dst = w_out + (size_t)o * weights_per_out;
        for (size_t k = 0; k < weights_per_out; k++)
            dst[k] = wo[k] * s;
        /* beta - mean*s + b*s, i.e. the BN bias plus the scaled conv bias */
        b_out[o] = b ? bias + b[o] * s : bias;
    }
    return 0;
}

/* ---- training mode ---- */

int ic_bn_forward_train(ic_tensor *y, float *save_mean, float *save_invstd, float *running_mean,
                        float *running_var, const ic_tensor *x, const float *gamma,
                        const float *beta, float eps, float momentum)
{
    if (!ic_tensor_same_shape(y, x))
        return ic_error_set(IC_ESHAPE, "bn train: output shape differs from input");
    size_t hw = ic_tensor_plane(x), m = (size_t)x->n * hw;
    if (m < 2)
        return ic_error_set(IC_EINVAL, "bn train: expected more than 1 value per channel, got %zu", m);
    for (int c = 0; c < x->c; c++) {
        /* two passes in double: the batch is small next to a whole dataset
         * and exact statistics keep the check against PyTorch tight */
        double s = 0;
        for (int n = 0; n < x->n; n++) {
            const float *p = ic_tensor_at(x, n, c);
            for (size_t i = 0; i < hw; i++)
                s += p[i];
        }
        double mean = s / (double)m, q = 0;
        for (int n = 0; n < x->n; n++) {
            const float *p = ic_tensor_at(x, n, c);
            for (size_t i = 0; i < hw; i++)
                q += ((double)p[i] - mean) * ((double)p[i] - mean);
        }
        double invstd = 1.0 / sqrt(q / (double)m + (double)eps);
        if (save_mean)
            save_mean[c] = (float)mean;
        if (save_invstd)
            save_invstd[c] = (float)invstd;
        if (running_mean)
            running_mean[c] = (float)((1.0 - momentum) * running_mean[c] + momentum * mean);
        if (running_var)
            running_var[c] =
                (float)((1.0 - momentum) * running_var[c] + momentum * q / (double)(m - 1));
        float g = gamma ? gamma[c] : 1.0f, b = beta ? beta[c] : 0.0f;
        float fm = (float)mean, fi = (float)invstd;
        for (int n = 0; n < x->n; n++) {
            const float *p = ic_tensor_at(x, n, c);
            float *q_out = ic_tensor_at(y, n, c);
            for (size_t i = 0; i < hw; i++)
                q_out[i] = (p[i] - fm) * fi * g + b;
        }
    }
    return 0;
}

int ic_bn_backward_train(ic_tensor *dx, float *dgamma, float *dbeta, const ic_tensor *dy,
                         const float *save_mean, const float *save_invstd, const ic_tensor *x,
                         const float *gamma)
{
    if (!save_mean || !save_invstd)
        return ic_error_set(IC_EINVAL, "bn train backward: missing saved mean/invstd");
    if (!ic_tensor_same_shape(dy, x) || (dx && !ic_tensor_same_shape(dx, x)))
        return ic_error_set(IC_ESHAPE, "bn train backward: dx, dy and x must have one shape");
    size_t hw = ic_tensor_plane(x);
    double m = (double)x->n * (double)hw;
    for (int c = 0; c < x->c; c++) {
        double mean = save_mean[c], inv = save_invstd[c];
        double sdy = 0, sdyx = 0;
        for (int n = 0; n < x->n; n++) {
            const float *p = ic_tensor_at(x, n, c), *g = ic_tensor_at(dy, n, c);
            for (size_t i = 0; i < hw; i++) {
                sdy += g[i];
                sdyx += g[i] * (((double)p[i] - mean) * inv);
            }
        }
        if (dgamma)
            dgamma[c] += (float)sdyx;
        if (dbeta)
            dbeta[c] += (float)sdy;
        if (!dx)
            continue;
        double k = (gamma ? gamma[c] : 1.0) * inv, a = sdy / m, b = sdyx / m;
        for (int n = 0; n < x->n; n++) {
            const float *p = ic_tensor_at(x, n, c), *g = ic_tensor_at(dy, n, c);
            float *d = ic_tensor_at(dx, n, c);
            for (size_t i = 0; i < hw; i++) {
                double xh = ((double)p[i] - mean) * inv;
                d[i] += (float)(k * ((double)g[i] - a - xh * b));
            }
        }
    }
    return 0;
}

/* ---- calibrated backward ---- */

/* Calibrated backward with `m_default` standing in for a NULL strength array
 * (0 for the calibrated forward's contract, 1 for instance statistics). */
static int backward_cal(ic_tensor *dx, float *dgamma, float *dbeta, float *dm_mu, float *dm_var,
                        const ic_tensor *dy, const ic_tensor *y, const ic_tensor *x,
                        const ic_bn *bn, const float *m_mu, const float *m_var, int per_image,
                        const float *mean_t, const float *var_t, int relu, float m_default)
{
    int rc = check_bn(bn);
    if (rc == 0)
        rc = check_shapes(dy, x, bn);
    if (rc)
        return rc;
    if (dx && !ic_tensor_same_shape(dx, x))
        return ic_error_set(IC_ESHAPE, "bn backward: dx shape differs from x");
    if (relu && (!y || !ic_tensor_same_shape(y, x)))
        return ic_error_set(IC_EINVAL, "bn backward: fused ReLU needs the forward output");
    int mix_needs_mean = bn->mixture && (m_var || m_default != 0 || dm_var);
    if (((m_mu || m_default != 0 || dm_mu || mix_needs_mean) && !mean_t) ||
        ((m_var || m_default != 0 || dm_var) && !var_t))
        return ic_error_set(IC_EINVAL, "bn backward: calibration needs instance statistics");
    size_t hw = ic_tensor_plane(x);
    for (int n = 0; n < x->n; n++)
        for (int c = 0; c < x->c; c++) {
            size_t nc = (size_t)n * (size_t)bn->c + (size_t)c, mi = per_image ? nc : (size_t)c;
            double am = m_mu ? m_mu[mi] : m_default, av = m_var ? m_var[mi] : m_default;
            double mu_t = mean_t ? mean_t[nc] : 0.0, v_t = var_t ? var_t[nc] : 0.0;
            double mu = (1 - am) * bn->mean[c] + am * mu_t;
            double var = (1 - av) * bn->var[c] + av * v_t;
            double dvar_dm = v_t - bn->var[c]; /* d var / d m_var */
            if (bn->mixture) {
                double d2 = (mu_t - bn->mean[c]) * (mu_t - bn->mean[c]);
                var += av * (1 - av) * d2;
                dvar_dm += (1 - 2 * av) * d2;
            }
            double g = bn->gamma ? bn->gamma[c] : 1.0;
            double r = 1.0 / sqrt(var + (double)bn->eps), s = g * r;
            const float *xp = ic_tensor_at(x, n, c), *gp = ic_tensor_at(dy, n, c);
            const float *yp = relu ? ic_tensor_at(y, n, c) : NULL;
            float *dp = dx ? ic_tensor_at(dx, n, c) : NULL;
            float fs = (float)s;
            double sdy = 0, sa = 0;
            for (size_t i = 0; i < hw; i++) {
                float gi = yp && yp[i] <= 0.0f ? 0.0f : gp[i];
                sdy += gi;
                sa += gi * ((double)xp[i] - mu);
                if (dp)
                    dp[i] += gi * fs;
            }
            if (dgamma)
                dgamma[c] += (float)(sa * r);
            if (dbeta)
                dbeta[c] += (float)sdy;
            if (dm_mu)
                dm_mu[mi] += (float)(-s * sdy * (mu_t - bn->mean[c]));
            if (dm_var)
                dm_var[mi] += (float)(-0.5 * g * r * r * r * sa * dvar_dm);
        }
    return 0;
}

int ic_bn_backward_calibrated(ic_tensor *dx, float *dgamma, float *dbeta, float *dm_mu,
                              float *dm_var, const ic_tensor *dy, const ic_tensor *y,
                              const ic_tensor *x, const ic_bn *bn, const float *m_mu,
                              const float *m_var, int per_image, const float *mean_t,
                              const float *var_t, int relu)
{
    return backward_cal(dx, dgamma, dbeta, dm_mu, dm_var, dy, y, x, bn, m_mu, m_var, per_image,
                        mean_t, var_t, relu, 0.0f);
}

int ic_bn_backward_instance(ic_tensor *dx, float *dgamma, float *dbeta, const ic_tensor *dy,
                            const ic_tensor *y, const ic_tensor *x, const ic_bn *bn,
                            const float *mean_t, const float *var_t, int relu)
{
    return backward_cal(dx, dgamma, dbeta, NULL, NULL, dy, y, x, bn, NULL, NULL, 0, mean_t, var_t,
                        relu, 1.0f);
}
