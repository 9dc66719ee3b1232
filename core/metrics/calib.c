/* Confidence statistics and ECE accumulators (see calib.h). */
#include "metrics/calib.h"

#include <math.h>
#include <string.h>

#include "base/err.h"

int ic_calib_bin(float conf)
{
    if (!(conf > 0.0f))
        return 0;
    /* guess from the product, then settle against the float bounds so that
     * a value equal to a bound lands in the lower bin, as `conf <= hi` */
    int b = (int)(conf * (float)IC_CALIB_BINS);
    if (b >= IC_CALIB_BINS)
        b = IC_CALIB_BINS - 1;
    while (b > 0 && conf <= (float)b / (float)IC_CALIB_BINS)
        b--;
    while (b < IC_CALIB_BINS - 1 && conf > (float)(b + 1) / (float)IC_CALIB_BINS)
        b++;
    return b;
}

void ic_conf_stats_init(ic_conf_stats *s)
{
    memset(s, 0, sizeof *s);
}

void ic_ece_init(ic_ece *e)
{
    memset(e, 0, sizeof *e);
}

void ic_conf_stats_add(ic_conf_stats *s, const float *conf, const float *entropy, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        s->sum_conf += conf[i];
        s->sum_entropy += entropy[i];
        s->hist[ic_calib_bin(conf[i])]++;
    }
    s->n += n;
}

void ic_ece_add(ic_ece *e, const float *conf, const int32_t *pred, const int32_t *gt, size_t n,
                int32_t ignore)
{
    for (size_t i = 0; i < n; i++) {
        if (gt[i] == ignore)
            continue;
        int b = ic_calib_bin(conf[i]);
        e->count[b]++;
        e->sum_conf[b] += conf[i];
        e->correct[b] += pred[i] == gt[i];
        e->n++;
    }
}

int ic_calib_add_probs(ic_conf_stats *s, ic_ece *e, const float *probs, int c, size_t n,
                       const int32_t *gt, int32_t ignore)
{
    if (!probs || c <= 0)
        return ic_error_set(IC_EINVAL, "calib: bad probabilities (C = %d)", c);
    for (size_t i = 0; i < n; i++) {
        float best = probs[i];
        int32_t arg = 0;
        double ent = 0.0;
        for (int k = 0; k < c; k++) {
            float p = probs[(size_t)k * n + i];
            if (p > best) {
                best = p;
                arg = k;
            }
            if (p > 0.0f) /* lim p->0 of p ln p is 0 */
                ent -= (double)p * log((double)p);
        }
        int b = ic_calib_bin(best);
        if (s) {
            s->n++;
            s->sum_conf += best;
            s->sum_entropy += ent;
            s->hist[b]++;
        }
        if (e && gt && gt[i] != ignore) {
            e->n++;
            e->count[b]++;
            e->sum_conf[b] += best;
            e->correct[b] += arg == gt[i];
        }
    }
    return 0;
}

double ic_conf_stats_mean_conf(const ic_conf_stats *s)
{
    return s->n ? s->sum_conf / (double)s->n : 0.0;
}

double ic_conf_stats_mean_entropy(const ic_conf_stats *s)
{
    return s->n ? s->sum_entropy / (double)s->n : 0.0;
}

void ic_conf_stats_merge(ic_conf_stats *dst, const ic_conf_stats *src)
{
    dst->n += src->n;
    dst->sum_conf += src->sum_conf;
    dst->sum_entropy += src->sum_entropy;
    for (int b = 0; b < IC_CALIB_BINS; b++)
        dst->hist[b] += src->hist[b];
}

void ic_ece_merge(ic_ece *dst, const ic_ece *src)
{
    dst->n += src->n;
    for (int b = 0; b < IC_CALIB_BINS; b++) {
        dst->count[b] += src->count[b];
        dst->sum_conf[b] += src->sum_conf[b];
        dst->correct[b] += src->correct[b];
    }
}

double ic_ece_value(const ic_ece *e)
{
    if (!e->n)
        return 0.0;
    double sum = 0.0;
    for (int b = 0; b < IC_CALIB_BINS; b++)
        sum += fabs((double)e->correct[b] - e->sum_conf[b]);
    return sum / (double)e->n;
}

double ic_ece_max(const ic_ece *e)
{
    double m = 0.0;
    for (int b = 0; b < IC_CALIB_BINS; b++) {
        if (!e->count[b])
            continue;
        double gap = fabs(((double)e->correct[b] - e->sum_conf[b]) / (double)e->count[b]);
        m = gap > m ? gap : m;
    }
    return m;
}

void ic_ece_bins(const ic_ece *e, ic_ece_bin out[IC_CALIB_BINS])
{
    for (int b = 0; b < IC_CALIB_BINS; b++) {
        out[b].lo = (double)b / IC_CALIB_BINS;
        out[b].hi = (double)(b + 1) / IC_CALIB_BINS;
        out[b].count = e->count[b];
        out[b].mean_conf = e->count[b] ? e->sum_conf[b] / (double)e->count[b] : 0.0;
        out[b].accuracy = e->count[b] ? (double)e->correct[b] / (double)e->count[b] : 0.0;
    }
}
