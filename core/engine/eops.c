/* The engine's non-convolution ops (see eops.h). Each splits its planes
 * (image, channel block) or rows over the threads and works a 16-channel
 * vector at a time. */
#include "engine/eops.h"

#include <math.h>
#include <string.h>

#include "base/alloc.h"
#include "base/err.h"
#include "base/parallel.h"
#include "engine/v16.h"
#include "ops/resize.h"

/* Per-plane pending affine: v * a + b, then ReLU. */
typedef struct paff {
    ic_v16 a, b;
    int on, relu;
} paff;

static paff paff_of(const ic_blk_pend *p, const ic_tensor *t, int n, int cb)
{
    paff f = {ic_v16_set1(1.0f), {0}, 0, 0};
    if (p) {
        const size_t at = ((size_t)n * (size_t)ic_blk_cb(t->c) + (size_t)cb) * IC_BLK;
        f.a = ic_v16_load(p->scale + at);
        f.b = ic_v16_load(p->bias + at);
        f.on = 1;
        f.relu = p->relu;
    }
    return f;
}

static inline ic_v16 paff_apply(const paff *f, ic_v16 v)
{
    if (!f->on)
        return v;
    v = v * f->a + f->b;
    return f->relu ? ic_v16_relu(v) : v;
}

static int threads_for(size_t floats, int threads)
{
    return ic_parallel_threads(floats, IC_PARALLEL_MIN_STREAM / 4, threads);
}

/* ---------------------------------------------------------------- add */

typedef struct add_job {
    ic_tensor *a;
    const ic_tensor *b;
    const ic_blk_pend *pa, *pb;
    int relu;
} add_job;

static void add_range(void *ctx, int lo, int hi)
{
    const add_job *j = ctx;
    const int cbn = ic_blk_cb(j->a->c);
    const size_t np = (size_t)j->a->h * (size_t)j->a->w;
    for (int u = lo; u < hi; u++) {
        const int n = u / cbn, cb = u % cbn;
        ic_blk_apply_add_pixels(ic_blk_at(j->a, n, cb), ic_blk_at(j->b, n, cb), np, j->pa, j->pb,
                                j->a, n, cb, j->relu);
    }
}

int ic_eng_add(ic_tensor *a, const ic_blk_pend *pa, const ic_tensor *b, const ic_blk_pend *pb,
               int relu, int threads)
{
    if (!ic_tensor_same_shape(a, b))
        return ic_error_set(IC_ESHAPE, "engine add: shapes differ");
    add_job j = {a, b, pa, pb, relu};
    const int planes = a->n * ic_blk_cb(a->c);
    ic_parallel_for(add_range, &j, planes, threads_for(ic_tensor_numel(a), threads));
    return 0;
}

/* ---------------------------------------------------------------- concat */

typedef struct cat_job {
    ic_tensor *y;
    const ic_tensor *const *xs;
    const ic_blk_pend *const *pends;
    int k;
} cat_job;

/* Output planes [lo, hi), numbered n * CB + cb: every lane of the block is
 * gathered from the part that holds that channel (whole blocks when the
 * part starts on a block boundary, which the large networks always do). */
static void cat_range(void *ctx, int lo, int hi)
{
    const cat_job *j = ctx;
    const ic_tensor *y = j->y;
    const int cbn = ic_blk_cb(y->c);
    const size_t np = (size_t)y->h * (size_t)y->w;
    for (int u = lo; u < hi; u++) {
        const int n = u / cbn, cb = u % cbn;
        float *dst = ic_blk_at(y, n, cb);
        int c0 = 0, part = 0;
        /* the part holding channel cb * 16 */
        while (part < j->k && c0 + j->xs[part]->c <= cb * IC_BLK)
            c0 += j->xs[part++]->c;
        const ic_tensor *x = j->xs[part];
        const int off = cb * IC_BLK - c0;
        if (off % IC_BLK == 0 && (x->c - off >= IC_BLK || x->c - off >= y->c - cb * IC_BLK)) {
            /* a whole block of one part, or the last block when this part
             * holds all of its channels (its spare lanes are zero in the
             * part as in y) */
            const paff f = paff_of(j->pends ? j->pends[part] : NULL, x, n, off / IC_BLK);
            const float *src = ic_blk_at(x, n, off / IC_BLK);
            for (size_t i = 0; i < np; i++)
                ic_v16_store(dst + i * 16, paff_apply(&f, ic_v16_load(src + i * 16)));
            continue;
        }
        /* lane by lane */
        memset(dst, 0, np * 16 * sizeof *dst);
        for (int l = 0; l < IC_BLK && cb * IC_BLK + l < y->c; l++) {
            const int c = cb * IC_BLK + l;
            int p = 0, base = 0;
            while (base + j->xs[p]->c <= c)
                base += j->xs[p++]->c;
            const ic_tensor *xp = j->xs[p];
            const int xc = c - base;
            const float *src = ic_blk_at(xp, n, xc / IC_BLK) + xc % IC_BLK;
            float a = 1.0f, b = 0.0f;
            int relu = 0;
            const ic_blk_pend *pd = j->pends ? j->pends[p] : NULL;
            if (pd) {
                const size_t at = (size_t)n * (size_t)ic_blk_cb(xp->c) * IC_BLK + (size_t)xc;
                a = pd->scale[at];
                b = pd->bias[at];
                relu = pd->relu;
            }
            for (size_t i = 0; i < np; i++) {
                float v = src[i * 16] * a + b;
                dst[i * 16 + (size_t)l] = relu && !(v > 0.0f) ? 0.0f : v;
            }
        }
    }
}

int ic_eng_concat(ic_tensor *y, const ic_tensor *const *xs, const ic_blk_pend *const *pends, int k,
                  int threads)
{
    int c = 0;
    for (int i = 0; i < k; i++) {
        if (xs[i]->n != y->n || xs[i]->h != y->h || xs[i]->w != y->w)
            return ic_error_set(IC_ESHAPE, "engine concat: part %d has another size", i);
        c += xs[i]->c;
    }
    if (c != y->c)
        return ic_error_set(IC_ESHAPE, "engine concat: %d channels into %d", c, y->c);
    cat_job j = {y, xs, pends, k};
    ic_parallel_for(cat_range, &j, y->n * ic_blk_cb(y->c), threads_for(ic_tensor_numel(y), threads));
    return 0;
}

/* ---------------------------------------------------------------- resize */

typedef struct rs_job {
    const ic_tensor *x;
    const ic_blk_pend *pend;
    double sh, sw;
    /* plain blocked output, or NCHW crop output */
    ic_tensor *y;
    ic_tensor *nchw;
    float mul;
    const ic_resize_tap *tx; /* per output column */
} rs_job;

/* One output pixel of a block: the bilinear blend of input rows r0 and r1
 * (weights lh0, lh1) at column tap t, the pending affine applied first. */
static inline ic_v16 rs_pixel(const paff *f, const float *r0, const float *r1,
                              const ic_resize_tap *t, ic_v16 lh0, ic_v16 lh1)
{
    const ic_v16 l0 = ic_v16_set1(t->l0), l1 = ic_v16_set1(t->l1);
    const ic_v16 top = paff_apply(f, ic_v16_load(r0 + (size_t)t->i0 * 16)) * l0 +
                       paff_apply(f, ic_v16_load(r0 + (size_t)t->i1 * 16)) * l1;
    const ic_v16 bot = paff_apply(f, ic_v16_load(r1 + (size_t)t->i0 * 16)) * l0 +
                       paff_apply(f, ic_v16_load(r1 + (size_t)t->i1 * 16)) * l1;
    return top * lh0 + bot * lh1;
}

/* Output rows [lo, hi) of every plane, numbered (n * CB + cb) * OH + oy. */
static void rs_range(void *ctx, int lo, int hi)
{
    const rs_job *j = ctx;
    const ic_tensor *x = j->x;
    const int cbn = ic_blk_cb(x->c);
    const int OH = j->nchw ? j->nchw->h : j->y->h, OW = j->nchw ? j->nchw->w : j->y->w;
    const int FH = j->y->h; /* the resized map's height (before the crop) */
    for (int u = lo; u < hi; u++) {
        const int plane = u / OH, oy = u % OH, n = plane / cbn, cb = plane % cbn;
        const paff f = paff_of(j->pend, x, n, cb);
        const ic_resize_tap ty = ic_resize_tap_at(x->h, FH, j->sh, oy);
        const float *xc = ic_blk_at(x, n, cb);
        const float *r0 = xc + (size_t)ty.i0 * x->w * 16, *r1 = xc + (size_t)ty.i1 * x->w * 16;
        const ic_v16 lh0 = ic_v16_set1(ty.l0), lh1 = ic_v16_set1(ty.l1);
        if (!j->nchw) {
            float *yr = ic_blk_at(j->y, n, cb) + (size_t)oy * OW * 16;
            for (int ox = 0; ox < OW; ox++)
                ic_v16_store(yr + (size_t)ox * 16, rs_pixel(&f, r0, r1, &j->tx[ox], lh0, lh1));
            continue;
        }
        /* NCHW: one row of each of the block's channels, 16 pixels at a
         * time: their 16 vectors transposed into 16 channel rows */
        const int c0 = cb * IC_BLK, nc = x->c - c0 < IC_BLK ? x->c - c0 : IC_BLK;
        const ic_v16 m = ic_v16_set1(j->mul);
        float *rows[IC_BLK];
        for (int l = 0; l < nc; l++)
            rows[l] = ic_tensor_at(j->nchw, n, c0 + l) + (size_t)oy * OW;
        for (int ox0 = 0; ox0 < OW; ox0 += 16) {
            const int nw = OW - ox0 < 16 ? OW - ox0 : 16;
            ic_v16 v[16] = {{0}};
            for (int k = 0; k < nw; k++)
                v[k] = rs_pixel(&f, r0, r1, &j->tx[ox0 + k], lh0, lh1) * m;
            ic_v16_transpose(v);
            for (int l = 0; l < nc; l++)
                memcpy(rows[l] + ox0, &v[l], (size_t)nw * sizeof(float));
        }
    }
}

static int resize_run(rs_job *j, int OH, int OW, int FW, int threads)
{
    ic_resize_tap *tx = ic_malloc((size_t)OW * sizeof *tx);
    if (!tx)
        return ic_error_set(IC_ENOMEM, "engine resize: out of memory");
    for (int ox = 0; ox < OW; ox++)
        tx[ox] = ic_resize_tap_at(j->x->w, FW, j->sw, ox);
    j->tx = tx;
    const int rows = j->x->n * ic_blk_cb(j->x->c) * OH;
    ic_parallel_for(rs_range, j, rows,
                    threads_for((size_t)rows * (size_t)OW * 16, threads));
    ic_free(tx);
    return 0;
}

int ic_eng_resize(ic_tensor *y, const ic_tensor *x, const ic_blk_pend *pend, double scale_h,
                  double scale_w, int threads)
{
    if (y->n != x->n || y->c != x->c)
        return ic_error_set(IC_ESHAPE, "engine resize: shapes differ");
    rs_job j = {.x = x, .pend = pend, .sh = scale_h, .sw = scale_w, .y = y};
    return resize_run(&j, y->h, y->w, y->w, threads);
}

int ic_eng_upsample_nchw(ic_tensor *y, const ic_tensor *x, const ic_blk_pend *pend, double scale,
                         float mul, int threads)
{
    int fh, fw;
    int rc = ic_resize_out_size(&fh, &fw, x->h, x->w, scale, scale);
    if (rc)
        return rc;
    if (y->n != x->n || y->c != x->c || y->h > fh || y->w > fw)
        return ic_error_set(IC_ESHAPE, "engine upsample: (%d, %d) is not a crop of %dx%d", y->h,
                            y->w, fh, fw);
    ic_tensor full = {NULL, x->n, x->c, fh, fw}; /* shape only: rows come from y */
    rs_job j = {.x = x, .pend = pend, .sh = scale, .sw = scale, .y = &full, .nchw = y, .mul = mul};
    return resize_run(&j, y->h, y->w, fw, threads);
}

/* ---------------------------------------------------------------- pooling */

typedef struct pool_job {
    ic_tensor *y;
    const ic_tensor *x;
    const ic_blk_pend *pend;
    const ic_pool2d *p;
} pool_job;

/* Max pooling, planes [lo, hi): padding acts as -inf. */
static void max_range(void *ctx, int lo, int hi)
{
    const pool_job *j = ctx;
    const ic_tensor *x = j->x, *y = j->y;
    const ic_pool2d *p = j->p;
    const int cbn = ic_blk_cb(x->c);
    for (int u = lo; u < hi; u++) {
        const int n = u / cbn, cb = u % cbn;
        const paff f = paff_of(j->pend, x, n, cb);
        const float *xc = ic_blk_at(x, n, cb);
        float *yc = ic_blk_at(y, n, cb);
        for (int oy = 0; oy < y->h; oy++)
            for (int ox = 0; ox < y->w; ox++) {
                ic_v16 m = ic_v16_set1(-INFINITY);
                for (int ky = 0; ky < p->kh; ky++) {
                    const int iy = oy * p->sh - p->ph + ky;
                    if (iy < 0 || iy >= x->h)
                        continue;
                    for (int kx = 0; kx < p->kw; kx++) {
                        const int ix = ox * p->sw - p->pw + kx;
                        if (ix < 0 || ix >= x->w)
                            continue;
                        m = ic_v16_max(paff_apply(&f, ic_v16_load(xc + ((size_t)iy * x->w + (size_t)ix) * 16)), m);
                    }
                }
                ic_v16_store(yc + ((size_t)oy * y->w + (size_t)ox) * 16, m);
            }
    }
}

int ic_eng_maxpool(ic_tensor *y, const ic_tensor *x, const ic_blk_pend *pend, const ic_pool2d *p,
                   int threads)
{
    int oh, ow;
    int rc = ic_pool_out_size(&oh, &ow, x->h, x->w, p);
    if (rc)
        return rc;
    if (y->n != x->n || y->c != x->c || y->h != oh || y->w != ow)
        return ic_error_set(IC_ESHAPE, "engine max pool: output shape");
    pool_job j = {y, x, pend, p};
    ic_parallel_for(max_range, &j, x->n * ic_blk_cb(x->c),
                    threads_for(ic_tensor_numel(x), threads));
    return 0;
}

/* Divisor of a window clipped to [ys, ye) x [xs, xe) (core/ops/pool.c's avg_div). */
static double avg_div(const ic_pool2d *p, int ys, int ye, int xs, int xe)
{
    return p->exclude_pad ? (double)(ye - ys) * (double)(xe - xs) : (double)p->kh * (double)p->kw;
}

static int imax(int a, int b)
{
    return a > b ? a : b;
}

static int imin(int a, int b)
{
    return a < b ? a : b;
}

/* Window sums in double, 16 lanes as two vectors of 8: the column updates
 * of the box filter below are then two vector adds per pixel (lane by lane
 * they ran ASPP's 32x64-window pooling of R-52 at 512x1024 at 2 GB/s). */
typedef double dv8 __attribute__((vector_size(64)));
typedef float fv8 __attribute__((vector_size(32)));
typedef struct d16 {
    dv8 lo, hi;
} d16;

static inline d16 d16_of(ic_v16 v)
{
    fv8 a, b;
    memcpy(&a, &v, sizeof a);
    memcpy(&b, (const char *)&v + sizeof a, sizeof b);
    return (d16){__builtin_convertvector(a, dv8), __builtin_convertvector(b, dv8)};
}

static inline void d16_add(d16 *s, d16 v)
{
    s->lo += v.lo;
    s->hi += v.hi;
}

static inline void d16_sub(d16 *s, d16 v)
{
    s->lo -= v.lo;
    s->hi -= v.hi;
}

/* One output pixel from window sums in double. */
static void avg_store(float *o, d16 s, double div)
{
    const fv8 a = __builtin_convertvector(s.lo / div, fv8);
    const fv8 b = __builtin_convertvector(s.hi / div, fv8);
    memcpy(o, &a, sizeof a);
    memcpy(o + 8, &b, sizeof b);
}

/* Stride 1: a box filter as core/ops/pool.c's avg_plane_s1, 16 channels at
 * a time. col[x] holds the sums of input column x over the window rows;
 * moving down one output row adds the rows entering and subtracts the rows
 * leaving, and each row slides the same way over col (the ASPP pooling
 * window holds 2048 pixels: the direct sum cost 2048 loads per output). */
static void avg_plane_s1(float *yc, const float *xc, const paff *f, int H, int W, int OH, int OW,
                         const ic_pool2d *p, d16 *col)
{
    memset(col, 0, (size_t)W * sizeof *col);
    int ys_prev = 0, ye_prev = 0;
    for (int oy = 0; oy < OH; oy++) {
        const int ys = imax(oy - p->ph, 0), ye = imin(oy - p->ph + p->kh, H);
        for (int r = ye_prev; r < ye; r++)
            for (int x = 0; x < W; x++)
                d16_add(&col[x], d16_of(paff_apply(
                                     f, ic_v16_load(xc + ((size_t)r * W + (size_t)x) * 16))));
        for (int r = ys_prev; r < ys; r++)
            for (int x = 0; x < W; x++)
                d16_sub(&col[x], d16_of(paff_apply(
                                     f, ic_v16_load(xc + ((size_t)r * W + (size_t)x) * 16))));
        ys_prev = ys;
        ye_prev = ye;
        d16 s = {{0}, {0}};
        int xs_prev = 0, xe_prev = 0;
        for (int ox = 0; ox < OW; ox++) {
            const int xs = imax(ox - p->pw, 0), xe = imin(ox - p->pw + p->kw, W);
            for (int c = xe_prev; c < xe; c++)
                d16_add(&s, col[c]);
            for (int c = xs_prev; c < xs; c++)
                d16_sub(&s, col[c]);
            xs_prev = xs;
            xe_prev = xe;
            avg_store(yc + ((size_t)oy * OW + (size_t)ox) * 16, s, avg_div(p, ys, ye, xs, xe));
        }
    }
}

/* Any stride: the direct window sum. */
static void avg_plane_direct(float *yc, const float *xc, const paff *f, int H, int W, int OH,
                             int OW, const ic_pool2d *p)
{
    for (int oy = 0; oy < OH; oy++) {
        const int y0 = oy * p->sh - p->ph, ys = imax(y0, 0), ye = imin(y0 + p->kh, H);
        for (int ox = 0; ox < OW; ox++) {
            const int x0 = ox * p->sw - p->pw, xs = imax(x0, 0), xe = imin(x0 + p->kw, W);
            d16 acc = {{0}, {0}};
            for (int iy = ys; iy < ye; iy++) {
                ic_v16 row = {0};
                for (int ix = xs; ix < xe; ix++)
                    row += paff_apply(f, ic_v16_load(xc + ((size_t)iy * W + (size_t)ix) * 16));
                d16_add(&acc, d16_of(row));
            }
            avg_store(yc + ((size_t)oy * OW + (size_t)ox) * 16, acc, avg_div(p, ys, ye, xs, xe));
        }
    }
}

/* Average pooling, planes [lo, hi): window sums in double; padding counts
 * in the divisor unless exclude_pad. */
static void avg_range(void *ctx, int lo, int hi)
{
    const pool_job *j = ctx;
    const ic_tensor *x = j->x, *y = j->y;
    const ic_pool2d *p = j->p;
    const int cbn = ic_blk_cb(x->c);
    const int s1 = p->sh == 1 && p->sw == 1;
    d16 *col = s1 ? ic_malloc_aligned((size_t)x->w * sizeof *col) : NULL;
    for (int u = lo; u < hi; u++) {
        const int n = u / cbn, cb = u % cbn;
        const paff f = paff_of(j->pend, x, n, cb);
        if (col)
            avg_plane_s1(ic_blk_at(y, n, cb), ic_blk_at(x, n, cb), &f, x->h, x->w, y->h, y->w, p,
                         col);
        else
            avg_plane_direct(ic_blk_at(y, n, cb), ic_blk_at(x, n, cb), &f, x->h, x->w, y->h, y->w,
                             p);
    }
    ic_free_aligned(col);
}

int ic_eng_avgpool(ic_tensor *y, const ic_tensor *x, const ic_blk_pend *pend, const ic_pool2d *p,
                   int threads)
{
    int oh, ow;
    int rc = ic_pool_out_size(&oh, &ow, x->h, x->w, p);
    if (rc)
        return rc;
    if (y->n != x->n || y->c != x->c || y->h != oh || y->w != ow)
        return ic_error_set(IC_ESHAPE, "engine avg pool: output shape");
    pool_job j = {y, x, pend, p};
    ic_parallel_for(avg_range, &j, x->n * ic_blk_cb(x->c),
                    threads_for(ic_tensor_numel(x), threads));
    return 0;
}

int ic_eng_gap(ic_tensor *y, const ic_tensor *x, const ic_blk_pend *pend, int threads)
{
    ic_pool2d p = {.kh = x->h, .kw = x->w, .sh = 1, .sw = 1};
    if (y->h != 1 || y->w != 1)
        return ic_error_set(IC_ESHAPE, "engine global pool: output must be 1x1");
    return ic_eng_avgpool(y, x, pend, &p, threads);
}
