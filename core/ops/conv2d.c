/* 2-D convolution: parameter checks, the three forward paths (1x1 sgemm,
 * depthwise direct, tiled im2col + sgemm) and the seven-loop reference.
 *
 * Why three paths: a 1x1 stride-1 convolution already is a matrix product
 * of the weight (cout, cin) and the input plane (cin, H*W), so lowering it
 * would only copy memory. A depthwise convolution has K = kh*kw, far too
 * little work per im2col element for sgemm to pay off, so a direct loop that
 * streams output rows (vectorised over output columns) wins. The rest is
 * im2col + sgemm; im2col copies whole input row segments with memcpy where
 * the stride is 1 and writes only the padding edges as zeros, and it runs
 * over a tile of output rows at a time so the column buffer stays within
 * IC_CONV2D_WS_BUDGET (and mostly in cache) for any image size. */
#include "ops/conv2d.h"

#include <cblas.h>
#include <limits.h>
#include <stdint.h>
#include <string.h>

#include "base/alloc.h"
#include "base/err.h"

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

enum conv_path { PATH_1X1, PATH_DEPTHWISE, PATH_IM2COL };

static enum conv_path choose_path(const ic_conv2d_params *p)
{
    if (p->kh == 1 && p->kw == 1 && p->stride_h == 1 && p->stride_w == 1 && p->pad_h == 0 &&
        p->pad_w == 0)
        return PATH_1X1;
    if (p->groups == p->cin && p->cout == p->cin)
        return PATH_DEPTHWISE;
    return PATH_IM2COL;
}

/* Output rows per im2col tile: as many as fit the budget, at least one. */
static int im2col_tile_rows(const ic_conv2d_params *p, int oh, int ow)
{
    size_t k = (size_t)(p->cin / p->groups) * (size_t)p->kh * (size_t)p->kw;
    size_t row = k * (size_t)ow;
    size_t rows = IC_CONV2D_WS_BUDGET / row;
    if (rows < 1)
        rows = 1;
    return rows > (size_t)oh ? oh : (int)rows;
}

size_t ic_conv2d_workspace_floats(const ic_conv2d_params *p, int h, int w)
{
    int oh, ow;
    if (ic_conv2d_out_size(p, h, w, &oh, &ow))
        return 0;
    if (choose_path(p) != PATH_IM2COL)
        return 0;
    size_t k = (size_t)(p->cin / p->groups) * (size_t)p->kh * (size_t)p->kw;
    size_t n, out;
    /* Saturate rather than wrap; such a request then fails to allocate. */
    if (ic_size_mul(&n, k, (size_t)im2col_tile_rows(p, oh, ow)) ||
        ic_size_mul(&out, n, (size_t)ow))
        return SIZE_MAX;
    return out;
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
    if (b != 0.0f)
        for (size_t i = 0; i < len; i++)
            y[i] += b;
    if (relu)
        for (size_t i = 0; i < len; i++)
            y[i] = y[i] > 0.0f ? y[i] : 0.0f;
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
            for (int co = 0; co < g_out; co++)
                epilogue(yg + (size_t)co * hw, hw, bias ? bias[g * g_out + co] : 0.0f, p->relu);
        }
}

/* ------------------------------------------------------------------------
 * im2col + sgemm, tiled over output rows */

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

/* Column matrix of output rows [r0, r0 + nr) for channels [c0, c0 + nc):
 * col (nc*kh*kw, nr*ow), row (c, ky, kx), column (oy - r0, ox), read from
 * the plane stack x0 (C, h, w). */
static void im2col_rows(float *restrict col, const float *restrict x0, int h, int w,
                        const ic_conv2d_params *p, int nc, int ow, int r0, int nr)
{
    const size_t ld = (size_t)nr * (size_t)ow;
    const size_t plane = (size_t)h * (size_t)w;
    for (int c = 0; c < nc; c++) {
        const float *xc = x0 + (size_t)c * plane;
        for (int ky = 0; ky < p->kh; ky++)
            for (int kx = 0; kx < p->kw; kx++) {
                float *dst = col + ((size_t)(c * p->kh + ky) * p->kw + kx) * ld;
                const int xoff = kx * p->dil_w - p->pad_w;
                int lo, hi;
                valid_cols(xoff, p->stride_w, w, ow, &lo, &hi);
                for (int r = 0; r < nr; r++, dst += ow) {
                    const int iy = (r0 + r) * p->stride_h - p->pad_h + ky * p->dil_h;
                    if (iy < 0 || iy >= h || lo == hi) {
                        memset(dst, 0, (size_t)ow * sizeof *dst);
                        continue;
                    }
                    /* input column of output column lo; >= 0 as lo < hi */
                    const float *src = xc + (size_t)iy * w + (lo * p->stride_w + xoff);
                    if (lo > 0)
                        memset(dst, 0, (size_t)lo * sizeof *dst);
                    if (p->stride_w == 1) {
                        memcpy(dst + lo, src, (size_t)(hi - lo) * sizeof *dst);
                    } else {
                        const int s = p->stride_w;
                        for (int i = 0; i < hi - lo; i++)
                            dst[lo + i] = src[(size_t)i * s];
                    }
                    if (hi < ow)
                        memset(dst + hi, 0, (size_t)(ow - hi) * sizeof *dst);
                }
            }
    }
}

static void forward_im2col(ic_tensor *y, const ic_tensor *x, const float *weight,
                           const float *bias, const ic_conv2d_params *p, float *ws)
{
    const int g_in = p->cin / p->groups, g_out = p->cout / p->groups;
    const int oh = y->h, ow = y->w;
    const int k = g_in * p->kh * p->kw;
    const size_t ohw = ic_tensor_plane(y);
    const int tile = im2col_tile_rows(p, oh, ow);
    for (int n = 0; n < x->n; n++)
        for (int g = 0; g < p->groups; g++) {
            const float *xg = ic_tensor_at(x, n, g * g_in);
            const float *wg = weight + (size_t)g * g_out * k;
            float *yg = ic_tensor_at(y, n, g * g_out);
            for (int r0 = 0; r0 < oh; r0 += tile) {
                const int nr = oh - r0 < tile ? oh - r0 : tile;
                const int cols = nr * ow;
                float *yt = yg + (size_t)r0 * ow;
                im2col_rows(ws, xg, x->h, x->w, p, g_in, ow, r0, nr);
                /* W (cout/g, K) @ col (K, nr*ow) -> Y[:, r0*ow : (r0+nr)*ow] */
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, g_out, cols, k, 1.0f, wg,
                            k, ws, cols, 0.0f, yt, (int)ohw);
                for (int co = 0; co < g_out; co++)
                    epilogue(yt + (size_t)co * ohw, (size_t)cols,
                             bias ? bias[g * g_out + co] : 0.0f, p->relu);
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

static void forward_depthwise(ic_tensor *y, const ic_tensor *x, const float *weight,
                              const float *bias, const ic_conv2d_params *p)
{
    const int h = x->h, w = x->w, oh = y->h, ow = y->w, kk = p->kh * p->kw;
    for (int n = 0; n < x->n; n++)
        for (int c = 0; c < p->cin; c++) {
            const float *xc = ic_tensor_at(x, n, c);
            const float *wc = weight + (size_t)c * kk;
            float *yc = ic_tensor_at(y, n, c);
            const float b = bias ? bias[c] : 0.0f;
            for (int oy = 0; oy < oh; oy++) {
                float *out = yc + (size_t)oy * ow;
                for (int ox = 0; ox < ow; ox++)
                    out[ox] = b;
                for (int ky = 0; ky < p->kh; ky++) {
                    const int iy = oy * p->stride_h - p->pad_h + ky * p->dil_h;
                    if (iy < 0 || iy >= h)
                        continue;
                    for (int kx = 0; kx < p->kw; kx++) {
                        const int xoff = kx * p->dil_w - p->pad_w;
                        int lo, hi;
                        valid_cols(xoff, p->stride_w, w, ow, &lo, &hi);
                        if (lo == hi)
                            continue;
                        /* output column lo reads input column lo*s + xoff >= 0 */
                        axpy_row(out + lo, xc + (size_t)iy * w + (lo * p->stride_w + xoff),
                                 wc[ky * p->kw + kx], p->stride_w, hi - lo);
                    }
                }
                if (p->relu)
                    for (int ox = 0; ox < ow; ox++)
                        out[ox] = out[ox] > 0.0f ? out[ox] : 0.0f;
            }
        }
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
    switch (choose_path(p)) {
    case PATH_1X1:
        forward_1x1(y, x, weight, bias, p);
        break;
    case PATH_DEPTHWISE:
        forward_depthwise(y, x, weight, bias, p);
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
