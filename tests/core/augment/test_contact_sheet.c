/* Contact sheet and timings: renders the test scene at 256 x 512, applies
 * every op (and DeepAugment, AugMix, RandAugment and a few draws of the
 * strong policy) and writes one PNG of all tiles to the build directory
 * (not committed) so that magnitudes can be judged by eye. Prints the
 * median time of each op at this size. The test itself only checks that
 * everything ran and the PNG was written. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "augment/augmix.h"
#include "augment/deepaug.h"
#include "augment/photometric.h"
#include "augment/policy.h"
#include "base/alloc.h"
#include "image/png.h"
#include "scene.h"

#ifndef AUG_SHEET_DIR
#define AUG_SHEET_DIR "."
#endif

#define TW 512
#define TH 256
#define COLS 4
#define GAP 4
#define MAX_TILES 32

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

enum { EXTRA_DEEPAUG = IC_AUG_NUM_OPS, EXTRA_AUGMIX, EXTRA_RANDAUG, EXTRA_STRONG, EXTRA_END };

static const char *case_name(int k)
{
    if (k < IC_AUG_NUM_OPS)
        return ic_aug_op_name((ic_aug_op)k);
    static const char *names[] = {"deepaug", "augmix", "randaugment(2, 0.7)", "strong"};
    return names[k - IC_AUG_NUM_OPS];
}

static int run(int k, ic_aug_rng *r, ic_image *img, int32_t **lab, float m)
{
    if (k < IC_AUG_NUM_OPS)
        return ic_aug_apply(r, img, (ic_aug_op)k, m);
    if (k == EXTRA_DEEPAUG)
        return ic_aug_deepaug_op(r, img, m);
    if (k == EXTRA_AUGMIX) {
        ic_aug_augmix_params p = ic_aug_augmix_params_default();
        return ic_aug_augmix(r, img, &p);
    }
    if (k == EXTRA_RANDAUG)
        return ic_aug_randaugment(r, img, 2, 0.7f, NULL);
    ic_aug_strong_params p = ic_aug_strong_params_default();
    p.p_identity = 0.0f;
    return ic_aug_strong(r, img, lab, &p);
}

static void paste(uint8_t *sheet, int sw, int tile, const ic_image *img)
{
    int x0 = (tile % COLS) * (TW + GAP), y0 = (tile / COLS) * (TH + GAP);
    for (int y = 0; y < TH && y < img->h; y++)
        memcpy(sheet + ((size_t)(y0 + y) * (size_t)sw + (size_t)x0) * 3,
               (uint8_t *)img->data + (size_t)y * (size_t)img->w * 3, (size_t)TW * 3);
}

START_TEST(test_sheet)
{
    const int ntiles = 1 + IC_AUG_NUM_OPS + 3 + 4; /* original, ops, 3 extras, 4 strong */
    const int rows = (ntiles + COLS - 1) / COLS;
    const int sw = COLS * (TW + GAP) - GAP, sh = rows * (TH + GAP) - GAP;
    ic_image sheet;
    ck_assert_int_eq(ic_image_alloc(&sheet, sw, sh, 3, 8), 0);
    memset(sheet.data, 255, (size_t)sw * (size_t)sh * 3);
    ic_image img;
    ck_assert_int_eq(test_scene_render(TW, TH, &img, NULL), 0);
    paste(sheet.data, sw, 0, &img);
    ic_image_free(&img);
    printf("contact sheet tiles (row-major, %d per row): original", COLS);
    int tile = 1;
    for (int k = 0; k < EXTRA_END; k++) {
        int reps = k == EXTRA_STRONG ? 4 : 1;
        for (int rep = 0; rep < reps; rep++) {
            ic_aug_rng r;
            ic_aug_rng_seed(&r, 2024, (uint64_t)(k * 16 + rep));
            int32_t *lab = NULL;
            ck_assert_int_eq(test_scene_render(k == EXTRA_STRONG ? 640 : TW,
                                               k == EXTRA_STRONG ? 320 : TH, &img, &lab), 0);
            ck_assert_int_eq(run(k, &r, &img, &lab, 0.9f), 0);
            paste(sheet.data, sw, tile++, &img);
            printf(", %s", case_name(k));
            ic_free(lab);
            ic_image_free(&img);
        }
    }
    printf("\n");
    unsigned char *png = NULL;
    size_t len = 0;
    ck_assert_int_eq(ic_image_encode_png(&sheet, NULL, &png, &len), 0);
    const char *path = AUG_SHEET_DIR "/augment_contact_sheet.png";
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(png, 1, len, f), len);
    fclose(f);
    printf("wrote %s\n", path);
    ic_free(png);
    ic_image_free(&sheet);

    /* Timings at 256 x 512 (minimum and median of 9: the minimum is the
     * cost on an idle core, the median shows contention; "strong" includes
     * the geometric ops on a 320 x 640 input). */
    printf("%-22s %8s %8s\n", "op (256x512, m=0.9)", "min ms", "med ms");
    for (int k = 0; k < EXTRA_END; k++) {
        double t[9];
        for (int rep = 0; rep < 9; rep++) {
            ic_aug_rng r;
            ic_aug_rng_seed(&r, 7, (uint64_t)rep);
            int32_t *lab = NULL;
            ck_assert_int_eq(test_scene_render(k == EXTRA_STRONG ? 640 : TW,
                                               k == EXTRA_STRONG ? 320 : TH, &img, &lab), 0);
            double t0 = now_ms();
            ck_assert_int_eq(run(k, &r, &img, &lab, 0.9f), 0);
            t[rep] = now_ms() - t0;
            ic_free(lab);
            ic_image_free(&img);
        }
        qsort(t, 9, sizeof t[0], cmp_double);
        printf("%-22s %8.2f %8.2f\n", case_name(k), t[0], t[4]);
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("augment_sheet");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_sheet);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_set_fork_status(sr, CK_NOFORK);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
