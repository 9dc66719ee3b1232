/* Depthwise convolution on blocked activations: every lane is its own
 * channel, so a tap is one vector multiply-add per pixel with the tap's 16
 * per-channel weights. Per output row: the valid kernel rows, then the
 * interior columns (every tap inside the input) in register blocks of 8
 * pixels, the edge columns pixel by pixel with bounds checks. A pending
 * affine is applied to each input value read (padding stays zero). Threads
 * split the (block, row) pairs. */
#include "base/parallel.h"
#include "engine/conv_internal.h"

#define DW_BLOCK 8

typedef struct dw_ctx {
    const ic_eng_job *j;
    int rows; /* output rows per block plane */
} dw_ctx;

static inline ic_v16 pend_apply(ic_v16 v, const ic_blk_pend *pend, ic_v16 a, ic_v16 b)
{
    if (!pend)
        return v;
    v = v * a + b;
    return pend->relu ? ic_v16_relu(v) : v;
}

static void dw_rows(const dw_ctx *c, int lo, int hi, int tid)
{
    const ic_eng_job *j = c->j;
    const ic_eng_conv *cv = j->cv;
    const ic_conv2d_params *p = &cv->p;
    const ic_tensor *x = j->x, *y = j->y;
    const ic_blk_pend *pend = j->pend;
    const int kk = p->kh * p->kw, sw = p->stride_w;
    for (int u = lo; u < hi; u++) {
        const int cb = u / c->rows, oy = u % c->rows;
        const float *xc = ic_blk_at(x, j->n, cb);
        float *yr = ic_blk_at(y, j->n, cb) + (size_t)oy * y->w * 16;
        const float *wc = cv->w + (size_t)cb * kk * 16;
        ic_v16 pa = ic_v16_set1(1.0f), pb = {0};
        if (pend) {
            const size_t at = ((size_t)j->n * (size_t)cv->coutb + (size_t)cb) * 16;
            pa = ic_v16_load(pend->scale + at);
            pb = ic_v16_load(pend->bias + at);
        }
        /* valid kernel rows */
        const float *rows[IC_ENG_MAX_TAPS];
        int krow[IC_ENG_MAX_TAPS], nk = 0;
        for (int ky = 0; ky < p->kh; ky++) {
            const int iy = oy * p->stride_h - p->pad_h + ky * p->dil_h;
            if (iy >= 0 && iy < x->h) {
                rows[nk] = xc + (size_t)iy * x->w * 16;
                krow[nk++] = ky;
            }
        }
        /* interior columns: ox*sw - pad >= 0 and ox*sw - pad + (kw-1)*dil < w */
        int ilo = (p->pad_w + sw - 1) / sw;
        int ihi = x->w - 1 - (p->kw - 1) * p->dil_w + p->pad_w;
        ihi = ihi < 0 ? 0 : ihi / sw + 1;
        if (ihi > y->w)
            ihi = y->w;
        if (ilo > ihi)
            ilo = ihi;
        for (int ox = 0; ox < y->w;) {
            if (ox >= ilo && ox + DW_BLOCK <= ihi) {
                ic_v16 acc[DW_BLOCK] = {{0}};
                for (int r = 0; r < nk; r++)
                    for (int kx = 0; kx < p->kw; kx++) {
                        const ic_v16 wv = ic_v16_load(wc + (size_t)(krow[r] * p->kw + kx) * 16);
                        const float *src =
                            rows[r] + ((size_t)(ox * sw - p->pad_w + kx * p->dil_w)) * 16;
                        for (int i = 0; i < DW_BLOCK; i++)
                            acc[i] += wv * pend_apply(ic_v16_load(src + (size_t)i * sw * 16),
                                                      pend, pa, pb);
                    }
                for (int i = 0; i < DW_BLOCK; i++)
                    ic_v16_store(yr + (size_t)(ox + i) * 16, acc[i]);
                ox += DW_BLOCK;
                continue;
            }
            ic_v16 acc = {0};
            for (int r = 0; r < nk; r++)
                for (int kx = 0; kx < p->kw; kx++) {
                    const int ix = ox * sw - p->pad_w + kx * p->dil_w;
                    if (ix < 0 || ix >= x->w)
                        continue;
                    acc += ic_v16_load(wc + (size_t)(krow[r] * p->kw + kx) * 16) *
                           pend_apply(ic_v16_load(rows[r] + (size_t)ix * 16), pend, pa, pb);
                }
            ic_v16_store(yr + (size_t)ox * 16, acc);
            ox++;
        }
        /* write-out of the row */
        const ic_kern_out ko = ic_eng_kern_out(j, cb / 2, tid);
        const int h = cb % 2;
        const ic_v16 s = ko.scale ? ic_v16_load(ko.scale + 16 * h) : ic_v16_set1(1.0f);
        const ic_v16 b = ic_v16_load(ko.bias + 16 * h);
        const float *rr = j->o->res ? ic_blk_at(j->o->res, j->n, cb) + (size_t)oy * y->w * 16
                                    : NULL;
        ic_v16 k = {0}, s1 = {0}, s2 = {0};
        if (ko.stats)
            k = ic_v16_load(ko.shift + 16 * h);
        for (int ox = 0; ox < y->w; ox++) {
            const ic_v16 v0 = ic_v16_load(yr + (size_t)ox * 16);
            if (ko.stats) {
                const ic_v16 d = v0 - k;
                s1 += d;
                s2 += d * d;
            }
            ic_v16 v = v0 * s + b;
            if (rr)
                v += ic_v16_load(rr + (size_t)ox * 16);
            if (ko.relu)
                v = ic_v16_relu(v);
            ic_v16_store(yr + (size_t)ox * 16, v);
        }
        if (ko.stats)
            for (int l = 0; l < 16; l++) {
                ko.stats[16 * h + l] += s1[l];
                ko.stats[32 + 16 * h + l] += s2[l];
            }
    }
}

/* One thread per range, so that range t's statistics go to thread slot t. */
static void dw_thread(void *ctx, int lo, int hi)
{
    const dw_ctx *c = ctx;
    const int total = c->j->cv->coutb * c->rows;
    for (int t = lo; t < hi; t++)
        dw_rows(c, (int)((long long)total * t / c->j->threads),
                (int)((long long)total * (t + 1) / c->j->threads), t);
}

void ic_eng_dw_run(const ic_eng_job *j)
{
    dw_ctx c = {j, j->y->h};
    ic_parallel_for(dw_thread, &c, j->threads, j->threads);
}
