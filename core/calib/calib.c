/* Calibration strengths per mode (see calib.h). */
#include "calib/calib.h"

#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "base/err.h"
#include "base/parallel.h"

static const struct {
    const char *name;
    int needs_m, revision;
} modes[IC_CALIB_COUNT] = {
#define IC_CALIB_ROW(id, name, needs_m, rev) {name, needs_m, rev},
    IC_CALIB_MODES(IC_CALIB_ROW)
#undef IC_CALIB_ROW
};

/* ", none, manual, ..., tent": each name after a separator. */
#define IC_CALIB_LIST(id, name, needs_m, rev) ", " name
static const char mode_list[] = IC_CALIB_MODES(IC_CALIB_LIST);
#undef IC_CALIB_LIST

const char *ic_calib_mode_name(ic_calib_mode mode)
{
    return (unsigned)mode < IC_CALIB_COUNT ? modes[mode].name : "?";
}

int ic_calib_mode_needs_m(ic_calib_mode mode)
{
    return (unsigned)mode < IC_CALIB_COUNT && modes[mode].needs_m;
}

int ic_calib_mode_revision(ic_calib_mode mode)
{
    return (unsigned)mode < IC_CALIB_COUNT ? modes[mode].revision : 0;
}

void ic_calib_mode_key(ic_calib_mode mode, char *buf, size_t size)
{
    const int rev = ic_calib_mode_revision(mode);
    if (rev > 1)
        snprintf(buf, size, "%s-r%d", ic_calib_mode_name(mode), rev);
    else
        snprintf(buf, size, "%s", ic_calib_mode_name(mode));
}

const char *ic_calib_mode_list(void)
{
    return mode_list + 2;
}

int ic_calib_mode_parse(const char *name, ic_calib_mode *ret_mode)
{
    for (int i = 0; i < IC_CALIB_COUNT; i++)
        if (name && !strcmp(name, modes[i].name)) {
            *ret_mode = (ic_calib_mode)i;
            return 0;
        }
    return ic_error_set(IC_EINVAL, "unknown calibration mode '%s' (use one of %s)",
                        name ? name : "", ic_calib_mode_list());
}

int ic_calib_mode_parse_list(const char *list, ic_calib_mode modes[IC_CALIB_COUNT], int *ret_n)
{
    *ret_n = 0;
    if (!list || !*list)
        return ic_error_set(IC_EINVAL, "empty list of calibration modes (use some of %s)",
                            ic_calib_mode_list());
    int n = 0;
    for (const char *p = list;; p++) {
        size_t len = strcspn(p, ",");
        char name[32];
        if (len == 0 || len >= sizeof name)
            return ic_error_set(IC_EINVAL, "calibration modes '%s': %s item at offset %d", list,
                                len ? "too long an" : "an empty", (int)(p - list));
        memcpy(name, p, len);
        name[len] = 0;
        ic_calib_mode m;
        int rc = ic_calib_mode_parse(name, &m);
        if (rc)
            return rc;
        for (int i = 0; i < n; i++)
            if (modes[i] == m)
                return ic_error_set(IC_EINVAL, "calibration modes '%s': %s listed twice", list,
                                    name);
        modes[n++] = m; /* at most IC_CALIB_COUNT distinct modes */
        p += len;
        if (!*p)
            break;
    }
    *ret_n = n;
    return 0;
}

static float clampf(float v, float lo, float hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

/* One MLP's scratch: the packed fc1's double sums (H doubles, first, so
 * that they are aligned: the total is kept even), its input [t; s] (2C),
 * the hidden layer and basis weights. */
static size_t mlp_scratch_floats(const ic_calib_c_shape *cs, int c)
{
    const size_t n = 2 * (size_t)cs->hidden + 2 * (size_t)c + (size_t)cs->hidden +
                     (size_t)cs->num_basis;
    return n + (n & 1);
}

size_t ic_calib_scratch_floats(const ic_calib_c_shape *cs, int c)
{
    return 2 * mlp_scratch_floats(cs, c); /* the mean's and the variance's MLP at once */
}

/* a . b over n floats: float lanes over blocks of up to DOT_BLOCK products
 * (the compiler vectorises them without reassociating), block sums in
 * double. The all-double scalar loop this replaces made the MLPs most of
 * InstCal-C's cost on R-52 (2C x 256 products per statistic and BN layer);
 * a last block shorter than DOT_BLOCK (every row of a layer narrower than
 * it, on the shipped net most of them) takes the float lanes too. */
#define DOT_LANES 16
#define DOT_BLOCK 256

static double dot_blocked(const float *a, const float *b, int n)
{
    double total = 0;
    for (int i = 0; i < n; i += DOT_BLOCK) {
        const int len = n - i < DOT_BLOCK ? n - i : DOT_BLOCK;
        float acc[DOT_LANES] = {0};
        int k = 0;
        for (; k + DOT_LANES <= len; k += DOT_LANES)
            for (int l = 0; l < DOT_LANES; l++)
                acc[l] += a[i + k + l] * b[i + k + l];
        double block = 0;
        for (int l = 0; l < DOT_LANES; l++)
            block += acc[l];
        for (; k < len; k++)
            block += (double)a[i + k] * b[i + k];
        total += block;
    }
    return total;
}

/* The packed fc1's rows hold the hidden units in groups of FC1_GROUP
 * lanes (zero-padded): one group's sums stay in four 16-float vector
 * registers while a row after another streams past. */
#define FC1_GROUP 64
typedef float fc1_vec __attribute__((vector_size(64)));

size_t ic_calib_c_packed_hidden(const ic_calib_c_shape *cs)
{
    return ((size_t)cs->hidden + FC1_GROUP - 1) / FC1_GROUP * FC1_GROUP;
}

/* hid (H) = relu(bs + wt^T . t) for the packed fc1 (wt (C, Hp)): each
 * input channel's row added into a group's sums at once (no horizontal
 * sums), in float over blocks of DOT_BLOCK channels and in double across
 * them, as dot_blocked. The (H, C) rows' dot products this replaces, most
 * of them 16 to 64 floats long, cost InstCal-C on the shipped model about
 * 0.5 ms per forward more at one thread (docs/benchmarks.md). */
static void fc1_packed(float *hid, double *total, const float *wt, const float *bs, int c, int H,
                       size_t hp, const float *t)
{
    for (int j = 0; j < H; j++)
        total[j] = bs[j];
    for (int j0 = 0; j0 < H; j0 += FC1_GROUP) {
        for (int i0 = 0; i0 < c; i0 += DOT_BLOCK) {
            const int i1 = c - i0 < DOT_BLOCK ? c : i0 + DOT_BLOCK;
            fc1_vec acc[4] = {{0}};
            for (int i = i0; i < i1; i++) {
                const float *row = wt + (size_t)i * hp + (size_t)j0;
                const fc1_vec ti = (fc1_vec){0} + t[i];
                for (int v = 0; v < 4; v++) {
                    fc1_vec w;
                    memcpy(&w, row + 16 * v, sizeof w);
                    acc[v] += w * ti;
                }
            }
            float sums[FC1_GROUP];
            memcpy(sums, acc, sizeof sums);
            for (int l = 0; l < FC1_GROUP && j0 + l < H; l++)
                total[j0 + l] += sums[l];
        }
    }
    for (int j = 0; j < H; j++)
        hid[j] = total[j] > 0 ? (float)total[j] : 0.0f;
}

/* The MLP part of InstCal-C: hid (H) = relu(fc1([t; s])), a (K) = softmax(fc2(hid)). */
static void instcal_c_mlp(double *total, float *in, float *hid, float *a,
                          const ic_calib_c_layer *cc, int stat, const ic_calib_c_shape *cs, int c,
                          const float *stat_t, const float *stat_s)
{
    int K = cs->num_basis, H = cs->hidden;
    if (cc->fc1_wt[stat]) { /* the packed form: the source half is in fc1_bs */
        fc1_packed(hid, total, cc->fc1_wt[stat], cc->fc1_bs[stat], c, H, ic_calib_c_packed_hidden(cs),
                   stat_t);
    } else {
        memcpy(in, stat_t, (size_t)c * sizeof *in);
        memcpy(in + c, stat_s, (size_t)c * sizeof *in);
        const float *w1 = cc->fc1_w[stat], *b1 = cc->fc1_b[stat];
        for (int j = 0; j < H; j++) {
            const double acc = b1[j] + dot_blocked(w1 + (size_t)j * 2 * (size_t)c, in, 2 * c);
            hid[j] = acc > 0 ? (float)acc : 0.0f;
        }
    }
    const float *w2 = cc->fc2_w[stat], *b2 = cc->fc2_b[stat];
    float mx = -INFINITY;
    for (int k = 0; k < K; k++) {
        const double acc = b2[k] + dot_blocked(w2 + (size_t)k * H, hid, H);
        a[k] = (float)acc;
        if (a[k] > mx)
            mx = a[k];
    }
    double sum = 0;
    for (int k = 0; k < K; k++) {
        a[k] = expf(a[k] - mx);
        sum += a[k];
    }
    for (int k = 0; k < K; k++)
        a[k] = (float)(a[k] / sum);
}

void ic_calib_c_pack(float *wt, float *bs, const ic_calib_c_layer *cc, int stat,
                     const ic_calib_c_shape *cs, int c, const float *stat_s)
{
    const float *w1 = cc->fc1_w[stat], *b1 = cc->fc1_b[stat];
    const int H = cs->hidden;
    const size_t hp = ic_calib_c_packed_hidden(cs);
    memset(wt, 0, (size_t)c * hp * sizeof *wt);
    /* the transpose a packed row at a time (on R-52-DSConv about 0.1 s of
     * the model's load, once per worker) */
    for (int i = 0; i < c; i++)
        for (int j = 0; j < H; j++)
            wt[(size_t)i * hp + (size_t)j] = w1[(size_t)j * 2 * (size_t)c + (size_t)i];
    for (int j = 0; j < H; j++) {
        const float *row = w1 + (size_t)j * 2 * (size_t)c;
        double acc = b1[j];
        for (int i = 0; i < c; i++)
            acc += (double)row[c + i] * stat_s[i];
        bs[j] = (float)acc;
    }
}

/* One InstCal-C strength vector: m (C) = clamp(prior + softmax(fc2(relu(fc1([t; s])))) . basis). */
static void instcal_c_one(float *m, const ic_calib_c_layer *cc, int stat, const ic_calib_c_shape *cs,
                          int c, const float *stat_t, const float *stat_s, float *scratch)
{
    const int K = cs->num_basis, H = cs->hidden;
    double *total = (double *)(void *)scratch;
    float *in = scratch + 2 * H, *hid = in + 2 * c, *a = hid + H;
    instcal_c_mlp(total, in, hid, a, cc, stat, cs, c, stat_t, stat_s);
    /* channel lanes, the K terms summed in double */
    const float *basis = cc->basis[stat];
    enum { LANES = 64 };
    for (int c0 = 0; c0 < c; c0 += LANES) {
        const int nl = c - c0 < LANES ? c - c0 : LANES;
        double acc[LANES];
        for (int l = 0; l < nl; l++)
            acc[l] = cs->prior;
        for (int k = 0; k < K; k++) {
            const double ak = a[k];
            const float *row = basis + (size_t)k * c + c0;
            for (int l = 0; l < nl; l++)
                acc[l] += ak * row[l];
        }
        for (int l = 0; l < nl; l++)
            m[c0 + l] = clampf((float)acc[l], cs->clamp_eps, 1.0f - cs->clamp_eps);
    }
}

/* InstCal-C's two MLPs per layer, the mean's (range index 0) and the
 * variance's (1), each on its own scratch: they read different weights, and
 * on the shipped model streaming those weights (8.6 MB per forward) is most
 * of InstCal-C's cost, which one core alone cannot hide. */
typedef struct c_job {
    float *m[2];
    const float *t[2], *s[2];
    const ic_calib_c_layer *cc;
    const ic_calib_c_shape *cs;
    int n, c;
    float *scratch;
} c_job;

static void c_range(void *ctx, int lo, int hi)
{
    const c_job *j = ctx;
    const size_t one = mlp_scratch_floats(j->cs, j->c);
    for (int stat = lo; stat < hi; stat++)
        for (int b = 0; b < j->n; b++)
            instcal_c_one(j->m[stat] + (size_t)b * j->c, j->cc, stat, j->cs, j->c,
                          j->t[stat] + (size_t)b * j->c, j->s[stat], j->scratch + stat * one);
}

/* Fewest multiply-adds of one layer's two MLPs worth a second thread: a
 * helper's wake-up (base/parallel.h) costs about as much as 16k of them. */
#define C_MIN_PARALLEL_MACS ((size_t)1 << 14)

int ic_calib_uses_stats(const ic_calib_opts *opts)
{
    return opts->mode == IC_CALIB_INSTCAL_C || opts->mode == IC_CALIB_INSTCAL_G;
}

int ic_calib_uses_mixture(const ic_calib_opts *opts)
{
    return opts->mode == IC_CALIB_INSTCAL_G;
}

int ic_calib_strengths(float *m_mu, float *m_var, const ic_calib_opts *opts,
                       const ic_calib_layer *layer, const ic_calib_c_shape *cs, int n,
                       const float *mean_t, const float *var_t, const float *mean_s,
                       const float *var_s, float *scratch)
{
    int c = layer->c;
    size_t total = (size_t)n * (size_t)c;
    switch (opts->mode) {
    case IC_CALIB_NONE:
    case IC_CALIB_TENT: /* tent adapts gamma/beta with instance statistics (m = 1) */
    case IC_CALIB_TBN:
    case IC_CALIB_MANUAL: {
        float m = opts->mode == IC_CALIB_NONE ? 0.0f : opts->mode == IC_CALIB_MANUAL ? opts->m : 1.0f;
        if (!(m >= 0.0f && m <= 1.0f))
            return ic_error_set(IC_EINVAL, "calibration strength m=%g is outside [0, 1]", (double)m);
        for (size_t i = 0; i < total; i++)
            m_mu[i] = m_var[i] = m;
        return 0;
    }
    case IC_CALIB_INSTCAL_U: {
        if (!layer->u_mean || !layer->u_var)
            return ic_error_set(IC_EINVAL, "model has no InstCal-U parameters");
        float lo = cs->clamp_eps, hi = 1.0f - cs->clamp_eps;
        for (int b = 0; b < n; b++)
            for (int ch = 0; ch < c; ch++) {
                m_mu[(size_t)b * c + ch] = clampf(layer->u_mean[ch], lo, hi);
                m_var[(size_t)b * c + ch] = clampf(layer->u_var[ch], lo, hi);
            }
        return 0;
    }
    case IC_CALIB_INSTCAL_C: {
        if (!layer->cc.basis[0])
            return ic_error_set(IC_EINVAL, "model has no InstCal-C parameters");
        c_job j = {{m_mu, m_var}, {mean_t, var_t}, {mean_s, var_s}, &layer->cc, cs, n, c, scratch};
        const size_t macs = (size_t)4 * (size_t)n * (size_t)cs->hidden * (size_t)c;
        ic_parallel_for(c_range, &j, 2,
                        ic_parallel_threads(macs, C_MIN_PARALLEL_MACS, openblas_get_num_threads()));
        return 0;
    }
    case IC_CALIB_INSTCAL_G:
        if (!layer->g.u[0] || !layer->g.u[1] || !layer->g.gate)
            return ic_error_set(IC_EINVAL, "model has no InstCal-G parameters");
        ic_calib_g_strengths(m_mu, m_var, NULL, &layer->g, cs->clamp_eps, n, c, mean_t, var_t,
                             mean_s, var_s);
        return 0;
    case IC_CALIB_INSTCAL_E:
        return ic_error_set(IC_EINVAL, "calibration mode 'instcal-e' has no strengths of its own: "
                                       "it averages an instcal-g and a tbn forward");
    default:
        return ic_error_set(IC_EINVAL, "bad calibration mode %d", (int)opts->mode);
    }
}

size_t ic_calib_c_backward_scratch_floats(const ic_calib_c_shape *cs, int c)
{
    return (size_t)2 * (size_t)c + 2 * (size_t)cs->hidden + 3 * (size_t)cs->num_basis;
}

void ic_calib_c_backward(const ic_calib_c_grads *g, const float *dm, const ic_calib_c_layer *cc,
                         int stat, const ic_calib_c_shape *cs, int c, const float *stat_t,
                         const float *stat_s, float *scratch)
{
    int K = cs->num_basis, H = cs->hidden;
    float *in = scratch, *hid = in + 2 * c, *a = hid + H, *da = a + K, *dz = da + K, *dh = dz + K;
    ic_calib_c_layer plain = *cc; /* the plain fc1: its gradient is fc1_w's */
    plain.fc1_wt[stat] = NULL;
    instcal_c_mlp(NULL, in, hid, a, &plain, stat, cs, c, stat_t, stat_s);
    const float *basis = cc->basis[stat];
    float lo = cs->clamp_eps, hi = 1.0f - cs->clamp_eps;
    for (int k = 0; k < K; k++)
        da[k] = 0;
    /* m = clamp(prior + sum_k a_k B_kc): gradient only where not saturated. */
    for (int ch = 0; ch < c; ch++) {
        double pre = cs->prior;
        for (int k = 0; k < K; k++)
            pre += (double)a[k] * basis[(size_t)k * c + ch];
        if (pre < lo || pre > hi || dm[ch] == 0.0f)
            continue;
        for (int k = 0; k < K; k++) {
            g->basis[(size_t)k * c + ch] += a[k] * dm[ch];
            da[k] += basis[(size_t)k * c + ch] * dm[ch];
        }
    }
    /* softmax: dz_k = a_k (da_k - sum_j a_j da_j) */
    double dot = 0;
    for (int k = 0; k < K; k++)
        dot += (double)a[k] * da[k];
    for (int k = 0; k < K; k++)
        dz[k] = (float)(a[k] * (da[k] - dot));
    const float *w2 = cc->fc2_w[stat];
    for (int j = 0; j < H; j++)
        dh[j] = 0;
    for (int k = 0; k < K; k++) {
        g->fc2_b[k] += dz[k];
        for (int j = 0; j < H; j++) {
            g->fc2_w[(size_t)k * H + j] += dz[k] * hid[j];
            dh[j] += w2[(size_t)k * H + j] * dz[k];
        }
    }
    for (int j = 0; j < H; j++) {
        if (hid[j] <= 0.0f)
            continue; /* ReLU */
        g->fc1_b[j] += dh[j];
        float *row = g->fc1_w + (size_t)j * 2 * (size_t)c;
        for (int i = 0; i < 2 * c; i++)
            row[i] += dh[j] * in[i];
    }
}
