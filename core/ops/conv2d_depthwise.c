/* Depthwise convolution (groups == cin == cout), forward and backward:
 * direct loops, one output row at a time, no im2col (K = kh*kw is far too
 * little work per column element for sgemm to pay off). */
#include "base/parallel.h"
#include "base/vec.h"
#include "ops/conv2d_internal.h"

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
        ic_conv2d_valid_cols(kx * p->dil_w - p->pad_w, p->stride_w, w, ow, &lo, &hi);
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
                ic_conv2d_valid_cols(xoff, 1, w, ow, &lo, &hi);
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
            ic_conv2d_valid_cols(xoff, p->stride_w, w, ow, &lo, &hi);
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
void ic_conv2d_forward_depthwise(ic_tensor *y, const ic_tensor *x, const float *weight,
                                 const float *bias, const ic_conv2d_params *p)
{
    dw_job j = {y, x, weight, bias, p};
    ic_parallel_for(depthwise_range, &j, x->n * p->cin,
                    ic_parallel_threads_for(ic_tensor_numel(y) * (size_t)(p->kh * p->kw)));
}

/* Depthwise backward, direct: dw[c] += sum dy * x(shifted), dx[c] += w * dy(shifted).
 * Rows accumulate in float over their valid interval (vectorisable), then in
 * double across rows. */
void ic_conv2d_backward_depthwise(ic_tensor *dx, float *dw, const ic_tensor *dy, const ic_tensor *x,
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
                    ic_conv2d_valid_cols(off, s, w, ow, &lo, &hi);
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
