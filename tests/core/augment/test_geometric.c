/* Geometric augmentation keeps image and labels aligned (scale, crop, flip
 * and the pipeline), pads with the fill colour and void, rejects bad
 * arguments and fails cleanly when memory runs out. */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "augment/geometric.h"
#include "augment/policy.h"
#include "base/alloc.h"
#include "base/err.h"
#include "scene.h"

/* Blue background (id 1) with a red square (id 7) at [x0, x1) x [y0, y1). */
static void square_image(int w, int h, int x0, int y0, int x1, int y1, ic_image *img,
                         int32_t **lab)
{
    ck_assert_int_eq(ic_image_alloc(img, w, h, 3, 8), 0);
    *lab = ic_malloc((size_t)w * (size_t)h * sizeof **lab);
    ck_assert_ptr_nonnull(*lab);
    uint8_t *p = img->data;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            int in = x >= x0 && x < x1 && y >= y0 && y < y1;
            uint8_t *q = p + ((size_t)y * (size_t)w + (size_t)x) * 3u;
            q[0] = in ? 250 : 10;
            q[1] = 20;
            q[2] = in ? 10 : 250;
            (*lab)[(size_t)y * (size_t)w + (size_t)x] = in ? 7 : 1;
        }
}

/* Every pixel whose 3x3 label neighbourhood is uniform has the colour of
 * its label; the label-7 centroid matches the red-mass centroid. Pixels
 * with label 0 (padding) must have the fill colour. */
static void assert_aligned(const ic_image *img, const int32_t *lab, const uint8_t fill[3])
{
    const uint8_t *p = img->data;
    const int w = img->w, h = img->h;
    double lx = 0, ly = 0, ln = 0, rx = 0, ry = 0, rn = 0;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            int32_t l = lab[(size_t)y * (size_t)w + (size_t)x];
            const uint8_t *q = p + ((size_t)y * (size_t)w + (size_t)x) * 3u;
            if (l == 7) {
                lx += x;
                ly += y;
                ln += 1;
            }
            double red = q[0] > q[2] ? (q[0] - q[2]) / 240.0 : 0.0;
            if (l != 0) {
                rx += red * x;
                ry += red * y;
                rn += red;
            }
            int uniform = 1;
            for (int dy = -1; dy <= 1; dy++)
                for (int dx = -1; dx <= 1; dx++) {
                    int xx = x + dx, yy = y + dy;
                    if (xx >= 0 && yy >= 0 && xx < w && yy < h &&
                        lab[(size_t)yy * (size_t)w + (size_t)xx] != l)
                        uniform = 0;
                }
            if (!uniform)
                continue;
            if (l == 7)
                ck_assert_msg(q[0] > 200 && q[2] < 60, "label 7 at (%d,%d) is %d,%d,%d", x, y,
                              q[0], q[1], q[2]);
            else if (l == 1)
                ck_assert_msg(q[2] > 200 && q[0] < 60, "label 1 at (%d,%d) is %d,%d,%d", x, y,
                              q[0], q[1], q[2]);
            else {
                ck_assert_int_eq(l, 0);
                ck_assert(q[0] == fill[0] && q[1] == fill[1] && q[2] == fill[2]);
            }
        }
    if (ln > 20) {
        ck_assert_msg(fabs(lx / ln - rx / rn) < 0.75 && fabs(ly / ln - ry / rn) < 0.75,
                      "centroids label (%.2f, %.2f) vs colour (%.2f, %.2f)", lx / ln, ly / ln,
                      rx / rn, ry / rn);
    }
}

START_TEST(test_flip_twice_is_identity)
{
    ic_image img;
    int32_t *lab;
    ck_assert_int_eq(test_scene_render(97, 40, &img, &lab), 0);
    size_t n = (size_t)img.w * (size_t)img.h;
    uint8_t *c0 = malloc(n * 3);
    int32_t *l0 = malloc(n * sizeof *l0);
    memcpy(c0, img.data, n * 3);
    memcpy(l0, lab, n * sizeof *l0);
    ck_assert_int_eq(ic_aug_hflip(&img, lab), 0);
    ck_assert(memcmp(c0, img.data, n * 3) != 0);
    /* One flip mirrors: pixel x goes to w - 1 - x, label with it. */
    for (int y = 0; y < img.h; y += 7)
        for (int x = 0; x < img.w; x++) {
            ck_assert_int_eq(lab[y * img.w + x], l0[y * img.w + img.w - 1 - x]);
            ck_assert_int_eq(((uint8_t *)img.data)[(y * img.w + x) * 3 + 1],
                             c0[(y * img.w + img.w - 1 - x) * 3 + 1]);
        }
    ck_assert_int_eq(ic_aug_hflip(&img, lab), 0);
    ck_assert(memcmp(c0, img.data, n * 3) == 0);
    ck_assert(memcmp(l0, lab, n * sizeof *l0) == 0);
    free(c0);
    free(l0);
    ic_free(lab);
    ic_image_free(&img);
}
END_TEST

START_TEST(test_scale_keeps_alignment)
{
    static const float factors[] = {0.5f, 0.73f, 1.0f, 1.37f, 2.0f, 3.1f};
    static const uint8_t fill[3] = {124, 116, 104};
    for (size_t i = 0; i < sizeof factors / sizeof factors[0]; i++) {
        ic_image img;
        int32_t *lab;
        square_image(64, 48, 20, 11, 41, 30, &img, &lab);
        ck_assert_int_eq(ic_aug_scale(&img, &lab, factors[i]), 0);
        ck_assert_int_eq(img.w, (int)floorf(64 * factors[i] + 0.5f));
        ck_assert_int_eq(img.h, (int)floorf(48 * factors[i] + 0.5f));
        assert_aligned(&img, lab, fill);
        ic_free(lab);
        ic_image_free(&img);
    }
}
END_TEST

START_TEST(test_crop_and_pad)
{
    static const uint8_t fill[3] = {1, 2, 3};
    ic_aug_rng r;
    ic_aug_rng_seed(&r, 5, 0);
    for (int it = 0; it < 20; it++) {
        ic_image img;
        int32_t *lab;
        square_image(64, 48, 20, 11, 41, 30, &img, &lab);
        int ow = it % 2 ? 40 : 90, oh = it % 3 ? 30 : 70;
        ck_assert_int_eq(ic_aug_crop(&r, &img, &lab, ow, oh, fill), 0);
        ck_assert_int_eq(img.w, ow);
        ck_assert_int_eq(img.h, oh);
        assert_aligned(&img, lab, fill);
        if (ow > 64 || oh > 48) {
            size_t zeros = 0;
            for (int i = 0; i < ow * oh; i++)
                zeros += lab[i] == 0;
            ck_assert_uint_eq(zeros, (size_t)ow * oh - (size_t)(ow < 64 ? ow : 64) * (oh < 48 ? oh : 48));
        }
        ic_free(lab);
        ic_image_free(&img);
    }
}
END_TEST

START_TEST(test_pipeline_keeps_alignment)
{
    ic_aug_geom_params p = ic_aug_geom_params_default();
    p.crop_w = 96;
    p.crop_h = 64;
    for (uint64_t seed = 0; seed < 40; seed++) {
        ic_aug_rng r;
        ic_aug_rng_seed(&r, seed, 1);
        ic_image img;
        int32_t *lab;
        square_image(128, 64, 50, 20, 80, 44, &img, &lab);
        ck_assert_int_eq(ic_aug_geometric(&r, &img, &lab, &p), 0);
        ck_assert_int_eq(img.w, 96);
        ck_assert_int_eq(img.h, 64);
        assert_aligned(&img, lab, p.fill);
        ic_free(lab);
        ic_image_free(&img);
    }
}
END_TEST

START_TEST(test_without_labels_and_determinism)
{
    ic_aug_geom_params p = ic_aug_geom_params_default();
    p.crop_w = 100;
    p.crop_h = 50;
    ic_image a, b;
    ck_assert_int_eq(test_scene_render(160, 80, &a, NULL), 0);
    ck_assert_int_eq(test_scene_render(160, 80, &b, NULL), 0);
    ic_aug_rng r1, r2;
    ic_aug_rng_seed(&r1, 9, 3);
    ic_aug_rng_seed(&r2, 9, 3);
    ck_assert_int_eq(ic_aug_geometric(&r1, &a, NULL, &p), 0);
    int32_t *none = NULL;
    ck_assert_int_eq(ic_aug_geometric(&r2, &b, &none, &p), 0);
    ck_assert_ptr_null(none);
    ck_assert(memcmp(a.data, b.data, 100 * 50 * 3) == 0);
    ic_image_free(&a);
    ic_image_free(&b);
}
END_TEST

START_TEST(test_bad_arguments)
{
    ic_aug_rng r;
    ic_aug_rng_seed(&r, 1, 0);
    ic_image img;
    int32_t *lab;
    square_image(32, 16, 4, 4, 8, 8, &img, &lab);
    ck_assert_int_eq(ic_aug_hflip(NULL, lab), IC_EINVAL);
    ck_assert_int_eq(ic_aug_scale(&img, &lab, 0.0f), IC_EINVAL);
    ck_assert_int_eq(ic_aug_scale(&img, &lab, -1.0f), IC_EINVAL);
    ck_assert_int_eq(ic_aug_scale(&img, &lab, NAN), IC_EINVAL);
    ck_assert_int_eq(ic_aug_scale(&img, &lab, 1e6f), IC_ELIMIT);
    ck_assert_int_eq(ic_aug_crop(&r, &img, &lab, 0, 5, NULL), IC_EINVAL);
    ck_assert_int_eq(ic_aug_crop(NULL, &img, &lab, 5, 5, NULL), IC_EINVAL);
    ic_aug_geom_params p = ic_aug_geom_params_default();
    p.scale_min = 2.0f;
    p.scale_max = 1.0f;
    ck_assert_int_eq(ic_aug_geometric(&r, &img, &lab, &p), IC_EINVAL);
    p = ic_aug_geom_params_default();
    p.p_flip = 1.5f;
    ck_assert_int_eq(ic_aug_geometric(&r, &img, &lab, &p), IC_EINVAL);
    p = ic_aug_geom_params_default();
    p.crop_w = 0;
    ck_assert_int_eq(ic_aug_geometric(&r, &img, &lab, &p), IC_EINVAL);
    ck_assert_int_eq(img.w, 32); /* untouched */
    ic_image bad = img;
    bad.depth = 16;
    ck_assert_int_eq(ic_aug_hflip(&bad, NULL), IC_EINVAL);
    ic_free(lab);
    ic_image_free(&img);
}
END_TEST

/* Makes allocation n fail for n = 0, 1, ... until the call succeeds; every
 * failure must be IC_ENOMEM with the sample unchanged (ASan/LSan catch
 * leaks and use-after-free). */
START_TEST(test_out_of_memory)
{
    ic_aug_geom_params p = ic_aug_geom_params_default();
    p.crop_w = 90;
    p.crop_h = 40;
    p.scale_min = 1.5f;
    p.scale_max = 1.6f;
    for (int which = 0; which < 3; which++) {
        for (long n = 0;; n++) {
            ic_image img;
            int32_t *lab;
            square_image(64, 32, 10, 10, 20, 20, &img, &lab);
            void *d0 = img.data;
            ic_aug_rng r;
            ic_aug_rng_seed(&r, 2, 2);
            ic_alloc_fail_after(n);
            int rc = which == 0   ? ic_aug_scale(&img, &lab, 1.3f)
                     : which == 1 ? ic_aug_crop(&r, &img, &lab, 100, 20, NULL)
                                  : ic_aug_geometric(&r, &img, &lab, &p);
            ic_alloc_fail_reset();
            if (rc == 0) {
                ic_free(lab);
                ic_image_free(&img);
                break;
            }
            ck_assert_int_eq(rc, IC_ENOMEM);
            ck_assert_ptr_eq(img.data, d0);
            ck_assert_int_eq(img.w, 64);
            ic_free(lab);
            ic_image_free(&img);
            ck_assert_int_lt(n, 20);
        }
    }
}
END_TEST

START_TEST(test_strong_policy_labels)
{
    ic_aug_strong_params p = ic_aug_strong_params_default();
    p.geom.crop_w = 128;
    p.geom.crop_h = 64;
    for (uint64_t seed = 0; seed < 12; seed++) {
        ic_image img;
        int32_t *lab;
        ck_assert_int_eq(test_scene_render(192, 96, &img, &lab), 0);
        ic_aug_rng r;
        ic_aug_rng_seed(&r, seed, 0);
        ck_assert_int_eq(ic_aug_strong(&r, &img, &lab, &p), 0);
        ck_assert_int_eq(img.w, 128);
        ck_assert_int_eq(img.h, 64);
        for (int i = 0; i < 128 * 64; i++) {
            int32_t l = lab[i];
            ck_assert(l == 0 || (l >= 1 && l <= 6) || l / 1000 == 11 || l / 1000 == 13);
        }
        ic_free(lab);
        ic_image_free(&img);
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("augment_geometric");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_flip_twice_is_identity);
    tcase_add_test(tc, test_scale_keeps_alignment);
    tcase_add_test(tc, test_crop_and_pad);
    tcase_add_test(tc, test_pipeline_keeps_alignment);
    tcase_add_test(tc, test_without_labels_and_determinism);
    tcase_add_test(tc, test_bad_arguments);
    tcase_add_test(tc, test_out_of_memory);
    tcase_add_test(tc, test_strong_policy_labels);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
