/* Domain-shift photometric ops: fog, night, palette, rain, texture, curves
 * (see domain.h). Magnitudes were tuned by eye on a contact sheet of the
 * test scene (tests/core/augment) so that m = 1 looks like a strong but
 * plausible instance of each target domain, not like noise. */
#include "augment/domain.h"

#include <math.h>
#include <string.h>

#include "augment/aug_internal.h"
#include "base/alloc.h"
#include "base/err.h"

#define CHECK_OR_RETURN(who)                                   \
    do {                                                       \
        if (!rng)                                              \
            return ic_error_set(IC_EINVAL, who ": NULL rng");  \
        int rc_ = aug_check_rgb(img, magnitude, who);          \
        if (rc_)                                               \
            return rc_;                                        \
        if (magnitude == 0.0f)                                 \
            return 0;                                          \
    } while (0)

/* Multiplies every pixel by the 3x3 matrix M (row-major) and adds b. */
static void apply_matrix(ic_image *img, const float M[9], const float b[3])
{
    uint8_t *p = img->data;
    const size_t n = (size_t)img->w * (size_t)img->h;
    for (size_t i = 0; i < n; i++, p += 3) {
        float r = p[0], g = p[1], bl = p[2];
        p[0] = aug_u8(M[0] * r + M[1] * g + M[2] * bl + b[0]);
        p[1] = aug_u8(M[3] * r + M[4] * g + M[5] * bl + b[1]);
        p[2] = aug_u8(M[6] * r + M[7] * g + M[8] * bl + b[2]);
    }
}

/* ------------------------------------------------------------------ fog */

int ic_aug_fog(ic_aug_rng *rng, ic_image *img, float magnitude)
{
    CHECK_OR_RETURN("fog");
    const int w = img->w, h = img->h;
    float *field = ic_malloc((size_t)w * (size_t)h * sizeof *field);
    if (!field)
        return ic_error_set(IC_ENOMEM, "fog: out of memory");
    int rc = aug_smooth_field(rng, field, w, h, 1, 4, 2, 0.3f, 1);
    if (rc) {
        ic_free(field);
        return rc;
    }
    /* Optical depth at the horizon: 1.2..3 at m = 1 (t = 0.3..0.05), as
     * dense as Foggy Cityscapes' beta = 0.02 at a few hundred metres. */
    const float tau = magnitude * ic_aug_rng_range(rng, 1.2f, 3.0f);
    const float yh = (float)h * ic_aug_rng_range(rng, 0.3f, 0.55f);
    const float gap = 0.02f * (float)h;
    const float grey = 255.0f * ic_aug_rng_range(rng, 0.72f, 0.92f);
    float A[3];
    for (int c = 0; c < 3; c++)
        A[c] = grey * (1.0f + 0.03f * (float)ic_aug_rng_normal(rng));
    uint8_t *p = img->data;
    for (int y = 0; y < h; y++) {
        /* Ground-plane depth ~ 1 / (rows below the horizon), normalised so
         * that the horizon (and everything above it) is 1. */
        float dn = (float)y <= yh ? 1.0f : gap / ((float)y - yh + gap);
        const float *f = field + (size_t)y * (size_t)w;
        for (int x = 0; x < w; x++, p += 3) {
            float d = dn * f[x];
            if (d > 1.0f)
                d = 1.0f;
            float t = expf(-tau * d);
            for (int c = 0; c < 3; c++)
                p[c] = aug_u8((float)p[c] * t + A[c] * (1.0f - t));
        }
    }
    ic_free(field);
    return 0;
}

/* ---------------------------------------------------------------- night */

int ic_aug_night(ic_aug_rng *rng, ic_image *img, float magnitude)
{
    CHECK_OR_RETURN("night");
    const int w = img->w, h = img->h;
    const float m = magnitude;
    float *field = ic_malloc((size_t)w * (size_t)h * sizeof *field);
    if (!field)
        return ic_error_set(IC_ENOMEM, "night: out of memory");
    /* Uneven street lighting: pools of light and dark, log-gain sigma 0.5 m. */
    int rc = aug_smooth_field(rng, field, w, h, 1, 6, 3, 0.5f * m, 1);
    if (rc) {
        ic_free(field);
        return rc;
    }
    static const float casts[2][3] = {
        {0.70f, 0.88f, 1.30f}, /* moonlight / LED: blue */
        {1.30f, 0.95f, 0.55f}, /* sodium lamps: orange */
    };
    const float *cast = casts[ic_aug_rng_int(rng, 2)];
    const float cs = m * ic_aug_rng_range(rng, 0.5f, 1.0f);
    const float g = 1.0f + 1.2f * m * ic_aug_rng_range(rng, 0.7f, 1.0f);
    const float gain = 1.0f - 0.8f * m * ic_aug_rng_range(rng, 0.8f, 1.0f);
    float lut[3][256];
    for (int c = 0; c < 3; c++) {
        float k = gain * (1.0f + cs * (cast[c] - 1.0f));
        for (int v = 0; v < 256; v++)
            lut[c][v] = 255.0f * k * powf((float)v / 255.0f, g);
    }
    uint8_t *p = img->data;
    const size_t n = (size_t)w * (size_t)h;
    for (size_t i = 0; i < n; i++, p += 3) {
        float l = field[i];
        p[0] = aug_u8(lut[0][p[0]] * l);
        p[1] = aug_u8(lut[1][p[1]] * l);
        p[2] = aug_u8(lut[2][p[2]] * l);
    }
    ic_free(field);
    aug_add_noise(rng, img->data, aug_nsamples(img), 255.0f * m * ic_aug_rng_range(rng, 0.01f, 0.035f));
    return 0;
}

/* -------------------------------------------------------------- palette */

/* out = A * B for 3x3 row-major matrices. */
static void mat3_mul(float out[9], const float A[9], const float B[9])
{
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++)
            out[i * 3 + j] = A[i * 3] * B[j] + A[i * 3 + 1] * B[3 + j] + A[i * 3 + 2] * B[6 + j];
}

int ic_aug_palette(ic_aug_rng *rng, ic_image *img, float magnitude)
{
    CHECK_OR_RETURN("palette");
    const float m = magnitude;
    /* Hue rotation in YIQ: rotate the (I, Q) chroma plane, keep luma. */
    static const float rgb2yiq[9] = {0.299f, 0.587f, 0.114f, 0.596f, -0.274f, -0.322f,
                                     0.211f, -0.523f, 0.312f};
    static const float yiq2rgb[9] = {1.0f, 0.956f, 0.621f, 1.0f, -0.272f, -0.647f,
                                     1.0f, -1.106f, 1.703f};
    const float th = ic_aug_rng_sign(rng) * m * ic_aug_rng_range(rng, 0.3f, 1.0f) * 2.0944f;
    const float cs = cosf(th), sn = sinf(th);
    const float R[9] = {1, 0, 0, 0, cs, -sn, 0, sn, cs};
    float T[9], H[9];
    mat3_mul(T, R, rgb2yiq);
    mat3_mul(H, yiq2rgb, T);
    /* Channel mixing: another sensor's spectral response. */
    float X[9];
    for (int i = 0; i < 3; i++) {
        float sum = 0.0f;
        for (int j = 0; j < 3; j++) {
            float v = (i == j ? 1.0f : 0.0f) + 0.25f * m * (float)ic_aug_rng_normal(rng);
            X[i * 3 + j] = v;
            sum += v;
        }
        /* Rows sum to ~1 so that grey stays grey-ish; a small per-channel
         * gain remains to shift the white balance. */
        float gain = 1.0f + 0.12f * m * (float)ic_aug_rng_normal(rng);
        if (fabsf(sum) < 0.2f)
            sum = 0.2f;
        for (int j = 0; j < 3; j++)
            X[i * 3 + j] *= gain / sum;
    }
    float M[9];
    mat3_mul(M, X, H);
    float b[3];
    for (int c = 0; c < 3; c++)
        b[c] = 8.0f * m * (float)ic_aug_rng_normal(rng);
    apply_matrix(img, M, b);
    return 0;
}

/* ----------------------------------------------------------------- rain */

int ic_aug_rain(ic_aug_rng *rng, ic_image *img, float magnitude)
{
    CHECK_OR_RETURN("rain");
    const int w = img->w, h = img->h;
    const float m = magnitude;
    /* Blur first: it is the only step that can fail, so the image stays
     * untouched on IC_ENOMEM. */
    int rc = aug_blur_rgb(img->data, w, h, 0.9f * m * (float)h / 256.0f);
    if (rc)
        return rc;
    /* Overcast: darker, greyer, a little bluish. */
    const float gain = 1.0f - 0.35f * m * ic_aug_rng_range(rng, 0.6f, 1.0f);
    const float desat = 0.4f * m;
    const float M[9] = {gain * (1 - desat * 0.701f), gain * desat * 0.587f, gain * desat * 0.114f,
                        gain * desat * 0.299f, gain * (1 - desat * 0.413f), gain * desat * 0.114f,
                        gain * desat * 0.299f, gain * desat * 0.587f, gain * (1 - desat * 0.886f)};
    const float b[3] = {0.0f, 2.0f * m, 8.0f * m};
    apply_matrix(img, M, b);
    /* Streaks: one wind angle, per-streak jitter, antialiased across x. */
    const float angle = ic_aug_rng_range(rng, -0.35f, 0.35f);
    const int count = (int)(m * (float)w * (float)h / 350.0f * ic_aug_rng_range(rng, 0.6f, 1.0f));
    uint8_t *px = img->data;
    for (int s = 0; s < count; s++) {
        float a = angle + ic_aug_rng_range(rng, -0.05f, 0.05f);
        float len = (float)h * ic_aug_rng_range(rng, 0.03f, 0.09f);
        float alpha = m * ic_aug_rng_range(rng, 0.2f, 0.5f);
        float bright = ic_aug_rng_range(rng, 200.0f, 245.0f);
        float x0 = ic_aug_rng_range(rng, -0.1f * (float)w, 1.1f * (float)w);
        float y0 = ic_aug_rng_range(rng, -len, (float)h);
        float dx = tanf(a);
        for (int k = 0; k < (int)len; k++) {
            int y = (int)y0 + k;
            if (y < 0 || y >= h)
                continue;
            float fx = x0 + dx * (float)k;
            int xi = (int)floorf(fx);
            float fr = fx - (float)xi;
            /* Faint ends, bright middle, like a motion-blurred drop. */
            float prof = sinf(3.14159f * ((float)k + 0.5f) / len);
            for (int q = 0; q < 2; q++) {
                int x = xi + q;
                if (x < 0 || x >= w)
                    continue;
                float wq = alpha * prof * (q ? fr : 1.0f - fr);
                uint8_t *p = px + ((size_t)y * (size_t)w + (size_t)x) * 3u;
                for (int c = 0; c < 3; c++)
                    p[c] = aug_u8((float)p[c] + wq * (bright - (float)p[c]));
            }
        }
    }
    return 0;
}

/* -------------------------------------------------------------- texture */

int ic_aug_texture(ic_aug_rng *rng, ic_image *img, float magnitude)
{
    CHECK_OR_RETURN("texture");
    const int w = img->w, h = img->h;
    const size_t npx = (size_t)w * (size_t)h;
    float *f = ic_malloc(7u * npx * sizeof *f);
    if (!f)
        return ic_error_set(IC_ENOMEM, "texture: out of memory");
    float *tint = f, *shade = f + 3u * npx, *blot = f + 4u * npx;
    /* Three gain fields: a coarse per-channel tint (lighting, white
     * balance across the frame), a finer shared shading (brighter and darker
     * surfaces) and a finer, weaker per-channel one (blotches of another
     * colour the size of a facade or a car): the low-frequency colour and
     * texture statistics that differ between cities and that BN statistics
     * pick up. Strengths were tuned on the contact sheet to stay plausible. */
    const float m = magnitude;
    int rc = aug_smooth_field(rng, tint, w, h, 3, 3, 2, 0.12f * m, 1);
    if (!rc)
        rc = aug_smooth_field(rng, shade, w, h, 1, 20, 10, 0.12f * m, 1);
    if (!rc)
        rc = aug_smooth_field(rng, blot, w, h, 3, 12, 6, 0.05f * m, 1);
    if (rc) {
        ic_free(f);
        return rc;
    }
    uint8_t *p = img->data;
    for (size_t i = 0; i < npx; i++, p += 3)
        for (int c = 0; c < 3; c++)
            p[c] = aug_u8((float)p[c] * tint[i * 3 + (size_t)c] * shade[i] *
                          blot[i * 3 + (size_t)c]);
    ic_free(f);
    return 0;
}

/* --------------------------------------------------------------- curves */

int ic_aug_curves(ic_aug_rng *rng, ic_image *img, float magnitude)
{
    CHECK_OR_RETURN("curves");
    const float m = magnitude;
    /* A shared component (the camera's overall response) and a per-channel
     * one (its colour balance across the tonal range). */
    const float g_all = expf(0.35f * m * (float)ic_aug_rng_normal(rng));
    const float s_all = 0.6f * m * ic_aug_rng_range(rng, -1.0f, 1.0f);
    uint8_t lut[3][256];
    for (int c = 0; c < 3; c++) {
        float g = g_all * expf(0.2f * m * (float)ic_aug_rng_normal(rng));
        float s = s_all + 0.3f * m * ic_aug_rng_range(rng, -1.0f, 1.0f);
        /* |s| < 1 keeps x - s sin(2 pi x) / (2 pi) monotone. */
        if (s > 0.95f)
            s = 0.95f;
        if (s < -0.95f)
            s = -0.95f;
        for (int v = 0; v < 256; v++) {
            float x = powf((float)v / 255.0f, g);
            x = x - s * sinf(6.2831853f * x) / 6.2831853f;
            lut[c][v] = aug_u8(255.0f * x);
        }
    }
    aug_apply_lut3(img, lut);
    return 0;
}
