/* Tests of core/post/rle: run lengths in pycocotools' column-major order and
 * cocoapi's compressed strings (vectors from a line-by-line port of
 * rleToString, docs/api.md "COCO RLE", plus hand-checked masks). */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/arena.h"
#include "base/err.h"
#include "post/rle.h"
#include "testutil.h"

static void check_string(const uint32_t *counts, size_t n, const char *want)
{
    char buf[256];
    ck_assert_uint_eq(ic_rle_string_len(counts, n), strlen(want));
    size_t len = ic_rle_to_string(buf, counts, n);
    ck_assert_uint_eq(len, strlen(want));
    ck_assert_str_eq(buf, want);

    /* and back */
    ic_arena a;
    ic_arena_init(&a, 4096, 0);
    uint64_t total = 0;
    for (size_t i = 0; i < n; i++)
        total += counts[i];
    uint32_t *back;
    size_t nb;
    ck_assert_int_eq(ic_rle_from_string(&back, &nb, &a, want, strlen(want), total), 0);
    ck_assert_uint_eq(nb, n);
    for (size_t i = 0; i < n; i++)
        ck_assert_uint_eq(back[i], counts[i]);
    ic_arena_deinit(&a);
}

START_TEST(test_known_strings)
{
    uint32_t a[] = {5, 2, 2, 2, 5};
    check_string(a, 5, "52203");
    uint32_t b[] = {0, 6, 1};
    check_string(b, 3, "061");
    uint32_t c[] = {1, 10, 1, 3};
    check_string(c, 4, "1:1I");
    uint32_t d[] = {15};
    check_string(d, 1, "?");
    uint32_t e[] = {16};
    check_string(e, 1, "`0");
    uint32_t f[] = {100000, 3, 5, 7};
    check_string(f, 4, "PeQ3354");
}
END_TEST

START_TEST(test_encode_from_map)
{
    ic_arena a;
    ic_arena_init(&a, 4096, 0);
    /* 4x4 map, segment 7 is a 2x2 square at rows/cols 1-2: column-major
     * 0000 0110 0110 0000 -> [5 2 2 2 5] */
    int32_t map[16] = {
        1, 1, 1, 1,
        1, 7, 7, 1,
        1, 7, 7, 1,
        1, 1, 1, 1,
    };
    uint32_t *cnt;
    size_t n;
    ck_assert_int_eq(ic_rle_encode_id(&cnt, &n, &a, map, 4, 4, 7, NULL), 0);
    uint32_t want[] = {5, 2, 2, 2, 5};
    ck_assert_uint_eq(n, 5);
    for (size_t i = 0; i < n; i++)
        ck_assert_uint_eq(cnt[i], want[i]);
    int bbox[4] = {1, 1, 2, 2};
    ck_assert_int_eq(ic_rle_encode_id(&cnt, &n, &a, map, 4, 4, 7, bbox), 0);
    ck_assert_uint_eq(n, 5);
    for (size_t i = 0; i < n; i++)
        ck_assert_uint_eq(cnt[i], want[i]);

    /* id 1 starts at pixel 0: leading empty zero run; [0 5 2 2 2 5] */
    ck_assert_int_eq(ic_rle_encode_id(&cnt, &n, &a, map, 4, 4, 1, NULL), 0);
    uint32_t want1[] = {0, 5, 2, 2, 2, 5};
    ck_assert_uint_eq(n, 6);
    for (size_t i = 0; i < n; i++)
        ck_assert_uint_eq(cnt[i], want1[i]);

    /* absent id: one zero run */
    ck_assert_int_eq(ic_rle_encode_id(&cnt, &n, &a, map, 4, 4, 99, NULL), 0);
    ck_assert_uint_eq(n, 1);
    ck_assert_uint_eq(cnt[0], 16);

    /* non-square: h=2, w=3, column-major order is (0,0),(1,0),(0,1),... */
    int32_t m2[6] = {5, 0, 5,
                     5, 5, 0};
    ck_assert_int_eq(ic_rle_encode_id(&cnt, &n, &a, m2, 2, 3, 5, NULL), 0);
    /* columns: [5 5] [0 5] [5 0] -> 1 1 0 1 1 0 -> [0 2 1 2 1] */
    uint32_t want2[] = {0, 2, 1, 2, 1};
    ck_assert_uint_eq(n, 5);
    for (size_t i = 0; i < n; i++)
        ck_assert_uint_eq(cnt[i], want2[i]);

    int bad[4] = {2, 0, 3, 1};
    ck_assert_int_eq(ic_rle_encode_id(&cnt, &n, &a, m2, 2, 3, 5, bad), IC_EINVAL);
    ic_arena_deinit(&a);
}
END_TEST

/* Random maps: encode, compress, decode, and rebuild the mask. */
START_TEST(test_roundtrip_random)
{
    ic_arena a;
    ic_arena_init(&a, 1 << 16, 0);
    uint64_t rng = 42;
    for (int iter = 0; iter < 50; iter++) {
        int h = tu_rand_int(&rng, 1, 40), w = tu_rand_int(&rng, 1, 40);
        int32_t *map = malloc((size_t)h * w * sizeof *map);
        for (int i = 0; i < h * w; i++)
            map[i] = tu_rand_int(&rng, 0, iter % 2 ? 3 : 12);
        uint32_t *cnt;
        size_t n;
        ck_assert_int_eq(ic_rle_encode_id(&cnt, &n, &a, map, h, w, 2, NULL), 0);
        /* a tight and a loose bbox must give the same runs */
        int x0 = w, y0 = h, x1 = -1, y1 = -1;
        for (int i = 0; i < h * w; i++)
            if (map[i] == 2) {
                int x = i % w, y = i / w;
                x0 = x < x0 ? x : x0;
                x1 = x > x1 ? x : x1;
                y0 = y < y0 ? y : y0;
                y1 = y > y1 ? y : y1;
            }
        if (x1 >= 0) {
            int tight[4] = {x0, y0, x1 - x0 + 1, y1 - y0 + 1};
            int loose[4] = {x0 > 0 ? x0 - 1 : 0, 0, x1 - (x0 > 0 ? x0 - 1 : 0) + 1, h};
            const int *boxes[2] = {tight, loose};
            for (int bi = 0; bi < 2; bi++) {
                uint32_t *cb;
                size_t nbx;
                ck_assert_int_eq(ic_rle_encode_id(&cb, &nbx, &a, map, h, w, 2, boxes[bi]), 0);
                ck_assert_uint_eq(nbx, n);
                for (size_t i = 0; i < n; i++)
                    ck_assert_uint_eq(cb[i], cnt[i]);
            }
        }
        char *s = malloc(ic_rle_string_len(cnt, n) + 1);
        size_t len = ic_rle_to_string(s, cnt, n);
        uint32_t *back;
        size_t nb;
        ck_assert_int_eq(ic_rle_from_string(&back, &nb, &a, s, len, (uint64_t)h * w), 0);
        ck_assert_uint_eq(nb, n);
        size_t pos = 0;
        int val = 0;
        for (size_t r = 0; r < nb; r++, val ^= 1)
            for (uint32_t j = 0; j < back[r]; j++, pos++) {
                int x = (int)(pos / (size_t)h), y = (int)(pos % (size_t)h);
                ck_assert_int_eq(map[y * w + x] == 2, val);
            }
        ck_assert_uint_eq(pos, (size_t)h * w);
        free(s);
        free(map);
        ic_arena_reset(&a);
    }
    ic_arena_deinit(&a);
}
END_TEST

START_TEST(test_bad_strings)
{
    ic_arena a;
    ic_arena_init(&a, 4096, 0);
    uint32_t *cnt;
    size_t n;
    ck_assert_int_eq(ic_rle_from_string(&cnt, &n, &a, "52203", 5, 17), IC_EFORMAT);
    ck_assert_int_eq(ic_rle_from_string(&cnt, &n, &a, "5 203", 5, 16), IC_EFORMAT);
    ck_assert_int_eq(ic_rle_from_string(&cnt, &n, &a, "P", 1, 16), IC_EFORMAT); /* truncated */
    ck_assert_int_eq(ic_rle_from_string(&cnt, &n, &a, "o", 1, 16), IC_EFORMAT);
    ck_assert_int_eq(ic_rle_from_string(&cnt, &n, &a, "ooooooooo0", 10, 16), IC_EFORMAT);
    ck_assert_int_eq(ic_rle_from_string(&cnt, &n, &a, "O", 1, 0), IC_EFORMAT); /* -1 */
    ck_assert_int_eq(ic_rle_from_string(&cnt, &n, &a, "", 0, 0), 0);
    ck_assert_uint_eq(n, 0);
    ic_arena_deinit(&a);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("rle");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_known_strings);
    tcase_add_test(tc, test_encode_from_map);
    tcase_add_test(tc, test_roundtrip_random);
    tcase_add_test(tc, test_bad_strings);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
