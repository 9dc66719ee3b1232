/* Shared helpers of the augmentation ops (see aug_internal.h). */
#include "augment/aug_internal.h"

#include <string.h>

#include "base/alloc.h"
#include "base/err.h"

int aug_check_rgb(const ic_image *img, float magnitude, const char *who)
{
    if (!img || !img->data || img->w <= 0 || img->h <= 0)
        return ic_error_set(IC_EINVAL, "%s: missing or empty image", who);
    if (img->depth != 8 || img->c != 3)
        return ic_error_set(IC_EINVAL, "%s: needs 8-bit RGB, got %d-bit x %d channels", who,
                            img->depth, img->c);
    if (!(magnitude >= 0.0f && magnitude <= 1.0f))
        return ic_error_set(IC_EINVAL, "%s: magnitude %g outside [0, 1]", who,
                            (double)magnitude);
    return 0;
}

void aug_apply_lut3(ic_image *img, uint8_t lut[3][256])
{
    uint8_t *p = img->data;
    const size_t n = (size_t)img->w * (size_t)img->h;
    for (size_t i = 0; i < n; i++, p += 3) {
        p[0] = lut[0][p[0]];
        p[1] = lut[1][p[1]];
        p[2] = lut[2][p[2]];
    }
}

/* Normalised Gaussian taps, radius ceil(3 sigma) (at most 32). */
static int gauss_taps(float sigma, float *k)
{
    int r = (int)ceilf(3.0f * sigma);
    if (r > 32)
        r = 32;
    float sum = 0.0f;
    for (int i = -r; i <= r; i++) {
        k[i + r] = expf(-0.5f * (float)(i * i) / (sigma * sigma));
        sum += k[i + r];
    }
    for (int i = 0; i <= 2 * r; i++)
        k[i] /= sum;
    return r;
}

int aug_blur_rgb(uint8_t *rgb, int w, int h, float sigma)
{
    if (!(sigma > 0.2f))
        return 0;
    float k[65];
    const int r = gauss_taps(sigma, k);
    const size_t row = (size_t)w * 3u;
    /* tmp: horizontally blurred image; pad: one edge-replicated input row. */
    float *tmp = ic_malloc(((size_t)h * row + row + 6u * (size_t)r) * sizeof *tmp);
    if (!tmp)
        return ic_error_set(IC_ENOMEM, "blur: out of memory for %dx%d", w, h);
    float *pad = tmp + (size_t)h * row;
    for (int y = 0; y < h; y++) {
        const uint8_t *s = rgb + (size_t)y * row;
        for (int x = -r; x < w + r; x++) {
            int xc = x < 0 ? 0 : x >= w ? w - 1 : x;
            for (int c = 0; c < 3; c++)
                pad[(size_t)(x + r) * 3u + (size_t)c] = s[(size_t)xc * 3u + (size_t)c];
        }
        float *o = tmp + (size_t)y * row;
        memset(o, 0, row * sizeof *o);
        for (int j = 0; j <= 2 * r; j++) {
            const float kj = k[j];
            const float *src = pad + (size_t)j * 3u;
            for (size_t i = 0; i < row; i++)
                o[i] += kj * src[i];
        }
    }
    /* Vertical pass row by row into the (now free) padded-row buffer. */
    for (int y = 0; y < h; y++) {
        float *acc = pad;
        memset(acc, 0, row * sizeof *acc);
        for (int j = -r; j <= r; j++) {
            int yc = y + j < 0 ? 0 : y + j >= h ? h - 1 : y + j;
            const float kj = k[j + r];
            const float *src = tmp + (size_t)yc * row;
            for (size_t i = 0; i < row; i++)
                acc[i] += kj * src[i];
        }
        uint8_t *o = rgb + (size_t)y * row;
        for (size_t i = 0; i < row; i++)
            o[i] = (uint8_t)(acc[i] + 0.5f);
    }
    ic_free(tmp);
    return 0;
}

void aug_add_noise(ic_aug_rng *rng, uint8_t *data, size_t n, float sigma)
{
    if (!(sigma > 0.0f))
        return;
    /* A sum of four uniform bytes has mean 510 and variance 4 (256^2 - 1)/12. */
    const float scale = sigma / sqrtf(4.0f * (65536.0f - 1.0f) / 12.0f);
    size_t i = 0;
    while (i < n) {
        uint64_t b = ic_aug_rng_next(rng);
        for (int half = 0; half < 2 && i < n; half++, i++) {
            int s = (int)(b & 0xFF) + (int)((b >> 8) & 0xFF) + (int)((b >> 16) & 0xFF) +
                    (int)((b >> 24) & 0xFF) - 510;
            b >>= 32;
            data[i] = aug_u8((float)data[i] + scale * (float)s);
        }
    }
}

static inline float smoothstep(float t)
{
    return t * t * (3.0f - 2.0f * t);
}

int aug_smooth_field(ic_aug_rng *rng, float *out, int w, int h, int ch, int gx, int gy,
                     float scale, int exp_grid)
{
    if (gx < 1)
        gx = 1;
    if (gy < 1)
        gy = 1;
    const size_t ng = (size_t)(gx + 1) * (size_t)(gy + 1) * (size_t)ch;
    float *g = ic_malloc(ng * sizeof *g);
    if (!g)
        return ic_error_set(IC_ENOMEM, "smooth field: out of memory");
    for (size_t i = 0; i < ng; i++) {
        g[i] = scale * (float)ic_aug_rng_normal(rng);
        if (exp_grid)
            g[i] = expf(g[i]);
    }
    const float sx = (float)gx / (float)(w > 1 ? w - 1 : 1);
    const float sy = (float)gy / (float)(h > 1 ? h - 1 : 1);
    for (int y = 0; y < h; y++) {
        float fy = (float)y * sy;
        int iy = (int)fy;
        if (iy >= gy)
            iy = gy - 1;
        float ty = smoothstep(fy - (float)iy);
        const float *g0 = g + (size_t)iy * (size_t)(gx + 1) * (size_t)ch;
        const float *g1 = g0 + (size_t)(gx + 1) * (size_t)ch;
        float *o = out + (size_t)y * (size_t)w * (size_t)ch;
        for (int x = 0; x < w; x++) {
            float fx = (float)x * sx;
            int ix = (int)fx;
            if (ix >= gx)
                ix = gx - 1;
            float tx = smoothstep(fx - (float)ix);
            for (int c = 0; c < ch; c++) {
                size_t a = (size_t)ix * (size_t)ch + (size_t)c, b = a + (size_t)ch;
                float top = g0[a] + tx * (g0[b] - g0[a]);
                float bot = g1[a] + tx * (g1[b] - g1[a]);
                *o++ = top + ty * (bot - top);
            }
        }
    }
    ic_free(g);
    return 0;
}
