/* Backward of the convolutions that are not depthwise: per image and group,
 * dW += dY @ col^T and dX += col2im(W^T @ dY), where col is the input
 * itself for a 1x1 stride-1 convolution and its full-image im2col columns
 * otherwise (ic_conv2d_backward_workspace_floats sizes two of them). */
#include <cblas.h>
#include <string.h>

#include "ops/conv2d_internal.h"

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
                ic_conv2d_valid_cols(off, s, w, ow, &lo, &hi);
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
                ic_conv2d_valid_cols(off, s, w, ow, &lo, &hi);
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

void ic_conv2d_backward_gemm(ic_tensor *dx, float *dw, const ic_tensor *dy, const ic_tensor *x,
                             const float *weight, const ic_conv2d_params *p, int cols_needed,
                             float *ws)
{
    const int oh = dy->h, ow = dy->w;
    const size_t ohw = (size_t)oh * ow;
    const int g_in = p->cin / p->groups, g_out = p->cout / p->groups;
    const int k = g_in * p->kh * p->kw;
    float *col = ws, *dcol = ws ? ws + (size_t)k * ohw : NULL;
    for (int n = 0; n < x->n; n++)
        for (int g = 0; g < p->groups; g++) {
            const float *xg = ic_tensor_at(x, n, g * g_in);
            const float *dyg = ic_tensor_at(dy, n, g * g_out);
            const float *wg = weight + (size_t)g * g_out * k;
            const float *cols = xg;
            if (cols_needed) {
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
            if (!cols_needed) {
                /* dX (k, ohw) += W^T (k, g_out) @ dY (g_out, ohw) */
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, k, (int)ohw, g_out, 1.0f, wg, k,
                            dyg, (int)ohw, 1.0f, dxg, (int)ohw);
            } else {
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, k, (int)ohw, g_out, 1.0f, wg, k,
                            dyg, (int)ohw, 0.0f, dcol, (int)ohw);
                col2im_add(dxg, dcol, g_in, x->h, x->w, p, oh, ow);
            }
        }
}
