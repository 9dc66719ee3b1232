/* Tests of core/image/image.c: limits, allocation, the format sniffer, the
 * decode dispatcher's errors, and the orientation transform on a 3x2
 * image whose expected results are written out by hand. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/err.h"
#include "image/image.h"
#include "imgutil.h"
#include "testutil.h"

START_TEST(test_limits)
{
    ck_assert_int_eq(ic_image_check_limits(NULL, 16384, 2441, "PNG"), 0);
    ck_assert_int_eq(ic_image_check_limits(NULL, 16384, 2442, "PNG"), IC_ELIMIT);
    ck_assert_str_eq(ic_error_message(), "PNG is 16384x2442 = 40009728 pixels, limit 40000000");
    ck_assert_int_eq(ic_image_check_limits(NULL, 16385, 1, "JPEG"), IC_ELIMIT);
    ck_assert_int_eq(ic_image_check_limits(NULL, 1, 16385, "JPEG"), IC_ELIMIT);
    ck_assert_int_eq(ic_image_check_limits(NULL, 0, 0, "JPEG"), IC_EFORMAT);
    ck_assert_ptr_nonnull(strstr(ic_error_message(), "0x0"));
    ck_assert_int_eq(ic_image_check_limits(NULL, -5, 3, NULL), IC_EFORMAT);

    ic_image_limits l = {100, 50, 1000, 0};
    ck_assert_int_eq(ic_image_check_limits(&l, 100, 10, "x"), 0);
    ck_assert_int_eq(ic_image_check_limits(&l, 100, 11, "x"), IC_ELIMIT);
    ck_assert_int_eq(ic_image_check_limits(&l, 101, 1, "x"), IC_ELIMIT);
    ck_assert_int_eq(ic_image_check_limits(&l, 1, 51, "x"), IC_ELIMIT);
    ic_image_limits zero = {0, 0, 0, 0};
    ic_image_limits r = ic_image_limits_resolve(&zero);
    ck_assert_int_eq(r.max_w, IC_IMAGE_MAX_SIDE_DEFAULT);
    ck_assert_int_eq(r.max_pixels, IC_IMAGE_MAX_PIXELS_DEFAULT);
    ck_assert_int_eq(r.max_scans, IC_IMAGE_MAX_SCANS_DEFAULT);
    ic_image_decode_opts o = ic_image_decode_opts_default();
    ck_assert_int_eq(o.limits.max_h, IC_IMAGE_MAX_SIDE_DEFAULT);
    ck_assert_int_eq(o.channels, 0);
}
END_TEST

START_TEST(test_alloc_free)
{
    ic_image img;
    ck_assert_int_eq(ic_image_alloc(&img, 3, 2, 4, 16), 0);
    ck_assert_uint_eq(ic_image_row_bytes(&img), 24);
    memset(img.data, 0, 48);
    ic_image_free(&img);
    ck_assert_ptr_null(img.data);
    ic_image_free(&img);
    ic_image_free(NULL);
    ck_assert_int_eq(ic_image_alloc(&img, 0, 2, 3, 8), IC_EINVAL);
    ck_assert_int_eq(ic_image_alloc(&img, 2, 2, 5, 8), IC_EINVAL);
    ck_assert_int_eq(ic_image_alloc(&img, 2, 2, 3, 12), IC_EINVAL);
    ck_assert_int_eq(ic_image_alloc(&img, 0x7FFFFFFF, 0x7FFFFFFF, 4, 16), IC_EINVAL);
    ic_alloc_fail_after(0);
    ck_assert_int_eq(ic_image_alloc(&img, 2, 2, 3, 8), IC_ENOMEM);
    ic_alloc_fail_reset();
}
END_TEST

START_TEST(test_sniff)
{
    static const struct {
        const char *bytes;
        size_t len;
        ic_image_format f;
    } cases[] = {
        {"\xFF\xD8\xFF\xE0", 4, IC_IMAGE_FORMAT_JPEG},
        {"\x89PNG\r\n\x1A\n", 8, IC_IMAGE_FORMAT_PNG},
        {"\x89PNG\r\n\x1A", 7, IC_IMAGE_FORMAT_UNKNOWN},
        {"GIF89a", 6, IC_IMAGE_FORMAT_GIF},
        {"RIFF\0\0\0\0WEBPVP8 ", 16, IC_IMAGE_FORMAT_WEBP},
        {"BM\0\0", 4, IC_IMAGE_FORMAT_BMP},
        {"II*\0", 4, IC_IMAGE_FORMAT_TIFF},
        {"MM\0*", 4, IC_IMAGE_FORMAT_TIFF},
        {"\0\0\0\x18" "ftypheic", 12, IC_IMAGE_FORMAT_HEIF},
        {"\0\0\0\x0CjP  \r\n\x87\n", 12, IC_IMAGE_FORMAT_JPEG2000},
        {"qoif", 4, IC_IMAGE_FORMAT_QOI},
        {"\xFF\xD8", 2, IC_IMAGE_FORMAT_UNKNOWN},
        {"<html>", 6, IC_IMAGE_FORMAT_UNKNOWN},
        {"", 0, IC_IMAGE_FORMAT_UNKNOWN},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        ck_assert_msg(ic_image_sniff(cases[i].bytes, cases[i].len) == cases[i].f, "case %zu", i);
    ck_assert_int_eq(ic_image_sniff(NULL, 10), IC_IMAGE_FORMAT_UNKNOWN);
    ck_assert_str_eq(ic_image_format_name(IC_IMAGE_FORMAT_WEBP), "WebP");
    ck_assert_str_eq(ic_image_format_name(IC_IMAGE_FORMAT_UNKNOWN), "unknown");
}
END_TEST

START_TEST(test_dispatch)
{
    ic_image img = {0};
    size_t len;
    unsigned char *buf = iu_load("rgb8.png", &len);
    ck_assert_int_eq(ic_image_decode(buf, len, NULL, &img), 0);
    ck_assert_int_eq(img.c, 3);
    ic_image_free(&img);
    free(buf);
    buf = iu_load("quad.jpg", &len);
    ck_assert_int_eq(ic_image_decode(buf, len, NULL, &img), 0);
    ck_assert_int_eq(img.w, 32);
    ic_image_free(&img);
    free(buf);

    ck_assert_int_eq(ic_image_decode("", 0, NULL, &img), IC_EFORMAT);
    ck_assert_ptr_nonnull(strstr(ic_error_message(), "empty"));
    ck_assert_int_eq(ic_image_decode(NULL, 0, NULL, &img), IC_EFORMAT);
    ck_assert_int_eq(ic_image_decode(NULL, 3, NULL, &img), IC_EINVAL);
    ck_assert_int_eq(ic_image_decode("GIF89a\1\0\1\0", 10, NULL, &img), IC_EUNSUPPORTED);
    ck_assert_str_eq(ic_error_message(), "GIF images are not supported; send JPEG or PNG");
    ck_assert_int_eq(ic_image_decode("<html>", 6, NULL, &img), IC_EUNSUPPORTED);
    ck_assert_str_eq(ic_error_message(),
                     "not a JPEG or PNG image (6 bytes starting with 3c 68 74 6d 6c 3e)");
    ck_assert_ptr_null(img.data);
}
END_TEST

/* Stored 3x2 image 1 2 3 / 4 5 6 and, by hand, what a viewer shows for
 * each orientation (w, h, then pixels row by row). */
static const int oriented[9][8] = {
    {0},
    {3, 2, 1, 2, 3, 4, 5, 6},
    {3, 2, 3, 2, 1, 6, 5, 4},
    {3, 2, 6, 5, 4, 3, 2, 1},
    {3, 2, 4, 5, 6, 1, 2, 3},
    {2, 3, 1, 4, 2, 5, 3, 6},
    {2, 3, 4, 1, 5, 2, 6, 3},
    {2, 3, 6, 3, 5, 2, 4, 1},
    {2, 3, 3, 6, 2, 5, 1, 4},
};

START_TEST(test_orient)
{
    for (int depth = 8; depth <= 16; depth += 8) {
        for (int o = 0; o <= 9; o++) {
            ic_image img;
            ck_assert_int_eq(ic_image_alloc(&img, 3, 2, 2, depth), 0);
            for (int i = 0; i < 6; i++)
                for (int k = 0; k < 2; k++) {
                    int v = (i + 1) * (k ? 10 : 1);
                    if (depth == 8)
                        ((uint8_t *)img.data)[2 * i + k] = (uint8_t)v;
                    else
                        ((uint16_t *)img.data)[2 * i + k] = (uint16_t)(v * 1000);
                }
            ck_assert_int_eq(ic_image_orient(&img, o), 0);
            const int *want = oriented[o >= 1 && o <= 8 ? o : 1];
            ck_assert_int_eq(img.w, want[0]);
            ck_assert_int_eq(img.h, want[1]);
            for (int i = 0; i < 6; i++)
                for (int k = 0; k < 2; k++) {
                    int v = depth == 8 ? ((uint8_t *)img.data)[2 * i + k]
                                       : ((uint16_t *)img.data)[2 * i + k] / 1000;
                    ck_assert_msg(v == want[2 + i] * (k ? 10 : 1),
                                  "orientation %d depth %d pixel %d ch %d: %d", o, depth, i, k, v);
                }
            ic_image_free(&img);
        }
    }
    /* Out of memory: an error, and the image is left as it was. */
    ic_image img;
    ck_assert_int_eq(ic_image_alloc(&img, 3, 2, 1, 8), 0);
    memcpy(img.data, "\1\2\3\4\5\6", 6);
    ic_alloc_fail_after(0);
    ck_assert_int_eq(ic_image_orient(&img, 6), IC_ENOMEM);
    ic_alloc_fail_reset();
    ck_assert_int_eq(img.w, 3);
    ck_assert_int_eq(memcmp(img.data, "\1\2\3\4\5\6", 6), 0);
    ic_image_free(&img);
    ck_assert_int_eq(ic_image_orient(&img, 6), IC_EINVAL);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("image/image");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_limits);
    tcase_add_test(tc, test_alloc_free);
    tcase_add_test(tc, test_sniff);
    tcase_add_test(tc, test_dispatch);
    tcase_add_test(tc, test_orient);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
