/* The corruption registry, the 8-bit <-> float conversion and the helpers
 * several corruptions share (see corrupt.h, corrupt_internal.h). */
#include "corrupt/corrupt.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "augment/photometric.h"
#include "base/alloc.h"
#include "base/err.h"
#include "corrupt/corrupt_internal.h"

static const char *const names[IC_CORRUPT_COUNT] = {
    "gaussian_noise", "shot_noise", "impulse_noise", "defocus_blur", "motion_blur",
    "glass_blur",     "gaussian_blur", "fog",        "snow",         "spatter",
    "brightness",     "contrast",   "jpeg",          "pixelate",     "saturate"};
static const char *const families[IC_CORRUPT_FAMILIES] = {"noise", "blur", "weather", "digital"};
static const int family_first[IC_CORRUPT_FAMILIES + 1] = {0, 3, 7, 11, 15};

const char *ic_corruption_name(ic_corruption c)
{
    return (unsigned)c < IC_CORRUPT_COUNT ? names[c] : "?";
}

int ic_corruption_family(ic_corruption c)
{
    for (int f = 0; f < IC_CORRUPT_FAMILIES; f++)
        if ((int)c >= family_first[f] && (int)c < family_first[f + 1])
            return f;
    return -1;
}

const char *ic_corruption_family_name(int family)
{
    return family >= 0 && family < IC_CORRUPT_FAMILIES ? families[family] : "?";
}

int ic_corruption_family_size(int family)
{
    return family >= 0 && family < IC_CORRUPT_FAMILIES
               ? family_first[family + 1] - family_first[family]
               : 0;
}

ic_corruption ic_corruption_of_family(int family, int k)
{
    int n = ic_corruption_family_size(family);
    return n ? (ic_corruption)(family_first[family] + (k % n + n) % n) : IC_CORRUPT_COUNT;
}

int ic_corruption_parse(const char *name, ic_corruption *c, int *family)
{
    for (int f = 0; name && f < IC_CORRUPT_FAMILIES; f++)
        if (!strcmp(name, families[f])) {
            *family = f;
            return 0;
        }
    for (int i = 0; name && i < IC_CORRUPT_COUNT; i++)
        if (!strcmp(name, names[i])) {
            *c = (ic_corruption)i;
            *family = -1;
            return 0;
        }
    return ic_error_set(IC_EINVAL,
                        "unknown corruption '%s' (families noise, blur, weather, digital; "
                        "corruptions gaussian_noise, shot_noise, impulse_noise, defocus_blur, "
                        "motion_blur, glass_blur, gaussian_blur, fog, snow, spatter, brightness, "
                        "contrast, jpeg, pixelate, saturate)",
                        name ? name : "");
}

/* ---- helpers ---- */

/* scipy's "reflect" (half-sample symmetric): -1 -> 0, n -> n - 1. */
static int reflect(int i, int n)
{
    if (n == 1)
        return 0;
    while (i < 0 || i >= n)
        i = i < 0 ? -i - 1 : 2 * n - i - 1;
    return i;
}

/* OpenCV's BORDER_REFLECT_101: -1 -> 1, n -> n - 2. */
static int reflect101(int i, int n)
{
    if (n == 1)
        return 0;
    while (i < 0 || i >= n)
        i = i < 0 ? -i : 2 * n - i - 2;
    return i;
}

int cx_gaussian(float *p, int w, int h, int planes, float sigma)
{
    if (!(sigma > 0))
        return 0;
    int r = (int)ceil(4.0 * sigma);
    float k[257];
    if (r > 128)
        r = 128;
    double s = 0;
    for (int i = -r; i <= r; i++)
        s += k[i + r] = (float)exp(-0.5 * i * i / ((double)sigma * sigma));
    for (int i = 0; i <= 2 * r; i++)
        k[i] = (float)(k[i] / s);
    size_t n = (size_t)w * h * planes;
    float *t = ic_malloc(n * sizeof *t);
    if (!t)
        return ic_error_set(IC_ENOMEM, "blur: no memory");
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            for (int c = 0; c < planes; c++) {
                double a = 0;
                for (int j = -r; j <= r; j++)
                    a += k[j + r] * p[((size_t)y * w + reflect(x + j, w)) * planes + c];
                t[((size_t)y * w + x) * planes + c] = (float)a;
            }
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            for (int c = 0; c < planes; c++) {
                double a = 0;
                for (int j = -r; j <= r; j++)
                    a += k[j + r] * t[((size_t)reflect(y + j, h) * w + x) * planes + c];
                p[((size_t)y * w + x) * planes + c] = (float)a;
            }
    ic_free(t);
    return 0;
}

int cx_filter2d(cimg *x, const float *kernel, int k)
{
    int r = k / 2, w = x->w, h = x->h;
    float *t = ic_malloc(cimg_n(x) * sizeof *t);
    if (!t)
        return ic_error_set(IC_ENOMEM, "filter: no memory");
    for (int y = 0; y < h; y++)
        for (int xx = 0; xx < w; xx++) {
            double a[3] = {0, 0, 0};
            for (int dy = -r; dy <= r; dy++) {
                const float *row = x->p + (size_t)reflect101(y + dy, h) * w * 3;
                for (int dx = -r; dx <= r; dx++) {
                    float kv = kernel[(dy + r) * k + dx + r];
                    if (kv == 0.0f)
                        continue;
                    const float *px = row + (size_t)reflect101(xx + dx, w) * 3;
                    a[0] += kv * px[0];
                    a[1] += kv * px[1];
                    a[2] += kv * px[2];
                }
            }
            float *o = t + ((size_t)y * w + xx) * 3;
            o[0] = (float)a[0];
            o[1] = (float)a[1];
            o[2] = (float)a[2];
        }
    memcpy(x->p, t, cimg_n(x) * sizeof *t);
    ic_free(t);
    return 0;
}

int cx_motion_blur(float *p, int w, int h, int planes, float radius, float sigma, float angle_deg)
{
    int taps = 2 * (int)ceilf(radius) + 1;
    if (taps > 201)
        taps = 201;
    double kw[201], s = 0;
    int ox[201], oy[201];
    double a = angle_deg * M_PI / 180.0;
    for (int i = 0; i < taps; i++) {
        s += kw[i] = exp(-(double)i * i / (2.0 * sigma * sigma));
        ox[i] = (int)lround(i * cos(a));
        oy[i] = (int)lround(i * sin(a));
    }
    size_t n = (size_t)w * h * planes;
    float *t = ic_malloc(n * sizeof *t);
    if (!t)
        return ic_error_set(IC_ENOMEM, "motion blur: no memory");
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            for (int c = 0; c < planes; c++) {
                double acc = 0;
                for (int i = 0; i < taps; i++) {
                    int yy = y + oy[i], xx = x + ox[i];
                    yy = yy < 0 ? 0 : yy >= h ? h - 1 : yy;
                    xx = xx < 0 ? 0 : xx >= w ? w - 1 : xx;
                    acc += kw[i] * p[((size_t)yy * w + xx) * planes + c];
                }
                t[((size_t)y * w + x) * planes + c] = (float)(acc / s);
            }
    memcpy(p, t, n * sizeof *t);
    ic_free(t);
    return 0;
}

void cx_rgb_to_hsv(cimg *x)
{
    for (size_t i = 0; i < cimg_n(x); i += 3) {
        float r = x->p[i], g = x->p[i + 1], b = x->p[i + 2];
        float mx = fmaxf(r, fmaxf(g, b)), mn = fminf(r, fminf(g, b)), d = mx - mn;
        float hh = 0, s = mx > 0 ? d / mx : 0;
        if (d > 0) {
            if (mx == r)
                hh = (g - b) / d;
            else if (mx == g)
                hh = 2 + (b - r) / d;
            else
                hh = 4 + (r - g) / d;
            hh /= 6;
            if (hh < 0)
                hh += 1;
        }
        x->p[i] = hh;
        x->p[i + 1] = s;
        x->p[i + 2] = mx;
    }
}

void cx_hsv_to_rgb(cimg *x)
{
    for (size_t i = 0; i < cimg_n(x); i += 3) {
        float hh = x->p[i] * 6, s = x->p[i + 1], v = x->p[i + 2];
        int k = (int)floorf(hh);
        float f = hh - (float)k, pp = v * (1 - s), q = v * (1 - s * f), t = v * (1 - s * (1 - f));
        float r, g, b;
        switch (((k % 6) + 6) % 6) {
        case 0: r = v, g = t, b = pp; break;
        case 1: r = q, g = v, b = pp; break;
        case 2: r = pp, g = v, b = t; break;
        case 3: r = pp, g = q, b = v; break;
        case 4: r = t, g = pp, b = v; break;
        default: r = v, g = pp, b = q; break;
        }
        x->p[i] = r;
        x->p[i + 1] = g;
        x->p[i + 2] = b;
    }
}

int cx_poisson(ic_rng *r, double lambda)
{
    if (!(lambda > 0))
        return 0;
    if (lambda > 30) { /* normal approximation, continuity-corrected */
        double v = lambda + sqrt(lambda) * ic_rng_normal(r) + 0.5;
        return v < 0 ? 0 : (int)v;
    }
    double l = exp(-lambda), p = 1;
    int k = 0;
    do {
        k++;
        p *= ic_rng_uniform(r);
    } while (p > l);
    return k - 1;
}

/* ---- entry ---- */

int ic_corrupt(ic_image *img, ic_corruption c, int severity, uint64_t seed)
{
    if (!img || !img->data || img->w <= 0 || img->h <= 0 || img->c != 3 || img->depth != 8)
        return ic_error_set(IC_EINVAL, "corrupt: needs an 8-bit RGB image");
    if ((unsigned)c >= IC_CORRUPT_COUNT || severity < 1 || severity > 5)
        return ic_error_set(IC_EINVAL, "corrupt: corruption %d / severity %d out of range", (int)c,
                            severity);
    if (c == IC_CORRUPT_JPEG) {
        static const int q[5] = {25, 18, 15, 10, 7};
        return ic_aug_jpeg_quality(img, q[severity - 1]);
    }
    cimg x = {img->w, img->h, NULL};
    size_t n = cimg_n(&x);
    x.p = ic_malloc(n * sizeof *x.p);
    if (!x.p)
        return ic_error_set(IC_ENOMEM, "corrupt: no memory for %dx%d", img->w, img->h);
    const uint8_t *px = img->data;
    for (size_t i = 0; i < n; i++)
        x.p[i] = px[i] / 255.0f;
    ic_rng r;
    ic_rng_seed(&r, seed * 0x9E3779B97F4A7C15ull + (uint64_t)c * 7919u + (uint64_t)severity);
    int rc;
    switch (c) {
    case IC_CORRUPT_GAUSSIAN_NOISE: rc = cx_noise(&x, 0, severity, &r); break;
    case IC_CORRUPT_SHOT_NOISE: rc = cx_noise(&x, 1, severity, &r); break;
    case IC_CORRUPT_IMPULSE_NOISE: rc = cx_noise(&x, 2, severity, &r); break;
    case IC_CORRUPT_DEFOCUS_BLUR: rc = cx_defocus(&x, severity); break;
    case IC_CORRUPT_MOTION_BLUR: rc = cx_motion(&x, severity, &r); break;
    case IC_CORRUPT_GLASS_BLUR: rc = cx_glass(&x, severity, &r); break;
    case IC_CORRUPT_GAUSSIAN_BLUR: rc = cx_gauss_blur(&x, severity); break;
    case IC_CORRUPT_FOG: rc = cx_fog(&x, severity, &r); break;
    case IC_CORRUPT_SNOW: rc = cx_snow(&x, severity, &r); break;
    case IC_CORRUPT_SPATTER: rc = cx_spatter(&x, severity, &r); break;
    case IC_CORRUPT_BRIGHTNESS: rc = cx_brightness(&x, severity); break;
    case IC_CORRUPT_CONTRAST: rc = cx_contrast(&x, severity); break;
    case IC_CORRUPT_PIXELATE: rc = cx_pixelate(&x, severity); break;
    default: rc = cx_saturate(&x, severity); break;
    }
    if (!rc) {
        uint8_t *o = img->data;
        for (size_t i = 0; i < n; i++) {
            float v = x.p[i] * 255.0f;
            o[i] = (uint8_t)(!(v > 0) ? 0 : v >= 255 ? 255 : lrintf(v)); /* NaN -> 0 */
        }
    }
    ic_free(x.p);
    return rc;
}
