/* Output ensembles; see ensemble.h. The running sums live on the heap so
 * that each member's forward can be rewound out of the arena before the
 * next one runs; the averaged outputs are written into the arena last. The
 * members' probabilities are ops/softmax.h's softmax, taken in place. */
#include "adapt/ensemble.h"

#include <float.h>
#include <string.h>

#include "base/alloc.h"
#include "base/err.h"
#include "base/fastmath.h"
#include "base/parallel.h"
#include "ops/softmax.h"

const ic_ensemble_member ic_ensemble_instcal_e[2] = {{IC_CALIB_INSTCAL_G, 0},
                                                     {IC_CALIB_TBN, 1}};

/* The sums of the members' outputs so far. */
typedef struct sums {
    ic_tensor sem, center, offset; /* shapes of the first member; data on the heap */
    float *data;
    double *drift;
    double m_mu, m_var;
    size_t peak;
} sums;

/* dst = log(src / n + FLT_MIN) over [lo, hi) of `count` floats in blocks:
 * FLT_MIN keeps a probability that underflowed to 0 finite (-87.3) and is
 * below half an ulp of any probability over 1e-30, which it leaves as is. */
typedef struct log_job {
    const float *src;
    float *dst;
    size_t count;
    float inv_n;
} log_job;

#define LOG_BLOCK 4096

static void mean_log(void *ctx, int lo, int hi)
{
    const log_job *j = ctx;
    const float *src = j->src, inv = j->inv_n;
    float *dst = j->dst;
    const size_t end = (size_t)hi * LOG_BLOCK < j->count ? (size_t)hi * LOG_BLOCK : j->count;
    for (size_t i = (size_t)lo * LOG_BLOCK; i < end; i++)
        dst[i] = ic_fast_log(src[i] * inv + FLT_MIN);
}

/* Rows [lo, hi) of dst = (first ? 0 : dst) + src, with mirror each src row
 * read right to left and, with negate_odd too, the rows of odd channels
 * (the offsets' x) negated: a mirrored member's outputs are mirrored back
 * as they are summed, without a pass of their own. */
typedef struct acc_job {
    const float *src;
    float *dst;
    int c, h, w, first, mirror, negate_odd;
} acc_job;

static void acc_rows(void *ctx, int lo, int hi)
{
    const acc_job *j = ctx;
    const int w = j->w;
    for (int r = lo; r < hi; r++) {
        const float *s = j->src + (size_t)r * (size_t)w;
        float *d = j->dst + (size_t)r * (size_t)w;
        if (!j->mirror) {
            for (int x = 0; x < w; x++)
                d[x] = (j->first ? 0.0f : d[x]) + s[x];
            continue;
        }
        const float sign = j->negate_odd && (r / j->h) % j->c % 2 ? -1.0f : 1.0f;
        const float *e = s + w - 1;
        if (j->first)
            for (int x = 0; x < w; x++)
                d[x] = sign * e[-x];
        else
            for (int x = 0; x < w; x++)
                d[x] += sign * e[-x];
    }
}

static void acc(ic_tensor *dst, const ic_tensor *src, int first, int mirror, int negate_odd)
{
    acc_job j = {src->data, dst->data, src->c, src->h, src->w, first, mirror, negate_odd};
    const size_t rows = (size_t)src->n * (size_t)src->c * (size_t)src->h;
    ic_parallel_for(acc_rows, &j, (int)rows, ic_parallel_threads_for(ic_tensor_numel(src)));
}

/* One member's forward; a mirrored one runs on x mirrored into arena, which
 * the caller rewinds. */
static int member_forward(const ic_pdl *net, const ic_ensemble_member *m, const ic_tensor *x,
                          const ic_calib_opts *opts, int flags, ic_arena *arena,
                          ic_pdl_outputs *o)
{
    ic_calib_opts mo = *opts;
    mo.mode = m->mode;
    ic_tensor xm = *x;
    if (m->mirror) {
        if (ic_tensor_alloc(&xm, arena, x->n, x->c, x->h, x->w))
            return ic_error_set(IC_ENOMEM, "ensemble: mirrored input");
        acc(&xm, x, 1, 1, 0);
    }
    int rc = ic_pdl_forward(net, &xm, &mo, flags, arena, o);
    if (rc)
        return ic_error_prefix(rc, "ensemble member %s%s", ic_calib_mode_name(m->mode),
                               m->mirror ? " (mirrored)" : "");
    return 0;
}

static int sums_start(sums *s, const ic_pdl_outputs *o, int n_img)
{
    s->sem = o->sem;
    s->center = o->center;
    s->offset = o->offset;
    const size_t ns = ic_tensor_numel(&o->sem), nc = ic_tensor_numel(&o->center),
                 no = ic_tensor_numel(&o->offset);
    s->data = ic_malloc((ns + nc + no) * sizeof *s->data);
    s->drift = ic_calloc((size_t)n_img, sizeof *s->drift);
    if (!s->data || !s->drift)
        return ic_error_set(IC_ENOMEM, "ensemble: %zu MiB of output sums",
                            (ns + nc + no) * sizeof(float) >> 20);
    s->sem.data = s->data;
    s->center.data = s->data + ns;
    s->offset.data = s->data + ns + nc;
    return 0;
}

static int sums_add(sums *s, ic_pdl_outputs *o, int n_img, int first, int mirror)
{
    if (!ic_tensor_same_shape(&s->sem, &o->sem) || !ic_tensor_same_shape(&s->center, &o->center) ||
        !ic_tensor_same_shape(&s->offset, &o->offset))
        return ic_error_set(IC_EINVAL, "ensemble: a member's outputs differ in shape from the "
                                       "first member's");
    /* in place: the member's logits are rewound after this */
    int rc = ic_softmax_forward(&o->sem, &o->sem);
    if (rc)
        return ic_error_prefix(rc, "ensemble");
    acc(&s->sem, &o->sem, first, mirror, 0);
    acc(&s->center, &o->center, first, mirror, 0);
    acc(&s->offset, &o->offset, first, mirror, 1); /* channels dy, dx: dx changes sign */
    for (int i = 0; i < n_img; i++)
        s->drift[i] += o->drift ? o->drift[i] : 0.0;
    s->m_mu += o->m_mu_mean;
    s->m_var += o->m_var_mean;
    if (o->peak_bytes > s->peak)
        s->peak = o->peak_bytes;
    return 0;
}

/* The means of n members into out, in arena. */
static int sums_finish(const sums *s, int n, int n_img, ic_arena *arena, ic_pdl_outputs *out)
{
    const ic_tensor *t[3] = {&s->sem, &s->center, &s->offset};
    ic_tensor *o[3] = {&out->sem, &out->center, &out->offset};
    for (int k = 0; k < 3; k++)
        if (ic_tensor_alloc(o[k], arena, t[k]->n, t[k]->c, t[k]->h, t[k]->w))
            return ic_error_prefix(IC_ENOMEM, "ensemble: outputs");
    out->drift = ic_arena_alloc(arena, (size_t)n_img * sizeof *out->drift);
    if (!out->drift)
        return ic_error_set(IC_ENOMEM, "ensemble: drift scores");
    const float inv = 1.0f / (float)n;
    const size_t ns = ic_tensor_numel(&s->sem);
    log_job lj = {s->sem.data, out->sem.data, ns, inv};
    const int blocks = (int)((ns + LOG_BLOCK - 1) / LOG_BLOCK);
    ic_parallel_for(mean_log, &lj, blocks, ic_parallel_threads_for(ns));
    for (int k = 1; k < 3; k++)
        for (size_t i = 0; i < ic_tensor_numel(t[k]); i++)
            o[k]->data[i] = t[k]->data[i] * inv;
    for (int i = 0; i < n_img; i++)
        out->drift[i] = s->drift[i] / n;
    out->m_mu_mean = s->m_mu / n;
    out->m_var_mean = s->m_var / n;
    out->peak_bytes = s->peak + ns * sizeof(float);
    return 0;
}

int ic_ensemble_forward(const ic_pdl *net, const ic_ensemble_member *members, int n,
                        const ic_tensor *x, const ic_calib_opts *opts, int flags, ic_arena *arena,
                        ic_pdl_outputs *out)
{
    if (!net || !members || !x || !opts || !arena || !out)
        return ic_error_set(IC_EINVAL, "ensemble: NULL argument");
    if (n < 1 || n > IC_ENSEMBLE_MAX)
        return ic_error_set(IC_EINVAL, "ensemble: %d members (1..%d)", n, IC_ENSEMBLE_MAX);
    for (int i = 0; i < n; i++) {
        const ic_calib_mode m = members[i].mode;
        if (m == IC_CALIB_INSTCAL_E || m == IC_CALIB_TENT || !ic_pdl_supports(net, m))
            return ic_error_set(IC_EINVAL, "ensemble: member '%s' cannot run as one forward of "
                                           "model '%s'",
                                ic_calib_mode_name(m), ic_pdl_get_config(net)->name);
    }
    sums s;
    memset(&s, 0, sizeof s);
    const ic_arena_mark mark = ic_arena_get_mark(arena);
    int rc = 0;
    for (int i = 0; i < n && !rc; i++) {
        ic_pdl_outputs o;
        rc = member_forward(net, &members[i], x, opts, flags, arena, &o);
        if (!rc && i == 0)
            rc = sums_start(&s, &o, x->n);
        if (!rc)
            rc = sums_add(&s, &o, x->n, i == 0, members[i].mirror);
        ic_arena_rewind(arena, mark);
    }
    if (!rc)
        rc = sums_finish(&s, n, x->n, arena, out);
    ic_free(s.data);
    ic_free(s.drift);
    return rc;
}
