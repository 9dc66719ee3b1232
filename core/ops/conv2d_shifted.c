/* Shifted sgemm: no im2col at all.
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
#include <cblas.h>
#include <string.h>

#include "base/alloc.h"
#include "base/parallel.h"
#include "ops/conv2d_internal.h"

/* Fills *s; returns nonzero when a size does not fit a size_t (int channel
 * counts times a phase plane can pass 2^64 for absurd parameters), and the
 * workspace query then saturates. */
int ic_conv2d_shifted_plan(ic_conv2d_shift_plan *s, const ic_conv2d_params *p, int oh, int ow)
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

typedef struct shift_job {
    const ic_conv2d_params *p;
    const ic_conv2d_shift_plan *s;
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
                    ic_conv2d_valid_cols(b - p->pad_w, sw, w, wp, &cl, &ch);
                    float *dst = dc + (size_t)(a * sw + b) * phase_stride + (size_t)i * wp;
                    ic_conv2d_pack_row(dst, src, sw, b - p->pad_w, cl, ch, wp);
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
            ic_conv2d_epilogue(dst, (size_t)j->ow, j->bias ? j->bias[co] : 0.0f, j->p->relu);
        }
}

void ic_conv2d_forward_shifted(ic_tensor *y, const ic_tensor *x, const float *weight,
                               const float *bias, const ic_conv2d_params *p, float *ws)
{
    const int g_in = p->cin / p->groups, g_out = p->cout / p->groups;
    const int oh = y->h, ow = y->w, kk = p->kh * p->kw;
    ic_conv2d_shift_plan s;
    ic_conv2d_shifted_plan(&s, p, oh, ow); /* fits: the caller allocated its workspace */
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
                    ic_conv2d_tap_rows(p, k / p->kw, x->h, oh, &lo, &hi);
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
                    ic_conv2d_tap_rows(p, k / p->kw, x->h, oh, &lo, &hi);
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
