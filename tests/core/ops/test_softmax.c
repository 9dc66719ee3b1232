/* Tests for core/ops/softmax: softmax, argmax and the fused
 * (label, maxprob, entropy) statistics against PyTorch fixtures (including
 * integer logits with many ties, large logits and a single class), the
 * blocked fast paths against the per-pixel references on random shapes, and
 * the tie/NaN rules. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "ops/softmax.h"
#include "testutil.h"

static void expect_close(const float *got, const float *want, size_t n, const char *what, int i)
{
    char l[64];
    snprintf(l, sizeof l, "softmax case %d %s", i, what);
    double rel;
    ck_assert_msg(tu_compare(got, want, n, 1e-4, l, &rel) == 0, "%s: max rel %g", l, rel);
}

START_TEST(test_golden)
{
    ic_safetensors *st = tu_fixture("ops_softmax");
    int ncases = 0;
    for (int i = 0; tu_has_case(st, i); i++, ncases++) {
        ic_tensor x = tu_copy4(tu_case_tensor(st, i, "x"));
        size_t n = ic_tensor_numel(&x), npix = (size_t)x.n * ic_tensor_plane(&x);
        const float *want_label = tu_case_tensor(st, i, "label")->f32;
        int32_t *label = malloc(npix * sizeof(int32_t));
        float *mp = malloc(npix * sizeof(float)), *ent = malloc(npix * sizeof(float));
        ic_tensor y = x;
        y.data = malloc(n * sizeof(float));
        for (int ref = 0; ref < 2; ref++) {
            const char *tag = ref ? "ref" : "fast";
            ck_assert_int_eq(ref ? ic_softmax_forward_ref(&y, &x) : ic_softmax_forward(&y, &x), 0);
            expect_close(y.data, tu_case_tensor(st, i, "y")->f32, n, tag, i);
            ck_assert_int_eq(ref ? ic_softmax_stats_ref(label, mp, ent, &x)
                                 : ic_softmax_stats(label, mp, ent, &x),
                             0);
            for (size_t k = 0; k < npix; k++)
                ck_assert_msg(label[k] == (int32_t)want_label[k], "case %d pixel %zu: label %d, torch %d",
                              i, k, label[k], (int)want_label[k]);
            expect_close(mp, tu_case_tensor(st, i, "maxprob")->f32, npix, "maxprob", i);
            expect_close(ent, tu_case_tensor(st, i, "entropy")->f32, npix, "entropy", i);
        }
        memset(label, 0xff, npix * sizeof(int32_t));
        ck_assert_int_eq(ic_softmax_argmax(label, &x), 0);
        for (size_t k = 0; k < npix; k++)
            ck_assert_int_eq(label[k], (int32_t)want_label[k]);
        /* in place */
        ck_assert_int_eq(ic_softmax_forward(&x, &x), 0);
        expect_close(x.data, tu_case_tensor(st, i, "y")->f32, n, "in place", i);
        free(label);
        free(mp);
        free(ent);
        free(y.data);
        free(x.data);
    }
    ck_assert_int_ge(ncases, 6);
    ic_st_close(&st);
}
END_TEST

START_TEST(test_random_vs_ref)
{
    uint64_t rng = 0x50F7;
    for (int iter = 0; iter < 60; iter++) {
        int N = tu_rand_int(&rng, 1, 3), C = tu_rand_int(&rng, 1, 25);
        int H = tu_rand_int(&rng, 1, 23), W = tu_rand_int(&rng, 1, 31);
        ic_tensor x = ic_tensor_wrap(NULL, N, C, H, W), y = x, yr = x;
        size_t n = ic_tensor_numel(&x), npix = (size_t)N * (size_t)H * (size_t)W;
        x.data = malloc(n * sizeof(float));
        y.data = malloc(n * sizeof(float));
        yr.data = malloc(n * sizeof(float));
        float sc = tu_rand_uniform(&rng, 0.1f, 20);
        tu_rand_fill(x.data, n, &rng, -sc, sc);
        if (iter % 3 == 0) /* integer logits: ties */
            for (size_t k = 0; k < n; k++)
                x.data[k] = floorf(x.data[k] / sc * 2);
        ck_assert_int_eq(ic_softmax_forward(&y, &x), 0);
        ck_assert_int_eq(ic_softmax_forward_ref(&yr, &x), 0);
        ck_assert_uint_eq(tu_compare(y.data, yr.data, n, 1e-5, "softmax fast vs ref", NULL), 0);
        int32_t *l = malloc(2 * npix * sizeof(int32_t)), *lr = l + npix;
        float *s = malloc(4 * npix * sizeof(float)), *sr = s + 2 * npix;
        ck_assert_int_eq(ic_softmax_stats(l, s, s + npix, &x), 0);
        ck_assert_int_eq(ic_softmax_stats_ref(lr, sr, sr + npix, &x), 0);
        ck_assert_int_eq(memcmp(l, lr, npix * sizeof(int32_t)), 0);
        ck_assert_uint_eq(tu_compare(s, sr, npix, 1e-5, "maxprob fast vs ref", NULL), 0);
        ck_assert_uint_eq(tu_compare(s + npix, sr + npix, npix, 1e-4, "entropy fast vs ref", NULL), 0);
        /* each output alone gives the same numbers */
        ck_assert_int_eq(ic_softmax_stats(NULL, NULL, s, &x), 0);
        ck_assert_int_eq(memcmp(s, s + npix, npix * sizeof(float)), 0);
        free(l);
        free(s);
        free(x.data);
        free(y.data);
        free(yr.data);
    }
}
END_TEST

START_TEST(test_ties_and_nan)
{
    /* one pixel per column of this (1, 4, 1, 3) tensor */
    float x[12] = {1, NAN, 0, /* c0 */ 3, 2, NAN, /* c1 */ 3, NAN, 5, /* c2 */ -1, 0, 9};
    ic_tensor t = ic_tensor_wrap(x, 1, 4, 1, 3);
    int32_t l[3], lr[3];
    ck_assert_int_eq(ic_softmax_argmax(l, &t), 0);
    ck_assert_int_eq(ic_softmax_stats_ref(lr, NULL, NULL, &t), 0);
    /* tie 3/3 -> lowest index 1; first NaN -> 0; NaN at c1 beats 9 -> 1 */
    ck_assert_int_eq(l[0], 1);
    ck_assert_int_eq(l[1], 0);
    ck_assert_int_eq(l[2], 1);
    ck_assert_int_eq(memcmp(l, lr, sizeof l), 0);
    ck_assert_int_eq(ic_softmax_argmax(NULL, &t), IC_EINVAL);
    float y[12];
    ic_tensor yt = ic_tensor_wrap(y, 1, 4, 3, 1);
    ck_assert_int_eq(ic_softmax_forward(&yt, &t), IC_ESHAPE);
}
END_TEST

START_TEST(test_uniform_entropy)
{
    /* equal logits: maxprob 1/C and entropy log C, even with a huge offset */
    enum { C = 19 };
    float x[C];
    for (int c = 0; c < C; c++)
        x[c] = 1e4f;
    ic_tensor t = ic_tensor_wrap(x, 1, C, 1, 1);
    float mp, ent;
    int32_t l;
    ck_assert_int_eq(ic_softmax_stats(&l, &mp, &ent, &t), 0);
    ck_assert_int_eq(l, 0);
    ck_assert_float_eq_tol(mp, 1.0f / C, 1e-7);
    ck_assert_float_eq_tol(ent, logf((float)C), 1e-6);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("ops/softmax");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_golden);
    tcase_add_test(tc, test_random_vs_ref);
    tcase_add_test(tc, test_ties_and_nan);
    tcase_add_test(tc, test_uniform_entropy);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
