/* The paths that are one sgemm per image and group: 1x1 stride 1 (on the
 * input as it is), im2col + sgemm (tiled over output rows, and for a huge K
 * over input channels, so the column buffer stays within
 * IC_CONV2D_WS_BUDGET), and the thin K (im2col + ic_gemm_thin with bias
 * and ReLU fused). im2col copies whole input row segments (memcpy where the
 * stride is 1), writes only the padding edges as zeros, and is split over
 * the OpenBLAS thread count. */
#include <cblas.h>
#include <string.h>

#include "base/parallel.h"
#include "ops/conv2d_internal.h"
#include "ops/gemm_thin.h"

/* Smallest im2col output tile whose bias + ReLU pass is split over threads. */
#define IC_EPILOGUE_PARALLEL_FLOATS ((size_t)1 << 20)

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
ic_conv2d_tile_plan ic_conv2d_im2col_plan(const ic_conv2d_params *p, int oh, int ow)
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
    ic_conv2d_tile_plan t = {(int)rows, (int)chans};
    return t;
}
/* Column buffers of the thin path, one per thread: at most this many
 * threads, and about IC_THIN_COLS output columns per tile. */
#define IC_THIN_SLOTS 4
#define IC_THIN_COLS 2048

/* Output rows per tile of the thin path. */
int ic_conv2d_thin_rows(int oh, int ow)
{
    int rows = IC_THIN_COLS / ow;
    if (rows < 1)
        rows = 1;
    return rows < oh ? rows : oh;
}

/* Column buffers of the thin path: one per thread, no more than one
 * image's row tiles (a small map is not worth a thread). */
int ic_conv2d_thin_slots(int oh, int ow)
{
    const int rows = ic_conv2d_thin_rows(oh, ow), tiles = (oh + rows - 1) / rows;
    return tiles < IC_THIN_SLOTS ? tiles : IC_THIN_SLOTS;
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
        ic_conv2d_epilogue(j->y + (size_t)co * j->ld, j->len, j->bias ? j->bias[co] : 0.0f,
                           j->relu);
}

/* ------------------------------------------------------------------------
 * 1x1 stride 1: W (cout/g, cin/g) @ X (cin/g, H*W) -> Y (cout/g, H*W) */

void ic_conv2d_forward_1x1(ic_tensor *y, const ic_tensor *x, const float *weight, const float *bias,
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
void ic_conv2d_pack_row(float *restrict dst, const float *restrict src, int s, int off, int cl,
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

void ic_conv2d_im2col_run(const ic_conv2d_im2col_job *j)
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
        ic_conv2d_valid_cols(xoff, p->stride_w, w, ow, &lo, &hi);
        for (int r = 0; r < j->nr; r++, dst += ow) {
            const int iy = (j->r0 + r) * p->stride_h - p->pad_h + ky * p->dil_h;
            ic_conv2d_pack_row(dst, iy >= 0 && iy < h ? xc + (size_t)iy * w : NULL, p->stride_w,
                               xoff, lo, hi, ow);
        }
    }
}

static void im2col_range(void *ctx, int lo, int hi)
{
    ic_conv2d_im2col_job j = *(const ic_conv2d_im2col_job *)ctx;
    j.k1 = j.k0 + hi;
    j.k0 += lo;
    ic_conv2d_im2col_run(&j);
}

/* Fills the whole column matrix, split over up to `threads` threads.
 * Why threads here: sgemm runs on all OpenBLAS threads, and a
 * single-threaded im2col would otherwise cost as much as the sgemm for
 * layers with few output channels. Small jobs are not worth a thread
 * start. */
static void im2col_parallel(const ic_conv2d_im2col_job *all, int threads)
{
    const size_t total = (size_t)(all->k1 - all->k0) * (size_t)all->nr * (size_t)all->ow;
    ic_conv2d_im2col_job job = *all;
    ic_parallel_for(im2col_range, &job, all->k1 - all->k0,
                    ic_parallel_threads(total, IC_PARALLEL_MIN_FLOATS, threads));
}

void ic_conv2d_forward_im2col(ic_tensor *y, const ic_tensor *x, const float *weight,
                              const float *bias, const ic_conv2d_params *p, float *ws)
{
    const int g_in = p->cin / p->groups, g_out = p->cout / p->groups;
    const int oh = y->h, ow = y->w, kk = p->kh * p->kw;
    const int k = g_in * kk;
    const size_t ohw = ic_tensor_plane(y), plane = ic_tensor_plane(x);
    const ic_conv2d_tile_plan t = ic_conv2d_im2col_plan(p, oh, ow);
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
                    const ic_conv2d_im2col_job job = {
                        ws, xg + (size_t)c0 * plane, p, x->h, x->w, ow, r0, nr, 0, nc * kk};
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
                const ic_conv2d_im2col_job job = {
                    col, ic_tensor_at(j->x, n, g * g_in), p, j->x->h, j->x->w, ow, r0, nr, 0, k};
                ic_conv2d_im2col_run(&job);
                ic_gemm_thin(g_out, nr * ow, k, j->weight + (size_t)g * g_out * k, k, col, nr * ow,
                             j->bias ? j->bias + (size_t)g * g_out : NULL, p->relu,
                             ic_tensor_at(j->y, n, g * g_out) + (size_t)r0 * ow, (int)ohw);
            }
        }
    }
}

void ic_conv2d_forward_thin(ic_tensor *y, const ic_tensor *x, const float *weight,
                            const float *bias, const ic_conv2d_params *p, float *ws)
{
    const int oh = y->h, ow = y->w, rows = ic_conv2d_thin_rows(oh, ow);
    const size_t k = (size_t)(p->cin / p->groups) * (size_t)p->kh * (size_t)p->kw;
    thin_job j = {.y = y,
                  .x = x,
                  .weight = weight,
                  .bias = bias,
                  .p = p,
                  .ws = ws,
                  .slot = k * (size_t)rows * (size_t)ow,
                  .rows = rows,
                  .tiles_per_image = (oh + rows - 1) / rows};
    j.tiles = j.tiles_per_image * x->n;
    int threads = openblas_get_num_threads();
    if (threads > ic_conv2d_thin_slots(oh, ow))
        threads = ic_conv2d_thin_slots(oh, ow);
    /* each part needs enough output to be worth a thread start */
    j.parts = ic_parallel_threads(ic_tensor_numel(y), IC_PARALLEL_MIN_FLOATS, threads);
    if (j.parts > j.tiles)
        j.parts = j.tiles;
    ic_parallel_for(thin_part, &j, j.parts, j.parts);
}
