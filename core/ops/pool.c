/* Pooling forward (see pool.h).
 *
 * Strided pooling (the stem's 3x3/2 max-pool) is a direct window loop: its
 * windows barely overlap, so there is nothing to share. Stride-1 pooling is
 * separable and its windows overlap almost entirely, so each output row is
 * built from a per-column reduction of the window's rows (running sums for
 * average, maxima for max) followed by a horizontal pass. The per-column
 * buffer lives on the stack and the output columns are processed in chunks
 * that fit it, so nothing is allocated for any input size.
 * The backward passes are direct window loops for every stride: they run only
 * in training, where the stem pool is stride 2. */
#include "ops/pool.h"

#include <math.h>

#include "base/err.h"
#include "base/parallel.h"

/* Columns of the per-row buffer of the separable paths (8 KiB of doubles). */
#define POOL_BUF 1024

static int imin(int a, int b)
{
    return a < b ? a : b;
}

static int imax(int a, int b)
{
    return a > b ? a : b;
}

int ic_pool_out_size(int *oh, int *ow, int h, int w, const ic_pool2d *p)
{
    if (p->kh <= 0 || p->kw <= 0 || p->sh <= 0 || p->sw <= 0)
        return ic_error_set(IC_EINVAL, "pool: kernel %dx%d and stride %dx%d must be positive", p->kh,
                            p->kw, p->sh, p->sw);
    if (p->ph < 0 || p->pw < 0 || p->ph > p->kh / 2 || p->pw > p->kw / 2)
        return ic_error_set(IC_EINVAL, "pool: padding %dx%d must be in [0, kernel/2] for kernel %dx%d",
                            p->ph, p->pw, p->kh, p->kw);
    long eh = (long)h + 2L * p->ph - p->kh, ew = (long)w + 2L * p->pw - p->kw;
    if (h <= 0 || w <= 0 || eh < 0 || ew < 0)
        return ic_error_set(IC_EINVAL, "pool: kernel %dx%d larger than padded input %dx%d", p->kh,
                            p->kw, h, w);
    *oh = (int)(eh / p->sh + 1);
    *ow = (int)(ew / p->sw + 1);
    return 0;
}

static int check(const ic_tensor *y, const ic_tensor *x, const ic_pool2d *p, const char *what)
{
    int oh, ow;
    int rc = ic_pool_out_size(&oh, &ow, x->h, x->w, p);
    if (rc)
        return rc;
    if (y->n != x->n || y->c != x->c || y->h != oh || y->w != ow)
        return ic_error_set(IC_ESHAPE, "%s: output is (%d, %d, %d, %d), expected (%d, %d, %d, %d)", what,
                            y->n, y->c, y->h, y->w, x->n, x->c, oh, ow);
    return 0;
}

/* PyTorch's rule is `val > maxval || isnan(val)`: NaN wins. Written as a
 * branch it mispredicts on half of all random inputs (8 ns per element on
 * the stem pool), so the loops below take a branch-free max (maxss) and OR a
 * separate NaN flag, then put the NaN back at the end. */
static inline float max2(float m, float v)
{
    return v > m ? v : m;
}

/* ---- max pooling ---- */

/* One plane (H, W) -> (OH, OW), any stride: the obvious window loop. */
static void max_plane_direct(float *y, const float *x, int H, int W, int OH, int OW,
                             const ic_pool2d *p)
{
    for (int oy = 0; oy < OH; oy++) {
        int y0 = oy * p->sh - p->ph;
        int ys = imax(y0, 0), ye = imin(y0 + p->kh, H);
        for (int ox = 0; ox < OW; ox++) {
            int x0 = ox * p->sw - p->pw;
            int xs = imax(x0, 0), xe = imin(x0 + p->kw, W);
            float m = -INFINITY;
            int nan = 0;
            for (int r = ys; r < ye; r++)
                for (int c = xs; c < xe; c++) {
                    float v = x[(size_t)r * (size_t)W + (size_t)c];
                    m = max2(m, v);
                    nan |= v != v;
                }
            y[(size_t)oy * (size_t)OW + (size_t)ox] = nan ? NAN : m;
        }
    }
}

/* Separable, any stride: per output row, the column maxima over the
 * window's rows (a contiguous, vectorisable pass), then per output column
 * the max over its kw column maxima. For the stem's 3x3 stride-2 pool this
 * ran ~10x faster than the window loop of max_plane_direct. */
static void max_plane_sep(float *y, const float *x, int H, int W, int OH, int OW, const ic_pool2d *p)
{
    float col[POOL_BUF];
    /* output columns per chunk so that their input span fits col */
    int chunk = (POOL_BUF - p->kw) / p->sw + 1;
    for (int ox0 = 0; ox0 < OW; ox0 += chunk) {
        int ox1 = imin(ox0 + chunk, OW);
        int cx0 = imax(ox0 * p->sw - p->pw, 0);                 /* first input column used */
        int cx1 = imin((ox1 - 1) * p->sw - p->pw + p->kw, W);   /* one past the last */
        int ncol = cx1 - cx0;
        for (int oy = 0; oy < OH; oy++) {
            int y0 = oy * p->sh - p->ph;
            int ys = imax(y0, 0), ye = imin(y0 + p->kh, H);
            for (int j = 0; j < ncol; j++)
                col[j] = -INFINITY;
            /* once a column max is NaN, max2 keeps it (NaN > v is false) */
            for (int r = ys; r < ye; r++) {
                const float *row = x + (size_t)r * (size_t)W + (size_t)cx0;
                for (int j = 0; j < ncol; j++) {
                    float v = row[j], m = max2(col[j], v);
                    col[j] = v != v ? v : m;
                }
            }
            float *yr = y + (size_t)oy * (size_t)OW;
            for (int ox = ox0; ox < ox1; ox++) {
                int x0 = ox * p->sw - p->pw;
                int xs = imax(x0, 0), xe = imin(x0 + p->kw, W);
                float m = -INFINITY;
                int nan = 0;
                for (int c = xs; c < xe; c++) {
                    m = max2(m, col[c - cx0]);
                    nan |= col[c - cx0] != col[c - cx0];
                }
                yr[ox] = nan ? NAN : m;
            }
        }
    }
}

/* One plane of a pooling op: y (OH, OW) from x (H, W). */
typedef void (*pool_plane_fn)(float *y, const float *x, int H, int W, int OH, int OW,
                              const ic_pool2d *p);

typedef struct pool_job {
    ic_tensor *y;
    const ic_tensor *x;
    const ic_pool2d *p;
    pool_plane_fn f;
} pool_job;

/* Planes [lo, hi), numbered n * C + c. */
static void pool_range(void *ctx, int lo, int hi)
{
    const pool_job *j = ctx;
    for (int u = lo; u < hi; u++) {
        const int n = u / j->x->c, c = u % j->x->c;
        j->f(ic_tensor_at(j->y, n, c), ic_tensor_at(j->x, n, c), j->x->h, j->x->w, j->y->h,
             j->y->w, j->p);
    }
}

/* Runs `fast` (kernel width within the column buffer; stride 1 unless
 * fast_strided) or `direct` on every plane; the reference entry points pass
 * allow_fast = 0. */
static int pool_forward(ic_tensor *y, const ic_tensor *x, const ic_pool2d *p, const char *what,
                        pool_plane_fn fast, pool_plane_fn direct, int allow_fast, int fast_strided)
{
    int rc = check(y, x, p, what);
    if (rc)
        return rc;
    pool_job j = {y, x, p,
                  allow_fast && (fast_strided || (p->sh == 1 && p->sw == 1)) &&
                          p->kw <= POOL_BUF / 2
                      ? fast
                      : direct};
    ic_parallel_for(pool_range, &j, x->n * x->c,
                    ic_parallel_threads_for(ic_tensor_numel(y) * (size_t)(p->kh * p->kw)));
    return 0;
}

int ic_pool_max_forward(ic_tensor *y, const ic_tensor *x, const ic_pool2d *p)
{
    return pool_forward(y, x, p, "max pool", max_plane_sep, max_plane_direct, 1, 1);
}

int ic_pool_max_forward_ref(ic_tensor *y, const ic_tensor *x, const ic_pool2d *p)
{
    return pool_forward(y, x, p, "max pool", max_plane_sep, max_plane_direct, 0, 1);
}

/* ---- average pooling ---- */

/* Divisor of a window clipped to [ys, ye) x [xs, xe). With ceil_mode=False a
 * window never reaches past the padding, so PyTorch's count_include_pad
 * divisor is always kh * kw. */
static double avg_div(const ic_pool2d *p, int ys, int ye, int xs, int xe)
{
    return p->exclude_pad ? (double)(ye - ys) * (double)(xe - xs) : (double)p->kh * (double)p->kw;
}

static void avg_plane_direct(float *y, const float *x, int H, int W, int OH, int OW,
                             const ic_pool2d *p)
{
    for (int oy = 0; oy < OH; oy++) {
        int y0 = oy * p->sh - p->ph;
        int ys = imax(y0, 0), ye = imin(y0 + p->kh, H);
        for (int ox = 0; ox < OW; ox++) {
            int x0 = ox * p->sw - p->pw;
            int xs = imax(x0, 0), xe = imin(x0 + p->kw, W);
            double s = 0;
            for (int r = ys; r < ye; r++)
                for (int c = xs; c < xe; c++)
                    s += x[(size_t)r * (size_t)W + (size_t)c];
            y[(size_t)oy * (size_t)OW + (size_t)ox] = (float)(s / avg_div(p, ys, ye, xs, xe));
        }
    }
}

/* Stride 1 box filter. col[j] holds the sum of input column cx0 + j over the
 * current window rows [ys, ye); moving down one output row adds the rows
 * entering and subtracts the rows leaving. The horizontal pass slides the
 * same way. Doubles keep the add/subtract drift far below float precision. */
static void avg_plane_s1(float *y, const float *x, int H, int W, int OH, int OW, const ic_pool2d *p)
{
    double col[POOL_BUF];
    int chunk = POOL_BUF - (p->kw - 1);
    for (int ox0 = 0; ox0 < OW; ox0 += chunk) {
        int ox1 = imin(ox0 + chunk, OW);
        int cx0 = imax(ox0 - p->pw, 0);
        int cx1 = imin(ox1 - 1 - p->pw + p->kw, W);
        int ncol = cx1 - cx0;
        for (int j = 0; j < ncol; j++)
            col[j] = 0;
        int ys_prev = 0, ye_prev = 0;
        for (int oy = 0; oy < OH; oy++) {
            int ys = imax(oy - p->ph, 0), ye = imin(oy - p->ph + p->kh, H);
            for (int r = ye_prev; r < ye; r++) {
                const float *row = x + (size_t)r * (size_t)W + (size_t)cx0;
                for (int j = 0; j < ncol; j++)
                    col[j] += row[j];
            }
            for (int r = ys_prev; r < ys; r++) {
                const float *row = x + (size_t)r * (size_t)W + (size_t)cx0;
                for (int j = 0; j < ncol; j++)
                    col[j] -= row[j];
            }
            ys_prev = ys;
            ye_prev = ye;

            float *yr = y + (size_t)oy * (size_t)OW;
            double s = 0;
            int xs_prev = imax(ox0 - p->pw, 0), xe_prev = xs_prev;
            for (int ox = ox0; ox < ox1; ox++) {
                int xs = imax(ox - p->pw, 0), xe = imin(ox - p->pw + p->kw, W);
                for (int c = xe_prev; c < xe; c++)
                    s += col[c - cx0];
                for (int c = xs_prev; c < xs; c++)
                    s -= col[c - cx0];
                xs_prev = xs;
                xe_prev = xe;
                yr[ox] = (float)(s / avg_div(p, ys, ye, xs, xe));
            }
        }
    }
}

int ic_pool_avg_forward(ic_tensor *y, const ic_tensor *x, const ic_pool2d *p)
{
    return pool_forward(y, x, p, "avg pool", avg_plane_s1, avg_plane_direct, 1, 0);
}

int ic_pool_avg_forward_ref(ic_tensor *y, const ic_tensor *x, const ic_pool2d *p)
{
    return pool_forward(y, x, p, "avg pool", avg_plane_s1, avg_plane_direct, 0, 0);
}

/* ---- global average pooling ---- */

int ic_pool_global_avg_forward(ic_tensor *y, const ic_tensor *x)
{
    if (y->n != x->n || y->c != x->c || y->h != 1 || y->w != 1)
        return ic_error_set(IC_ESHAPE, "global avg pool: output is (%d, %d, %d, %d), expected (%d, %d, 1, 1)",
                            y->n, y->c, y->h, y->w, x->n, x->c);
    size_t hw = ic_tensor_plane(x);
    for (int n = 0; n < x->n; n++)
        for (int c = 0; c < x->c; c++) {
            const float *xp = ic_tensor_at(x, n, c);
            double s[4] = {0, 0, 0, 0};
            size_t i = 0;
            for (; i + 4 <= hw; i += 4)
                for (int j = 0; j < 4; j++)
                    s[j] += xp[i + (size_t)j];
            for (; i < hw; i++)
                s[0] += xp[i];
            *ic_tensor_at(y, n, c) = (float)(((s[0] + s[1]) + (s[2] + s[3])) / (double)hw);
        }
    return 0;
}

/* ---- backward ---- */

/* Index of the max of one window of plane x, exactly as PyTorch's CPU kernel
 * (MaxPoolKernel.cpp): start at the window's first in-bounds element with
 * -inf, take `v > max || isnan(v)`. So ties keep the first in row-major
 * window order and the last NaN wins. */
static size_t window_argmax(const float *x, int W, int ys, int ye, int xs, int xe)
{
    size_t best = (size_t)ys * (size_t)W + (size_t)xs;
    float m = -INFINITY;
    for (int r = ys; r < ye; r++)
        for (int c = xs; c < xe; c++) {
            size_t i = (size_t)r * (size_t)W + (size_t)c;
            float v = x[i];
            if (v > m || v != v) {
                m = v;
                best = i;
            }
        }
    return best;
}

int ic_pool_max_backward(ic_tensor *dx, const ic_tensor *dy, const ic_tensor *x, const ic_pool2d *p)
{
    /* dy must be the pooled shape of dx */
    int rc = check(dy, dx, p, "max pool backward");
    if (rc)
        return rc;
    if (!ic_tensor_same_shape(dx, x))
        return ic_error_set(IC_ESHAPE, "max pool backward: dx and x shapes differ");
    const int H = x->h, W = x->w, OH = dy->h, OW = dy->w;
    for (int n = 0; n < x->n; n++)
        for (int c = 0; c < x->c; c++) {
            const float *xp = ic_tensor_at(x, n, c), *g = ic_tensor_at(dy, n, c);
            float *d = ic_tensor_at(dx, n, c);
            for (int oy = 0; oy < OH; oy++) {
                int y0 = oy * p->sh - p->ph;
                int ys = imax(y0, 0), ye = imin(y0 + p->kh, H);
                for (int ox = 0; ox < OW; ox++) {
                    int x0 = ox * p->sw - p->pw;
                    int xs = imax(x0, 0), xe = imin(x0 + p->kw, W);
                    d[window_argmax(xp, W, ys, ye, xs, xe)] += g[(size_t)oy * (size_t)OW + (size_t)ox];
                }
            }
        }
    return 0;
}

int ic_pool_avg_backward(ic_tensor *dx, const ic_tensor *dy, const ic_pool2d *p)
{
    /* dy must be the pooled shape of dx */
    int rc = check(dy, dx, p, "avg pool backward");
    if (rc)
        return rc;
    const int H = dx->h, W = dx->w, OH = dy->h, OW = dy->w;
    for (int n = 0; n < dx->n; n++)
        for (int c = 0; c < dx->c; c++) {
            const float *g = ic_tensor_at(dy, n, c);
            float *d = ic_tensor_at(dx, n, c);
            for (int oy = 0; oy < OH; oy++) {
                int y0 = oy * p->sh - p->ph;
                int ys = imax(y0, 0), ye = imin(y0 + p->kh, H);
                for (int ox = 0; ox < OW; ox++) {
                    int x0 = ox * p->sw - p->pw;
                    int xs = imax(x0, 0), xe = imin(x0 + p->kw, W);
                    float v = (float)(g[(size_t)oy * (size_t)OW + (size_t)ox] /
                                      avg_div(p, ys, ye, xs, xe));
                    for (int r = ys; r < ye; r++)
                        for (int q = xs; q < xe; q++)
                            d[(size_t)r * (size_t)W + (size_t)q] += v;
                }
            }
        }
    return 0;
}

int ic_pool_global_avg_backward(ic_tensor *dx, const ic_tensor *dy)
{
    if (dy->n != dx->n || dy->c != dx->c || dy->h != 1 || dy->w != 1)
        return ic_error_set(IC_ESHAPE, "global avg pool backward: dy is (%d, %d, %d, %d), expected (%d, %d, 1, 1)",
                            dy->n, dy->c, dy->h, dy->w, dx->n, dx->c);
    size_t hw = ic_tensor_plane(dx);
    for (int n = 0; n < dx->n; n++)
        for (int c = 0; c < dx->c; c++) {
            float v = (float)(*ic_tensor_at(dy, n, c) / (double)hw);
            float *d = ic_tensor_at(dx, n, c);
            for (size_t i = 0; i < hw; i++)
                d[i] += v;
        }
    return 0;
}
