/* InstCal-G strengths and their backward (see gate.h). */
#include "calib/gate.h"

#include <math.h>

static float clampf(float v, float lo, float hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

double ic_calib_g_drift(int c, const float *mean_t, const float *var_t, const float *mean_s,
                        const float *var_s)
{
    if (c <= 0)
        return 0.0;
    double sum = 0;
    for (int k = 0; k < c; k++) {
        double a = (double)var_s[k] + IC_CALIB_G_EPS, b = (double)var_t[k] + IC_CALIB_G_EPS;
        if (!(a > 0))
            a = IC_CALIB_G_EPS;
        if (!(b > 0))
            b = IC_CALIB_G_EPS;
        double d = (double)mean_t[k] - mean_s[k];
        double bc = sqrt(2.0 * sqrt(a * b) / (a + b)) * exp(-d * d / (4.0 * (a + b)));
        sum += 1.0 - bc;
    }
    return sum / c;
}

double ic_calib_g_log_drift(int c, const float *mean_t, const float *var_t, const float *mean_s,
                            const float *var_s)
{
    double d = ic_calib_g_drift(c, mean_t, var_t, mean_s, var_s);
    return log(d > 1e-12 ? d : 1e-12);
}

static double gate_of(const ic_calib_g_layer *g, double z)
{
    double a = (double)g->gate[0] * (z - (double)g->gate[1]);
    return 1.0 / (1.0 + exp(-a));
}

void ic_calib_g_strengths(float *m_mu, float *m_var, float *gate_out, const ic_calib_g_layer *g,
                          float clamp_eps, int n, int c, const float *mean_t, const float *var_t,
                          const float *mean_s, const float *var_s)
{
    float lo = clamp_eps, hi = 1.0f - clamp_eps;
    for (int b = 0; b < n; b++) {
        size_t o = (size_t)b * (size_t)c;
        double z = ic_calib_g_log_drift(c, mean_t + o, var_t + o, mean_s, var_s);
        float gt = (float)gate_of(g, z);
        if (gate_out)
            gate_out[b] = gt;
        for (int k = 0; k < c; k++) {
            m_mu[o + k] = gt * clampf(g->u[0][k], lo, hi);
            m_var[o + k] = gt * clampf(g->u[1][k], lo, hi);
        }
    }
}

void ic_calib_g_backward(const ic_calib_g_grads *gr, const float *dm_mu, const float *dm_var,
                         const ic_calib_g_layer *g, float clamp_eps, int c, const float *mean_t,
                         const float *var_t, const float *mean_s, const float *var_s)
{
    float lo = clamp_eps, hi = 1.0f - clamp_eps;
    double z = ic_calib_g_log_drift(c, mean_t, var_t, mean_s, var_s);
    double gt = gate_of(g, z);
    float gf = (float)gt;
    /* m = g u: du = g dm (the clamp is a projection outside the graph, as
     * InstCal-U's), dg = sum u dm */
    double dg = 0;
    for (int k = 0; k < c; k++) {
        gr->u[0][k] += gf * dm_mu[k];
        gr->u[1][k] += gf * dm_var[k];
        dg += (double)clampf(g->u[0][k], lo, hi) * dm_mu[k] +
              (double)clampf(g->u[1][k], lo, hi) * dm_var[k];
    }
    /* g = sigmoid(k (z - t)) */
    double da = dg * gt * (1.0 - gt);
    gr->gate[0] += (float)(da * (z - (double)g->gate[1]));
    gr->gate[1] += (float)(-da * (double)g->gate[0]);
}
