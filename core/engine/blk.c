/* Layout conversions and the in-place pending affine (see blk.h). */
#include "engine/blk.h"

#include "base/parallel.h"
#include "engine/v16.h"

void ic_blk_from_nchw(ic_tensor *dst, const ic_tensor *src)
{
    const size_t hw = ic_tensor_plane(src);
    const int cbn = ic_blk_cb(src->c);
    for (int n = 0; n < src->n; n++)
        for (int cb = 0; cb < cbn; cb++) {
            float *d = ic_blk_at(dst, n, cb);
            const int c0 = cb * IC_BLK, nc = src->c - c0 < IC_BLK ? src->c - c0 : IC_BLK;
            for (size_t i = 0; i < hw; i++) {
                for (int k = 0; k < nc; k++)
                    d[i * IC_BLK + (size_t)k] = ic_tensor_at(src, n, c0 + k)[i];
                for (int k = nc; k < IC_BLK; k++)
                    d[i * IC_BLK + (size_t)k] = 0.0f;
            }
        }
}

typedef struct conv_job {
    ic_tensor *nchw;
    const ic_tensor *blk;
    const ic_blk_pend *pend;
} conv_job;

/* NCHW planes [lo, hi), numbered n * C + c. */
static void to_nchw_range(void *ctx, int lo, int hi)
{
    const conv_job *j = ctx;
    const ic_tensor *s = j->blk;
    const size_t hw = ic_tensor_plane(s);
    const int cbn = ic_blk_cb(s->c);
    for (int u = lo; u < hi; u++) {
        const int n = u / s->c, c = u % s->c;
        const float *src = ic_blk_at(s, n, c / IC_BLK) + c % IC_BLK;
        float *dst = ic_tensor_at(j->nchw, n, c);
        float a = 1.0f, b = 0.0f;
        int relu = 0;
        if (j->pend) {
            a = j->pend->scale[(size_t)n * cbn * IC_BLK + (size_t)c];
            b = j->pend->bias[(size_t)n * cbn * IC_BLK + (size_t)c];
            relu = j->pend->relu;
        }
        for (size_t i = 0; i < hw; i++) {
            float v = src[i * IC_BLK] * a + b;
            dst[i] = relu && !(v > 0.0f) ? 0.0f : v;
        }
    }
}

void ic_blk_to_nchw(ic_tensor *dst, const ic_tensor *src, const ic_blk_pend *pend)
{
    conv_job j = {dst, src, pend};
    ic_parallel_for(to_nchw_range, &j, src->n * src->c,
                    ic_parallel_threads_for(ic_tensor_numel(src)));
}

void ic_blk_apply_pixels(float *p, size_t npix, const ic_blk_pend *pend, const ic_tensor *t, int n,
                         int cb)
{
    const size_t at = ((size_t)n * (size_t)ic_blk_cb(t->c) + (size_t)cb) * IC_BLK;
    const ic_v16 a = ic_v16_load(pend->scale + at), b = ic_v16_load(pend->bias + at);
    if (pend->relu)
        for (size_t i = 0; i < npix; i++)
            ic_v16_store(p + i * IC_BLK, ic_v16_relu(ic_v16_load(p + i * IC_BLK) * a + b));
    else
        for (size_t i = 0; i < npix; i++)
            ic_v16_store(p + i * IC_BLK, ic_v16_load(p + i * IC_BLK) * a + b);
}

void ic_blk_apply_add_pixels(float *p, const float *r, size_t npix, const ic_blk_pend *pend,
                             const ic_blk_pend *rpend, const ic_tensor *t, int n, int cb,
                             int relu)
{
    const size_t at = ((size_t)n * (size_t)ic_blk_cb(t->c) + (size_t)cb) * IC_BLK;
    const ic_v16 one = ic_v16_set1(1.0f), zero = {0};
    const ic_v16 a = pend ? ic_v16_load(pend->scale + at) : one;
    const ic_v16 b = pend ? ic_v16_load(pend->bias + at) : zero;
    const ic_v16 ra = rpend ? ic_v16_load(rpend->scale + at) : one;
    const ic_v16 rb = rpend ? ic_v16_load(rpend->bias + at) : zero;
    const int prelu = pend && pend->relu, rrelu = rpend && rpend->relu;
    for (size_t i = 0; i < npix; i++) {
        ic_v16 u = ic_v16_load(p + i * IC_BLK) * a + b;
        ic_v16 v = ic_v16_load(r + i * IC_BLK) * ra + rb;
        u = prelu ? ic_v16_relu(u) : u;
        v = rrelu ? ic_v16_relu(v) : v;
        ic_v16_store(p + i * IC_BLK, relu ? ic_v16_relu(u + v) : u + v);
    }
}

typedef struct apply_job {
    ic_tensor *t;
    const ic_blk_pend *pend;
} apply_job;

/* Planes [lo, hi), numbered n * CB + cb. */
static void apply_range(void *ctx, int lo, int hi)
{
    const apply_job *j = ctx;
    const int cbn = ic_blk_cb(j->t->c);
    for (int u = lo; u < hi; u++)
        ic_blk_apply_pixels(ic_blk_at(j->t, u / cbn, u % cbn), (size_t)j->t->h * (size_t)j->t->w,
                            j->pend, j->t, u / cbn, u % cbn);
}

void ic_blk_apply(ic_tensor *t, const ic_blk_pend *pend)
{
    apply_job j = {t, pend};
    ic_parallel_for(apply_range, &j, t->n * ic_blk_cb(t->c),
                    ic_parallel_threads_for(ic_tensor_numel(t)));
}
