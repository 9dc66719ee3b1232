/* Noise and blur corruptions (ImageNet-C's parameter tables, corrupt.h). */
#include <math.h>
#include <string.h>

#include "base/alloc.h"
#include "base/err.h"
#include "corrupt/corrupt_internal.h"

int cx_noise(cimg *x, int kind, int sev, ic_rng *r)
{
    static const float gauss[5] = {0.08f, 0.12f, 0.18f, 0.26f, 0.38f};
    static const float shot[5] = {60, 25, 12, 5, 3};
    static const float impulse[5] = {0.03f, 0.06f, 0.09f, 0.17f, 0.27f};
    size_t n = cimg_n(x);
    for (size_t i = 0; i < n; i++) {
        float v = x->p[i];
        if (kind == 0) {
            v += gauss[sev - 1] * (float)ic_rng_normal(r);
        } else if (kind == 1) {
            float c = shot[sev - 1];
            v = (float)cx_poisson(r, (double)(v < 0 ? 0 : v) * c) / c;
        } else if (ic_rng_uniform(r) < impulse[sev - 1]) { /* salt and pepper per sample */
            v = ic_rng_uniform(r) < 0.5 ? 0.0f : 1.0f;
        }
        x->p[i] = v < 0 ? 0 : v > 1 ? 1 : v;
    }
    return 0;
}

int cx_gauss_blur(cimg *x, int sev)
{
    static const float sigma[5] = {1, 2, 3, 4, 6};
    return cx_gaussian(x->p, x->w, x->h, 3, sigma[sev - 1]);
}

/* An aliased disk of `radius` on a (2L + 1)^2 grid, L = max(8, radius),
 * normalised, then smoothed by a 3x3 (5x5 past radius 8) Gaussian of sigma
 * `alias` (as OpenCV's GaussianBlur with that kernel size) to antialias it. */
int cx_defocus(cimg *x, int sev)
{
    static const float radius[5] = {3, 4, 6, 8, 10}, alias[5] = {0.1f, 0.5f, 0.5f, 0.5f, 0.5f};
    float rad = radius[sev - 1], al = alias[sev - 1];
    int L = rad <= 8 ? 8 : (int)rad, k = 2 * L + 1, ks = rad <= 8 ? 3 : 5;
    float *d = ic_calloc((size_t)k * k * 2, sizeof *d);
    if (!d)
        return ic_error_set(IC_ENOMEM, "defocus: no memory");
    float *e = d + (size_t)k * k;
    double s = 0;
    for (int y = -L; y <= L; y++)
        for (int xx = -L; xx <= L; xx++)
            if (xx * xx + y * y <= rad * rad) {
                d[(y + L) * k + xx + L] = 1;
                s++;
            }
    for (int i = 0; i < k * k; i++)
        d[i] = (float)(d[i] / s);
    float g[5];
    double gs = 0;
    for (int i = 0; i < ks; i++)
        gs += g[i] = (float)exp(-0.5 * (i - ks / 2) * (i - ks / 2) / ((double)al * al));
    for (int i = 0; i < ks; i++)
        g[i] = (float)(g[i] / gs);
    for (int y = 0; y < k; y++) /* separable smoothing, reflected edges */
        for (int xx = 0; xx < k; xx++) {
            double a = 0;
            for (int j = 0; j < ks; j++) {
                int q = xx + j - ks / 2;
                q = q < 0 ? -q : q >= k ? 2 * k - q - 2 : q;
                a += g[j] * d[y * k + q];
            }
            e[y * k + xx] = (float)a;
        }
    for (int y = 0; y < k; y++)
        for (int xx = 0; xx < k; xx++) {
            double a = 0;
            for (int j = 0; j < ks; j++) {
                int q = y + j - ks / 2;
                q = q < 0 ? -q : q >= k ? 2 * k - q - 2 : q;
                a += g[j] * e[q * k + xx];
            }
            d[y * k + xx] = (float)a;
        }
    int rc = cx_filter2d(x, d, k);
    ic_free(d);
    return rc;
}

int cx_motion(cimg *x, int sev, ic_rng *r)
{
    static const float radius[5] = {10, 15, 15, 15, 20}, sigma[5] = {3, 5, 8, 12, 15};
    float angle = (float)(-45.0 + 90.0 * ic_rng_uniform(r));
    return cx_motion_blur(x->p, x->w, x->h, 3, radius[sev - 1], sigma[sev - 1], angle);
}

/* Blur, then locally shuffle pixels (each swapped with one up to `delta`
 * away, sweeping from the bottom right), `iters` times, then blur again. */
int cx_glass(cimg *x, int sev, ic_rng *r)
{
    static const float sigma[5] = {0.7f, 0.9f, 1.0f, 1.1f, 1.5f};
    static const int delta[5] = {1, 2, 2, 3, 4}, iters[5] = {2, 1, 3, 2, 2};
    float s = sigma[sev - 1];
    int d = delta[sev - 1], w = x->w, h = x->h;
    int rc = cx_gaussian(x->p, w, h, 3, s);
    if (rc)
        return rc;
    /* ImageNet-C quantises to 8 bits between the two blurs */
    for (size_t i = 0; i < cimg_n(x); i++) {
        float v = x->p[i] < 0 ? 0 : x->p[i] > 1 ? 1 : x->p[i];
        x->p[i] = floorf(v * 255.0f) / 255.0f;
    }
    for (int it = 0; it < iters[sev - 1]; it++)
        for (int y = h - d; y > d; y--)
            for (int xx = w - d; xx > d; xx--) {
                int dx = ic_rng_int(r, -d, d - 1), dy = ic_rng_int(r, -d, d - 1);
                float *a = x->p + ((size_t)y * w + xx) * 3, *b = x->p + ((size_t)(y + dy) * w + xx + dx) * 3;
                for (int c = 0; c < 3; c++) {
                    float t = a[c];
                    a[c] = b[c];
                    b[c] = t;
                }
            }
    return cx_gaussian(x->p, w, h, 3, s);
}
