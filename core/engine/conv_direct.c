/* The gemm path: the register tile of engine/kern.h over the input itself
 * (1x1: stride 1 as one flat run of pixels, stride 2 by rows) or over a
 * zero-padded copy of it (k x k), in which tap (ky, kx) of output pixel
 * (oy, ox) sits at padded (oy*sh + ky*dh, ox*sw + kx*dw): a constant offset
 * per tap, so the K loop needs no bounds checks. The copy also applies a
 * pending affine (only to real pixels; the padding stays zero).
 *
 * Blocking: K is cut into chunks of input blocks (all taps at once) and the
 * output pairs into groups so that one chunk of a group's weights stays in
 * L2 while the thread sweeps its tiles; the partial sums of a chunk go to y
 * and come back for the next, and the last chunk writes out. Threads split
 * the tiles.
 *
 * A convolution with fewer than 16 input channels (the stem: 3) would waste
 * most of K on zero lanes, so its taps go into K: the copy is then im2col
 * columns (cin * kh * kw channels per output pixel, blocked) and the
 * product a flat 1x1. */
#include <string.h>

#include "base/parallel.h"
#include "engine/conv_internal.h"

/* K floats per chunk (all taps of kcb input blocks) and weight bytes per
 * group of output pairs: tuned in docs/bench-ops.md's engine table. */
#define DIRECT_KC 1024
#define DIRECT_GROUP_BYTES ((size_t)512 << 10)

typedef struct geom {
    const float *a0;  /* tile (0, 0) of input block 0 */
    size_t a_cb;      /* floats between input blocks */
    size_t a_row;     /* floats between output rows (rows mode) */
    int a_px;         /* floats between output pixels */
    long off[IC_ENG_MAX_TAPS];
    int ntap, flat, tiles, tpr, ow, npix;
} geom;

static int copy_needed(const ic_eng_conv *cv, const ic_blk_pend *pend)
{
    const ic_conv2d_params *p = &cv->p;
    if (cv->im2col)
        return 1;
    if (p->kh == 1 && p->kw == 1 && p->pad_h == 0 && p->pad_w == 0) {
        if (p->stride_h == 1 && p->stride_w == 1)
            return 0;
        return pend || p->stride_w > 2;
    }
    return 1;
}

/* Padded copy dims and its slack. */
static void padded_dims(const ic_conv2d_params *p, int h, int w, int *hp, int *wp)
{
    *hp = h + 2 * p->pad_h;
    *wp = w + 2 * p->pad_w;
}

static size_t copy_slack(const ic_conv2d_params *p)
{
    return (size_t)IC_KERN_MR * 16 * (size_t)p->stride_w + 64;
}

size_t ic_eng_direct_ws_floats(const ic_eng_conv *cv, int h, int w)
{
    int hp, wp;
    if (cv->im2col) {
        int oh = 0, ow = 0;
        ic_conv2d_out_size(&cv->p, h, w, &oh, &ow);
        return (size_t)cv->kb * ic_blk_pstride_hw(oh, ow) + IC_BLK_SLACK;
    }
    if (!copy_needed(cv, NULL) && cv->p.stride_h == 1 && cv->p.stride_w == 1)
        return 0; /* 1x1 stride 1 reads x itself, applying a pending affine in place */
    padded_dims(&cv->p, h, w, &hp, &wp);
    /* sized for the copy: a pending affine may ask for one */
    return (size_t)cv->cinb * (size_t)hp * (size_t)wp * 16 + copy_slack(&cv->p);
}

int ic_eng_direct_chunks(const ic_eng_conv *cv, int *kcb)
{
    /* chunks of equal size, each at most DIRECT_KC floats of K */
    int k = DIRECT_KC / (16 * cv->ktaps);
    k = k < 1 ? 1 : k;
    const int chunks = (cv->kb + k - 1) / k;
    *kcb = (cv->kb + chunks - 1) / chunks;
    return chunks;
}

typedef struct copy_job {
    const ic_tensor *x;
    const ic_blk_pend *pend;
    const ic_conv2d_params *p;
    float *xp;
    int n, hp, wp;
} copy_job;

/* Padded rows [lo, hi) of every block, numbered cb * hp + row. */
static void copy_range(void *ctx, int lo, int hi)
{
    const copy_job *j = ctx;
    const ic_tensor *x = j->x;
    const int ph = j->p->pad_h, pw = j->p->pad_w;
    for (int u = lo; u < hi; u++) {
        const int cb = u / j->hp, r = u % j->hp, iy = r - ph;
        float *dst = j->xp + (size_t)u * j->wp * 16;
        if (iy < 0 || iy >= x->h) {
            memset(dst, 0, (size_t)j->wp * 16 * sizeof *dst);
            continue;
        }
        memset(dst, 0, (size_t)pw * 16 * sizeof *dst);
        float *d = dst + (size_t)pw * 16;
        memcpy(d, ic_blk_at(x, j->n, cb) + (size_t)iy * x->w * 16, (size_t)x->w * 16 * sizeof *d);
        if (j->pend)
            ic_blk_apply_pixels(d, (size_t)x->w, j->pend, x, j->n, cb);
        memset(d + (size_t)x->w * 16, 0, (size_t)(j->wp - pw - x->w) * 16 * sizeof *d);
    }
}

typedef struct col_job {
    const ic_eng_conv *cv;
    const ic_tensor *x;
    const ic_blk_pend *pend;
    float *col;
    int n, oh, ow, nchw;
} col_job;

/* im2col rows [lo, hi): channel t * cin + ci of output pixel (oy, ox) is
 * pend(x[ci] at tap t), zero in the padding and in the unused lanes. x is
 * blocked (cin < 16: one block) or NCHW: reading the image itself spares
 * the first layer a blocked copy of it, 16 floats per pixel for 3 used. */
static void col_range(void *ctx, int lo, int hi)
{
    const col_job *j = ctx;
    const ic_conv2d_params *p = &j->cv->p;
    const ic_tensor *x = j->x;
    const int kk = p->kh * p->kw, cin = p->cin, nk = cin * kk, ow = j->ow;
    const size_t ps = ic_blk_pstride_hw(j->oh, ow);
    const float *xc = j->nchw ? ic_tensor_at(x, j->n, 0) : ic_blk_at(x, j->n, 0);
    const size_t px_f = j->nchw ? 1 : 16; /* floats between pixels */
    const size_t ch_f = j->nchw ? (size_t)x->h * (size_t)x->w : 1; /* and channels */
    const ic_blk_pend *pend = j->pend;
    /* column by column over an output row (one channel of one tap): no
     * per-pixel staging, the bounds checks one compare per value */
    for (int oy = lo; oy < hi; oy++) {
        float *row = j->col + (size_t)oy * ow * 16;
        for (int k = nk; k < j->cv->kb * 16; k++) /* the unused lanes */
            for (int ox = 0; ox < ow; ox++)
                row[(size_t)(k / 16) * ps + (size_t)ox * 16 + (size_t)(k % 16)] = 0.0f;
        for (int k = 0; k < nk; k++) {
            const int t = k / cin, ci = k % cin;
            const int iy = oy * p->stride_h - p->pad_h + t / p->kw * p->dil_h;
            const int ix0 = -p->pad_w + t % p->kw * p->dil_w, sw = p->stride_w;
            float *dst = row + (size_t)(k / 16) * ps + (size_t)(k % 16);
            if (iy < 0 || iy >= x->h) {
                for (int ox = 0; ox < ow; ox++)
                    dst[(size_t)ox * 16] = 0.0f;
                continue;
            }
            const float *src = xc + (size_t)iy * x->w * px_f + (size_t)ci * ch_f;
            const float a = pend ? pend->scale[(size_t)j->n * 16 + ci] : 1.0f;
            const float b = pend ? pend->bias[(size_t)j->n * 16 + ci] : 0.0f;
            for (int ox = 0; ox < ow; ox++) {
                const int ix = ox * sw + ix0;
                float v = 0.0f; /* padding stays zero */
                if (ix >= 0 && ix < x->w) {
                    v = src[(size_t)ix * px_f];
                    if (pend) {
                        v = v * a + b;
                        v = pend->relu && !(v > 0.0f) ? 0.0f : v;
                    }
                }
                dst[(size_t)ox * 16] = v;
            }
        }
    }
}

typedef struct direct_job {
    const ic_eng_job *j;
    const geom *g;
    int apply; /* 1x1 stride 1 with a pending affine or x_res: apply in place per tile */
} direct_job;

static void tile_at(const geom *g, int t, size_t *a, size_t *yo, int *mr)
{
    if (g->flat) {
        const int p0 = t * IC_KERN_MR;
        *mr = g->npix - p0 < IC_KERN_MR ? g->npix - p0 : IC_KERN_MR;
        *a = (size_t)p0 * 16;
        *yo = (size_t)p0 * 16;
    } else {
        const int oy = t / g->tpr, ox = t % g->tpr * IC_KERN_MR;
        *mr = g->ow - ox < IC_KERN_MR ? g->ow - ox : IC_KERN_MR;
        *a = (size_t)oy * g->a_row + (size_t)ox * (size_t)g->a_px;
        *yo = ((size_t)oy * g->ow + (size_t)ox) * 16;
    }
}

/* One K chunk of one group over tiles [t0, t1); a_px as a constant so the
 * broadcasts are fixed displacements. */
static inline __attribute__((always_inline)) void
sweep(const direct_job *dj, int tid, int t0, int t1, int pg0, int pg1, int c0, int ncb,
      const int a_px)
{
    const ic_eng_job *j = dj->j;
    const ic_eng_conv *cv = j->cv;
    const geom *g = dj->g;
    const ic_tensor *y = j->y;
    const size_t b_tap = (size_t)cv->kb * 16 * IC_KERN_NR;
    const size_t pair_w = (size_t)g->ntap * b_tap;
    const int first = c0 == 0, last = c0 + ncb == cv->kb;
    for (int t = t0; t < t1; t++) {
        size_t ao, yo;
        int mr;
        tile_at(g, t, &ao, &yo, &mr);
        if (dj->apply && pg0 == 0)
            for (int cb = c0; cb < c0 + ncb; cb++) {
                float *xp = ic_blk_at(j->x, j->n, cb) + ao;
                if (j->o->x_res)
                    ic_blk_apply_add_pixels(xp, ic_blk_at(j->o->x_res, j->n, cb) + ao, (size_t)mr,
                                            j->pend, j->o->x_res_pend, j->x, j->n, cb, 1);
                else
                    ic_blk_apply_pixels(xp, (size_t)mr, j->pend, j->x, j->n, cb);
            }
        const float *a = g->a0 + ao + (size_t)c0 * g->a_cb;
        for (int pr = pg0; pr < pg1; pr++) {
            float *yb[2] = {ic_blk_at(y, j->n, 2 * pr) + yo,
                            2 * pr + 1 < cv->coutb ? ic_blk_at(y, j->n, 2 * pr + 1) + yo : NULL};
            ic_kern_tile acc;
            if (first)
                ic_kern_zero(&acc);
            else
                ic_kern_load(&acc, mr, yb);
            const float *w = cv->w + (size_t)pr * pair_w + (size_t)c0 * 16 * IC_KERN_NR;
            if (pr == pg0) /* the group's first pair reads the tile from memory */
                ic_kern_loop(&acc, a, g->off, g->ntap, g->a_cb, a_px, ncb, w, b_tap, 1);
            else
                ic_kern_loop(&acc, a, g->off, g->ntap, g->a_cb, a_px, ncb, w, b_tap, 0);
            if (!last) {
                ic_kern_store_raw(&acc, mr, yb);
                continue;
            }
            const ic_kern_out ko = ic_eng_kern_out(j, pr, tid);
            const float *rb[2] = {NULL, NULL};
            if (j->o->res) {
                rb[0] = ic_blk_at(j->o->res, j->n, 2 * pr) + yo;
                rb[1] = yb[1] ? ic_blk_at(j->o->res, j->n, 2 * pr + 1) + yo : NULL;
            }
            ic_kern_store(&acc, mr, yb, rb, &ko);
        }
    }
}

static void direct_thread(void *ctx, int lo, int hi)
{
    const direct_job *dj = ctx;
    const ic_eng_job *j = dj->j;
    const ic_eng_conv *cv = j->cv;
    const geom *g = dj->g;
    for (int tid = lo; tid < hi; tid++) {
        const int t0 = (int)((long long)g->tiles * tid / j->threads);
        const int t1 = (int)((long long)g->tiles * (tid + 1) / j->threads);
        int kcb;
        ic_eng_direct_chunks(cv, &kcb);
        const size_t chunk_bytes = (size_t)g->ntap * (size_t)kcb * 16 * IC_KERN_NR * sizeof(float);
        int gp = (int)(DIRECT_GROUP_BYTES / chunk_bytes);
        gp = gp < 1 ? 1 : gp > cv->pairs ? cv->pairs : gp;
        for (int pg0 = 0; pg0 < cv->pairs; pg0 += gp) {
            const int pg1 = pg0 + gp < cv->pairs ? pg0 + gp : cv->pairs;
            for (int c0 = 0; c0 < cv->kb; c0 += kcb) {
                const int ncb = cv->kb - c0 < kcb ? cv->kb - c0 : kcb;
                if (g->a_px == 16)
                    sweep(dj, tid, t0, t1, pg0, pg1, c0, ncb, 16);
                else if (g->a_px == 32)
                    sweep(dj, tid, t0, t1, pg0, pg1, c0, ncb, 32);
                else
                    sweep(dj, tid, t0, t1, pg0, pg1, c0, ncb, g->a_px);
            }
        }
    }
}

void ic_eng_direct_run(const ic_eng_job *j)
{
    const ic_conv2d_params *p = &j->cv->p;
    const ic_tensor *x = j->x, *y = j->y;
    geom g;
    memset(&g, 0, sizeof g);
    g.ntap = j->cv->ktaps;
    g.ow = y->w;
    g.npix = y->h * y->w;
    direct_job dj = {j, &g, 0};
    if (j->cv->im2col) {
        col_job cj = {j->cv, x, j->pend, j->ws, j->n, y->h, y->w, j->x_nchw};
        ic_parallel_for(col_range, &cj, y->h,
                        ic_parallel_threads((size_t)g.npix * (size_t)j->cv->kb * 16,
                                            IC_PARALLEL_MIN_FLOATS, j->threads));
        g.a0 = j->ws;
        g.a_cb = ic_blk_pstride_hw(y->h, y->w);
        g.flat = 1;
        g.a_px = 16;
    } else if (!copy_needed(j->cv, j->pend)) {
        g.a0 = ic_blk_at(x, j->n, 0);
        g.a_cb = ic_blk_pstride(x);
        if (p->stride_h == 1 && p->stride_w == 1) {
            g.flat = 1;
            g.a_px = 16;
            dj.apply = j->pend || j->o->x_res;
        } else {
            g.a_px = 16 * p->stride_w;
            g.a_row = (size_t)p->stride_h * (size_t)x->w * 16;
        }
    } else {
        int hp, wp;
        padded_dims(p, x->h, x->w, &hp, &wp);
        copy_job cj = {x, j->pend, p, j->ws, j->n, hp, wp};
        const int rows = j->cv->cinb * hp;
        ic_parallel_for(copy_range, &cj, rows,
                        ic_parallel_threads((size_t)rows * (size_t)wp * 16, IC_PARALLEL_MIN_FLOATS,
                                            j->threads));
        g.a0 = j->ws;
        g.a_cb = (size_t)hp * (size_t)wp * 16;
        g.a_px = 16 * p->stride_w;
        g.a_row = (size_t)p->stride_h * (size_t)wp * 16;
        for (int t = 0; t < g.ntap; t++)
            g.off[t] = ((long)(t / p->kw) * p->dil_h * wp + (long)(t % p->kw) * p->dil_w) * 16;
    }
    if (g.flat) {
        g.tiles = (g.npix + IC_KERN_MR - 1) / IC_KERN_MR;
    } else {
        g.tpr = (g.ow + IC_KERN_MR - 1) / IC_KERN_MR;
        g.tiles = g.tpr * y->h;
    }
    int threads = j->threads < g.tiles ? j->threads : g.tiles;
    ic_eng_job jj = *j;
    jj.threads = threads < 1 ? 1 : threads;
    dj.j = &jj;
    ic_parallel_for(direct_thread, &dj, jj.threads, jj.threads);
}
