/* Tests of core/image/preprocess.c: bilinear resize against values that
 * PyTorch's F.interpolate(bilinear, align_corners=False) gives, and
 * against a direct double-precision reference; detectron2's shortest-edge
 * sizes; normalisation and padding of the input tensor. */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/err.h"
#include "image/preprocess.h"
#include "testutil.h"

static ic_image make_gray(int w, int h, const uint8_t *v)
{
    ic_image img;
    ck_assert_int_eq(ic_image_alloc(&img, w, h, 1, 8), 0);
    memcpy(img.data, v, (size_t)w * (size_t)h);
    return img;
}

static void expect_resize(const ic_image *src, int ow, int oh, const uint8_t *want)
{
    ic_image dst;
    ck_assert_int_eq(ic_image_resize_bilinear(src, ow, oh, &dst), 0);
    ck_assert_int_eq(dst.w, ow);
    ck_assert_int_eq(dst.h, oh);
    for (int i = 0; i < ow * oh; i++)
        ck_assert_msg(((uint8_t *)dst.data)[i] == want[i], "%dx%d pixel %d: %d, want %d", ow, oh,
                      i, ((uint8_t *)dst.data)[i], want[i]);
    ic_image_free(&dst);
}

START_TEST(test_resize_known_values)
{
    /* torch.nn.functional.interpolate(torch.tensor([[[[0., 40], [80, 120]]]]),
     * size=..., mode="bilinear", align_corners=False) */
    static const uint8_t src2[4] = {0, 40, 80, 120};
    ic_image a = make_gray(2, 2, src2);
    static const uint8_t up4[16] = {0,  10, 30,  40,  20, 30,  50,  60,
                                    60, 70, 90, 100, 80, 90, 110, 120};
    expect_resize(&a, 4, 4, up4);
    static const uint8_t up3[9] = {0, 20, 40, 40, 60, 80, 80, 100, 120};
    expect_resize(&a, 3, 3, up3);
    expect_resize(&a, 2, 2, src2);
    ic_image_free(&a);

    uint8_t src4[16];
    for (int i = 0; i < 16; i++)
        src4[i] = (uint8_t)(10 * i);
    ic_image b = make_gray(4, 4, src4);
    static const uint8_t down2[4] = {25, 45, 105, 125};
    expect_resize(&b, 2, 2, down2);
    static const uint8_t one[1] = {75}; /* the centre of a linear ramp */
    expect_resize(&b, 1, 1, one);
    ic_image_free(&b);
}
END_TEST

/* Direct evaluation of the PyTorch formula in double. */
static double ref_sample(const ic_image *s, int ox, int oy, int ow, int oh, int k)
{
    double sx = ((double)ox + 0.5) * s->w / ow - 0.5, sy = ((double)oy + 0.5) * s->h / oh - 0.5;
    sx = sx < 0 ? 0 : sx;
    sy = sy < 0 ? 0 : sy;
    int x0 = (int)sx, y0 = (int)sy;
    int x1 = x0 + 1 < s->w ? x0 + 1 : x0, y1 = y0 + 1 < s->h ? y0 + 1 : y0;
    double lx = sx - x0, ly = sy - y0;
    const uint8_t *p = s->data;
#define P(x, y) p[((size_t)(y) * (size_t)s->w + (size_t)(x)) * (size_t)s->c + (size_t)k]
    return (1 - ly) * ((1 - lx) * P(x0, y0) + lx * P(x1, y0)) +
           ly * ((1 - lx) * P(x0, y1) + lx * P(x1, y1));
#undef P
}

START_TEST(test_resize_random_vs_reference)
{
    uint64_t rng = 11;
    for (int it = 0; it < 40; it++) {
        int w = tu_rand_int(&rng, 1, 40), h = tu_rand_int(&rng, 1, 40);
        int c = tu_rand_int(&rng, 1, 4);
        int ow = tu_rand_int(&rng, 1, 60), oh = tu_rand_int(&rng, 1, 60);
        ic_image s;
        ck_assert_int_eq(ic_image_alloc(&s, w, h, c, 8), 0);
        for (size_t i = 0; i < (size_t)w * (size_t)h * (size_t)c; i++)
            ((uint8_t *)s.data)[i] = (uint8_t)tu_rand_int(&rng, 0, 255);
        ic_image d;
        ck_assert_int_eq(ic_image_resize_bilinear(&s, ow, oh, &d), 0);
        ck_assert_int_eq(d.c, c);
        for (int y = 0; y < oh; y++)
            for (int x = 0; x < ow; x++)
                for (int k = 0; k < c; k++) {
                    double want = ref_sample(&s, x, y, ow, oh, k);
                    int got = ((uint8_t *)d.data)[((size_t)y * (size_t)ow + (size_t)x) * (size_t)c +
                                                  (size_t)k];
                    ck_assert_msg(fabs(got - want) <= 0.5 + 1e-3, "%dx%d->%dx%d (%d,%d,%d): %d vs %f",
                                  w, h, ow, oh, x, y, k, got, want);
                }
        ic_image_free(&d);
        ic_image_free(&s);
    }
}
END_TEST

START_TEST(test_resize_errors)
{
    static const uint8_t v[4] = {1, 2, 3, 4};
    ic_image a = make_gray(2, 2, v);
    ic_image d = {0};
    ck_assert_int_eq(ic_image_resize_bilinear(&a, 0, 3, &d), IC_EINVAL);
    ck_assert_int_eq(ic_image_resize_bilinear(NULL, 3, 3, &d), IC_EINVAL);
    ic_alloc_fail_after(0);
    ck_assert_int_eq(ic_image_resize_bilinear(&a, 3, 3, &d), IC_ENOMEM);
    ic_alloc_fail_reset();
    ic_alloc_fail_after(1); /* the image, then the tables */
    ck_assert_int_eq(ic_image_resize_bilinear(&a, 3, 3, &d), IC_ENOMEM);
    ic_alloc_fail_reset();
    ck_assert_ptr_null(d.data);
    ic_image_free(&a);
    uint16_t w16[1] = {7};
    ic_image b = {1, 1, 1, 16, w16};
    ck_assert_int_eq(ic_image_resize_bilinear(&b, 2, 2, &d), IC_EINVAL);
}
END_TEST

START_TEST(test_fit_size)
{
    int w, h;
    ck_assert_int_eq(ic_image_fit_size(2048, 1024, 1024, 2048, &w, &h), 0);
    ck_assert(w == 2048 && h == 1024);
    ck_assert_int_eq(ic_image_fit_size(640, 480, 800, 1333, &w, &h), 0);
    ck_assert(w == 1067 && h == 800);
    ck_assert_int_eq(ic_image_fit_size(1000, 100, 800, 1333, &w, &h), 0);
    ck_assert(w == 1333 && h == 133);
    ck_assert_int_eq(ic_image_fit_size(480, 640, 800, 0, &w, &h), 0);
    ck_assert(w == 800 && h == 1067);
    ck_assert_int_eq(ic_image_fit_size(100000, 1, 1, 16, &w, &h), 0);
    ck_assert(w == 16 && h == 1); /* never 0 */
    ck_assert_int_eq(ic_image_fit_size(0, 10, 800, 1333, &w, &h), IC_EINVAL);
}
END_TEST

START_TEST(test_to_tensor)
{
    const float mean[3] = IC_IMAGE_MEAN_DEFAULT;
    const float std[3] = IC_IMAGE_STD_DEFAULT;
    ic_image img;
    ck_assert_int_eq(ic_image_alloc(&img, 3, 2, 3, 8), 0);
    uint8_t *p = img.data;
    for (int i = 0; i < 18; i++)
        p[i] = (uint8_t)(i * 14);
    enum { N = 2, C = 3, TH = 4, TW = 5 };
    float buf[N * C * TH * TW];
    for (int i = 0; i < N * C * TH * TW; i++)
        buf[i] = 1234.0f;
    ic_tensor t = ic_tensor_wrap(buf, N, C, TH, TW);
    ck_assert_int_eq(ic_image_to_tensor(&img, mean, std, &t, 1), 0);
    for (int k = 0; k < 3; k++) {
        const float *plane = ic_tensor_at(&t, 1, k);
        for (int y = 0; y < TH; y++)
            for (int x = 0; x < TW; x++) {
                float want = 0.0f;
                if (x < 3 && y < 2)
                    want = ((float)p[(y * 3 + x) * 3 + k] - mean[k]) / std[k];
                ck_assert_float_eq(plane[y * TW + x], want);
            }
        ck_assert_float_eq(ic_tensor_at(&t, 0, k)[0], 1234.0f); /* item 0 untouched */
    }
    /* Spot values from detectron2's constants. */
    p[0] = 255;
    p[1] = 0;
    p[2] = 128;
    ck_assert_int_eq(ic_image_to_tensor(&img, mean, std, &t, 0), 0);
    ck_assert_float_eq_tol(ic_tensor_at(&t, 0, 0)[0], (255 - 123.675f) / 58.395f, 1e-6f);
    ck_assert_float_eq_tol(ic_tensor_at(&t, 0, 1)[0], -116.28f / 57.12f, 1e-6f);
    ck_assert_float_eq_tol(ic_tensor_at(&t, 0, 2)[0], (128 - 103.53f) / 57.375f, 1e-6f);
    ic_image_free(&img);

    /* Gray images feed all three channels. */
    static const uint8_t g[4] = {0, 50, 100, 250};
    ic_image gray = make_gray(2, 2, g);
    ic_tensor t2 = ic_tensor_wrap(buf, 1, 3, 2, 2);
    ck_assert_int_eq(ic_image_to_tensor(&gray, mean, std, &t2, 0), 0);
    for (int k = 0; k < 3; k++)
        ck_assert_float_eq(ic_tensor_at(&t2, 0, k)[3], (250.0f - mean[k]) / std[k]);

    /* Shape and parameter errors. */
    ic_tensor bad = ic_tensor_wrap(buf, 1, 1, 2, 2);
    ck_assert_int_eq(ic_image_to_tensor(&gray, mean, std, &bad, 0), IC_EINVAL);
    ic_tensor small = ic_tensor_wrap(buf, 1, 3, 1, 2);
    ck_assert_int_eq(ic_image_to_tensor(&gray, mean, std, &small, 0), IC_EINVAL);
    ck_assert_int_eq(ic_image_to_tensor(&gray, mean, std, &t2, 1), IC_EINVAL);
    const float zero[3] = {1, 0, 1};
    ck_assert_int_eq(ic_image_to_tensor(&gray, mean, zero, &t2, 0), IC_EINVAL);
    ic_image_free(&gray);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("image/preprocess");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_resize_known_values);
    tcase_add_test(tc, test_resize_random_vs_reference);
    tcase_add_test(tc, test_resize_errors);
    tcase_add_test(tc, test_fit_size);
    tcase_add_test(tc, test_to_tensor);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
