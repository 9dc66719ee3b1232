/* Weather and digital corruptions (ImageNet-C's parameter tables, corrupt.h;
 * jpeg is in corrupt.c). */
#include <math.h>
#include <string.h>

#include "base/alloc.h"
#include "base/err.h"
#include "corrupt/corrupt_internal.h"

static float clip01(float v)
{
    return v < 0 ? 0 : v > 1 ? 1 : v;
}

/* Diamond-square height map of side n (a power of two), values in [0, 1]:
 * every level's new points are the mean of their neighbours plus noise of
 * amplitude `wibble`, which shrinks by `decay` per level (periodic edges). */
static void plasma(float *m, int n, float decay, ic_rng *r)
{
    double wib = 100;
    memset(m, 0, (size_t)n * n * sizeof *m);
#define AT(y, x) m[(size_t)(((y) % n + n) % n) * n + (size_t)(((x) % n + n) % n)]
    for (int step = n; step >= 2; step /= 2) {
        int h = step / 2;
        for (int y = 0; y < n; y += step) /* squares */
            for (int x = 0; x < n; x += step) {
                double s = AT(y, x) + AT(y + step, x) + AT(y, x + step) + AT(y + step, x + step);
                AT(y + h, x + h) = (float)(s / 4 + wib * (2 * ic_rng_uniform(r) - 1));
            }
        for (int y = 0; y < n; y += h) /* diamonds */
            for (int x = ((y / h) % 2 == 0) ? h : 0; x < n; x += step) {
                double s = AT(y - h, x) + AT(y + h, x) + AT(y, x - h) + AT(y, x + h);
                AT(y, x) = (float)(s / 4 + wib * (2 * ic_rng_uniform(r) - 1));
            }
        wib /= decay;
    }
#undef AT
    float lo = m[0], hi = m[0];
    for (size_t i = 0; i < (size_t)n * n; i++) {
        lo = fminf(lo, m[i]);
        hi = fmaxf(hi, m[i]);
    }
    for (size_t i = 0; i < (size_t)n * n; i++)
        m[i] = hi > lo ? (m[i] - lo) / (hi - lo) : 0;
}

int cx_fog(cimg *x, int sev, ic_rng *r)
{
    static const float amount[5] = {1.5f, 2, 2.5f, 2.5f, 3}, decay[5] = {2, 2, 1.7f, 1.5f, 1.4f};
    int n = 1;
    while (n < x->w || n < x->h)
        n *= 2;
    float *m = ic_malloc((size_t)n * n * sizeof *m);
    if (!m)
        return ic_error_set(IC_ENOMEM, "fog: no memory");
    plasma(m, n, decay[sev - 1], r);
    float a = amount[sev - 1], mx = 0;
    for (size_t i = 0; i < cimg_n(x); i++)
        mx = fmaxf(mx, x->p[i]);
    for (int y = 0; y < x->h; y++)
        for (int xx = 0; xx < x->w; xx++)
            for (int c = 0; c < 3; c++) {
                float *v = &x->p[((size_t)y * x->w + xx) * 3 + c];
                *v = clip01((*v + a * m[(size_t)y * n + xx]) * mx / (mx + a));
            }
    ic_free(m);
    return 0;
}

/* Bilinear zoom about the centre by `f` >= 1 of a one-plane map. */
static int zoom_center(float *p, int w, int h, float f)
{
    float *t = ic_malloc((size_t)w * h * sizeof *t);
    if (!t)
        return ic_error_set(IC_ENOMEM, "zoom: no memory");
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            float sy = (y - h / 2.0f + 0.5f) / f + h / 2.0f - 0.5f;
            float sx = (x - w / 2.0f + 0.5f) / f + w / 2.0f - 0.5f;
            int y0 = (int)floorf(sy), x0 = (int)floorf(sx);
            float fy = sy - y0, fx = sx - x0;
            int y1 = y0 + 1 < h ? y0 + 1 : h - 1, x1 = x0 + 1 < w ? x0 + 1 : w - 1;
            y0 = y0 < 0 ? 0 : y0;
            x0 = x0 < 0 ? 0 : x0;
            t[(size_t)y * w + x] = (1 - fy) * ((1 - fx) * p[(size_t)y0 * w + x0] + fx * p[(size_t)y0 * w + x1]) +
                                   fy * ((1 - fx) * p[(size_t)y1 * w + x0] + fx * p[(size_t)y1 * w + x1]);
        }
    memcpy(p, t, (size_t)w * h * sizeof *t);
    ic_free(t);
    return 0;
}

int cx_snow(cimg *x, int sev, ic_rng *r)
{
    static const float P[5][7] = {{0.1f, 0.3f, 3, 0.5f, 10, 4, 0.8f},
                                  {0.2f, 0.3f, 2, 0.5f, 12, 4, 0.7f},
                                  {0.55f, 0.3f, 4, 0.9f, 12, 8, 0.7f},
                                  {0.55f, 0.3f, 4.5f, 0.85f, 12, 8, 0.65f},
                                  {0.55f, 0.3f, 2.5f, 0.85f, 12, 12, 0.55f}};
    const float *c = P[sev - 1];
    int w = x->w, h = x->h;
    size_t n = (size_t)w * h;
    float *s = ic_malloc(n * sizeof *s);
    if (!s)
        return ic_error_set(IC_ENOMEM, "snow: no memory");
    for (size_t i = 0; i < n; i++)
        s[i] = c[0] + c[1] * (float)ic_rng_normal(r);
    int rc = zoom_center(s, w, h, c[2]);
    for (size_t i = 0; !rc && i < n; i++)
        s[i] = s[i] < c[3] ? 0 : clip01(s[i]);
    if (!rc)
        rc = cx_motion_blur(s, w, h, 1, c[4], c[5], (float)(-135.0 + 90.0 * ic_rng_uniform(r)));
    if (!rc)
        for (int y = 0; y < h; y++)
            for (int xx = 0; xx < w; xx++) {
                float *p = x->p + ((size_t)y * w + xx) * 3;
                float gray = 0.299f * p[0] + 0.587f * p[1] + 0.114f * p[2];
                float flake = s[(size_t)y * w + xx] + s[(size_t)(h - 1 - y) * w + (w - 1 - xx)];
                for (int k = 0; k < 3; k++) {
                    float v = c[6] * p[k] + (1 - c[6]) * fmaxf(p[k], gray * 1.5f + 0.5f);
                    p[k] = clip01(v + flake);
                }
            }
    ic_free(s);
    return rc;
}

/* A smoothed random field thresholded into drops: severities 1-3 pale
 * turquoise water (brightening the image under the drops), 4-5 brown mud
 * (replacing it). */
int cx_spatter(cimg *x, int sev, ic_rng *r)
{
    static const float P[5][5] = {{0.65f, 0.3f, 4, 0.69f, 0.6f},
                                  {0.65f, 0.3f, 3, 0.68f, 0.6f},
                                  {0.65f, 0.3f, 2, 0.68f, 0.5f},
                                  {0.65f, 0.3f, 1, 0.65f, 1.5f},
                                  {0.67f, 0.4f, 1, 0.65f, 1.5f}};
    const float *c = P[sev - 1];
    int w = x->w, h = x->h, mud = sev >= 4;
    size_t n = (size_t)w * h;
    float *l = ic_malloc(n * sizeof *l);
    if (!l)
        return ic_error_set(IC_ENOMEM, "spatter: no memory");
    for (size_t i = 0; i < n; i++)
        l[i] = c[0] + c[1] * (float)ic_rng_normal(r);
    int rc = cx_gaussian(l, w, h, 1, c[2]);
    for (size_t i = 0; !rc && i < n; i++)
        l[i] = l[i] > c[3] ? (mud ? 1.0f : l[i]) : 0.0f;
    if (!rc)
        rc = cx_gaussian(l, w, h, 1, mud ? c[4] : 1.0f);
    if (!rc) {
        float mx = 0;
        for (size_t i = 0; i < n; i++)
            mx = fmaxf(mx, l[i]);
        static const float water[3] = {238 / 255.0f, 238 / 255.0f, 175 / 255.0f};
        static const float mudc[3] = {63 / 255.0f, 42 / 255.0f, 20 / 255.0f};
        for (size_t i = 0; i < n; i++) {
            float *p = x->p + i * 3;
            if (mud) {
                float m = l[i] < 0.8f ? 0 : l[i];
                for (int k = 0; k < 3; k++)
                    p[k] = clip01(p[k] * (1 - m) + mudc[k] * m);
            } else {
                float m = mx > 0 ? l[i] / mx * c[4] : 0;
                for (int k = 0; k < 3; k++)
                    p[k] = clip01(p[k] + m * water[k]);
            }
        }
    }
    ic_free(l);
    return rc;
}

int cx_brightness(cimg *x, int sev)
{
    static const float c[5] = {0.1f, 0.2f, 0.3f, 0.4f, 0.5f};
    cx_rgb_to_hsv(x);
    for (size_t i = 2; i < cimg_n(x); i += 3)
        x->p[i] = clip01(x->p[i] + c[sev - 1]);
    cx_hsv_to_rgb(x);
    return 0;
}

int cx_saturate(cimg *x, int sev)
{
    static const float mul[5] = {0.3f, 0.1f, 2, 5, 20}, add[5] = {0, 0, 0, 0.1f, 0.2f};
    cx_rgb_to_hsv(x);
    for (size_t i = 1; i < cimg_n(x); i += 3)
        x->p[i] = clip01(x->p[i] * mul[sev - 1] + add[sev - 1]);
    cx_hsv_to_rgb(x);
    return 0;
}

int cx_contrast(cimg *x, int sev)
{
    static const float c[5] = {0.4f, 0.3f, 0.2f, 0.1f, 0.05f};
    double mean[3] = {0, 0, 0};
    size_t n = cimg_n(x);
    for (size_t i = 0; i < n; i++)
        mean[i % 3] += x->p[i];
    for (int k = 0; k < 3; k++)
        mean[k] /= (double)(n / 3);
    for (size_t i = 0; i < n; i++)
        x->p[i] = clip01((float)((x->p[i] - mean[i % 3]) * c[sev - 1] + mean[i % 3]));
    return 0;
}

/* Box down to round(side * c) and back up by pixel replication (PIL's BOX
 * filter both ways). */
int cx_pixelate(cimg *x, int sev)
{
    static const float c[5] = {0.6f, 0.5f, 0.4f, 0.3f, 0.25f};
    int w = x->w, h = x->h, sw = (int)(w * c[sev - 1]), sh = (int)(h * c[sev - 1]);
    sw = sw < 1 ? 1 : sw;
    sh = sh < 1 ? 1 : sh;
    float *s = ic_calloc((size_t)sw * sh * 3, sizeof *s);
    if (!s)
        return ic_error_set(IC_ENOMEM, "pixelate: no memory");
    for (int y = 0; y < sh; y++)
        for (int xx = 0; xx < sw; xx++) {
            /* the source box of this small pixel (area-weighted at its edges) */
            double y0 = (double)y * h / sh, y1 = (double)(y + 1) * h / sh;
            double x0 = (double)xx * w / sw, x1 = (double)(xx + 1) * w / sw;
            double acc[3] = {0, 0, 0}, area = 0;
            for (int yy = (int)y0; yy < h && yy < y1; yy++) {
                double wy = fmin(yy + 1, y1) - fmax(yy, y0);
                for (int xs = (int)x0; xs < w && xs < x1; xs++) {
                    double wx = fmin(xs + 1, x1) - fmax(xs, x0), a = wy * wx;
                    const float *p = x->p + ((size_t)yy * w + xs) * 3;
                    for (int k = 0; k < 3; k++)
                        acc[k] += a * p[k];
                    area += a;
                }
            }
            for (int k = 0; k < 3; k++)
                s[((size_t)y * sw + xx) * 3 + k] = (float)(acc[k] / area);
        }
    for (int y = 0; y < h; y++)
        for (int xx = 0; xx < w; xx++) {
            int sy = (int)((y + 0.5) * sh / h), sx = (int)((xx + 0.5) * sw / w);
            memcpy(x->p + ((size_t)y * w + xx) * 3, s + ((size_t)sy * sw + sx) * 3, 3 * sizeof(float));
        }
    ic_free(s);
    return 0;
}
