/* Bilinear resize (see resize.h).
 *
 * PyTorch computes, per axis, (index0, index1, lambda0, lambda1) for every
 * output position and then evaluates
 *   y = lh0 * (lw0 * x[h0][w0] + lw1 * x[h0][w1]) + lh1 * (lw0 * x[h1][w0] + lw1 * x[h1][w1])
 * in float. The fast path does the same with the column table computed once
 * per call (per chunk of columns, on the stack) and the row terms once per
 * output row; the reference recomputes both per element. The backward walks
 * the same tables and scatters instead of gathering. */
#include "ops/resize.h"

#include <limits.h>
#include <math.h>

#include "base/err.h"
#include "base/parallel.h"

/* Output columns whose indices/weights are tabulated at once (12 KiB). */
#define RESIZE_CHUNK 1024

typedef ic_resize_tap axis_tap;

/* PyTorch's area_pixel_compute_scale: 1/scale when a scale factor is given,
 * else in/out, in float (the opmath type of float tensors). */
static float axis_ratio(int in, int out, double scale)
{
    if (scale > 0)
        return (float)(1.0 / scale);
    return (float)in / (float)out;
}

/* compute_source_index_and_lambda (UpSample.h). The source index is formed
 * in double from the float ratio (dst + 0.5 is a double there) and the
 * fractional part is taken before rounding to float: rounding src first would
 * lose it (e.g. 23 -> 9 columns, dst 4: src = 11 + 1.2e-7, and PyTorch's
 * weight is 2^-23, not 0). Checked against torch 1.13 with one-hot inputs. */
static axis_tap axis_tap_at(float ratio, int dst, int in, int out)
{
    axis_tap t;
    if (in == out) {
        t.i0 = t.i1 = dst;
        t.l0 = 1.0f;
        t.l1 = 0.0f;
        return t;
    }
    double src = (double)ratio * (dst + 0.5) - 0.5;
    if (src < 0)
        src = 0;
    t.i0 = (int)src;
    if (t.i0 > in - 1)
        t.i0 = in - 1;
    t.i1 = t.i0 + (t.i0 < in - 1 ? 1 : 0);
    double l1 = src - t.i0;
    t.l1 = l1 > 1 ? 1.0f : (float)l1;
    t.l0 = 1.0f - t.l1;
    return t;
}

ic_resize_tap ic_resize_tap_at(int in, int out, double scale, int dst)
{
    return axis_tap_at(axis_ratio(in, out, scale), dst, in, out);
}

int ic_resize_out_size(int *oh, int *ow, int h, int w, double scale_h, double scale_w)
{
    if (!(scale_h > 0) || !(scale_w > 0) || !isfinite(scale_h) || !isfinite(scale_w))
        return ic_error_set(IC_EINVAL, "resize: scale factors %g, %g must be positive", scale_h, scale_w);
    double fh = floor((double)h * scale_h), fw = floor((double)w * scale_w);
    if (fh < 1 || fw < 1 || fh > INT_MAX || fw > INT_MAX)
        return ic_error_set(IC_EINVAL, "resize: %dx%d scaled by %g, %g gives an invalid size", h, w,
                            scale_h, scale_w);
    *oh = (int)fh;
    *ow = (int)fw;
    return 0;
}

static int check(const ic_tensor *y, const ic_tensor *x, double scale_h, double scale_w)
{
    if (y->n != x->n || y->c != x->c || y->h <= 0 || y->w <= 0 || x->h <= 0 || x->w <= 0)
        return ic_error_set(IC_ESHAPE, "resize: cannot resize (%d, %d, %d, %d) to (%d, %d, %d, %d)",
                            x->n, x->c, x->h, x->w, y->n, y->c, y->h, y->w);
    if (scale_h > 0 || scale_w > 0) {
        int oh, ow;
        int rc = ic_resize_out_size(&oh, &ow, x->h, x->w, scale_h, scale_w);
        if (rc)
            return rc;
        if (oh != y->h || ow != y->w)
            return ic_error_set(IC_ESHAPE, "resize: scale %g, %g of %dx%d gives %dx%d, output is %dx%d",
                                scale_h, scale_w, x->h, x->w, oh, ow, y->h, y->w);
    }
    return 0;
}

typedef struct resize_job {
    ic_tensor *y;
    const ic_tensor *x;
    float rh, rw;
} resize_job;

/* Planes [lo, hi), numbered n * C + c; column taps in chunks that stay in
 * L1, rows one at a time. */
static void resize_range(void *ctx, int lo, int hi)
{
    const resize_job *j = ctx;
    const int H = j->x->h, W = j->x->w, OH = j->y->h, OW = j->y->w;
    axis_tap tx[RESIZE_CHUNK];
    for (int ox0 = 0; ox0 < OW; ox0 += RESIZE_CHUNK) {
        int nx = OW - ox0 < RESIZE_CHUNK ? OW - ox0 : RESIZE_CHUNK;
        for (int k = 0; k < nx; k++)
            tx[k] = axis_tap_at(j->rw, ox0 + k, W, OW);
        for (int u = lo; u < hi; u++) {
            const int n = u / j->x->c, c = u % j->x->c;
            const float *xp = ic_tensor_at(j->x, n, c);
            float *yp = ic_tensor_at(j->y, n, c);
            for (int oy = 0; oy < OH; oy++) {
                axis_tap ty = axis_tap_at(j->rh, oy, H, OH);
                const float *r0 = xp + (size_t)ty.i0 * (size_t)W;
                const float *r1 = xp + (size_t)ty.i1 * (size_t)W;
                float *yr = yp + (size_t)oy * (size_t)OW + (size_t)ox0;
                for (int k = 0; k < nx; k++) {
                    const axis_tap *t = &tx[k];
                    float top = r0[t->i0] * t->l0 + r0[t->i1] * t->l1;
                    float bot = r1[t->i0] * t->l0 + r1[t->i1] * t->l1;
                    yr[k] = top * ty.l0 + bot * ty.l1;
                }
            }
        }
    }
}

static int resize_fast(ic_tensor *y, const ic_tensor *x, double scale_h, double scale_w)
{
    int rc = check(y, x, scale_h, scale_w);
    if (rc)
        return rc;
    resize_job j = {y, x, axis_ratio(x->h, y->h, scale_h), axis_ratio(x->w, y->w, scale_w)};
    ic_parallel_for(resize_range, &j, x->n * x->c, ic_parallel_threads_for(ic_tensor_numel(y)));
    return 0;
}

int ic_resize_bilinear_forward(ic_tensor *y, const ic_tensor *x)
{
    return resize_fast(y, x, 0, 0);
}

int ic_resize_bilinear_scale_forward(ic_tensor *y, const ic_tensor *x, double scale_h,
                                     double scale_w)
{
    if (!(scale_h > 0) || !(scale_w > 0))
        return ic_error_set(IC_EINVAL, "resize: scale factors %g, %g must be positive", scale_h, scale_w);
    return resize_fast(y, x, scale_h, scale_w);
}

/* dx += adjoint(resize)(dy): every output gradient goes to the four taps the
 * forward read, weighted as the forward weighted them. */
static int resize_backward(ic_tensor *dx, const ic_tensor *dy, double scale_h, double scale_w)
{
    int rc = check(dy, dx, scale_h, scale_w);
    if (rc)
        return rc;
    const int H = dx->h, W = dx->w, OH = dy->h, OW = dy->w;
    float rh = axis_ratio(H, OH, scale_h), rw = axis_ratio(W, OW, scale_w);
    axis_tap tx[RESIZE_CHUNK];
    for (int ox0 = 0; ox0 < OW; ox0 += RESIZE_CHUNK) {
        int nx = OW - ox0 < RESIZE_CHUNK ? OW - ox0 : RESIZE_CHUNK;
        for (int j = 0; j < nx; j++)
            tx[j] = axis_tap_at(rw, ox0 + j, W, OW);
        for (int n = 0; n < dx->n; n++)
            for (int c = 0; c < dx->c; c++) {
                float *dp = ic_tensor_at(dx, n, c);
                const float *gp = ic_tensor_at(dy, n, c);
                for (int oy = 0; oy < OH; oy++) {
                    axis_tap ty = axis_tap_at(rh, oy, H, OH);
                    float *r0 = dp + (size_t)ty.i0 * (size_t)W;
                    float *r1 = dp + (size_t)ty.i1 * (size_t)W;
                    const float *gr = gp + (size_t)oy * (size_t)OW + (size_t)ox0;
                    for (int j = 0; j < nx; j++) {
                        const axis_tap *t = &tx[j];
                        float top = gr[j] * ty.l0, bot = gr[j] * ty.l1;
                        r0[t->i0] += top * t->l0;
                        r0[t->i1] += top * t->l1;
                        r1[t->i0] += bot * t->l0;
                        r1[t->i1] += bot * t->l1;
                    }
                }
            }
    }
    return 0;
}

int ic_resize_bilinear_backward(ic_tensor *dx, const ic_tensor *dy)
{
    return resize_backward(dx, dy, 0, 0);
}

int ic_resize_bilinear_scale_backward(ic_tensor *dx, const ic_tensor *dy, double scale_h,
                                      double scale_w)
{
    if (!(scale_h > 0) || !(scale_w > 0))
        return ic_error_set(IC_EINVAL, "resize backward: scale factors %g, %g must be positive", scale_h,
                            scale_w);
    return resize_backward(dx, dy, scale_h, scale_w);
}

int ic_resize_bilinear_forward_ref(ic_tensor *y, const ic_tensor *x, double scale_h,
                                   double scale_w)
{
    if (scale_h <= 0 || scale_w <= 0)
        scale_h = scale_w = 0;
    int rc = check(y, x, scale_h, scale_w);
    if (rc)
        return rc;
    float rh = axis_ratio(x->h, y->h, scale_h), rw = axis_ratio(x->w, y->w, scale_w);
    for (int n = 0; n < x->n; n++)
        for (int c = 0; c < x->c; c++) {
            const float *xp = ic_tensor_at(x, n, c);
            float *yp = ic_tensor_at(y, n, c);
            for (int oy = 0; oy < y->h; oy++)
                for (int ox = 0; ox < y->w; ox++) {
                    axis_tap ty = axis_tap_at(rh, oy, x->h, y->h);
                    axis_tap tx = axis_tap_at(rw, ox, x->w, y->w);
                    size_t W = (size_t)x->w;
                    float v00 = xp[(size_t)ty.i0 * W + (size_t)tx.i0];
                    float v01 = xp[(size_t)ty.i0 * W + (size_t)tx.i1];
                    float v10 = xp[(size_t)ty.i1 * W + (size_t)tx.i0];
                    float v11 = xp[(size_t)ty.i1 * W + (size_t)tx.i1];
                    yp[(size_t)oy * (size_t)y->w + (size_t)ox] =
                        (v00 * tx.l0 + v01 * tx.l1) * ty.l0 + (v10 * tx.l0 + v11 * tx.l1) * ty.l1;
                }
        }
    return 0;
}
