/* Softmax over channels, fused confidence statistics and the softmax backward (see softmax.h).
 *
 * In NCHW the C values of one pixel are HW floats apart, so a per-pixel loop
 * would stride through memory C times per pixel. The fast paths instead work
 * on a block of SM_BLOCK consecutive pixels at once: each pass walks the
 * channels and, inside each, a contiguous run of the block, keeping per-pixel
 * running values (max, argmax, sums) in small stack arrays. The references
 * take one pixel at a time in double. exp and log are base/fastmath.h's, which
 * the compiler vectorises (glibc's are calls): relative error < 3e-7. */
#include "ops/softmax.h"

#include <math.h>

#include "base/err.h"
#include "base/fastmath.h"
#include "base/parallel.h"

/* Pixels processed together (the per-pixel state is a few KiB of stack). */
#define SM_BLOCK 256

/* argmax update: strictly greater wins (so ties keep the lowest index); a
 * NaN beats any number and the first NaN is kept, as in torch.argmax. */
static inline int beats(float v, float m)
{
    return v > m || (isnan(v) && !isnan(m));
}

/* Blocks [lo, hi) of SM_BLOCK pixels, numbered over the images: the ranges
 * of ic_softmax_forward's threads. */
typedef struct sm_job {
    ic_tensor *y;
    const ic_tensor *x;
    size_t blocks_per_image;
} sm_job;

static void softmax_blocks(void *ctx, int lo, int hi)
{
    const sm_job *j = ctx;
    const ic_tensor *x = j->x;
    ic_tensor *y = j->y;
    const size_t hw = ic_tensor_plane(x);
    float m[SM_BLOCK], s[SM_BLOCK];
    for (int b = lo; b < hi; b++) {
        const int n = (int)((size_t)b / j->blocks_per_image);
        const size_t p0 = (size_t)b % j->blocks_per_image * SM_BLOCK;
        size_t nb = hw - p0 < SM_BLOCK ? hw - p0 : SM_BLOCK;
        const float *x0 = ic_tensor_at(x, n, 0) + p0;
        for (size_t i = 0; i < nb; i++) {
            m[i] = x0[i];
            s[i] = 0;
        }
        for (int c = 1; c < x->c; c++) {
            const float *xc = ic_tensor_at(x, n, c) + p0;
            for (size_t i = 0; i < nb; i++)
                m[i] = xc[i] > m[i] ? xc[i] : m[i];
        }
        /* y may alias x: each element is read before it is overwritten */
        for (int c = 0; c < x->c; c++) {
            const float *xc = ic_tensor_at(x, n, c) + p0;
            float *yc = ic_tensor_at(y, n, c) + p0;
            for (size_t i = 0; i < nb; i++) {
                float e = ic_fast_exp(xc[i] - m[i]);
                yc[i] = e;
                s[i] += e;
            }
        }
        for (size_t i = 0; i < nb; i++)
            s[i] = 1.0f / s[i];
        for (int c = 0; c < x->c; c++) {
            float *yc = ic_tensor_at(y, n, c) + p0;
            for (size_t i = 0; i < nb; i++)
                yc[i] *= s[i];
        }
    }
}

int ic_softmax_forward(ic_tensor *y, const ic_tensor *x)
{
    if (!ic_tensor_same_shape(y, x))
        return ic_error_set(IC_ESHAPE, "softmax: output shape differs from input");
    const size_t per_image = (ic_tensor_plane(x) + SM_BLOCK - 1) / SM_BLOCK;
    sm_job j = {y, x, per_image};
    const int blocks = (int)(per_image * (size_t)x->n);
    ic_parallel_for(softmax_blocks, &j, blocks, ic_parallel_threads_for(ic_tensor_numel(x)));
    return 0;
}

int ic_softmax_argmax(int32_t *label, const ic_tensor *x)
{
    if (!label)
        return ic_error_set(IC_EINVAL, "softmax argmax: no output");
    return ic_softmax_stats(label, NULL, NULL, x);
}

int ic_softmax_stats(int32_t *label, float *maxprob, float *entropy, const ic_tensor *logits)
{
    const ic_tensor *x = logits;
    size_t hw = ic_tensor_plane(x);
    float m[SM_BLOCK], s[SM_BLOCK], t[SM_BLOCK];
    int32_t idx[SM_BLOCK];
    for (int n = 0; n < x->n; n++)
        for (size_t p0 = 0; p0 < hw; p0 += SM_BLOCK) {
            size_t nb = hw - p0 < SM_BLOCK ? hw - p0 : SM_BLOCK;
            size_t o = (size_t)n * hw + p0; /* offset in the (N, H, W) outputs */
            const float *x0 = ic_tensor_at(x, n, 0) + p0;
            for (size_t j = 0; j < nb; j++) {
                m[j] = x0[j];
                idx[j] = 0;
            }
            for (int c = 1; c < x->c; c++) {
                const float *xc = ic_tensor_at(x, n, c) + p0;
                for (size_t j = 0; j < nb; j++)
                    if (beats(xc[j], m[j])) {
                        m[j] = xc[j];
                        idx[j] = c;
                    }
            }
            if (label)
                for (size_t j = 0; j < nb; j++)
                    label[o + j] = idx[j];
            if (!maxprob && !entropy)
                continue;
            for (size_t j = 0; j < nb; j++)
                s[j] = t[j] = 0;
            for (int c = 0; c < x->c; c++) {
                const float *xc = ic_tensor_at(x, n, c) + p0;
                for (size_t j = 0; j < nb; j++) {
                    float d = xc[j] - m[j];
                    float e = ic_fast_exp(d);
                    s[j] += e;
                    t[j] += e * d;
                }
            }
            /* log s >= 0 and -t/s >= 0, so the entropy is a sum of two
             * non-negative terms: no cancellation for confident pixels. */
            for (size_t j = 0; j < nb; j++) {
                if (maxprob)
                    maxprob[o + j] = 1.0f / s[j];
                if (entropy)
                    entropy[o + j] = ic_fast_log(s[j]) - t[j] / s[j];
            }
        }
    return 0;
}

int ic_softmax_forward_ref(ic_tensor *y, const ic_tensor *x)
{
    if (!ic_tensor_same_shape(y, x))
        return ic_error_set(IC_ESHAPE, "softmax: output shape differs from input");
    size_t hw = ic_tensor_plane(x);
    for (int n = 0; n < x->n; n++)
        for (size_t i = 0; i < hw; i++) {
            double m = -INFINITY, s = 0;
            for (int c = 0; c < x->c; c++)
                m = fmax(m, ic_tensor_at(x, n, c)[i]);
            for (int c = 0; c < x->c; c++)
                s += exp(ic_tensor_at(x, n, c)[i] - m);
            for (int c = 0; c < x->c; c++)
                ic_tensor_at(y, n, c)[i] = (float)(exp(ic_tensor_at(x, n, c)[i] - m) / s);
        }
    return 0;
}

int ic_softmax_stats_ref(int32_t *label, float *maxprob, float *entropy, const ic_tensor *logits)
{
    const ic_tensor *x = logits;
    size_t hw = ic_tensor_plane(x);
    for (int n = 0; n < x->n; n++)
        for (size_t i = 0; i < hw; i++) {
            int best = 0;
            float bv = ic_tensor_at(x, n, 0)[i];
            for (int c = 1; c < x->c; c++)
                if (beats(ic_tensor_at(x, n, c)[i], bv)) {
                    bv = ic_tensor_at(x, n, c)[i];
                    best = c;
                }
            double s = 0;
            for (int c = 0; c < x->c; c++)
                s += exp((double)ic_tensor_at(x, n, c)[i] - bv);
            double h = 0;
            for (int c = 0; c < x->c; c++) {
                double p = exp((double)ic_tensor_at(x, n, c)[i] - bv) / s;
                if (p > 0)
                    h -= p * log(p);
            }
            size_t o = (size_t)n * hw + i;
            if (label)
                label[o] = best;
            if (maxprob)
                maxprob[o] = (float)(1.0 / s);
            if (entropy)
                entropy[o] = (float)h;
        }
    return 0;
}

int ic_softmax_backward(ic_tensor *dx, const ic_tensor *dy, const ic_tensor *y)
{
    if (!ic_tensor_same_shape(dx, y) || !ic_tensor_same_shape(dy, y))
        return ic_error_set(IC_ESHAPE, "softmax backward: dx, dy and y must have one shape");
    size_t hw = ic_tensor_plane(y);
    for (int n = 0; n < y->n; n++) {
        const float *yp = ic_tensor_at(y, n, 0), *gp = ic_tensor_at(dy, n, 0);
        float *dp = ic_tensor_at(dx, n, 0);
        for (size_t i = 0; i < hw; i++) {
            double dot = 0;
            for (int c = 0; c < y->c; c++)
                dot += (double)gp[(size_t)c * hw + i] * yp[(size_t)c * hw + i];
            for (int c = 0; c < y->c; c++) {
                size_t j = (size_t)c * hw + i;
                dp[j] += (float)(yp[j] * ((double)gp[j] - dot));
            }
        }
    }
    return 0;
}
