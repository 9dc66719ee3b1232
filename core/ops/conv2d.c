/* 2-D convolution: parameter checks, the five forward paths (1x1 sgemm,
 * depthwise direct, shifted sgemm, thin K, tiled im2col + sgemm) and the
 * seven-loop reference.
 *
 * Why five paths: a 1x1 stride-1 convolution already is a matrix product
 * of the weight (cout, cin) and the input plane (cin, H*W), so lowering it
 * would only copy memory. A depthwise convolution has K = kh*kw, far too
 * little work per im2col element for sgemm to pay off, so a direct loop that
 * streams output rows (vectorised over output columns) wins. Most other
 * convolutions need no im2col either: one sgemm per kernel tap can read a
 * shifted window of a zero-padded copy of the input, split into stride
 * phases when the stride is above 1 (see forward_shifted); the copy is
 * about the input's size where im2col writes kh*kw times the output's
 * columns, which matters most for layers with few output channels and for
 * stride 2 (res3's 3x3 stride-2 conv went from 0.61-0.72 of sgemm with
 * im2col to 0.70-0.84). A thin K (the stem's 3*3*3) gets im2col and a
 * product of our own with bias and ReLU fused (ops/gemm_thin.c), split
 * over threads by row tiles. The rest is im2col + sgemm:
 * im2col copies whole input row segments (memcpy where the stride is 1),
 * writes only the padding edges as zeros, is split over the OpenBLAS thread
 * count, and runs over a tile of output rows (and, for a huge K, of input
 * channels) at a time, so the column buffer stays within
 * IC_CONV2D_WS_BUDGET for any image size. */
#include "ops/conv2d.h"

#include <cblas.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/err.h"
#include "base/parallel.h"
#include "base/vec.h"
#include "ops/gemm_thin.h"

/* Smallest im2col output tile whose bias + ReLU pass is split over threads. */
#define IC_EPILOGUE_PARALLEL_FLOATS ((size_t)1 << 20)

/* ------------------------------------------------------------------------
 * Parameter validation and path selection */

int ic_conv2d_out_size(const ic_conv2d_params *p, int h, int w, int *oh, int *ow)
{
    if (!p || !oh || !ow)
        return ic_error_set(IC_EINVAL, "conv2d: NULL argument");
    if (p->cin <= 0 || p->cout <= 0)
        return ic_error_set(IC_EINVAL, "conv2d: channels must be positive (cin %d, cout %d)",
                            p->cin, p->cout);
    if (p->kh <= 0 || p->kw <= 0)
        return ic_error_set(IC_EINVAL, "conv2d: kernel must be positive (%dx%d)", p->kh, p->kw);
    if (p->stride_h <= 0 || p->stride_w <= 0)
        return ic_error_set(IC_EINVAL, "conv2d: stride must be positive (%d, %d)", p->stride_h,
                            p->stride_w);
    if (p->dil_h <= 0 || p->dil_w <= 0)
        return ic_error_set(IC_EINVAL, "conv2d: dilation must be positive (%d, %d)", p->dil_h,
                            p->dil_w);
    if (p->pad_h < 0 || p->pad_w < 0)
        return ic_error_set(IC_EINVAL, "conv2d: padding must be >= 0 (%d, %d)", p->pad_h,
                            p->pad_w);
    if (p->groups <= 0 || p->cin % p->groups || p->cout % p->groups)
        return ic_error_set(IC_EINVAL, "conv2d: groups %d must divide cin %d and cout %d",
                            p->groups, p->cin, p->cout);
    if (h <= 0 || w <= 0)
        return ic_error_set(IC_EINVAL, "conv2d: input size must be positive (%dx%d)", h, w);
    /* 64-bit so that huge paddings or dilations cannot overflow. */
    long long ekh = (long long)p->dil_h * (p->kh - 1) + 1;
    long long ekw = (long long)p->dil_w * (p->kw - 1) + 1;
    long long ph = (long long)h + 2LL * p->pad_h, pw = (long long)w + 2LL * p->pad_w;
    if (ekh > ph || ekw > pw)
        return ic_error_set(IC_ESHAPE,
                            "conv2d: dilated kernel %lldx%lld larger than padded input %lldx%lld",
                            ekh, ekw, ph, pw);
    long long o_h = (ph - ekh) / p->stride_h + 1, o_w = (pw - ekw) / p->stride_w + 1;
    if (o_h > INT_MAX / 2 || o_w > INT_MAX / 2 || o_h * o_w > INT_MAX)
        return ic_error_set(IC_ESHAPE, "conv2d: output %lldx%lld too large", o_h, o_w);
    *oh = (int)o_h;
    *ow = (int)o_w;
    return 0;
}

enum conv_path { PATH_1X1, PATH_DEPTHWISE, PATH_SHIFTED, PATH_THIN, PATH_IM2COL };

/* Largest K = cin/groups * kh * kw for the thin path (im2col + a product
 * with bias and ReLU fused, split over threads by row tiles). Measured on
 * the stem's K = 27 at 512x1024, where it runs at 1.0-1.6 of the same-size
 * sgemm against 0.45-0.55 for im2col + sgemm + a separate bias/ReLU pass:
 * with so thin a K the product is bound by writing the output, and this
 * writes it once. */
#define IC_THIN_MAX_K 32
/* Column buffers of the thin path, one per thread: at most this many
 * threads, and about IC_THIN_COLS output columns per tile. */
#define IC_THIN_SLOTS 4
#define IC_THIN_COLS 2048

/* The shifted path computes IC_SHIFT_MAX_WIDE / 8 as many output columns as
 * needed at most (it works on the phase-plane width); past that, im2col
 * wins. */
#define IC_SHIFT_MAX_WIDE 10
/* Fewest input channels per group for the shifted path: it runs one sgemm
 * per kernel tap with K = cin/groups, which is slow for a thin K. */
#define IC_SHIFT_MIN_CIN 8

/* Whether the taps k*dil (k < kdim) of a strided dimension reach every one
 * of its `stride` phases; the shifted path packs all of them, so a phase
 * no tap reads (a 1x1 stride-2 shortcut reads one of four) would be copied
 * for nothing. */
static int taps_cover_phases(int kdim, int dil, int stride)
{
    if (stride > kdim || stride > 64) /* a phase per bit of `seen` */
        return 0;
    unsigned long long seen = 0;
    for (int k = 0; k < kdim; k++)
        seen |= 1ULL << (k * dil % stride);
    int count = 0;
    for (; seen; seen &= seen - 1)
        count++;
    return count == stride;
}

/* Range [*lo, *hi) of output columns whose input column ox*s + off lies in
 * [0, w); everything outside reads zero padding. */
static void valid_cols(int off, int s, int w, int ow, int *lo, int *hi)
{
    int l = off >= 0 ? 0 : (-off + s - 1) / s;
    int h = w - off <= 0 ? 0 : (w - off + s - 1) / s;
    if (l > ow)
        l = ow;
    if (h > ow)
        h = ow;
    if (h < l)
        h = l;
    *lo = l;
    *hi = h;
}

/* Output rows [*lo, *hi) whose kernel row ky reads inside the input; for
 * the others that tap reads only zero padding and is skipped. */
static void tap_rows(const ic_conv2d_params *p, int ky, int h, int oh, int *lo, int *hi)
{
    valid_cols(ky * p->dil_h - p->pad_h, p->stride_h, h, oh, lo, hi);
}

static enum conv_path choose_path(const ic_conv2d_params *p, int h, int oh, int ow)
{
    if (p->kh == 1 && p->kw == 1 && p->stride_h == 1 && p->stride_w == 1 && p->pad_h == 0 &&
        p->pad_w == 0)
        return PATH_1X1;
    if (p->groups == p->cin && p->cout == p->cin)
        return PATH_DEPTHWISE;
    /* Work of the shifted path in output pixels: every tap row computes
     * its valid output rows at the phase-plane width (output columns plus
     * the widest tap offset); im2col computes kh*kw*oh*ow. A dilated conv
     * on a small map (ASPP) skips many all-padding tap rows, which pays
     * for its junk columns. */
    const long long wp = (long long)ow + (long long)(p->kw - 1) * p->dil_w / p->stride_w;
    long long rows = 0;
    for (int ky = 0; ky < p->kh; ky++) {
        int lo, hi;
        tap_rows(p, ky, h, oh, &lo, &hi);
        rows += hi - lo;
    }
    const long long shift_work = rows * p->kw * wp;
    const long long im2col_work = (long long)p->kh * p->kw * oh * ow;
    if (p->cin / p->groups >= IC_SHIFT_MIN_CIN && taps_cover_phases(p->kh, p->dil_h, p->stride_h) &&
        taps_cover_phases(p->kw, p->dil_w, p->stride_w) &&
        shift_work * 8 <= im2col_work * IC_SHIFT_MAX_WIDE)
        return PATH_SHIFTED;
    if ((long long)(p->cin / p->groups) * p->kh * p->kw <= IC_THIN_MAX_K)
        return PATH_THIN;
    return PATH_IM2COL;
}

const char *ic_conv2d_path_name(const ic_conv2d_params *p, int h, int w)
{
    static const char *const names[] = {"1x1", "depthwise", "shifted", "thin", "im2col"};
    int oh = 0, ow = 0;
    if (ic_conv2d_out_size(p, h, w, &oh, &ow))
        return "invalid";
    return names[choose_path(p, h, oh, ow)];
}

/* Output tile of the im2col path, in floats (1 MiB, about one L2), used
 * when K = cin/groups * kh * kw is below IC_CONV2D_THIN_K. */
#define IC_CONV2D_THIN_K 64
#define IC_CONV2D_OUT_TILE ((size_t)1 << 18)

/* How the im2col path cuts one group's work: `rows` output rows by `chans`
 * input channels per column buffer. Output rows are split first (by the
 * workspace budget and the output tile); when a tile would drop below
 * IC_CONV2D_MIN_COLS columns (sgemm gets slow on a narrow B), the input
 * channels are split instead and the partial products are accumulated into
 * y (sgemm beta = 1), which keeps N wide for layers with a huge K such as
 * ASPP (K = 2048*9). */
typedef struct tile_plan {
    int rows, chans;
} tile_plan;

static tile_plan im2col_plan(const ic_conv2d_params *p, int oh, int ow)
{
    const size_t kk = (size_t)p->kh * (size_t)p->kw, g_in = (size_t)(p->cin / p->groups);
    const size_t budget = IC_CONV2D_WS_BUDGET;
    size_t rows = budget / (g_in * kk * (size_t)ow);
    /* keep the output tile small enough to be in cache for the epilogue;
     * this matters for a thin K like the stem's 3*3*3, where writing the
     * output is most of the work */
    const size_t g_out = (size_t)(p->cout / p->groups);
    const size_t c_rows = IC_CONV2D_OUT_TILE / (g_out * (size_t)ow);
    /* ... but only for a thin K: with a deep K the tile cap just splits one
     * efficient sgemm into many that each repack the weights (res3's 1x1
     * stride-2 shortcut ran at 0.56 of sgemm with AVX-512 kernels). */
    if (g_in * kk < IC_CONV2D_THIN_K && rows > c_rows)
        rows = c_rows;
    if (rows * (size_t)ow < IC_CONV2D_MIN_COLS)
        rows = (IC_CONV2D_MIN_COLS + (size_t)ow - 1) / (size_t)ow;
    if (rows > (size_t)oh)
        rows = (size_t)oh;
    if (rows < 1)
        rows = 1;
    size_t chans = budget / (kk * rows * (size_t)ow);
    if (chans > g_in)
        chans = g_in;
    if (chans < 1)
        chans = 1;
    tile_plan t = {(int)rows, (int)chans};
    return t;
}

/* Workspace of the shifted path, in floats, carved in order:
 *   xp: one group's input split into stride_h*stride_w phase planes per
 *       channel, phase-major (phase, cin/g, hp, wp), zero-padded, followed
 *       by the floats that the last tap may read past the last plane
 *   wk: the group's weights regrouped by tap (kh*kw, cout/g, cin/g)
 *   yw: one tile of output rows at phase-plane width (cout/g, rows, wp) */
typedef struct shift_plan {
    int hp, wp, rows, phases;
    size_t plane, xp, wk, yw;
} shift_plan;

/* Fills *s; returns nonzero when a size does not fit a size_t (int channel
 * counts times a phase plane can pass 2^64 for absurd parameters), and the
 * workspace query then saturates. */
static int shifted_plan(shift_plan *s, const ic_conv2d_params *p, int oh, int ow)
{
    const size_t g_in = (size_t)(p->cin / p->groups), g_out = (size_t)(p->cout / p->groups);
    /* row oy of tap ky reads phase row oy + ky*dil/stride (see below) */
    s->hp = oh + (p->kh - 1) * p->dil_h / p->stride_h;
    s->wp = ow + (p->kw - 1) * p->dil_w / p->stride_w;
    s->phases = p->stride_h * p->stride_w;
    s->plane = (size_t)s->hp * (size_t)s->wp;
    size_t rows = IC_CONV2D_WS_BUDGET / (g_out * (size_t)s->wp);
    if (rows * (size_t)s->wp < IC_CONV2D_MIN_COLS)
        rows = (IC_CONV2D_MIN_COLS + (size_t)s->wp - 1) / (size_t)s->wp;
    if (rows > (size_t)oh)
        rows = (size_t)oh;
    s->rows = rows < 1 ? 1 : (int)rows;
    s->yw = g_out * (size_t)s->rows * (size_t)s->wp;
    /* rounded to 16 floats so that every part starts 64-byte aligned */
    const size_t slack = (size_t)((p->kw - 1) * p->dil_w / p->stride_w);
    size_t xp, wk;
    if (ic_size_mul(&xp, (size_t)s->phases, g_in) || ic_size_mul(&xp, xp, s->plane) ||
        ic_size_mul(&wk, (size_t)p->kh * (size_t)p->kw, g_out) || ic_size_mul(&wk, wk, g_in) ||
        xp > SIZE_MAX / 2 || wk > SIZE_MAX / 2)
        return 1;
    s->xp = (xp + slack + 15) / 16 * 16;
    s->wk = (wk + 15) / 16 * 16;
    return 0;
}

/* Output rows per tile of the thin path. */
static int thin_rows(int oh, int ow)
{
    int rows = IC_THIN_COLS / ow;
    if (rows < 1)
        rows = 1;
    return rows < oh ? rows : oh;
}

/* Column buffers of the thin path: one per thread, no more than one
 * image's row tiles (a small map is not worth a thread). */
static int thin_slots(int oh, int ow)
{
    const int rows = thin_rows(oh, ow), tiles = (oh + rows - 1) / rows;
    return tiles < IC_THIN_SLOTS ? tiles : IC_THIN_SLOTS;
}

size_t ic_conv2d_workspace_floats(const ic_conv2d_params *p, int h, int w)
{
    int oh = 0, ow = 0;
    if (ic_conv2d_out_size(p, h, w, &oh, &ow))
        return 0;
    size_t n, out;
    switch (choose_path(p, h, oh, ow)) {
    case PATH_SHIFTED: {
        shift_plan s;
        if (shifted_plan(&s, p, oh, ow) || ic_size_add(&n, s.xp, s.wk) ||
            ic_size_add(&out, n, s.yw))
            return SIZE_MAX;
        return out;
    }
    case PATH_THIN: {
        const size_t k = (size_t)(p->cin / p->groups) * (size_t)p->kh * (size_t)p->kw;
        if (ic_size_mul(&n, k * (size_t)thin_slots(oh, ow), (size_t)thin_rows(oh, ow)) ||
            ic_size_mul(&out, n, (size_t)ow))
            return SIZE_MAX;
        return out;
    }
    case PATH_IM2COL: {
        tile_plan t = im2col_plan(p, oh, ow);
        /* Saturate rather than wrap; such a request then fails to allocate. */
        if (ic_size_mul(&n, (size_t)t.chans * (size_t)p->kh * (size_t)p->kw, (size_t)t.rows) ||
            ic_size_mul(&out, n, (size_t)ow))
            return SIZE_MAX;
        return out;
    }
    default:
        return 0;
    }
}

/* Shared checks of forward and forward_ref. */
static int check_args(const ic_tensor *y, const ic_tensor *x, const float *weight,
                      const ic_conv2d_params *p, int *oh, int *ow)
{
    if (!y || !x || !weight || !p || !x->data || !y->data)
        return ic_error_set(IC_EINVAL, "conv2d: NULL argument");
    int rc = ic_conv2d_out_size(p, x->h, x->w, oh, ow);
    if (rc)
        return rc;
    if (x->n <= 0 || x->c != p->cin)
        return ic_error_set(IC_ESHAPE, "conv2d: input (%d, %d, %d, %d) does not match cin %d",
                            x->n, x->c, x->h, x->w, p->cin);
    if (y->n != x->n || y->c != p->cout || y->h != *oh || y->w != *ow)
        return ic_error_set(IC_ESHAPE,
                            "conv2d: output (%d, %d, %d, %d), expected (%d, %d, %d, %d)", y->n,
                            y->c, y->h, y->w, x->n, p->cout, *oh, *ow);
    const float *xb = x->data, *xe = xb + ic_tensor_numel(x);
    const float *yb = y->data, *ye = yb + ic_tensor_numel(y);
    if (xb < ye && yb < xe)
        return ic_error_set(IC_EINVAL, "conv2d: output overlaps input");
    return 0;
}

/* y = relu(y + bias) over `len` values of one output channel. */
static void epilogue(float *restrict y, size_t len, float b, int relu)
{
    if (relu) {
        for (size_t i = 0; i < len; i++) {
            const float v = y[i] + b;
            y[i] = v > 0.0f ? v : 0.0f;
        }
    } else if (b != 0.0f) {
        for (size_t i = 0; i < len; i++)
            y[i] += b;
    }
}

/* y = relu(y + bias) over output channels [lo, hi), `len` values each,
 * channel planes `ld` floats apart */
typedef struct epi_job {
    float *y;
    size_t ld, len;
    const float *bias;
    int relu;
} epi_job;

static void epilogue_range(void *ctx, int lo, int hi)
{
    const epi_job *j = ctx;
    for (int co = lo; co < hi; co++)
        epilogue(j->y + (size_t)co * j->ld, j->len, j->bias ? j->bias[co] : 0.0f, j->relu);
}

/* ------------------------------------------------------------------------
 * 1x1 stride 1: W (cout/g, cin/g) @ X (cin/g, H*W) -> Y (cout/g, H*W) */

static void forward_1x1(ic_tensor *y, const ic_tensor *x, const float *weight, const float *bias,
                        const ic_conv2d_params *p)
{
    const int g_in = p->cin / p->groups, g_out = p->cout / p->groups;
    const size_t hw = ic_tensor_plane(x);
    for (int n = 0; n < x->n; n++)
        for (int g = 0; g < p->groups; g++) {
            const float *xg = ic_tensor_at(x, n, g * g_in);
            float *yg = ic_tensor_at(y, n, g * g_out);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, g_out, (int)hw, g_in, 1.0f,
                        weight + (size_t)g * g_out * g_in, g_in, xg, (int)hw, 0.0f, yg, (int)hw);
            epi_job ej = {yg, hw, hw, bias ? bias + (size_t)g * g_out : NULL, p->relu};
            ic_parallel_for(epilogue_range, &ej, g_out,
                            ic_parallel_threads((size_t)g_out * hw, IC_PARALLEL_MIN_FLOATS,
                                                openblas_get_num_threads()));
        }
}

/* ------------------------------------------------------------------------
 * im2col + sgemm, tiled over output rows */

/* One row of im2col columns or of a phase plane: dst[j] = src[j*s + off]
 * for the columns [cl, ch) where that lies inside the input row, zero
 * elsewhere (src == NULL: all zero). */
static void pack_row(float *restrict dst, const float *restrict src, int s, int off, int cl,
                     int ch, int wp)
{
    if (!src || cl == ch) {
        memset(dst, 0, (size_t)wp * sizeof *dst);
        return;
    }
    const float *restrict row = src + (cl * s + off); /* >= src as cl < ch */
    memset(dst, 0, (size_t)cl * sizeof *dst);
    if (s == 1) {
        memcpy(dst + cl, row, (size_t)(ch - cl) * sizeof *dst);
    } else if (s == 2) {
        /* a constant stride lets the compiler vectorise the gather */
        for (int k = 0; k < ch - cl; k++)
            dst[cl + k] = row[(size_t)k * 2];
    } else {
        for (int k = 0; k < ch - cl; k++)
            dst[cl + k] = row[(size_t)k * s];
    }
    memset(dst + ch, 0, (size_t)(wp - ch) * sizeof *dst);
}

/* One slice of an im2col job: column-matrix rows [k0, k1) of
 * col (nc*kh*kw, nr*ow), row k = (c, ky, kx), column (oy - r0, ox), for
 * output rows [r0, r0 + nr), read from the plane stack x0 (nc, h, w). */
typedef struct im2col_job {
    float *col;
    const float *x0;
    const ic_conv2d_params *p;
    int h, w, ow, r0, nr;
    int k0, k1;
} im2col_job;

static void im2col_run(const im2col_job *j)
{
    const ic_conv2d_params *p = j->p;
    const int h = j->h, w = j->w, ow = j->ow, kk = p->kh * p->kw;
    const size_t ld = (size_t)j->nr * (size_t)ow;
    const size_t plane = (size_t)h * (size_t)w;
    for (int k = j->k0; k < j->k1; k++) {
        const int c = k / kk, ky = (k % kk) / p->kw, kx = k % p->kw;
        const float *xc = j->x0 + (size_t)c * plane;
        float *restrict dst = j->col + (size_t)k * ld;
        const int xoff = kx * p->dil_w - p->pad_w;
        int lo, hi;
        valid_cols(xoff, p->stride_w, w, ow, &lo, &hi);
        for (int r = 0; r < j->nr; r++, dst += ow) {
            const int iy = (j->r0 + r) * p->stride_h - p->pad_h + ky * p->dil_h;
            pack_row(dst, iy >= 0 && iy < h ? xc + (size_t)iy * w : NULL, p->stride_w, xoff, lo,
                     hi, ow);
        }
    }
}

static void im2col_range(void *ctx, int lo, int hi)
{
    im2col_job j = *(const im2col_job *)ctx;
    j.k1 = j.k0 + hi;
    j.k0 += lo;
    im2col_run(&j);
}

/* Fills the whole column matrix, split over up to `threads` threads.
 * Why threads here: sgemm runs on all OpenBLAS threads, and a
 * single-threaded im2col would otherwise cost as much as the sgemm for
 * layers with few output channels. Small jobs are not worth a thread
 * start. */
static void im2col_parallel(const im2col_job *all, int threads)
{
    const size_t total = (size_t)(all->k1 - all->k0) * (size_t)all->nr * (size_t)all->ow;
    im2col_job job = *all;
    ic_parallel_for(im2col_range, &job, all->k1 - all->k0,
                    ic_parallel_threads(total, IC_PARALLEL_MIN_FLOATS, threads));
}

static void forward_im2col(ic_tensor *y, const ic_tensor *x, const float *weight,
                           const float *bias, const ic_conv2d_params *p, float *ws)
{
    const int g_in = p->cin / p->groups, g_out = p->cout / p->groups;
    const int oh = y->h, ow = y->w, kk = p->kh * p->kw;
    const int k = g_in * kk;
    const size_t ohw = ic_tensor_plane(y), plane = ic_tensor_plane(x);
    const tile_plan t = im2col_plan(p, oh, ow);
    const int threads = openblas_get_num_threads();
    for (int n = 0; n < x->n; n++)
        for (int g = 0; g < p->groups; g++) {
            const float *xg = ic_tensor_at(x, n, g * g_in);
            const float *wg = weight + (size_t)g * g_out * k;
            float *yg = ic_tensor_at(y, n, g * g_out);
            for (int r0 = 0; r0 < oh; r0 += t.rows) {
                const int nr = oh - r0 < t.rows ? oh - r0 : t.rows;
                const int cols = nr * ow;
                float *yt = yg + (size_t)r0 * ow;
                for (int c0 = 0; c0 < g_in; c0 += t.chans) {
                    const int nc = g_in - c0 < t.chans ? g_in - c0 : t.chans;
                    const im2col_job job = {ws, xg + (size_t)c0 * plane, p, x->h, x->w,
                                            ow, r0, nr, 0, nc * kk};
                    im2col_parallel(&job, threads);
                    /* W[:, c0*kk : (c0+nc)*kk] (cout/g, nc*kk) @ col (nc*kk, nr*ow)
                     * (+)= Y[:, r0*ow : (r0+nr)*ow] */
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, g_out, cols, nc * kk,
                                1.0f, wg + (size_t)c0 * kk, k, ws, cols, c0 ? 1.0f : 0.0f, yt,
                                (int)ohw);
                }
                /* a thread start per tile only pays on big tiles (with
                 * small ones it made the stem 2x slower) */
                const size_t tile = (size_t)g_out * (size_t)cols;
                epi_job ej = {yt, ohw, (size_t)cols, bias ? bias + (size_t)g * g_out : NULL,
                              p->relu};
                ic_parallel_for(epilogue_range, &ej, g_out,
                                tile >= IC_EPILOGUE_PARALLEL_FLOATS ? threads : 1);
            }
        }
}

/* ------------------------------------------------------------------------
 * Thin K: im2col + ic_gemm_thin per row tile, tiles split over threads
 *
 * Each thread takes a contiguous run of (image, row tile) pairs and its own
 * column buffer; per tile and group it writes the columns (in L2) and the
 * product stores the finished output, bias and ReLU included, once. No
 * OpenBLAS call, so nothing waits on BLAS threads between tiles. */

typedef struct thin_job {
    ic_tensor *y;
    const ic_tensor *x;
    const float *weight, *bias;
    const ic_conv2d_params *p;
    float *ws;
    size_t slot;
    int rows, tiles_per_image, tiles, parts;
} thin_job;

static void thin_part(void *ctx, int lo, int hi)
{
    const thin_job *j = ctx;
    const ic_conv2d_params *p = j->p;
    const int g_in = p->cin / p->groups, g_out = p->cout / p->groups, kk = p->kh * p->kw;
    const int k = g_in * kk, oh = j->y->h, ow = j->y->w;
    const size_t ohw = ic_tensor_plane(j->y);
    for (int part = lo; part < hi; part++) {
        float *col = j->ws + (size_t)part * j->slot;
        const int t0 = (int)((long long)j->tiles * part / j->parts);
        const int t1 = (int)((long long)j->tiles * (part + 1) / j->parts);
        for (int t = t0; t < t1; t++) {
            const int n = t / j->tiles_per_image, r0 = t % j->tiles_per_image * j->rows;
            const int nr = oh - r0 < j->rows ? oh - r0 : j->rows;
            for (int g = 0; g < p->groups; g++) {
                const im2col_job job = {col, ic_tensor_at(j->x, n, g * g_in), p, j->x->h,
                                        j->x->w, ow, r0, nr, 0, k};
                im2col_run(&job);
                ic_gemm_thin(g_out, nr * ow, k, j->weight + (size_t)g * g_out * k, k, col,
                             nr * ow, j->bias ? j->bias + (size_t)g * g_out : NULL, p->relu,
                             ic_tensor_at(j->y, n, g * g_out) + (size_t)r0 * ow, (int)ohw);
            }
        }
    }
}

static void forward_thin(ic_tensor *y, const ic_tensor *x, const float *weight,
                         const float *bias, const ic_conv2d_params *p, float *ws)
{
    const int oh = y->h, ow = y->w, rows = thin_rows(oh, ow);
    const size_t k = (size_t)(p->cin / p->groups) * (size_t)p->kh * (size_t)p->kw;
    thin_job j = {.y = y, .x = x, .weight = weight, .bias = bias, .p = p, .ws = ws,
                  .slot = k * (size_t)rows * (size_t)ow, .rows = rows,
                  .tiles_per_image = (oh + rows - 1) / rows};
    j.tiles = j.tiles_per_image * x->n;
    int threads = openblas_get_num_threads();
    if (threads > thin_slots(oh, ow))
        threads = thin_slots(oh, ow);
    /* each part needs enough output to be worth a thread start */
    j.parts = ic_parallel_threads(ic_tensor_numel(y), IC_PARALLEL_MIN_FLOATS, threads);
    if (j.parts > j.tiles)
        j.parts = j.tiles;
    ic_parallel_for(thin_part, &j, j.parts, j.parts);
}

/* ------------------------------------------------------------------------
 * Shifted sgemm: no im2col at all
 *
 * Split the zero-padded input into stride_h*stride_w phase planes,
 *   P[a][b][i][j] = padded[i*sh + a][j*sw + b],
 * so that output pixel (oy, ox) of tap (ky, kx), which reads padded pixel
 * (oy*sh + ky*dh, ox*sw + kx*dw), reads phase (ky*dh % sh, kx*dw % sw) at
 * (oy + ky*dh / sh, ox + kx*dw / sw): a stride-1 shift. With stride 1
 * there is one phase, the padded input itself. Laid out at the phase-plane
 * width wp, output rows [r0, r0 + nr) of one tap are then a plain matrix
 * product against a contiguous window of every channel's plane of that
 * phase:
 *   Wk (cout/g, cin/g) @ P[phase][:][r0 + dy][dx : + nr*wp] (ldb hp*wp)
 * accumulated over the kh*kw taps into yw (cout/g, nr*wp). The columns
 * ox >= OW of yw are junk (they straddle two rows) and are dropped when yw
 * is copied into y. sgemm reads the input straight from the phase planes,
 * so the only extra memory traffic is that copy (about the input's size,
 * instead of kh*kw times the output's columns for im2col). The junk
 * columns of the last row read up to kw*dw/sw floats past the last plane,
 * hence the slack. */

typedef struct shift_job {
    const ic_conv2d_params *p;
    const shift_plan *s;
    const ic_tensor *x;
    float *xp;
    int n, c0, nc;
    /* copy-out of one row tile */
    const float *yw;
    float *yg;
    const float *bias;
    int r0, nr, ow;
    size_t ohw;
} shift_job;

/* Channels [lo, hi) of the pack. Input rows are visited in order and each
 * is split into its stride_w column phases while it is in L1, so the input
 * is read from memory once, not once per phase. */
static void shifted_pack_range(void *ctx, int lo, int hi)
{
    const shift_job *j = ctx;
    const ic_conv2d_params *p = j->p;
    const int h = j->x->h, w = j->x->w, sh = p->stride_h, sw = p->stride_w;
    const int hp = j->s->hp, wp = j->s->wp;
    const size_t phase_stride = (size_t)j->nc * j->s->plane;
    for (int c = lo; c < hi; c++) {
        const float *xc = ic_tensor_at(j->x, j->n, j->c0 + c);
        float *dc = j->xp + (size_t)c * j->s->plane;
        for (int i = 0; i < hp; i++)
            for (int a = 0; a < sh; a++) {
                const int iy = i * sh + a - p->pad_h;
                const float *src = iy >= 0 && iy < h ? xc + (size_t)iy * w : NULL;
                for (int b = 0; b < sw; b++) {
                    int cl, ch;
                    valid_cols(b - p->pad_w, sw, w, wp, &cl, &ch);
                    float *dst = dc + (size_t)(a * sw + b) * phase_stride + (size_t)i * wp;
                    pack_row(dst, src, sw, b - p->pad_w, cl, ch, wp);
                }
            }
    }
}

/* Output channels [lo, hi) of one row tile: drop the junk columns of yw
 * into y and apply bias + ReLU while the row is in cache. */
static void shifted_copy_range(void *ctx, int lo, int hi)
{
    const shift_job *j = ctx;
    const size_t cols = (size_t)j->nr * (size_t)j->s->wp;
    for (int co = lo; co < hi; co++)
        for (int r = 0; r < j->nr; r++) {
            float *dst = j->yg + (size_t)co * j->ohw + (size_t)(j->r0 + r) * j->ow;
            memcpy(dst, j->yw + (size_t)co * cols + (size_t)r * j->s->wp,
                   (size_t)j->ow * sizeof *dst);
            epilogue(dst, (size_t)j->ow, j->bias ? j->bias[co] : 0.0f, j->p->relu);
        }
}

static void forward_shifted(ic_tensor *y, const ic_tensor *x, const float *weight,
                            const float *bias, const ic_conv2d_params *p, float *ws)
{
    const int g_in = p->cin / p->groups, g_out = p->cout / p->groups;
    const int oh = y->h, ow = y->w, kk = p->kh * p->kw;
    shift_plan s;
    shifted_plan(&s, p, oh, ow); /* fits: the caller allocated its workspace */
    const size_t ohw = ic_tensor_plane(y), used = (size_t)s.phases * g_in * s.plane;
    const int threads = openblas_get_num_threads();
    float *xp = ws, *wk = ws + s.xp, *yw = wk + s.wk;
    /* the slack past the last plane is only ever read by junk columns,
     * but zero it so that they stay finite */
    memset(xp + used, 0, (s.xp - used) * sizeof *xp);
    for (int g = 0; g < p->groups; g++) {
        /* (cout/g, cin/g, kh, kw) -> (kh*kw, cout/g, cin/g) */
        const float *wg = weight + (size_t)g * g_out * g_in * kk;
        for (int co = 0; co < g_out; co++)
            for (int ci = 0; ci < g_in; ci++)
                for (int k = 0; k < kk; k++)
                    wk[((size_t)k * g_out + co) * g_in + ci] = wg[((size_t)co * g_in + ci) * kk + k];
        for (int n = 0; n < x->n; n++) {
            shift_job job = {.p = p, .s = &s, .x = x, .xp = xp, .n = n, .c0 = g * g_in,
                             .nc = g_in, .yg = ic_tensor_at(y, n, g * g_out),
                             .bias = bias ? bias + (size_t)g * g_out : NULL, .ow = ow,
                             .ohw = ohw, .yw = yw};
            ic_parallel_for(shifted_pack_range, &job, g_in,
                            ic_parallel_threads(used, IC_PARALLEL_MIN_FLOATS, threads));
            for (int r0 = 0; r0 < oh; r0 += s.rows) {
                const int nr = oh - r0 < s.rows ? oh - r0 : s.rows;
                const int cols = nr * s.wp;
                /* a tap valid on the whole tile goes first and sets yw
                 * (beta 0); without one, yw starts from zero */
                int first = -1;
                for (int k = 0; k < kk && first < 0; k++) {
                    int lo, hi;
                    tap_rows(p, k / p->kw, x->h, oh, &lo, &hi);
                    if (lo <= r0 && hi >= r0 + nr)
                        first = k;
                }
                if (first < 0)
                    memset(yw, 0, (size_t)g_out * (size_t)cols * sizeof *yw);
                for (int i = -1; i < kk; i++) {
                    const int k = i < 0 ? first : i;
                    if (k < 0 || (i >= 0 && k == first))
                        continue;
                    int lo, hi;
                    tap_rows(p, k / p->kw, x->h, oh, &lo, &hi);
                    lo = lo > r0 ? lo : r0;
                    hi = hi < r0 + nr ? hi : r0 + nr;
                    if (lo >= hi)
                        continue; /* only padding under this tap here */
                    const int ty = k / p->kw * p->dil_h, tx = k % p->kw * p->dil_w;
                    const int phase = ty % p->stride_h * p->stride_w + tx % p->stride_w;
                    const float *b = xp + (size_t)phase * g_in * s.plane +
                                     (size_t)(lo + ty / p->stride_h) * s.wp + tx / p->stride_w;
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, g_out,
                                (hi - lo) * s.wp, g_in, 1.0f, wk + (size_t)k * g_out * g_in, g_in,
                                b, (int)s.plane, i < 0 ? 0.0f : 1.0f,
                                yw + (size_t)(lo - r0) * s.wp, cols);
                }
                job.r0 = r0;
                job.nr = nr;
                ic_parallel_for(shifted_copy_range, &job, g_out,
                                ic_parallel_threads((size_t)g_out * cols, IC_PARALLEL_MIN_FLOATS,
                                                    threads));
            }
        }
    }
}

/* ------------------------------------------------------------------------
 * Depthwise (groups == cin == cout): direct, one output row at a time */

/* out[i] += wv * src[i * s] for i in [0, n). The stride-1 case is a
 * separate loop so that the compiler vectorises it. */
static void axpy_row(float *restrict out, const float *restrict src, float wv, int s, int n)
{
    if (s == 1) {
        for (int i = 0; i < n; i++)
            out[i] += wv * src[i];
    } else {
        for (int i = 0; i < n; i++)
            out[i] += wv * src[(size_t)i * s];
    }
}

typedef struct dw_job {
    ic_tensor *y;
    const ic_tensor *x;
    const float *weight, *bias;
    const ic_conv2d_params *p;
} dw_job;

/* Most taps the vector kernel takes (7x7); bigger kernels use axpy rows. */
#define DW_MAX_TAPS 49
/* Edge columns per row up to which a per-pixel loop beats one short axpy
 * per tap (5x5 convs have 4; ASPP's dilation 12 on 64 columns has 24). */
#define DW_EDGE_PIXELS 8

/* out[i] += sum_t w[t] * src[t][i] for i in [0, n): every tap's source row
 * is valid over the whole range, so the sum stays in two vector registers
 * per 2*IC_VF outputs and out is read and written once, not once per tap
 * as axpy rows do (those made depthwise convs a fifth of the shipped
 * model's forward). */
static void dw_taps_row(float *restrict out, const float *const *src, const float *w, int taps,
                        int n)
{
    int i = 0;
    for (; i + 2 * IC_VF <= n; i += 2 * IC_VF) {
        ic_vf a0 = ic_vload(out + i), a1 = ic_vload(out + i + IC_VF);
        for (int t = 0; t < taps; t++) {
            a0 += w[t] * ic_vload(src[t] + i);
            a1 += w[t] * ic_vload(src[t] + i + IC_VF);
        }
        ic_vstore(out + i, a0);
        ic_vstore(out + i + IC_VF, a1);
    }
    for (; i + IC_VF <= n; i += IC_VF) {
        ic_vf a = ic_vload(out + i);
        for (int t = 0; t < taps; t++)
            a += w[t] * ic_vload(src[t] + i);
        ic_vstore(out + i, a);
    }
    /* the last < IC_VF columns: one short row per tap (a per-column sum
     * over taps compiles to gathers) */
    for (int t = 0; t < taps && i < n; t++)
        axpy_row(out + i, src[t] + i, w[t], 1, n - i);
}

/* out[ox] += the taps of output column ox, checking each input column: for
 * the few edge columns where some kernel columns fall in the padding. */
static void dw_edge(float *out, const float *const *rows, const float *const *wrow, int nrows,
                    int ox0, int ox1, int w, const ic_conv2d_params *p)
{
    for (int ox = ox0; ox < ox1; ox++) {
        float a = out[ox];
        for (int r = 0; r < nrows; r++)
            for (int kx = 0; kx < p->kw; kx++) {
                const int ix = ox - p->pad_w + kx * p->dil_w;
                if (ix >= 0 && ix < w)
                    a += wrow[r][kx] * rows[r][ix];
            }
        out[ox] = a;
    }
}

/* One output row of a depthwise plane. With stride 1 the columns where
 * every kernel column reads inside the input (the interior) go through
 * dw_taps_row and the few edge columns through dw_edge; other strides add
 * one axpy row per tap. */
static void depthwise_row(float *out, const float *xc, const float *wc, int oy, int h, int w,
                          int ow, const ic_conv2d_params *p)
{
    int ilo = 0, ihi = ow; /* interior: valid for every kx */
    for (int kx = 0; kx < p->kw; kx++) {
        int lo, hi;
        valid_cols(kx * p->dil_w - p->pad_w, p->stride_w, w, ow, &lo, &hi);
        ilo = lo > ilo ? lo : ilo;
        ihi = hi < ihi ? hi : ihi;
    }
    if (p->stride_w == 1 && p->kh * p->kw <= DW_MAX_TAPS && ilo < ihi) {
        const float *src[DW_MAX_TAPS], *rows[DW_MAX_TAPS], *wrow[DW_MAX_TAPS];
        float wt[DW_MAX_TAPS];
        int taps = 0, nrows = 0;
        for (int ky = 0; ky < p->kh; ky++) {
            const int iy = oy * p->stride_h - p->pad_h + ky * p->dil_h;
            if (iy < 0 || iy >= h)
                continue;
            rows[nrows] = xc + (size_t)iy * w;
            wrow[nrows] = wc + ky * p->kw;
            for (int kx = 0; kx < p->kw; kx++) {
                /* output column ilo reads input column ilo + xoff >= 0 */
                src[taps] = rows[nrows] + (ilo + kx * p->dil_w - p->pad_w);
                wt[taps++] = wrow[nrows][kx];
            }
            nrows++;
        }
        if (!nrows)
            return;
        dw_taps_row(out + ilo, src, wt, taps, ihi - ilo);
        if (ilo + (ow - ihi) <= DW_EDGE_PIXELS) {
            dw_edge(out, rows, wrow, nrows, 0, ilo, w, p);
            dw_edge(out, rows, wrow, nrows, ihi, ow, w, p);
            return;
        }
        /* wide edges (a big dilation on a small map): one short row per tap */
        for (int r = 0; r < nrows; r++)
            for (int kx = 0; kx < p->kw; kx++) {
                const int xoff = kx * p->dil_w - p->pad_w;
                int lo, hi;
                valid_cols(xoff, 1, w, ow, &lo, &hi);
                if (lo < ilo)
                    axpy_row(out + lo, rows[r] + (lo + xoff), wrow[r][kx], 1, ilo - lo);
                if (ihi < hi)
                    axpy_row(out + ihi, rows[r] + (ihi + xoff), wrow[r][kx], 1, hi - ihi);
            }
        return;
    }
    for (int ky = 0; ky < p->kh; ky++) {
        const int iy = oy * p->stride_h - p->pad_h + ky * p->dil_h;
        if (iy < 0 || iy >= h)
            continue;
        for (int kx = 0; kx < p->kw; kx++) {
            const int xoff = kx * p->dil_w - p->pad_w;
            int lo, hi;
            valid_cols(xoff, p->stride_w, w, ow, &lo, &hi);
            if (lo < hi) /* output column lo reads input column lo*s + xoff >= 0 */
                axpy_row(out + lo, xc + (size_t)iy * w + (lo * p->stride_w + xoff),
                         wc[ky * p->kw + kx], p->stride_w, hi - lo);
        }
    }
}

/* Planes [lo, hi), numbered n * cin + c. */
static void depthwise_range(void *ctx, int lo, int hi)
{
    const dw_job *j = ctx;
    const ic_conv2d_params *p = j->p;
    const int h = j->x->h, w = j->x->w, oh = j->y->h, ow = j->y->w, kk = p->kh * p->kw;
    for (int u = lo; u < hi; u++) {
        const int n = u / p->cin, c = u % p->cin;
        const float *xc = ic_tensor_at(j->x, n, c);
        const float *wc = j->weight + (size_t)c * kk;
        float *yc = ic_tensor_at(j->y, n, c);
        const float b = j->bias ? j->bias[c] : 0.0f;
        for (int oy = 0; oy < oh; oy++) {
            float *out = yc + (size_t)oy * ow;
            for (int ox = 0; ox < ow; ox++)
                out[ox] = b;
            depthwise_row(out, xc, wc, oy, h, w, ow, p);
            if (p->relu)
                for (int ox = 0; ox < ow; ox++)
                    out[ox] = out[ox] > 0.0f ? out[ox] : 0.0f;
        }
    }
}

/* Each plane is independent: split them over threads. */
static void forward_depthwise(ic_tensor *y, const ic_tensor *x, const float *weight,
                              const float *bias, const ic_conv2d_params *p)
{
    dw_job j = {y, x, weight, bias, p};
    ic_parallel_for(depthwise_range, &j, x->n * p->cin,
                    ic_parallel_threads_for(ic_tensor_numel(y) * (size_t)(p->kh * p->kw)));
}

/* ------------------------------------------------------------------------
 * Public entry points */

int ic_conv2d_forward(ic_tensor *y, const ic_tensor *x, const float *weight, const float *bias,
                      const ic_conv2d_params *p, float *ws)
{
    int oh, ow;
    int rc = check_args(y, x, weight, p, &oh, &ow);
    if (rc)
        return rc;
    switch (choose_path(p, x->h, oh, ow)) {
    case PATH_1X1:
        forward_1x1(y, x, weight, bias, p);
        break;
    case PATH_DEPTHWISE:
        forward_depthwise(y, x, weight, bias, p);
        break;
    case PATH_SHIFTED:
        if (!ws)
            return ic_error_set(IC_EINVAL, "conv2d: workspace of %zu floats required",
                                ic_conv2d_workspace_floats(p, x->h, x->w));
        forward_shifted(y, x, weight, bias, p, ws);
        break;
    case PATH_THIN:
        if (!ws)
            return ic_error_set(IC_EINVAL, "conv2d: workspace of %zu floats required",
                                ic_conv2d_workspace_floats(p, x->h, x->w));
        forward_thin(y, x, weight, bias, p, ws);
        break;
    case PATH_IM2COL:
        if (!ws)
            return ic_error_set(IC_EINVAL, "conv2d: workspace of %zu floats required",
                                ic_conv2d_workspace_floats(p, x->h, x->w));
        forward_im2col(y, x, weight, bias, p, ws);
        break;
    }
    return 0;
}

int ic_conv2d_forward_ref(ic_tensor *y, const ic_tensor *x, const float *weight, const float *bias,
                          const ic_conv2d_params *p)
{
    int oh, ow;
    int rc = check_args(y, x, weight, p, &oh, &ow);
    if (rc)
        return rc;
    const int g_in = p->cin / p->groups, g_out = p->cout / p->groups;
    for (int n = 0; n < x->n; n++)
        for (int co = 0; co < p->cout; co++) {
            const int g = co / g_out;
            float *yc = ic_tensor_at(y, n, co);
            for (int oy = 0; oy < oh; oy++)
                for (int ox = 0; ox < ow; ox++) {
                    double acc = bias ? bias[co] : 0.0;
                    for (int ci = 0; ci < g_in; ci++) {
                        const float *xc = ic_tensor_at(x, n, g * g_in + ci);
                        const float *wc = weight + ((size_t)co * g_in + ci) * p->kh * p->kw;
                        for (int ky = 0; ky < p->kh; ky++) {
                            const int iy = oy * p->stride_h - p->pad_h + ky * p->dil_h;
                            if (iy < 0 || iy >= x->h)
                                continue;
                            for (int kx = 0; kx < p->kw; kx++) {
                                const int ix = ox * p->stride_w - p->pad_w + kx * p->dil_w;
                                if (ix < 0 || ix >= x->w)
                                    continue;
                                acc += (double)wc[ky * p->kw + kx] *
                                       (double)xc[(size_t)iy * x->w + ix];
                            }
                        }
                    }
                    if (p->relu && acc < 0.0)
                        acc = 0.0;
                    yc[(size_t)oy * ow + ox] = (float)acc;
                }
        }
    return 0;
}

/* ------------------------------------------------------------------------
 * Backward */

/* Output columns [lo, hi) whose input column ox*s - pad + k*dil lies in
 * [0, w): the branch-free interior of a row. */
static void bwd_valid(int ow, int s, int pad, int kd, int w, int *lo, int *hi)
{
    int off = kd - pad; /* ix = ox * s + off */
    int l = off >= 0 ? 0 : (-off + s - 1) / s;
    int h = w - 1 - off < 0 ? 0 : (w - 1 - off) / s + 1;
    if (h > ow)
        h = ow;
    if (l > h)
        l = h;
    *lo = l;
    *hi = h;
}

/* Columns of one group of one image for the backward: col (K, OH*OW) with
 * K = cin_g * kh * kw, zero where the window reads padding. */
static void im2col_full(float *col, const float *x, int cin_g, int h, int w,
                        const ic_conv2d_params *p, int oh, int ow)
{
    for (int c = 0; c < cin_g; c++)
        for (int ky = 0; ky < p->kh; ky++)
            for (int kx = 0; kx < p->kw; kx++) {
                float *dst = col + ((size_t)(c * p->kh + ky) * p->kw + kx) * (size_t)oh * ow;
                const float *src = x + (size_t)c * h * w;
                int lo, hi, off = kx * p->dil_w - p->pad_w, s = p->stride_w;
                bwd_valid(ow, s, p->pad_w, kx * p->dil_w, w, &lo, &hi);
                for (int oy = 0; oy < oh; oy++) {
                    int iy = oy * p->stride_h - p->pad_h + ky * p->dil_h;
                    float *d = dst + (size_t)oy * ow;
                    if (iy < 0 || iy >= h) {
                        memset(d, 0, (size_t)ow * sizeof *d);
                        continue;
                    }
                    const float *row = src + (size_t)iy * w + off;
                    for (int ox = 0; ox < lo; ox++)
                        d[ox] = 0.0f;
                    if (s == 1)
                        memcpy(d + lo, row + lo, (size_t)(hi - lo) * sizeof *d);
                    else
                        for (int ox = lo; ox < hi; ox++)
                            d[ox] = row[ox * s];
                    for (int ox = hi; ox < ow; ox++)
                        d[ox] = 0.0f;
                }
            }
}

/* The adjoint of im2col_full: dx += scatter of dcol. */
static void col2im_add(float *dx, const float *dcol, int cin_g, int h, int w,
                       const ic_conv2d_params *p, int oh, int ow)
{
    for (int c = 0; c < cin_g; c++)
        for (int ky = 0; ky < p->kh; ky++)
            for (int kx = 0; kx < p->kw; kx++) {
                const float *src = dcol + ((size_t)(c * p->kh + ky) * p->kw + kx) * (size_t)oh * ow;
                float *dst = dx + (size_t)c * h * w;
                int lo, hi, off = kx * p->dil_w - p->pad_w, s = p->stride_w;
                bwd_valid(ow, s, p->pad_w, kx * p->dil_w, w, &lo, &hi);
                for (int oy = 0; oy < oh; oy++) {
                    int iy = oy * p->stride_h - p->pad_h + ky * p->dil_h;
                    if (iy < 0 || iy >= h)
                        continue;
                    float *restrict row = dst + (size_t)iy * w + off;
                    const float *restrict g = src + (size_t)oy * ow;
                    if (s == 1)
                        for (int ox = lo; ox < hi; ox++)
                            row[ox] += g[ox];
                    else
                        for (int ox = lo; ox < hi; ox++)
                            row[ox * s] += g[ox];
                }
            }
}

/* Depthwise backward, direct: dw[c] += sum dy * x(shifted), dx[c] += w * dy(shifted).
 * Rows accumulate in float over their valid interval (vectorisable), then in
 * double across rows. */
static void depthwise_backward(ic_tensor *dx, float *dw, const ic_tensor *dy, const ic_tensor *x,
                               const float *weight, const ic_conv2d_params *p)
{
    const int h = x->h, w = x->w, oh = dy->h, ow = dy->w, s = p->stride_w;
    for (int n = 0; n < x->n; n++)
        for (int c = 0; c < x->c; c++) {
            const float *xp = ic_tensor_at(x, n, c), *g = ic_tensor_at(dy, n, c);
            float *dxp = dx ? ic_tensor_at(dx, n, c) : NULL;
            const float *wc = weight + (size_t)c * p->kh * p->kw;
            for (int ky = 0; ky < p->kh; ky++)
                for (int kx = 0; kx < p->kw; kx++) {
                    double acc = 0;
                    const float wv = wc[ky * p->kw + kx];
                    int lo, hi, off = kx * p->dil_w - p->pad_w;
                    bwd_valid(ow, s, p->pad_w, kx * p->dil_w, w, &lo, &hi);
                    for (int oy = 0; oy < oh; oy++) {
                        int iy = oy * p->stride_h - p->pad_h + ky * p->dil_h;
                        if (iy < 0 || iy >= h)
                            continue;
                        const float *restrict xr = xp + (size_t)iy * w + off;
                        const float *restrict gr = g + (size_t)oy * ow;
                        float racc = 0.0f;
                        if (s == 1) {
                            for (int ox = lo; ox < hi; ox++)
                                racc += gr[ox] * xr[ox];
                            if (dxp) {
                                float *restrict dr = dxp + (size_t)iy * w + off;
                                for (int ox = lo; ox < hi; ox++)
                                    dr[ox] += wv * gr[ox];
                            }
                        } else {
                            for (int ox = lo; ox < hi; ox++)
                                racc += gr[ox] * xr[ox * s];
                            if (dxp) {
                                float *dr = dxp + (size_t)iy * w + off;
                                for (int ox = lo; ox < hi; ox++)
                                    dr[ox * s] += wv * gr[ox];
                            }
                        }
                        acc += racc;
                    }
                    if (dw)
                        dw[(size_t)c * p->kh * p->kw + ky * p->kw + kx] += (float)acc;
                }
        }
}

/* The backward's own path choice: the forward's shifted-row path has no
 * backward counterpart, so everything that is not 1x1 or depthwise goes
 * through full-image columns. */
enum bwd_path { BWD_1X1, BWD_DEPTHWISE, BWD_IM2COL };

static enum bwd_path backward_path(const ic_conv2d_params *p)
{
    if (p->kh == 1 && p->kw == 1 && p->stride_h == 1 && p->stride_w == 1 && p->pad_h == 0 &&
        p->pad_w == 0)
        return BWD_1X1;
    if (p->groups == p->cin && p->cout == p->cin)
        return BWD_DEPTHWISE;
    return BWD_IM2COL;
}

size_t ic_conv2d_backward_workspace_floats(const ic_conv2d_params *p, int h, int w)
{
    int oh = 0, ow = 0;
    if (ic_conv2d_out_size(p, h, w, &oh, &ow))
        return 0;
    if (backward_path(p) != BWD_IM2COL)
        return 0;
    size_t k = (size_t)(p->cin / p->groups) * (size_t)p->kh * (size_t)p->kw;
    return 2 * k * (size_t)oh * (size_t)ow;
}

int ic_conv2d_backward(ic_tensor *dx, float *dw, float *db, const ic_tensor *dy, const ic_tensor *x,
                       const float *weight, const ic_conv2d_params *p, float *ws)
{
    int oh, ow;
    int rc = ic_conv2d_out_size(p, x->h, x->w, &oh, &ow);
    if (rc)
        return rc;
    if (!dy || !x || !weight || dy->n != x->n || dy->c != p->cout || dy->h != oh || dy->w != ow ||
        x->c != p->cin || (dx && !ic_tensor_same_shape(dx, x)))
        return ic_error_set(IC_ESHAPE, "conv2d backward: shapes do not match the parameters");
    const size_t ohw = (size_t)oh * ow;
    if (db)
        for (int n = 0; n < dy->n; n++)
            for (int c = 0; c < dy->c; c++) {
                const float *g = ic_tensor_at(dy, n, c);
                double s = 0;
                for (size_t i = 0; i < ohw; i++)
                    s += g[i];
                db[c] += (float)s;
            }
    enum bwd_path path = backward_path(p);
    if (path == BWD_DEPTHWISE) {
        depthwise_backward(dx, dw, dy, x, weight, p);
        return 0;
    }
    const int g_in = p->cin / p->groups, g_out = p->cout / p->groups;
    const int k = g_in * p->kh * p->kw;
    if (path != BWD_1X1 && !ws)
        return ic_error_set(IC_EINVAL, "conv2d backward: workspace required");
    float *col = ws, *dcol = ws ? ws + (size_t)k * ohw : NULL;
    for (int n = 0; n < x->n; n++)
        for (int g = 0; g < p->groups; g++) {
            const float *xg = ic_tensor_at(x, n, g * g_in);
            const float *dyg = ic_tensor_at(dy, n, g * g_out);
            const float *wg = weight + (size_t)g * g_out * k;
            const float *cols = xg;
            if (path != BWD_1X1) {
                im2col_full(col, xg, g_in, x->h, x->w, p, oh, ow);
                cols = col;
            }
            /* dW (g_out, k) += dY (g_out, ohw) @ col^T (ohw, k) */
            if (dw)
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, g_out, k, (int)ohw, 1.0f, dyg,
                            (int)ohw, cols, (int)ohw, 1.0f, dw + (size_t)g * g_out * k, k);
            if (!dx)
                continue;
            float *dxg = ic_tensor_at(dx, n, g * g_in);
            if (path == BWD_1X1) {
                /* dX (k, ohw) += W^T (k, g_out) @ dY (g_out, ohw) */
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, k, (int)ohw, g_out, 1.0f, wg, k,
                            dyg, (int)ohw, 1.0f, dxg, (int)ohw);
            } else {
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, k, (int)ohw, g_out, 1.0f, wg, k,
                            dyg, (int)ohw, 0.0f, dcol, (int)ohw);
                col2im_add(dxg, dcol, g_in, x->h, x->w, p, oh, ow);
            }
        }
    return 0;
}

int ic_conv2d_backward_ref(ic_tensor *dx, float *dw, float *db, const ic_tensor *dy,
                           const ic_tensor *x, const float *weight, const ic_conv2d_params *p)
{
    int oh, ow;
    int rc = ic_conv2d_out_size(p, x->h, x->w, &oh, &ow);
    if (rc)
        return rc;
    const int g_in = p->cin / p->groups, g_out = p->cout / p->groups;
    for (int n = 0; n < x->n; n++)
        for (int co = 0; co < p->cout; co++) {
            int g = co / g_out;
            for (int oy = 0; oy < oh; oy++)
                for (int ox = 0; ox < ow; ox++) {
                    float gv = ic_tensor_at(dy, n, co)[(size_t)oy * ow + ox];
                    if (db)
                        db[co] += gv;
                    for (int ci = 0; ci < g_in; ci++)
                        for (int ky = 0; ky < p->kh; ky++)
                            for (int kx = 0; kx < p->kw; kx++) {
                                int iy = oy * p->stride_h - p->pad_h + ky * p->dil_h;
                                int ix = ox * p->stride_w - p->pad_w + kx * p->dil_w;
                                if (iy < 0 || iy >= x->h || ix < 0 || ix >= x->w)
                                    continue;
                                size_t wi = (((size_t)co * g_in + ci) * p->kh + ky) * p->kw + kx;
                                size_t xi = (size_t)iy * x->w + ix;
                                int cin = g * g_in + ci;
                                if (dw)
                                    dw[wi] += gv * ic_tensor_at(x, n, cin)[xi];
                                if (dx)
                                    ic_tensor_at(dx, n, cin)[xi] += gv * weight[wi];
                            }
                }
        }
    return 0;
}
