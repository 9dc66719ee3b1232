/* Tests of core/image/ids.c: the COCO-panoptic id = R + 256 G + 65536 B
 * encoding, alone and through a PNG round trip. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/err.h"
#include "image/ids.h"
#include "image/png.h"
#include "testutil.h"

START_TEST(test_known_values)
{
    const int32_t ids[4] = {0, 1 + 256 * 2 + 65536 * 3, 0xFFFFFF, 26 * 1000 + 7};
    uint8_t rgb[12];
    ck_assert_int_eq(ic_image_ids_to_rgb(ids, 2, 2, rgb), 0);
    static const uint8_t want[12] = {0, 0, 0, 1, 2, 3, 255, 255, 255, 0x97, 0x65, 0};
    ck_assert_int_eq(memcmp(rgb, want, 12), 0);

    /* RGBA input: alpha is ignored. */
    uint8_t rgba[16];
    for (int i = 0; i < 4; i++) {
        memcpy(rgba + 4 * i, rgb + 3 * i, 3);
        rgba[4 * i + 3] = (uint8_t)(i * 50);
    }
    ic_image img = {2, 2, 4, 8, rgba};
    int32_t back[4];
    ck_assert_int_eq(ic_image_ids_from_rgb(&img, back), 0);
    ck_assert_int_eq(memcmp(back, ids, sizeof ids), 0);
}
END_TEST

START_TEST(test_png_roundtrip)
{
    enum { W = 31, H = 17 };
    int32_t ids[W * H];
    uint64_t rng = 5;
    for (int i = 0; i < W * H; i++)
        ids[i] = tu_rand_int(&rng, 0, IC_IMAGE_ID_MAX);
    ic_image img;
    ck_assert_int_eq(ic_image_alloc(&img, W, H, 3, 8), 0);
    ck_assert_int_eq(ic_image_ids_to_rgb(ids, W, H, img.data), 0);
    unsigned char *png = NULL;
    size_t len;
    ck_assert_int_eq(ic_image_encode_png(&img, NULL, &png, &len), 0);
    ic_image_free(&img);
    ck_assert_int_eq(ic_image_decode_png(png, len, NULL, &img), 0);
    ic_free(png);
    int32_t back[W * H];
    ck_assert_int_eq(ic_image_ids_from_rgb(&img, back), 0);
    ck_assert_int_eq(memcmp(back, ids, sizeof ids), 0);
    ic_image_free(&img);
}
END_TEST

START_TEST(test_errors)
{
    int32_t ids[3] = {5, 0x1000000, 7};
    uint8_t rgb[9];
    ck_assert_int_eq(ic_image_ids_to_rgb(ids, 3, 1, rgb), IC_EINVAL);
    ck_assert_ptr_nonnull(strstr(ic_error_message(), "16777216 at (1, 0)"));
    ids[1] = -1;
    ck_assert_int_eq(ic_image_ids_to_rgb(ids, 3, 1, rgb), IC_EINVAL);
    ck_assert_int_eq(ic_image_ids_to_rgb(ids, 0, 1, rgb), IC_EINVAL);
    ck_assert_int_eq(ic_image_ids_to_rgb(NULL, 3, 1, rgb), IC_EINVAL);

    uint16_t px[3] = {1, 2, 3};
    ic_image img16 = {1, 1, 3, 16, px};
    int32_t out[1];
    ck_assert_int_eq(ic_image_ids_from_rgb(&img16, out), IC_EINVAL);
    uint8_t g[1] = {9};
    ic_image gray = {1, 1, 1, 8, g};
    ck_assert_int_eq(ic_image_ids_from_rgb(&gray, out), IC_EINVAL);
    ck_assert_int_eq(ic_image_ids_from_rgb(NULL, out), IC_EINVAL);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("image/ids");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_known_values);
    tcase_add_test(tc, test_png_roundtrip);
    tcase_add_test(tc, test_errors);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
