/* Tests for core/corrupt: the registry, determinism, every corruption's
 * effect growing with severity, exact values for the closed-form ones
 * (contrast, brightness, saturate, pixelate, impulse and gaussian noise
 * statistics), and bad arguments. */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/err.h"
#include "corrupt/corrupt.h"

/* A street-like 64x128 test image: sky gradient, a grey road, stripes. */
static ic_image scene(void)
{
    ic_image img = {0};
    ck_assert_int_eq(ic_image_alloc(&img, 128, 64, 3, 8), 0);
    uint8_t *p = img.data;
    for (int y = 0; y < 64; y++)
        for (int x = 0; x < 128; x++) {
            uint8_t *q = p + ((size_t)y * 128 + x) * 3;
            if (y < 28) {
                q[0] = (uint8_t)(90 + y * 2);
                q[1] = (uint8_t)(140 + y);
                q[2] = 220;
            } else {
                int v = (x / 8) % 2 ? 110 : 70;
                q[0] = q[1] = q[2] = (uint8_t)(v + (y - 28));
            }
            if (x % 32 == 5) /* thin "poles" */
                q[0] = q[1] = q[2] = 200;
        }
    return img;
}

static double mean_abs_diff(const ic_image *a, const ic_image *b)
{
    const uint8_t *p = a->data, *q = b->data;
    size_t n = (size_t)a->w * a->h * 3;
    double s = 0;
    for (size_t i = 0; i < n; i++)
        s += abs((int)p[i] - (int)q[i]);
    return s / (double)n;
}

static ic_image copy(const ic_image *a)
{
    ic_image b = {0};
    ck_assert_int_eq(ic_image_alloc(&b, a->w, a->h, 3, 8), 0);
    memcpy(b.data, a->data, (size_t)a->w * a->h * 3);
    return b;
}

START_TEST(test_registry)
{
    int total = 0;
    for (int f = 0; f < IC_CORRUPT_FAMILIES; f++) {
        int n = ic_corruption_family_size(f);
        ck_assert_int_ge(n, 3);
        for (int k = 0; k < n; k++) {
            ic_corruption c = ic_corruption_of_family(f, k);
            ck_assert_int_eq(ic_corruption_family(c), f);
            ic_corruption back;
            int fam;
            ck_assert_int_eq(ic_corruption_parse(ic_corruption_name(c), &back, &fam), 0);
            ck_assert_int_eq(back, c);
            ck_assert_int_eq(fam, -1);
        }
        ck_assert_int_eq(ic_corruption_of_family(f, n), ic_corruption_of_family(f, 0));
        total += n;
        ic_corruption c;
        int fam;
        ck_assert_int_eq(ic_corruption_parse(ic_corruption_family_name(f), &c, &fam), 0);
        ck_assert_int_eq(fam, f);
    }
    ck_assert_int_eq(total, IC_CORRUPT_COUNT);
    ic_corruption c;
    int fam;
    ck_assert_int_eq(ic_corruption_parse("frost", &c, &fam), IC_EINVAL);
    ck_assert_ptr_nonnull(strstr(ic_error_message(), "gaussian_noise"));
}
END_TEST

/* Same seed: same bytes; every corruption changes the image, more at
 * severity 5 than at 1 (but pixelate, see below). */
START_TEST(test_each_corruption)
{
    ic_image base = scene();
    for (int c = 0; c < IC_CORRUPT_COUNT; c++) {
        double d[2];
        for (int k = 0; k < 2; k++) {
            int sev = k ? 5 : 1;
            ic_image a = copy(&base), b = copy(&base);
            ck_assert_int_eq(ic_corrupt(&a, (ic_corruption)c, sev, 7), 0);
            ck_assert_int_eq(ic_corrupt(&b, (ic_corruption)c, sev, 7), 0);
            ck_assert_msg(!memcmp(a.data, b.data, (size_t)128 * 64 * 3), "%s not deterministic",
                          ic_corruption_name((ic_corruption)c));
            d[k] = mean_abs_diff(&a, &base);
            ic_image_free(&a);
            ic_image_free(&b);
        }
        /* pixelate's blocks at x 0.6 do not align with this image's 8-pixel
         * stripes while those at x 0.25 do: only "changes" for it */
        ck_assert_msg(d[0] > 0.2 && (d[1] > d[0] || c == IC_CORRUPT_PIXELATE),
                      "%s: change %.2f at 1, %.2f at 5",
                      ic_corruption_name((ic_corruption)c), d[0], d[1]);
    }
    /* another seed draws other noise */
    ic_image a = copy(&base), b = copy(&base);
    ck_assert_int_eq(ic_corrupt(&a, IC_CORRUPT_SHOT_NOISE, 3, 1), 0);
    ck_assert_int_eq(ic_corrupt(&b, IC_CORRUPT_SHOT_NOISE, 3, 2), 0);
    ck_assert(memcmp(a.data, b.data, (size_t)128 * 64 * 3) != 0);
    ic_image_free(&a);
    ic_image_free(&b);
    ic_image_free(&base);
}
END_TEST

START_TEST(test_closed_forms)
{
    /* contrast 5 (c = 0.05): (x - mean) * c + mean per channel */
    ic_image img = {0};
    ck_assert_int_eq(ic_image_alloc(&img, 2, 1, 3, 8), 0);
    uint8_t px[6] = {0, 100, 255, 200, 100, 55};
    memcpy(img.data, px, 6);
    ck_assert_int_eq(ic_corrupt(&img, IC_CORRUPT_CONTRAST, 5, 0), 0);
    const uint8_t *q = img.data;
    ck_assert_int_eq(q[0], 95);  /* 100 + (0 - 100) * 0.05 */
    ck_assert_int_eq(q[3], 105);
    ck_assert_int_eq(q[1], 100);
    ck_assert_int_eq(q[2], 160); /* 155 + 100 * 0.05 */
    ck_assert_int_eq(q[5], 150);
    /* brightness 3: V + 0.3, hue and saturation kept: (100, 50, 0) -> V 100/255 + 0.3 */
    uint8_t px2[6] = {100, 50, 0, 255, 255, 255};
    memcpy(img.data, px2, 6);
    ck_assert_int_eq(ic_corrupt(&img, IC_CORRUPT_BRIGHTNESS, 3, 0), 0);
    float v = 100 / 255.0f + 0.3f;
    ck_assert_int_eq(q[0], (int)lrintf(v * 255));
    ck_assert_int_eq(q[1], (int)lrintf(v * 0.5f * 255));
    ck_assert_int_eq(q[2], 0);
    ck_assert_int_eq(q[3], 255);
    /* saturate 2 (x 0.1): grey stays grey, (200, 100, 100) -> s 0.05 */
    uint8_t px3[6] = {200, 100, 100, 80, 80, 80};
    memcpy(img.data, px3, 6);
    ck_assert_int_eq(ic_corrupt(&img, IC_CORRUPT_SATURATE, 2, 0), 0);
    ck_assert_int_eq(q[0], 200);
    ck_assert_int_eq(q[1], 190);
    ck_assert_int_eq(q[3], 80);
    ck_assert_int_eq(q[5], 80);
    ic_image_free(&img);

    /* pixelate 5 (x 0.25) of a 128 x 64 image: constant 4 x 4 blocks that
     * average their pixels */
    ic_image s = scene(), o = copy(&s);
    ck_assert_int_eq(ic_corrupt(&s, IC_CORRUPT_PIXELATE, 5, 0), 0);
    const uint8_t *sp = s.data, *op = o.data;
    for (int y = 0; y < 64; y += 4)
        for (int x = 0; x < 128; x += 4) {
            double mean = 0;
            for (int dy = 0; dy < 4; dy++)
                for (int dx = 0; dx < 4; dx++) {
                    mean += op[((size_t)(y + dy) * 128 + x + dx) * 3];
                    ck_assert_int_eq(sp[((size_t)(y + dy) * 128 + x + dx) * 3], sp[((size_t)y * 128 + x) * 3]);
                }
            ck_assert(fabs(mean / 16 - sp[((size_t)y * 128 + x) * 3]) <= 0.5 + 1e-9);
        }
    ic_image_free(&s);

    /* impulse 5 (27% of samples to 0 or 255) and gaussian noise 1 (sigma
     * 0.08): statistics on a mid-grey image */
    ic_image g = {0};
    ck_assert_int_eq(ic_image_alloc(&g, 256, 128, 3, 8), 0);
    size_t n = (size_t)256 * 128 * 3;
    memset(g.data, 128, n);
    ck_assert_int_eq(ic_corrupt(&g, IC_CORRUPT_IMPULSE_NOISE, 5, 3), 0);
    size_t hit = 0;
    for (size_t i = 0; i < n; i++)
        hit += ((uint8_t *)g.data)[i] != 128;
    ck_assert(fabs((double)hit / n - 0.27) < 0.01);
    memset(g.data, 128, n);
    ck_assert_int_eq(ic_corrupt(&g, IC_CORRUPT_GAUSSIAN_NOISE, 1, 3), 0);
    double m = 0, m2 = 0;
    for (size_t i = 0; i < n; i++) {
        double x = ((uint8_t *)g.data)[i] / 255.0 - 128 / 255.0;
        m += x;
        m2 += x * x;
    }
    m /= n;
    ck_assert(fabs(m) < 0.002 && fabs(sqrt(m2 / n - m * m) - 0.08) < 0.003);
    ic_image_free(&g);
    ic_image_free(&o);
}
END_TEST

START_TEST(test_errors)
{
    ic_image img = scene();
    ck_assert_int_eq(ic_corrupt(&img, IC_CORRUPT_FOG, 0, 0), IC_EINVAL);
    ck_assert_int_eq(ic_corrupt(&img, IC_CORRUPT_FOG, 6, 0), IC_EINVAL);
    ck_assert_int_eq(ic_corrupt(&img, IC_CORRUPT_COUNT, 1, 0), IC_EINVAL);
    ck_assert_int_eq(ic_corrupt(NULL, IC_CORRUPT_FOG, 1, 0), IC_EINVAL);
    img.c = 4;
    ck_assert_int_eq(ic_corrupt(&img, IC_CORRUPT_FOG, 1, 0), IC_EINVAL);
    img.c = 3;
    /* out of memory leaves the image unchanged */
    ic_image before = copy(&img);
    ic_alloc_fail_after(0);
    int rc = ic_corrupt(&img, IC_CORRUPT_DEFOCUS_BLUR, 3, 0);
    ic_alloc_fail_reset();
    ck_assert_int_eq(rc, IC_ENOMEM);
    ck_assert(!memcmp(img.data, before.data, (size_t)128 * 64 * 3));
    ic_image_free(&before);
    ic_image_free(&img);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("corrupt");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_registry);
    tcase_add_test(tc, test_each_corruption);
    tcase_add_test(tc, test_closed_forms);
    tcase_add_test(tc, test_errors);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
