/* Classic RandAugment/AugMix photometric ops and the op table (see
 * photometric.h). Ops that change each channel independently build a
 * 256-entry table per channel and map the image through it, which keeps
 * them well under a millisecond at training resolution. */
#include "augment/photometric.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "augment/aug_internal.h"
#include "augment/domain.h"
#include "base/alloc.h"
#include "base/err.h"

/* ---------------------------------------------------------------- table */

static const struct {
    const char *name;
    ic_aug_op_fn fn;
} ops[IC_AUG_NUM_OPS] = {
    [IC_AUG_BRIGHTNESS] = {"brightness", ic_aug_brightness},
    [IC_AUG_CONTRAST] = {"contrast", ic_aug_contrast},
    [IC_AUG_COLOR] = {"color", ic_aug_color},
    [IC_AUG_GAMMA] = {"gamma", ic_aug_gamma},
    [IC_AUG_POSTERIZE] = {"posterize", ic_aug_posterize},
    [IC_AUG_SOLARIZE] = {"solarize", ic_aug_solarize},
    [IC_AUG_EQUALIZE] = {"equalize", ic_aug_equalize},
    [IC_AUG_AUTOCONTRAST] = {"autocontrast", ic_aug_autocontrast},
    [IC_AUG_SHARPNESS] = {"sharpness", ic_aug_sharpness},
    [IC_AUG_BLUR] = {"blur", ic_aug_blur},
    [IC_AUG_NOISE] = {"noise", ic_aug_noise},
    [IC_AUG_JPEG] = {"jpeg", ic_aug_jpeg},
    [IC_AUG_FOG] = {"fog", ic_aug_fog},
    [IC_AUG_NIGHT] = {"night", ic_aug_night},
    [IC_AUG_PALETTE] = {"palette", ic_aug_palette},
    [IC_AUG_RAIN] = {"rain", ic_aug_rain},
    [IC_AUG_TEXTURE] = {"texture", ic_aug_texture},
    [IC_AUG_CURVES] = {"curves", ic_aug_curves},
};

const char *ic_aug_op_name(ic_aug_op op)
{
    if ((int)op < 0 || op >= IC_AUG_NUM_OPS)
        return "unknown";
    return ops[op].name;
}

int ic_aug_op_parse(const char *name, ic_aug_op *out)
{
    if (!name || !out)
        return ic_error_set(IC_EINVAL, "ic_aug_op_parse: NULL argument");
    for (int i = 0; i < IC_AUG_NUM_OPS; i++) {
        if (strcmp(name, ops[i].name) == 0) {
            *out = (ic_aug_op)i;
            return 0;
        }
    }
    return ic_error_set(IC_EINVAL, "unknown augmentation op '%s'", name);
}

int ic_aug_apply(ic_aug_rng *rng, ic_image *img, ic_aug_op op, float magnitude)
{
    if ((int)op < 0 || op >= IC_AUG_NUM_OPS)
        return ic_error_set(IC_EINVAL, "augmentation op %d outside the enum", (int)op);
    if (!rng)
        return ic_error_set(IC_EINVAL, "%s: NULL rng", ops[op].name);
    return ops[op].fn(rng, img, magnitude);
}

/* ------------------------------------------------------------ LUT ops */

/* Checks, and says whether the op has anything to do. */
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

static void lut_same(uint8_t lut[3][256], const float f[256])
{
    for (int v = 0; v < 256; v++)
        lut[0][v] = lut[1][v] = lut[2][v] = aug_u8(f[v]);
}

int ic_aug_brightness(ic_aug_rng *rng, ic_image *img, float magnitude)
{
    CHECK_OR_RETURN("brightness");
    const float k = 1.0f + ic_aug_rng_sign(rng) * 0.8f * magnitude;
    float f[256];
    uint8_t lut[3][256];
    for (int v = 0; v < 256; v++)
        f[v] = k * (float)v;
    lut_same(lut, f);
    aug_apply_lut3(img, lut);
    return 0;
}

/* Mean luma with PIL's integer weights (ITU-R 601). */
static float mean_luma(const ic_image *img)
{
    const uint8_t *p = img->data;
    const size_t n = (size_t)img->w * (size_t)img->h;
    uint64_t acc = 0;
    for (size_t i = 0; i < n; i++, p += 3)
        acc += (uint64_t)(299u * p[0] + 587u * p[1] + 114u * p[2]);
    return (float)((double)acc / 1000.0 / (double)n);
}

int ic_aug_contrast(ic_aug_rng *rng, ic_image *img, float magnitude)
{
    CHECK_OR_RETURN("contrast");
    const float k = 1.0f + ic_aug_rng_sign(rng) * 0.8f * magnitude;
    const float mean = floorf(mean_luma(img) + 0.5f);
    float f[256];
    uint8_t lut[3][256];
    for (int v = 0; v < 256; v++)
        f[v] = mean + k * ((float)v - mean);
    lut_same(lut, f);
    aug_apply_lut3(img, lut);
    return 0;
}

int ic_aug_color(ic_aug_rng *rng, ic_image *img, float magnitude)
{
    CHECK_OR_RETURN("color");
    const float k = 1.0f + ic_aug_rng_sign(rng) * 0.9f * magnitude;
    uint8_t *p = img->data;
    const size_t n = (size_t)img->w * (size_t)img->h;
    for (size_t i = 0; i < n; i++, p += 3) {
        float l = 0.299f * p[0] + 0.587f * p[1] + 0.114f * p[2];
        for (int c = 0; c < 3; c++)
            p[c] = aug_u8(l + k * ((float)p[c] - l));
    }
    return 0;
}

int ic_aug_gamma(ic_aug_rng *rng, ic_image *img, float magnitude)
{
    CHECK_OR_RETURN("gamma");
    const float g = powf(2.5f, ic_aug_rng_sign(rng) * magnitude);
    float f[256];
    uint8_t lut[3][256];
    for (int v = 0; v < 256; v++)
        f[v] = 255.0f * powf((float)v / 255.0f, g);
    lut_same(lut, f);
    aug_apply_lut3(img, lut);
    return 0;
}

int ic_aug_posterize(ic_aug_rng *rng, ic_image *img, float magnitude)
{
    CHECK_OR_RETURN("posterize");
    const int bits = 8 - (int)lroundf(4.0f * magnitude);
    const uint8_t mask = (uint8_t)(0xFFu << (8 - bits));
    uint8_t *p = img->data;
    const size_t n = aug_nsamples(img);
    for (size_t i = 0; i < n; i++)
        p[i] &= mask;
    return 0;
}

int ic_aug_solarize(ic_aug_rng *rng, ic_image *img, float magnitude)
{
    CHECK_OR_RETURN("solarize");
    const int thr = 256 - (int)lroundf(256.0f * magnitude);
    uint8_t lut[3][256];
    for (int v = 0; v < 256; v++)
        lut[0][v] = lut[1][v] = lut[2][v] = (uint8_t)(v >= thr ? 255 - v : v);
    aug_apply_lut3(img, lut);
    return 0;
}

/* Per-channel histograms of an RGB image. */
static void histograms(const ic_image *img, uint32_t hist[3][256])
{
    memset(hist, 0, 3 * 256 * sizeof hist[0][0]);
    const uint8_t *p = img->data;
    const size_t n = (size_t)img->w * (size_t)img->h;
    for (size_t i = 0; i < n; i++, p += 3) {
        hist[0][p[0]]++;
        hist[1][p[1]]++;
        hist[2][p[2]]++;
    }
}

/* lut <- identity + m (lut - identity), the blend that makes m = 0 exact. */
static void blend_lut(uint8_t lut[3][256], float m)
{
    for (int c = 0; c < 3; c++)
        for (int v = 0; v < 256; v++)
            lut[c][v] = aug_u8((float)v + m * ((float)lut[c][v] - (float)v));
}

int ic_aug_equalize(ic_aug_rng *rng, ic_image *img, float magnitude)
{
    CHECK_OR_RETURN("equalize");
    uint32_t hist[3][256];
    uint8_t lut[3][256];
    histograms(img, hist);
    for (int c = 0; c < 3; c++) {
        /* PIL: step = (count - count of the last used level) / 255. */
        int last = 255;
        while (last > 0 && hist[c][last] == 0)
            last--;
        uint64_t total = 0;
        for (int v = 0; v < 256; v++)
            total += hist[c][v];
        uint64_t step = (total - hist[c][last]) / 255u;
        uint64_t acc = step / 2u;
        for (int v = 0; v < 256; v++) {
            if (step == 0) {
                lut[c][v] = (uint8_t)v;
                continue;
            }
            uint64_t q = acc / step;
            lut[c][v] = (uint8_t)(q > 255u ? 255u : q);
            acc += hist[c][v];
        }
    }
    blend_lut(lut, magnitude);
    aug_apply_lut3(img, lut);
    return 0;
}

int ic_aug_autocontrast(ic_aug_rng *rng, ic_image *img, float magnitude)
{
    CHECK_OR_RETURN("autocontrast");
    uint32_t hist[3][256];
    uint8_t lut[3][256];
    histograms(img, hist);
    for (int c = 0; c < 3; c++) {
        int lo = 0, hi = 255;
        while (lo < 255 && hist[c][lo] == 0)
            lo++;
        while (hi > 0 && hist[c][hi] == 0)
            hi--;
        for (int v = 0; v < 256; v++) {
            if (hi <= lo)
                lut[c][v] = (uint8_t)v;
            else
                lut[c][v] = aug_u8((float)(v - lo) * 255.0f / (float)(hi - lo));
        }
    }
    blend_lut(lut, magnitude);
    aug_apply_lut3(img, lut);
    return 0;
}

/* ------------------------------------------------------- spatial ops */

int ic_aug_sharpness(ic_aug_rng *rng, ic_image *img, float magnitude)
{
    CHECK_OR_RETURN("sharpness");
    const int w = img->w, h = img->h;
    if (w < 3 || h < 3)
        return 0; /* PIL keeps the border: nothing inside to change */
    const float k = 1.0f + ic_aug_rng_sign(rng) * 0.9f * magnitude;
    const size_t row = (size_t)w * 3u;
    /* Three source rows are enough: keep a rolling copy of the previous two. */
    uint8_t *prev = ic_malloc(2u * row);
    if (!prev)
        return ic_error_set(IC_ENOMEM, "sharpness: out of memory");
    uint8_t *cur = prev + row;
    uint8_t *p = img->data;
    memcpy(prev, p, row);
    memcpy(cur, p + row, row);
    for (int y = 1; y < h - 1; y++) {
        const uint8_t *up = prev, *mid = cur, *dn = p + (size_t)(y + 1) * row;
        uint8_t *o = p + (size_t)y * row;
        for (size_t i = 3; i < row - 3; i++) {
            int s = up[i - 3] + up[i] + up[i + 3] + mid[i - 3] + 5 * mid[i] + mid[i + 3] +
                    dn[i - 3] + dn[i] + dn[i + 3];
            float sm = (float)s / 13.0f;
            o[i] = aug_u8(sm + k * ((float)mid[i] - sm));
        }
        /* Rotate: the unmodified current row becomes the previous one. */
        uint8_t *t = prev;
        prev = cur;
        cur = t;
        memcpy(cur, dn, row);
    }
    ic_free(prev < cur ? prev : cur);
    return 0;
}

int ic_aug_blur(ic_aug_rng *rng, ic_image *img, float magnitude)
{
    CHECK_OR_RETURN("blur");
    const float sigma = 3.0f * magnitude * (float)img->h / 256.0f;
    return aug_blur_rgb(img->data, img->w, img->h, sigma);
}

int ic_aug_noise(ic_aug_rng *rng, ic_image *img, float magnitude)
{
    CHECK_OR_RETURN("noise");
    aug_add_noise(rng, img->data, aug_nsamples(img), 0.1f * 255.0f * magnitude);
    return 0;
}
