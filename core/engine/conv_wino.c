/* Winograd F(4x4, 3x3) for 3x3 stride-1 convolutions with "same" padding
 * (pad == dilation), dilated ones included.
 *
 * A dilation d splits the image into d x d phases (pixels (a + d i, b + d j))
 * and each output phase is an undilated 3x3 convolution of the same input
 * phase, so tiles are simply gathered and scattered at stride d: no copy.
 * Per tile of 4x4 outputs and per input block, the 6x6 input patch d (zero
 * outside the image, a pending affine applied to the real pixels) becomes
 * V = B^T d B; per output block, the 36 products M[xi] = sum over input
 * channels of V[xi] U[xi] are 36 matrix products (tiles x cin by cin x cout)
 * that run on the same register tile as the direct path, with the
 * weights U = G g G^T transformed once at load; the output transform
 * A^T M A gives the 4x4 outputs, written out with the statistics, the
 * scale/shift, the residual and ReLU fused. That is 4x fewer
 * multiplications than the direct product (36 per 16 outputs and channel
 * pair instead of 144); docs/bench-ops.md gives the speed and the measured
 * error against the direct path.
 *
 * Threads split the tiles; each thread transforms blocks of WINO_T tiles
 * into its own V and M buffers: one register tile, so that a block's V and
 * M (36 x 14 pixels x the channels, 0.5 MiB each at 256 channels) stay in
 * L2 between the transforms and the products, while U streams. */
#include <math.h>
#include <string.h>

#include "base/alloc.h"
#include "base/err.h"
#include "base/parallel.h"
#include "engine/conv_internal.h"

/* Tiles per block. Blocks of 8 MiB of V and M (64 to 455 tiles) ran R-52
 * at 512x1024 8% slower at one thread and 3% at two, the shipped network
 * 6% slower at both (docs/benchmarks.md): the transforms' V and M went out
 * to L3 and back, which costs more than re-reading U per block. */
#define WINO_T IC_KERN_MR

int ic_eng_wino_pack(ic_eng_conv *cv, const float *weight)
{
    const ic_conv2d_params *p = &cv->p;
    const size_t cin16 = (size_t)cv->cinb * 16;
    const size_t n = 36 * (size_t)cv->pairs * cin16 * IC_KERN_NR;
    cv->u = ic_malloc_aligned(n * sizeof *cv->u);
    if (!cv->u)
        return ic_error_set(IC_ENOMEM, "engine: out of memory for Winograd weights");
    memset(cv->u, 0, n * sizeof *cv->u);
    static const double G[6][3] = {{1.0 / 4, 0, 0},
                                   {-1.0 / 6, -1.0 / 6, -1.0 / 6},
                                   {-1.0 / 6, 1.0 / 6, -1.0 / 6},
                                   {1.0 / 24, 1.0 / 12, 1.0 / 6},
                                   {1.0 / 24, -1.0 / 12, 1.0 / 6},
                                   {0, 0, 1}};
    for (int co = 0; co < p->cout; co++)
        for (int ci = 0; ci < p->cin; ci++) {
            const float *g = weight + ((size_t)co * p->cin + ci) * 9;
            double t[6][3]; /* G g */
            for (int r = 0; r < 6; r++)
                for (int c = 0; c < 3; c++)
                    t[r][c] = G[r][0] * g[c] + G[r][1] * g[3 + c] + G[r][2] * g[6 + c];
            for (int r = 0; r < 6; r++)
                for (int s = 0; s < 6; s++) {
                    const double v = t[r][0] * G[s][0] + t[r][1] * G[s][1] + t[r][2] * G[s][2];
                    const size_t at =
                        (((size_t)(r * 6 + s) * cv->pairs + (size_t)(co / 32)) * cin16 + ci) *
                            IC_KERN_NR +
                        (size_t)(co % 32);
                    cv->u[at] = (float)v;
                }
        }
    return 0;
}

/* Tiles of one image: per phase, ceil(ph/4) x ceil(pw/4). */
typedef struct tiling {
    int dh, dw, tiles;
    int ph[64], pw[64], ty[64], tx[64], first[65]; /* per phase */
} tiling;

static int make_tiling(tiling *t, const ic_conv2d_params *p, int h, int w)
{
    t->dh = p->dil_h;
    t->dw = p->dil_w;
    if (t->dh * t->dw > 64)
        return -1;
    t->tiles = 0;
    for (int a = 0; a < t->dh; a++)
        for (int b = 0; b < t->dw; b++) {
            const int k = a * t->dw + b;
            t->ph[k] = (h - a + t->dh - 1) / t->dh;
            t->pw[k] = (w - b + t->dw - 1) / t->dw;
            t->ty[k] = (t->ph[k] + 3) / 4;
            t->tx[k] = (t->pw[k] + 3) / 4;
            t->first[k] = t->tiles;
            t->tiles += t->ty[k] * t->tx[k];
        }
    t->first[t->dh * t->dw] = t->tiles;
    return 0;
}

/* Input pixel (row, col) of tile u's patch origin (phase coordinates
 * -1, -1) and the phase. */
static void tile_origin(const tiling *t, int u, int *y0, int *x0, int *a, int *b)
{
    int k = 0;
    while (t->first[k + 1] <= u)
        k++;
    const int i = u - t->first[k];
    *a = k / t->dw;
    *b = k % t->dw;
    *y0 = (i / t->tx[k]) * 4 - 1;
    *x0 = (i % t->tx[k]) * 4 - 1;
}

size_t ic_eng_wino_ws_floats(const ic_eng_conv *cv, int h, int w, int threads)
{
    tiling tl;
    if (make_tiling(&tl, &cv->p, h, w))
        return 0;
    /* V and M per thread, plus the slack a partial register tile reads */
    return (size_t)threads *
           (36 * (size_t)(cv->cinb + cv->coutb) * 16 * (size_t)WINO_T + IC_BLK_SLACK);
}

/* B^T d in one dimension (6 vectors, stride `st` apart, in place into o). */
#define BT6(o, d)                                                                   \
    do {                                                                            \
        const ic_v16 f4 = ic_v16_set1(4.0f), f5 = ic_v16_set1(5.0f),               \
                     f2 = ic_v16_set1(2.0f);                                        \
        o[0] = f4 * d[0] - f5 * d[2] + d[4];                                        \
        o[1] = -f4 * (d[1] + d[2]) + d[3] + d[4];                                   \
        o[2] = f4 * (d[1] - d[2]) - d[3] + d[4];                                    \
        o[3] = f2 * (d[3] - d[1]) - d[2] + d[4];                                    \
        o[4] = f2 * (d[1] - d[3]) - d[2] + d[4];                                    \
        o[5] = f4 * d[1] - f5 * d[3] + d[5];                                        \
    } while (0)

/* A^T m in one dimension (6 -> 4). */
#define AT6(o, m)                                                                   \
    do {                                                                            \
        const ic_v16 f2 = ic_v16_set1(2.0f), f4 = ic_v16_set1(4.0f),               \
                     f8 = ic_v16_set1(8.0f);                                        \
        const ic_v16 s12 = m[1] + m[2], d12 = m[1] - m[2];                          \
        const ic_v16 s34 = m[3] + m[4], d34 = m[3] - m[4];                          \
        o[0] = m[0] + s12 + s34;                                                    \
        o[1] = d12 + f2 * d34;                                                      \
        o[2] = s12 + f4 * s34;                                                      \
        o[3] = d12 + f8 * d34 + m[5];                                               \
    } while (0)

typedef struct wino_job {
    const ic_eng_job *j;
    const tiling *tl;
    int T;
} wino_job;

/* V[xi][cb][slot] for tile u of image n; `act` is what is applied to the
 * pixels as they are read (0: nothing, 1: the pending affine, 2: the
 * pending affine then ReLU), a constant in each of the three copies that
 * input_transform() dispatches to, so the 36 loads carry no test (with the
 * tests inside, the calibrated modes' Winograd ran 24% slower than `none`'s
 * on the shipped network). */
static inline __attribute__((always_inline)) void
input_transform_as(const ic_eng_job *j, const tiling *tl, int u, int slot, float *V, int T,
                   const int act)
{
    const ic_tensor *x = j->x;
    const ic_blk_pend *pend = j->pend;
    const int cbn = j->cv->cinb;
    int y0, x0, a, b;
    tile_origin(tl, u, &y0, &x0, &a, &b);
    const int dh = tl->dh, dw = tl->dw;
    int iy[6], ix[6], okr[6], okc[6], interior = 1;
    for (int r = 0; r < 6; r++) {
        iy[r] = (y0 + r) * dh + a;
        okr[r] = iy[r] >= 0 && iy[r] < x->h;
        ix[r] = (x0 + r) * dw + b;
        okc[r] = ix[r] >= 0 && ix[r] < x->w;
        interior &= okr[r] & okc[r];
    }
    const size_t xi_stride = (size_t)cbn * (size_t)T * 16;
    for (int cb = 0; cb < cbn; cb++) {
        const float *xc = ic_blk_at(x, j->n, cb);
        ic_v16 pa = ic_v16_set1(1.0f), pb = {0};
        if (act) {
            const size_t at = ((size_t)j->n * (size_t)cbn + (size_t)cb) * 16;
            pa = ic_v16_load(pend->scale + at);
            pb = ic_v16_load(pend->bias + at);
        }
        ic_v16 d[6][6];
        for (int r = 0; r < 6; r++)
            for (int c = 0; c < 6; c++) {
                if (!interior && !(okr[r] && okc[c])) {
                    d[r][c] = (ic_v16){0};
                    continue;
                }
                ic_v16 v = ic_v16_load(xc + ((size_t)iy[r] * x->w + (size_t)ix[c]) * 16);
                if (act)
                    v = v * pa + pb;
                if (act == 2)
                    v = ic_v16_relu(v);
                d[r][c] = v;
            }
        ic_v16 t[6][6]; /* B^T d, column by column */
        for (int c = 0; c < 6; c++) {
            ic_v16 col[6] = {d[0][c], d[1][c], d[2][c], d[3][c], d[4][c], d[5][c]}, o[6];
            BT6(o, col);
            for (int r = 0; r < 6; r++)
                t[r][c] = o[r];
        }
        float *vb = V + ((size_t)cb * (size_t)T + (size_t)slot) * 16;
        for (int r = 0; r < 6; r++) {
            ic_v16 o[6];
            BT6(o, t[r]);
            for (int s = 0; s < 6; s++)
                ic_v16_store(vb + (size_t)(r * 6 + s) * xi_stride, o[s]);
        }
    }
}

static void input_transform(const ic_eng_job *j, const tiling *tl, int u, int slot, float *V,
                            int T)
{
    if (!j->pend)
        input_transform_as(j, tl, u, slot, V, T, 0);
    else if (!j->pend->relu)
        input_transform_as(j, tl, u, slot, V, T, 1);
    else
        input_transform_as(j, tl, u, slot, V, T, 2);
}

/* Outputs of tile u from M[xi][cb][slot], written out. */
static void output_transform(const ic_eng_job *j, const tiling *tl, int u, int slot,
                             const float *M, int T, int tid)
{
    const ic_tensor *y = j->y;
    const ic_eng_conv *cv = j->cv;
    int y0, x0, a, b;
    tile_origin(tl, u, &y0, &x0, &a, &b);
    y0 += 1;
    x0 += 1;
    const int dh = tl->dh, dw = tl->dw;
    int oy[4], ox[4], nr = 0, nc = 0;
    for (int r = 0; r < 4; r++) {
        oy[r] = (y0 + r) * dh + a;
        ox[r] = (x0 + r) * dw + b;
        nr += oy[r] < y->h;
        nc += ox[r] < y->w;
    }
    const size_t xi_stride = (size_t)cv->coutb * (size_t)T * 16;
    for (int cb = 0; cb < cv->coutb; cb++) {
        const float *mb = M + ((size_t)cb * (size_t)T + (size_t)slot) * 16;
        ic_v16 t[4][6];
        for (int c = 0; c < 6; c++) {
            ic_v16 m[6], o[4];
            for (int r = 0; r < 6; r++)
                m[r] = ic_v16_load(mb + (size_t)(r * 6 + c) * xi_stride);
            AT6(o, m);
            for (int r = 0; r < 4; r++)
                t[r][c] = o[r];
        }
        const ic_kern_out ko = ic_eng_kern_out(j, cb / 2, tid);
        const int h = cb % 2;
        const ic_v16 s = ko.scale ? ic_v16_load(ko.scale + 16 * h) : ic_v16_set1(1.0f);
        const ic_v16 bb = ic_v16_load(ko.bias + 16 * h);
        ic_v16 k = {0}, s1 = {0}, s2 = {0};
        if (ko.stats)
            k = ic_v16_load(ko.shift + 16 * h);
        float *yc = ic_blk_at(y, j->n, cb);
        const float *rc = j->o->res ? ic_blk_at(j->o->res, j->n, cb) : NULL;
        for (int r = 0; r < nr; r++) {
            ic_v16 o[4];
            AT6(o, t[r]);
            for (int c = 0; c < nc; c++) {
                const size_t at = ((size_t)oy[r] * y->w + (size_t)ox[c]) * 16;
                if (ko.stats) {
                    const ic_v16 dd = o[c] - k;
                    s1 += dd;
                    s2 += dd * dd;
                }
                ic_v16 v = o[c] * s + bb;
                if (rc)
                    v += ic_v16_load(rc + at);
                if (ko.relu)
                    v = ic_v16_relu(v);
                ic_v16_store(yc + at, v);
            }
        }
        if (ko.stats)
            for (int l = 0; l < 16; l++) {
                ko.stats[16 * h + l] += s1[l];
                ko.stats[32 + 16 * h + l] += s2[l];
            }
    }
}

static void wino_thread(void *ctx, int lo, int hi)
{
    const wino_job *wj = ctx;
    const ic_eng_job *j = wj->j;
    const ic_eng_conv *cv = j->cv;
    const tiling *tl = wj->tl;
    const int T = wj->T;
    const size_t cin16 = (size_t)cv->cinb * 16;
    for (int tid = lo; tid < hi; tid++) {
        float *V = j->ws + (size_t)tid * (36 * (size_t)(cv->cinb + cv->coutb) * 16 * (size_t)T +
                                          IC_BLK_SLACK);
        float *M = V + 36 * cin16 * (size_t)T;
        const int u0 = (int)((long long)tl->tiles * tid / j->threads);
        const int u1 = (int)((long long)tl->tiles * (tid + 1) / j->threads);
        for (int b0 = u0; b0 < u1; b0 += T) {
            const int nt = u1 - b0 < T ? u1 - b0 : T;
            for (int i = 0; i < nt; i++)
                input_transform(j, tl, b0 + i, i, V, T);
            const long off0 = 0;
            for (int xi = 0; xi < 36; xi++) {
                const float *Vx = V + (size_t)xi * cin16 * (size_t)T;
                float *Mx = M + (size_t)xi * (size_t)cv->coutb * 16 * (size_t)T;
                const float *Ux = cv->u + (size_t)xi * (size_t)cv->pairs * cin16 * IC_KERN_NR;
                for (int t0 = 0; t0 < nt; t0 += IC_KERN_MR) {
                    const int mr = nt - t0 < IC_KERN_MR ? nt - t0 : IC_KERN_MR;
                    for (int pr = 0; pr < cv->pairs; pr++) {
                        float *yb[2] = {Mx + ((size_t)(2 * pr) * T + (size_t)t0) * 16,
                                        2 * pr + 1 < cv->coutb
                                            ? Mx + ((size_t)(2 * pr + 1) * T + (size_t)t0) * 16
                                            : NULL};
                        ic_kern_tile acc;
                        ic_kern_zero(&acc);
                        ic_kern_loop(&acc, Vx + (size_t)t0 * 16, &off0, 1, (size_t)T * 16, 16,
                                     cv->cinb, Ux + (size_t)pr * cin16 * IC_KERN_NR, 0, 0);
                        ic_kern_store_raw(&acc, mr, yb);
                    }
                }
            }
            for (int i = 0; i < nt; i++)
                output_transform(j, tl, b0 + i, i, M, T, tid);
        }
    }
}

void ic_eng_wino_run(const ic_eng_job *j)
{
    tiling tl;
    make_tiling(&tl, &j->cv->p, j->x->h, j->x->w);
    wino_job wj = {j, &tl, WINO_T};
    ic_parallel_for(wino_thread, &wj, j->threads, j->threads);
}
