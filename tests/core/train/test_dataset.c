/* Tests for core/train/dataset: batch shapes, labels aligned with the image
 * through a flip, on-the-fly SynthCity equal to the same scenes written to
 * disk, category mapping by name, determinism of the loader. */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/err.h"
#include "data/synth.h"
#include "data/synth_writer.h"
#include "train/dataset.h"
#include "train_testlib.h"

enum { H = 64, W = 128 };

static ic_loader_opts identity_opts(const ic_pdl_config *cfg, float p_flip)
{
    ic_loader_opts o = ic_loader_opts_default(cfg, H, W, 0, 4);
    o.geom.scale_min = o.geom.scale_max = 1.0f;
    o.geom.p_flip = p_flip;
    return o;
}

START_TEST(test_shapes_and_flip_alignment)
{
    ic_pdl_config cfg;
    char *text = tt_tiny_config(&cfg);
    ic_dataset *d;
    ck_assert_int_eq(ic_dataset_open_synth(&d, 7, 5, H, W, &cfg), 0);
    ck_assert_int_eq(ic_dataset_size(d), 5);
    ic_batch b;
    ck_assert_int_eq(ic_batch_init(&b, 2, H, W), 0);
    ic_loader_opts o = identity_opts(&cfg, 1.0f);
    ck_assert_int_eq(o.targets.small_instance_area, 64); /* 4096 * 64*128 / (512*1024) */
    ck_assert_int_eq(ic_loader_fill(&b, d, &o, 3, 0), 0);
    ck_assert(b.image.n == 2 && b.image.c == 3 && b.image.h == H && b.image.w == W);
    ck_assert(b.offset.c == 2 && b.center.c == 1 && b.offset_w.c == 1);

    /* the reference: the same scene rendered directly, mirrored */
    ic_synth_sample s;
    ck_assert_int_eq(ic_synth_sample_init(&s, H, W), 0);
    int idx = ic_dataset_sample_index(d, 3, 0);
    ck_assert_int_eq(ic_synth_render(&s, 7, (uint64_t)idx, IC_SYNTH_SOURCE), 0);
    int sky = -1, car = -1, n_lab = 0, n_void = 0;
    for (int c = 0; c < cfg.num_classes; c++) {
        if (!strcmp(cfg.class_names[c], "sky"))
            sky = c;
        if (!strcmp(cfg.class_names[c], "car"))
            car = c;
    }
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            int xs = W - 1 - x;
            int sem = s.semantic[y * W + xs];
            int want = sem == IC_SYNTH_SKY ? sky : sem == IC_SYNTH_CAR ? car : -1;
            if (!strcmp(ic_synth_class_find(sem) ? ic_synth_class_find(sem)->name : "", "person"))
                want = 2;
            int got = b.sem[y * W + x];
            if (want < 0) {
                ck_assert_int_eq(got, 255);
                n_void++;
            } else {
                ck_assert_int_eq(got, want);
                n_lab++;
            }
            /* pixel value normalised from the mirrored source pixel */
            for (int c = 0; c < 3; c++) {
                float v = (s.rgb[(y * W + xs) * 3 + c] - cfg.pixel_mean[c]) / cfg.pixel_std[c];
                ck_assert_float_eq_tol(b.image.data[(size_t)c * H * W + y * W + x], v, 1e-5f);
            }
            /* thing pixels carry offsets, stuff pixels do not */
            float ow = b.offset_w.data[y * W + x];
            ck_assert(ow == ((got == car || got == 2) ? 1.0f : 0.0f));
        }
    ck_assert(n_lab > 0 && n_void > 0);
    /* deterministic */
    ic_batch b2;
    ck_assert_int_eq(ic_batch_init(&b2, 2, H, W), 0);
    ck_assert_int_eq(ic_loader_fill(&b2, d, &o, 3, 0), 0);
    ck_assert_int_eq(memcmp(b.mem, b2.mem, 10 * sizeof(float) * 2 * H * W), 0);
    ic_batch_deinit(&b2);
    ic_synth_sample_deinit(&s);
    ic_batch_deinit(&b);
    ic_dataset_free(&d);
    free(text);
}
END_TEST

START_TEST(test_dir_equals_synth)
{
    ic_pdl_config cfg;
    char *text = tt_tiny_config(&cfg);
    char dir[] = "/tmp/ic_test_dataset_XXXXXX";
    ck_assert(mkdtemp(dir) != NULL);
    ic_synth_write_opts wo = {.out_dir = dir, .domain = IC_SYNTH_SOURCE, .seed = 11, .count = 3,
                              .h = H, .w = W};
    ck_assert_int_eq(ic_synth_write_dataset(&wo, NULL, NULL), 0);
    ic_dataset *dd, *ds;
    ck_assert_msg(ic_dataset_open_dir(&dd, dir, &cfg) == 0, "%s", ic_error_message());
    ck_assert_int_eq(ic_dataset_open_synth(&ds, 11, 3, H, W, &cfg), 0);
    ck_assert_int_eq(ic_dataset_size(dd), 3);
    ic_batch a, b;
    ck_assert_int_eq(ic_batch_init(&a, 3, H, W), 0);
    ck_assert_int_eq(ic_batch_init(&b, 3, H, W), 0);
    ic_loader_opts o = ic_loader_opts_default(&cfg, H, W, 0, 4);
    ck_assert_msg(ic_loader_fill(&a, dd, &o, 5, 0) == 0, "%s", ic_error_message());
    ck_assert_int_eq(ic_loader_fill(&b, ds, &o, 5, 0), 0);
    size_t px = (size_t)3 * H * W;
    ck_assert_int_eq(memcmp(a.sem, b.sem, px * 4), 0);
    ck_assert_int_eq(memcmp(a.center.data, b.center.data, px * 4), 0);
    ck_assert_int_eq(memcmp(a.offset.data, b.offset.data, 2 * px * 4), 0);
    ck_assert_int_eq(memcmp(a.image.data, b.image.data, 3 * px * 4), 0);
    ic_batch_deinit(&a);
    ic_batch_deinit(&b);
    ic_dataset_free(&dd);
    ic_dataset_free(&ds);
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
    free(text);
}
END_TEST

START_TEST(test_strong_and_epochs)
{
    ic_pdl_config cfg;
    char *text = tt_tiny_config(&cfg);
    ic_dataset *d;
    ck_assert_int_eq(ic_dataset_open_synth(&d, 1, 4, H, W, &cfg), 0);
    /* every epoch visits every item once */
    for (int e = 0; e < 3; e++) {
        int seen[4] = {0};
        for (int i = 0; i < 4; i++)
            seen[ic_dataset_sample_index(d, 9, (uint64_t)(4 * e + i))]++;
        ck_assert(seen[0] == 1 && seen[1] == 1 && seen[2] == 1 && seen[3] == 1);
    }
    ic_batch b;
    ck_assert_int_eq(ic_batch_init(&b, 2, H, W), 0);
    ic_loader_opts o = ic_loader_opts_default(&cfg, H, W, 1, 0);
    ck_assert_msg(ic_loader_fill(&b, d, &o, 2, 6) == 0, "%s", ic_error_message());
    for (size_t i = 0; i < (size_t)2 * 3 * H * W; i++)
        ck_assert(isfinite(b.image.data[i]));
    ic_batch_deinit(&b);
    ic_dataset_free(&d);
    free(text);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("train/dataset");
    TCase *tc = tcase_create("dataset");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_shapes_and_flip_alignment);
    tcase_add_test(tc, test_dir_equals_synth);
    tcase_add_test(tc, test_strong_and_epochs);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *r = srunner_create(suite());
    srunner_run_all(r, CK_NORMAL);
    int failed = srunner_ntests_failed(r);
    srunner_free(r);
    return failed != 0;
}
