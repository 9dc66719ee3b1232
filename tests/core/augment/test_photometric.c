/* Photometric, domain-shift, RandAugment, AugMix and DeepAugment-like ops:
 * m = 0 is the identity, each op's defining property on a known image,
 * determinism for a seed, the distributions behind AugMix, argument
 * checks and clean IC_ENOMEM under fault injection. */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "augment/augmix.h"
#include "augment/deepaug.h"
#include "augment/domain.h"
#include "augment/photometric.h"
#include "augment/policy.h"
#include "augment/rng.h"
#include "base/alloc.h"
#include "base/err.h"
#include "scene.h"

#define W 128
#define H 64

static ic_image scene(void)
{
    ic_image img;
    ck_assert_int_eq(test_scene_render(W, H, &img, NULL), 0);
    return img;
}

/* An image with every sample equal to v. */
static ic_image constant(int w, int h, uint8_t v)
{
    ic_image img;
    ck_assert_int_eq(ic_image_alloc(&img, w, h, 3, 8), 0);
    memset(img.data, v, (size_t)w * (size_t)h * 3);
    return img;
}

/* A horizontal ramp from lo to hi in every channel. */
static ic_image ramp(int w, int h, int lo, int hi)
{
    ic_image img;
    ck_assert_int_eq(ic_image_alloc(&img, w, h, 3, 8), 0);
    uint8_t *p = img.data;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            for (int c = 0; c < 3; c++)
                *p++ = (uint8_t)(lo + (hi - lo) * x / (w - 1));
    return img;
}

static double mean_of(const ic_image *img)
{
    const uint8_t *p = img->data;
    size_t n = (size_t)img->w * (size_t)img->h * 3;
    double s = 0;
    for (size_t i = 0; i < n; i++)
        s += p[i];
    return s / (double)n;
}

static double std_of(const ic_image *img)
{
    const uint8_t *p = img->data;
    size_t n = (size_t)img->w * (size_t)img->h * 3;
    double m = mean_of(img), s = 0;
    for (size_t i = 0; i < n; i++)
        s += (p[i] - m) * (p[i] - m);
    return sqrt(s / (double)n);
}

static int apply(ic_aug_op op, ic_image *img, float m, uint64_t seed)
{
    ic_aug_rng r;
    ic_aug_rng_seed(&r, seed, 0);
    return ic_aug_apply(&r, img, op, m);
}

START_TEST(test_zero_magnitude_is_identity)
{
    for (int op = 0; op <= IC_AUG_NUM_OPS; op++) {
        ic_image img = scene(), ref = scene();
        ic_aug_rng r;
        ic_aug_rng_seed(&r, 3, 0);
        int rc = op < IC_AUG_NUM_OPS ? ic_aug_apply(&r, &img, (ic_aug_op)op, 0.0f)
                                     : ic_aug_deepaug_op(&r, &img, 0.0f);
        ck_assert_int_eq(rc, 0);
        ck_assert_msg(memcmp(img.data, ref.data, W * H * 3) == 0, "op %s changed the image",
                      ic_aug_op_name((ic_aug_op)op));
        ic_image_free(&img);
        ic_image_free(&ref);
    }
}
END_TEST

START_TEST(test_full_magnitude_changes_and_keeps_size)
{
    for (int op = 0; op <= IC_AUG_NUM_OPS; op++) {
        ic_image img = scene(), ref = scene();
        ic_aug_rng r;
        ic_aug_rng_seed(&r, 4, 0);
        int rc = op < IC_AUG_NUM_OPS ? ic_aug_apply(&r, &img, (ic_aug_op)op, 1.0f)
                                     : ic_aug_deepaug_op(&r, &img, 1.0f);
        ck_assert_int_eq(rc, 0);
        ck_assert_int_eq(img.w, W);
        ck_assert_int_eq(img.h, H);
        ck_assert_msg(memcmp(img.data, ref.data, W * H * 3) != 0, "op %d left the image as is",
                      op);
        ic_image_free(&img);
        ic_image_free(&ref);
    }
}
END_TEST

START_TEST(test_names)
{
    for (int op = 0; op < IC_AUG_NUM_OPS; op++) {
        ic_aug_op back;
        ck_assert_int_eq(ic_aug_op_parse(ic_aug_op_name((ic_aug_op)op), &back), 0);
        ck_assert_int_eq(back, op);
    }
    ic_aug_op back;
    ck_assert_int_eq(ic_aug_op_parse("nope", &back), IC_EINVAL);
    ck_assert_str_eq(ic_aug_op_name(IC_AUG_NUM_OPS), "unknown");
}
END_TEST

START_TEST(test_brightness_contrast_color_gamma)
{
    /* Brightness: a constant 100 becomes 100 (1 +- 0.8 m). */
    for (uint64_t seed = 0; seed < 4; seed++) {
        ic_image c = constant(8, 8, 100);
        ck_assert_int_eq(apply(IC_AUG_BRIGHTNESS, &c, 0.5f, seed), 0);
        uint8_t v = ((uint8_t *)c.data)[0];
        ck_assert(v == 140 || v == 60);
        ic_image_free(&c);
    }
    /* Contrast: the mean stays, the spread scales. */
    ic_image g = ramp(256, 4, 0, 255);
    double s0 = std_of(&g), m0 = mean_of(&g);
    ck_assert_int_eq(apply(IC_AUG_CONTRAST, &g, 1.0f, 1), 0);
    double s1 = std_of(&g);
    ck_assert(fabs(mean_of(&g) - m0) < 3.0 || s1 > s0); /* clipping moves the mean when up */
    ck_assert(fabs(s1 / s0 - 0.2) < 0.02 || s1 > s0 * 1.2);
    ic_image_free(&g);
    /* Colour: a grey image stays grey. */
    ic_image c = constant(8, 8, 77);
    ck_assert_int_eq(apply(IC_AUG_COLOR, &c, 1.0f, 2), 0);
    ck_assert_int_eq(((uint8_t *)c.data)[5], 77);
    ic_image_free(&c);
    /* Gamma keeps 0 and 255 and is monotone. */
    g = ramp(256, 1, 0, 255);
    ck_assert_int_eq(apply(IC_AUG_GAMMA, &g, 1.0f, 3), 0);
    const uint8_t *p = g.data;
    ck_assert_int_eq(p[0], 0);
    ck_assert_int_eq(p[255 * 3], 255);
    for (int x = 1; x < 256; x++)
        ck_assert_int_ge(p[x * 3], p[(x - 1) * 3]);
    ic_image_free(&g);
}
END_TEST

START_TEST(test_posterize_solarize)
{
    ic_image g = ramp(256, 2, 0, 255);
    ck_assert_int_eq(apply(IC_AUG_POSTERIZE, &g, 1.0f, 0), 0); /* 4 bits */
    const uint8_t *p = g.data;
    for (int i = 0; i < 256 * 2 * 3; i++)
        ck_assert_int_eq(p[i] & 0x0F, 0);
    ic_image_free(&g);
    g = ramp(256, 1, 0, 255);
    ck_assert_int_eq(apply(IC_AUG_POSTERIZE, &g, 0.5f, 0), 0); /* 6 bits */
    p = g.data;
    for (int x = 0; x < 256; x++)
        ck_assert_int_eq(p[x * 3], x & 0xFC);
    ic_image_free(&g);
    g = ramp(256, 1, 0, 255);
    ck_assert_int_eq(apply(IC_AUG_SOLARIZE, &g, 0.5f, 0), 0); /* threshold 128 */
    p = g.data;
    for (int x = 0; x < 256; x++)
        ck_assert_int_eq(p[x * 3 + 2], x >= 128 ? 255 - x : x);
    ic_image_free(&g);
}
END_TEST

START_TEST(test_equalize_autocontrast)
{
    /* Values squeezed into 100..140: equalisation spreads them flat. */
    ic_image g = ramp(512, 8, 100, 140);
    ck_assert_int_eq(apply(IC_AUG_EQUALIZE, &g, 1.0f, 0), 0);
    const uint8_t *p = g.data;
    int quart[4] = {0};
    for (int i = 0; i < 512 * 8; i++)
        quart[p[i * 3] / 64]++;
    for (int q = 0; q < 4; q++)
        ck_assert_msg(quart[q] > 512 * 8 * 15 / 100 && quart[q] < 512 * 8 * 35 / 100,
                      "quarter %d holds %d", q, quart[q]);
    ic_image_free(&g);
    g = ramp(200, 2, 50, 150);
    ck_assert_int_eq(apply(IC_AUG_AUTOCONTRAST, &g, 1.0f, 0), 0);
    p = g.data;
    ck_assert_int_eq(p[0], 0);
    ck_assert_int_eq(p[199 * 3], 255);
    ic_image_free(&g);
    /* Half magnitude lands half-way. */
    g = ramp(200, 2, 50, 150);
    ck_assert_int_eq(apply(IC_AUG_AUTOCONTRAST, &g, 0.5f, 0), 0);
    ck_assert_int_eq(((uint8_t *)g.data)[0], 25);
    ic_image_free(&g);
}
END_TEST

START_TEST(test_blur_sharpness_noise)
{
    for (int op = IC_AUG_SHARPNESS; op <= IC_AUG_BLUR; op++) {
        ic_image c = constant(40, 30, 123);
        ck_assert_int_eq(apply((ic_aug_op)op, &c, 1.0f, 0), 0);
        const uint8_t *p = c.data;
        for (int i = 0; i < 40 * 30 * 3; i++)
            ck_assert_int_eq(p[i], 123);
        ic_image_free(&c);
    }
    /* Blur (sigma 3 at 256 rows) softens a step edge: the largest jump
     * between neighbours drops from 255 to about 255 / (sigma sqrt(2 pi)). */
    ic_image e = ramp(64, 256, 0, 255);
    uint8_t *p = e.data;
    for (int i = 0; i < 64 * 256 * 3; i++)
        p[i] = p[i] < 128 ? 0 : 255;
    ck_assert_int_eq(apply(IC_AUG_BLUR, &e, 1.0f, 0), 0);
    int maxstep = 0;
    for (int x = 1; x < 64; x++) {
        int d = abs(p[(32 * 64 + x) * 3] - p[(32 * 64 + x - 1) * 3]);
        maxstep = d > maxstep ? d : maxstep;
    }
    ck_assert_int_lt(maxstep, 40);
    ic_image_free(&e);
    /* Noise: mean kept, standard deviation 0.1 x 255 at m = 1. */
    ic_image c = constant(256, 128, 128);
    ck_assert_int_eq(apply(IC_AUG_NOISE, &c, 1.0f, 7), 0);
    ck_assert(fabs(mean_of(&c) - 128.0) < 0.5);
    ck_assert_msg(fabs(std_of(&c) - 25.5) < 1.0, "noise std %f", std_of(&c));
    ic_image_free(&c);
}
END_TEST

START_TEST(test_jpeg)
{
    ic_image img = scene(), ref = scene();
    ck_assert_int_eq(apply(IC_AUG_JPEG, &img, 1.0f, 0), 0);
    ck_assert_int_eq(img.w, W);
    ck_assert_int_eq(img.h, H);
    const uint8_t *a = img.data, *b = ref.data;
    double mad = 0;
    int diff = 0;
    for (int i = 0; i < W * H * 3; i++) {
        mad += abs(a[i] - b[i]);
        diff += a[i] != b[i];
    }
    mad /= W * H * 3;
    ck_assert_int_gt(diff, W * H / 4);
    ck_assert_msg(mad > 1.0 && mad < 25.0, "mean abs diff %f", mad);
    /* A light re-encoding changes less than a heavy one. */
    ic_image light = scene();
    ck_assert_int_eq(apply(IC_AUG_JPEG, &light, 0.1f, 0), 0);
    double mad2 = 0;
    for (int i = 0; i < W * H * 3; i++)
        mad2 += abs(((uint8_t *)light.data)[i] - b[i]);
    ck_assert(mad2 / (W * H * 3) < mad);
    ic_image_free(&light);
    ic_image_free(&img);
    ic_image_free(&ref);
}
END_TEST

START_TEST(test_domain_ops)
{
    /* Fog lowers the contrast of the far (upper) half most. */
    for (uint64_t seed = 0; seed < 3; seed++) {
        ic_image img = scene();
        ic_image top = img;
        top.h = H / 2;
        double s0 = std_of(&top);
        ck_assert_int_eq(apply(IC_AUG_FOG, &img, 1.0f, seed), 0);
        ck_assert_msg(std_of(&top) < 0.6 * s0, "fog: top std %f of %f", std_of(&top), s0);
        ic_image_free(&img);
    }
    /* Night darkens a lot. */
    for (uint64_t seed = 0; seed < 3; seed++) {
        ic_image img = scene();
        double m0 = mean_of(&img);
        ck_assert_int_eq(apply(IC_AUG_NIGHT, &img, 1.0f, seed), 0);
        ck_assert_msg(mean_of(&img) < 0.5 * m0, "night mean %f of %f", mean_of(&img), m0);
        ic_image_free(&img);
    }
    /* Rain on a dark image: bright streak pixels appear although it dims. */
    ic_image d = constant(256, 128, 40);
    ck_assert_int_eq(apply(IC_AUG_RAIN, &d, 1.0f, 1), 0);
    int bright = 0;
    for (int i = 0; i < 256 * 128; i++)
        bright += ((uint8_t *)d.data)[i * 3] > 55;
    ck_assert_int_gt(bright, 200);
    ic_image_free(&d);
    /* Curves are monotone per channel. */
    for (uint64_t seed = 0; seed < 5; seed++) {
        ic_image g = ramp(256, 1, 0, 255);
        ck_assert_int_eq(apply(IC_AUG_CURVES, &g, 1.0f, seed), 0);
        const uint8_t *p = g.data;
        for (int x = 1; x < 256; x++)
            for (int c = 0; c < 3; c++)
                ck_assert_int_ge(p[x * 3 + c], p[(x - 1) * 3 + c]);
        ic_image_free(&g);
    }
    /* Palette and texture change colours but keep the overall level. */
    for (int op = IC_AUG_PALETTE; op <= IC_AUG_TEXTURE; op += IC_AUG_TEXTURE - IC_AUG_PALETTE) {
        ic_image img = scene();
        double m0 = mean_of(&img);
        ck_assert_int_eq(apply((ic_aug_op)op, &img, 1.0f, 5), 0);
        ck_assert_msg(fabs(mean_of(&img) / m0 - 1.0) < 0.35, "%s mean %f of %f",
                      ic_aug_op_name((ic_aug_op)op), mean_of(&img), m0);
        ic_image_free(&img);
    }
}
END_TEST

/* Pearson correlation of the luma (R + G + B) of two images. */
static double correlation(const ic_image *a, const ic_image *b)
{
    const uint8_t *p = a->data, *q = b->data;
    size_t n = (size_t)a->w * (size_t)a->h;
    double sa = 0, sb = 0, saa = 0, sbb = 0, sab = 0;
    for (size_t i = 0; i < n; i++) {
        double x = p[i * 3] + p[i * 3 + 1] + p[i * 3 + 2];
        double y = q[i * 3] + q[i * 3 + 1] + q[i * 3 + 2];
        sa += x;
        sb += y;
        saa += x * x;
        sbb += y * y;
        sab += x * y;
    }
    double cov = sab / n - sa / n * sb / n;
    return cov / sqrt((saa / n - sa * sa / n / n) * (sbb / n - sb * sb / n / n));
}

START_TEST(test_deepaug_keeps_structure)
{
    for (int ds = 1; ds <= 2; ds++) {
        for (uint64_t seed = 0; seed < 20; seed++) {
            ic_image img = scene(), ref = scene();
            ic_aug_rng r;
            ic_aug_rng_seed(&r, seed, 11);
            ic_aug_deepaug_params p = {.magnitude = 1.0f, .downscale = ds};
            ck_assert_int_eq(ic_aug_deepaug(&r, &img, &p), 0);
            ck_assert(memcmp(img.data, ref.data, W * H * 3) != 0);
            double c = correlation(&img, &ref);
            ck_assert_msg(c > 0.35, "deepaug seed %llu ds %d: correlation %f",
                          (unsigned long long)seed, ds, c);
            ic_image_free(&img);
            ic_image_free(&ref);
        }
    }
}
END_TEST

START_TEST(test_determinism)
{
    for (int which = 0; which < 4; which++) {
        ic_image a = scene(), b = scene(), c = scene();
        ic_aug_rng r1, r2, r3;
        ic_aug_rng_seed(&r1, 42, 7);
        ic_aug_rng_seed(&r2, 42, 7);
        ic_aug_rng_seed(&r3, 42, 8);
        ic_aug_augmix_params ap = ic_aug_augmix_params_default();
        ic_aug_deepaug_params dp = ic_aug_deepaug_params_default();
        ic_aug_strong_params sp = ic_aug_strong_params_default();
        sp.geometric = 0;
        sp.p_identity = 0.0f;
        ic_aug_rng *rs[3] = {&r1, &r2, &r3};
        ic_image *im[3] = {&a, &b, &c};
        for (int k = 0; k < 3; k++) {
            int rc = which == 0   ? ic_aug_randaugment(rs[k], im[k], 3, 0.8f, NULL)
                     : which == 1 ? ic_aug_augmix(rs[k], im[k], &ap)
                     : which == 2 ? ic_aug_deepaug(rs[k], im[k], &dp)
                                  : ic_aug_strong(rs[k], im[k], NULL, &sp);
            ck_assert_int_eq(rc, 0);
        }
        ck_assert_msg(memcmp(a.data, b.data, W * H * 3) == 0, "case %d not deterministic",
                      which);
        ck_assert_msg(memcmp(a.data, c.data, W * H * 3) != 0, "case %d ignores the stream",
                      which);
        ic_image_free(&a);
        ic_image_free(&b);
        ic_image_free(&c);
    }
}
END_TEST

START_TEST(test_augmix_identity_and_weights)
{
    /* Chains of identity ops (m = 0) mix back to the original exactly. */
    ic_image img = scene(), ref = scene();
    ic_aug_rng r;
    ic_aug_rng_seed(&r, 1, 1);
    ic_aug_augmix_params p = ic_aug_augmix_params_default();
    p.magnitude = 0.0f;
    ck_assert_int_eq(ic_aug_augmix(&r, &img, &p), 0);
    ck_assert(memcmp(img.data, ref.data, W * H * 3) == 0);
    /* Only posterize to 4 bits, one chain: the result lies between the
     * original and the posterized image for every sample. */
    float only[IC_AUG_NUM_OPS] = {0};
    only[IC_AUG_POSTERIZE] = 1.0f;
    p = ic_aug_augmix_params_default();
    p.width = 1;
    p.depth_min = p.depth_max = 1;
    p.op_weights = only;
    for (uint64_t seed = 0; seed < 5; seed++) {
        ic_image a = scene();
        ic_aug_rng_seed(&r, seed, 0);
        ck_assert_int_eq(ic_aug_augmix(&r, &a, &p), 0);
        const uint8_t *o = ref.data, *q = a.data;
        for (int i = 0; i < W * H * 3; i++)
            ck_assert(q[i] <= o[i] && q[i] + 16 >= o[i]);
        ic_image_free(&a);
    }
    ic_image_free(&img);
    ic_image_free(&ref);
}
END_TEST

START_TEST(test_distributions)
{
    ic_aug_rng r;
    ic_aug_rng_seed(&r, 123, 0);
    static const double alphas[] = {0.3, 1.0, 3.7};
    for (int a = 0; a < 3; a++) {
        const int n = 40000;
        double s = 0, ss = 0;
        for (int i = 0; i < n; i++) {
            double g = ic_aug_rng_gamma(&r, alphas[a]);
            ck_assert(g >= 0.0);
            s += g;
            ss += g * g;
        }
        double mean = s / n, var = ss / n - mean * mean;
        /* Gamma(a, 1): mean a, variance a. */
        ck_assert_msg(fabs(mean - alphas[a]) < 0.03 * alphas[a] + 0.01, "alpha %g mean %f",
                      alphas[a], mean);
        ck_assert_msg(fabs(var - alphas[a]) < 0.08 * alphas[a] + 0.01, "alpha %g var %f",
                      alphas[a], var);
    }
    double s = 0;
    for (int i = 0; i < 20000; i++) {
        double b = ic_aug_rng_beta(&r, 2.0, 5.0);
        ck_assert(b >= 0.0 && b <= 1.0);
        s += b;
    }
    ck_assert(fabs(s / 20000 - 2.0 / 7.0) < 0.01);
    float w[5];
    double mean0 = 0;
    for (int i = 0; i < 5000; i++) {
        ck_assert_int_eq(ic_aug_rng_dirichlet(&r, 1.0, 5, w), 0);
        double sum = 0;
        for (int k = 0; k < 5; k++) {
            ck_assert(w[k] >= 0.0f);
            sum += w[k];
        }
        ck_assert(fabs(sum - 1.0) < 1e-5);
        mean0 += w[0];
    }
    ck_assert(fabs(mean0 / 5000 - 0.2) < 0.01);
    ck_assert_int_eq(ic_aug_rng_dirichlet(&r, 0.0, 5, w), IC_EINVAL);
    ck_assert_int_eq(ic_aug_rng_dirichlet(&r, 1.0, 0, w), IC_EINVAL);
    /* Uniform ints cover the range evenly. */
    int hist[7] = {0};
    for (int i = 0; i < 70000; i++)
        hist[ic_aug_rng_int(&r, 7)]++;
    for (int k = 0; k < 7; k++)
        ck_assert(abs(hist[k] - 10000) < 500);
}
END_TEST

START_TEST(test_bad_arguments)
{
    ic_aug_rng r;
    ic_aug_rng_seed(&r, 1, 0);
    ic_image img = scene();
    for (int op = 0; op < IC_AUG_NUM_OPS; op++) {
        ck_assert_int_eq(ic_aug_apply(&r, NULL, (ic_aug_op)op, 0.5f), IC_EINVAL);
        ck_assert_int_eq(ic_aug_apply(&r, &img, (ic_aug_op)op, -0.1f), IC_EINVAL);
        ck_assert_int_eq(ic_aug_apply(&r, &img, (ic_aug_op)op, 1.5f), IC_EINVAL);
        ck_assert_int_eq(ic_aug_apply(&r, &img, (ic_aug_op)op, NAN), IC_EINVAL);
        ck_assert_int_eq(ic_aug_apply(NULL, &img, (ic_aug_op)op, 0.5f), IC_EINVAL);
        ic_image bad = img;
        bad.c = 4;
        ck_assert_int_eq(ic_aug_apply(&r, &bad, (ic_aug_op)op, 0.5f), IC_EINVAL);
        bad = img;
        bad.depth = 16;
        ck_assert_int_eq(ic_aug_apply(&r, &bad, (ic_aug_op)op, 0.5f), IC_EINVAL);
    }
    ck_assert_int_eq(ic_aug_apply(&r, &img, IC_AUG_NUM_OPS, 0.5f), IC_EINVAL);
    ck_assert_int_eq(ic_aug_randaugment(&r, &img, -1, 0.5f, NULL), IC_EINVAL);
    float zero[IC_AUG_NUM_OPS] = {0};
    ck_assert_int_eq(ic_aug_randaugment(&r, &img, 2, 0.5f, zero), IC_EINVAL);
    zero[3] = -1.0f;
    ck_assert_int_eq(ic_aug_randaugment(&r, &img, 2, 0.5f, zero), IC_EINVAL);
    ic_aug_augmix_params ap = ic_aug_augmix_params_default();
    ap.width = 0;
    ck_assert_int_eq(ic_aug_augmix(&r, &img, &ap), IC_EINVAL);
    ap = ic_aug_augmix_params_default();
    ap.alpha = 0.0f;
    ck_assert_int_eq(ic_aug_augmix(&r, &img, &ap), IC_EINVAL);
    ap = ic_aug_augmix_params_default();
    ap.depth_min = 3;
    ap.depth_max = 2;
    ck_assert_int_eq(ic_aug_augmix(&r, &img, &ap), IC_EINVAL);
    ic_aug_deepaug_params dp = {.magnitude = 0.5f, .downscale = 3};
    ck_assert_int_eq(ic_aug_deepaug(&r, &img, &dp), IC_EINVAL);
    ic_aug_strong_params sp = ic_aug_strong_params_default();
    sp.p_augmix = 2.0f;
    ck_assert_int_eq(ic_aug_strong(&r, &img, NULL, &sp), IC_EINVAL);
    sp = ic_aug_strong_params_default();
    sp.m_min = 0.9f;
    sp.m_max = 0.2f;
    ck_assert_int_eq(ic_aug_strong(&r, &img, NULL, &sp), IC_EINVAL);
    ic_image_free(&img);
}
END_TEST

/* Runs `which` with allocation n failing for n = 0, 1, ... until it
 * succeeds: every failure must be IC_ENOMEM with the pixels unchanged. */
static int run_case(int which, ic_aug_rng *r, ic_image *img)
{
    if (which < IC_AUG_NUM_OPS)
        return ic_aug_apply(r, img, (ic_aug_op)which, 1.0f);
    if (which == IC_AUG_NUM_OPS)
        return ic_aug_deepaug_op(r, img, 1.0f);
    ic_aug_augmix_params ap = ic_aug_augmix_params_default();
    return ic_aug_augmix(r, img, &ap);
}

START_TEST(test_out_of_memory)
{
    for (int which = 0; which <= IC_AUG_NUM_OPS + 1; which++) {
        for (long n = 0;; n++) {
            ic_image img = scene(), ref = scene();
            ic_aug_rng r;
            ic_aug_rng_seed(&r, 8, 0);
            ic_alloc_fail_after(n);
            int rc = run_case(which, &r, &img);
            ic_alloc_fail_reset();
            if (rc == 0) {
                ic_image_free(&img);
                ic_image_free(&ref);
                break;
            }
            ck_assert_msg(rc == IC_ENOMEM, "case %d alloc %ld: rc %d", which, n, rc);
            ck_assert_msg(memcmp(img.data, ref.data, W * H * 3) == 0,
                          "case %d changed the image on failure", which);
            ic_image_free(&img);
            ic_image_free(&ref);
            ck_assert_int_lt(n, 60);
        }
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("augment_photometric");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_zero_magnitude_is_identity);
    tcase_add_test(tc, test_full_magnitude_changes_and_keeps_size);
    tcase_add_test(tc, test_names);
    tcase_add_test(tc, test_brightness_contrast_color_gamma);
    tcase_add_test(tc, test_posterize_solarize);
    tcase_add_test(tc, test_equalize_autocontrast);
    tcase_add_test(tc, test_blur_sharpness_noise);
    tcase_add_test(tc, test_jpeg);
    tcase_add_test(tc, test_domain_ops);
    tcase_add_test(tc, test_deepaug_keeps_structure);
    tcase_add_test(tc, test_determinism);
    tcase_add_test(tc, test_augmix_identity_and_weights);
    tcase_add_test(tc, test_distributions);
    tcase_add_test(tc, test_bad_arguments);
    tcase_add_test(tc, test_out_of_memory);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
