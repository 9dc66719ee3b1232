/* Depthwise convolution on blocked activations: every lane is its own
 * channel, so a tap is one vector multiply-add per pixel with the tap's 16
 * per-channel weights. Per output row: the valid kernel rows, then the
 * interior columns (every tap inside the input) in register blocks of 8
 * pixels (stride 1 without dilation: each input pixel loaded once per
 * kernel row, dw_slide), the edge columns pixel by pixel with bounds
 * checks; every output is written out from its register. A pending affine
 * is applied once per input value, into a thread's ring of input rows in
 * the scratch (the rows a kernel window spans, kept while the thread's
 * next output rows of the block read them): applied as the taps read, a
 * 5x5 kernel would apply it 7.5 times per output, and a pass over the
 * whole input first would write it back and read it again (padding stays
 * zero either way). Threads split the (block, row) pairs. */
#include "base/parallel.h"
#include "engine/conv_internal.h"

#define DW_BLOCK 8

typedef struct dw_ctx {
    const ic_eng_job *j;
    int rows; /* output rows per block plane */
    int ring; /* input rows in a thread's ring: those one output row's window spans */
} dw_ctx;

static int ring_rows(const ic_conv2d_params *p, int h)
{
    const int span = (p->kh - 1) * p->dil_h + 1;
    return span < h ? span : h;
}

/* Per thread: the ring's rows, then after all of them each slot's tag (the
 * block and row it holds, an int in a float's place). */
size_t ic_eng_dw_ws_floats(const ic_eng_conv *cv, int h, int w, int threads)
{
    return (size_t)threads * (size_t)ring_rows(&cv->p, h) * ((size_t)w * 16 + 1);
}

/* Row iy of block cb with the pending affine applied, from the ring (slot
 * iy mod the ring's rows, which a window never holds twice). */
static const float *ring_row(float *ring, int *tag, int nring, const ic_tensor *x,
                             const float *xc, int cb, int iy, const ic_blk_pend *pend, ic_v16 a,
                             ic_v16 b)
{
    const int slot = iy % nring, key = cb * x->h + iy;
    float *dst = ring + (size_t)slot * x->w * 16;
    if (tag[slot] != key) {
        const float *src = xc + (size_t)iy * x->w * 16;
        if (pend->relu)
            for (int i = 0; i < x->w; i++)
                ic_v16_store(dst + (size_t)i * 16, ic_v16_relu(ic_v16_load(src + (size_t)i * 16) * a + b));
        else
            for (int i = 0; i < x->w; i++)
                ic_v16_store(dst + (size_t)i * 16, ic_v16_load(src + (size_t)i * 16) * a + b);
        tag[slot] = key;
    }
    return dst;
}

static inline ic_v16 pend_apply(ic_v16 v, const ic_blk_pend *pend, ic_v16 a, ic_v16 b)
{
    if (!pend)
        return v;
    v = v * a + b;
    return pend->relu ? ic_v16_relu(v) : v;
}

/* The write-out of one row, pixel by pixel while the sum is in a register:
 * statistics of the raw sum, scale/shift, residual, ReLU. */
typedef struct dw_out {
    float *yr;
    const float *rr; /* the residual's row, or NULL */
    ic_v16 s, b, k, s1, s2;
    int relu, stats;
} dw_out;

static inline __attribute__((always_inline)) void dw_put(dw_out *o, int ox, ic_v16 v)
{
    if (o->stats) {
        const ic_v16 d = v - o->k;
        o->s1 += d;
        o->s2 += d * d;
    }
    v = v * o->s + o->b;
    if (o->rr)
        v += ic_v16_load(o->rr + (size_t)ox * 16);
    if (o->relu)
        v = ic_v16_relu(v);
    ic_v16_store(o->yr + (size_t)ox * 16, v);
}

/* DW_BLOCK interior outputs of a stride-1, undilated row with KW taps per
 * kernel row: each kernel row's DW_BLOCK + KW - 1 input pixels are loaded
 * (and their pending affine applied) once and slide under the taps. */
static inline __attribute__((always_inline)) void
dw_slide(ic_v16 acc[DW_BLOCK], const float *const *rows, const int *krow, int nk, const float *wc,
         const int KW, int x0, const ic_blk_pend *pend, ic_v16 pa, ic_v16 pb)
{
    for (int r = 0; r < nk; r++) {
        const float *src = rows[r] + (size_t)x0 * 16;
        const float *wr = wc + (size_t)krow[r] * KW * 16;
        ic_v16 in[DW_BLOCK + 6];
        for (int q = 0; q < DW_BLOCK + KW - 1; q++)
            in[q] = pend_apply(ic_v16_load(src + (size_t)q * 16), pend, pa, pb);
        for (int kx = 0; kx < KW; kx++) {
            const ic_v16 wv = ic_v16_load(wr + (size_t)kx * 16);
            for (int i = 0; i < DW_BLOCK; i++)
                acc[i] += wv * in[i + kx];
        }
    }
}

static void dw_rows(const dw_ctx *c, int lo, int hi, int tid)
{
    const ic_eng_job *j = c->j;
    const ic_eng_conv *cv = j->cv;
    const ic_conv2d_params *p = &cv->p;
    const ic_tensor *x = j->x, *y = j->y;
    /* the ring applies the pending affine: the taps read plain rows */
    const ic_blk_pend *const pend = NULL, *xpend = j->pend;
    const size_t ring_f = (size_t)c->ring * x->w * 16;
    float *ring = xpend ? j->ws + (size_t)tid * ring_f : NULL;
    int *tag = xpend ? (int *)(void *)(j->ws + (size_t)j->threads * ring_f) + tid * c->ring : NULL;
    for (int r = 0; tag && r < c->ring; r++)
        tag[r] = -1;
    const int kk = p->kh * p->kw, sw = p->stride_w;
    const int slide = sw == 1 && p->dil_w == 1 ? p->kw : 0; /* dw_slide for 3 and 5 */
    for (int u = lo; u < hi; u++) {
        const int cb = u / c->rows, oy = u % c->rows;
        const float *xc = ic_blk_at(x, j->n, cb);
        const float *wc = cv->w + (size_t)cb * kk * 16;
        ic_v16 pa = ic_v16_set1(1.0f), pb = {0};
        if (xpend) {
            const size_t at = ((size_t)j->n * (size_t)cv->coutb + (size_t)cb) * 16;
            pa = ic_v16_load(xpend->scale + at);
            pb = ic_v16_load(xpend->bias + at);
        }
        const ic_kern_out ko = ic_eng_kern_out(j, cb / 2, tid);
        const int h = cb % 2;
        dw_out o = {
            .yr = ic_blk_at(y, j->n, cb) + (size_t)oy * y->w * 16,
            .rr = j->o->res ? ic_blk_at(j->o->res, j->n, cb) + (size_t)oy * y->w * 16 : NULL,
            .s = ko.scale ? ic_v16_load(ko.scale + 16 * h) : ic_v16_set1(1.0f),
            .b = ic_v16_load(ko.bias + 16 * h),
            .k = ko.stats ? ic_v16_load(ko.shift + 16 * h) : (ic_v16){0},
            .relu = ko.relu,
            .stats = ko.stats != NULL,
        };
        /* valid kernel rows */
        const float *rows[IC_ENG_MAX_TAPS];
        int krow[IC_ENG_MAX_TAPS], nk = 0;
        for (int ky = 0; ky < p->kh; ky++) {
            const int iy = oy * p->stride_h - p->pad_h + ky * p->dil_h;
            if (iy >= 0 && iy < x->h) {
                rows[nk] = ring ? ring_row(ring, tag, c->ring, x, xc, cb, iy, xpend, pa, pb)
                                : xc + (size_t)iy * x->w * 16;
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
                if (slide == 5)
                    dw_slide(acc, rows, krow, nk, wc, 5, ox - p->pad_w, pend, pa, pb);
                else if (slide == 3)
                    dw_slide(acc, rows, krow, nk, wc, 3, ox - p->pad_w, pend, pa, pb);
                else
                    for (int r = 0; r < nk; r++)
                        for (int kx = 0; kx < p->kw; kx++) {
                            const ic_v16 wv =
                                ic_v16_load(wc + (size_t)(krow[r] * p->kw + kx) * 16);
                            const float *src =
                                rows[r] + ((size_t)(ox * sw - p->pad_w + kx * p->dil_w)) * 16;
                            for (int i = 0; i < DW_BLOCK; i++)
                                acc[i] += wv * pend_apply(ic_v16_load(src + (size_t)i * sw * 16),
                                                          pend, pa, pb);
                        }
                for (int i = 0; i < DW_BLOCK; i++)
                    dw_put(&o, ox + i, acc[i]);
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
            dw_put(&o, ox, acc);
            ox++;
        }
        if (ko.stats)
            for (int l = 0; l < 16; l++) {
                ko.stats[16 * h + l] += o.s1[l];
                ko.stats[32 + 16 * h + l] += o.s2[l];
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
    dw_ctx c = {j, j->y->h, ring_rows(&j->cv->p, j->x->h)};
    ic_parallel_for(dw_thread, &c, j->threads, j->threads);
}
