/* 2-D convolution: parameter checks, the path choice, workspace sizes, the
 * dispatch to the paths (conv2d_internal.h lists where each lives) and the
 * seven-loop references the tests hold them against.
 *
 * Why five forward paths: a 1x1 stride-1 convolution already is a matrix
 * product of the weight (cout, cin) and the input plane (cin, H*W), so
 * lowering it would only copy memory. A depthwise convolution has
 * K = kh*kw, far too little work per im2col element for sgemm to pay off,
 * so a direct loop that streams output rows (vectorised over output
 * columns) wins. Most other convolutions need no im2col either: one sgemm
 * per kernel tap can read a shifted window of a zero-padded copy of the
 * input, split into stride phases when the stride is above 1
 * (conv2d_shifted.c); the copy is about the input's size where im2col
 * writes kh*kw times the output's columns, which matters most for layers
 * with few output channels and for stride 2 (res3's 3x3 stride-2 conv went
 * from 0.61-0.72 of sgemm with im2col to 0.70-0.84). A thin K (the stem's
 * 3*3*3) gets im2col and a product of our own with bias and ReLU fused
 * (ops/gemm_thin.c), split over threads by row tiles. The rest is im2col +
 * sgemm, tiled over output rows (and, for a huge K, input channels) so the
 * column buffer stays within IC_CONV2D_WS_BUDGET for any image size
 * (conv2d_gemm.c). */
#include "ops/conv2d.h"

#include <limits.h>
#include <stdint.h>

#include "base/alloc.h"
#include "base/err.h"
#include "ops/conv2d_internal.h"
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
        ic_conv2d_tap_rows(p, ky, h, oh, &lo, &hi);
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

size_t ic_conv2d_workspace_floats(const ic_conv2d_params *p, int h, int w)
{
    int oh = 0, ow = 0;
    if (ic_conv2d_out_size(p, h, w, &oh, &ow))
        return 0;
    size_t n, out;
    switch (choose_path(p, h, oh, ow)) {
    case PATH_SHIFTED: {
        ic_conv2d_shift_plan s;
        if (ic_conv2d_shifted_plan(&s, p, oh, ow) || ic_size_add(&n, s.xp, s.wk) ||
            ic_size_add(&out, n, s.yw))
            return SIZE_MAX;
        return out;
    }
    case PATH_THIN: {
        const size_t k = (size_t)(p->cin / p->groups) * (size_t)p->kh * (size_t)p->kw;
        if (ic_size_mul(&n, k * (size_t)ic_conv2d_thin_slots(oh, ow),
                        (size_t)ic_conv2d_thin_rows(oh, ow)) ||
            ic_size_mul(&out, n, (size_t)ow))
            return SIZE_MAX;
        return out;
    }
    case PATH_IM2COL: {
        ic_conv2d_tile_plan t = ic_conv2d_im2col_plan(p, oh, ow);
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
        ic_conv2d_forward_1x1(y, x, weight, bias, p);
        break;
    case PATH_DEPTHWISE:
        ic_conv2d_forward_depthwise(y, x, weight, bias, p);
        break;
    case PATH_SHIFTED:
        if (!ws)
            return ic_error_set(IC_EINVAL, "conv2d: workspace of %zu floats required",
                                ic_conv2d_workspace_floats(p, x->h, x->w));
        ic_conv2d_forward_shifted(y, x, weight, bias, p, ws);
        break;
    case PATH_THIN:
        if (!ws)
            return ic_error_set(IC_EINVAL, "conv2d: workspace of %zu floats required",
                                ic_conv2d_workspace_floats(p, x->h, x->w));
        ic_conv2d_forward_thin(y, x, weight, bias, p, ws);
        break;
    case PATH_IM2COL:
        if (!ws)
            return ic_error_set(IC_EINVAL, "conv2d: workspace of %zu floats required",
                                ic_conv2d_workspace_floats(p, x->h, x->w));
        ic_conv2d_forward_im2col(y, x, weight, bias, p, ws);
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
        ic_conv2d_backward_depthwise(dx, dw, dy, x, weight, p);
        return 0;
    }
    if (path == BWD_IM2COL && !ws)
        return ic_error_set(IC_EINVAL, "conv2d backward: workspace required");
    ic_conv2d_backward_gemm(dx, dw, dy, x, weight, p, path == BWD_IM2COL, ws);
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
