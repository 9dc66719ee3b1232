/* Tests of core/metrics/calib: bin edges, ECE and reliability bins on
 * hand-computed cases, the fused pass over probabilities, merging. */
#include <check.h>
#include <math.h>
#include <stdlib.h>

#include "base/err.h"
#include "metrics/calib.h"

START_TEST(test_bins)
{
    ck_assert_int_eq(ic_calib_bin(0.0f), 0);
    ck_assert_int_eq(ic_calib_bin(NAN), 0);
    ck_assert_int_eq(ic_calib_bin(1.0f / 15.0f), 0); /* intervals are (lo, hi] */
    ck_assert_int_eq(ic_calib_bin(nextafterf(1.0f / 15.0f, 1.0f)), 1);
    ck_assert_int_eq(ic_calib_bin(0.5f), 7);
    ck_assert_int_eq(ic_calib_bin(0.6f), 8);
    ck_assert_int_eq(ic_calib_bin(1.0f), 14);
    ck_assert_int_eq(ic_calib_bin(1.5f), 14);
    for (int b = 1; b <= 15; b++) /* every upper bound belongs to its own bin */
        ck_assert_int_eq(ic_calib_bin((float)b / 15.0f), b - 1);
}
END_TEST

/* conf 0.9 (right), 0.9 (wrong), 0.6 (right), 0.3 (right), one ignored:
 * bins 13: |1 - 1.8|, 8: |1 - 0.6|, 4: |1 - 0.3| -> ECE = 1.9 / 4. */
START_TEST(test_ece_hand)
{
    float conf[5] = {0.9f, 0.9f, 0.6f, 0.3f, 0.99f};
    int32_t pred[5] = {1, 2, 0, 3, 1};
    int32_t gt[5] = {1, 1, 0, 3, 255};
    ic_ece e;
    ic_ece_init(&e);
    ic_ece_add(&e, conf, pred, gt, 5, 255);
    ck_assert_uint_eq(e.n, 4);
    ck_assert_double_eq_tol(ic_ece_value(&e), 1.9 / 4.0, 1e-7);
    ck_assert_double_eq_tol(ic_ece_max(&e), 0.7, 1e-7);
    ic_ece_bin bins[IC_CALIB_BINS];
    ic_ece_bins(&e, bins);
    ck_assert_uint_eq(bins[13].count, 2);
    ck_assert_double_eq_tol(bins[13].mean_conf, 0.9, 1e-7);
    ck_assert_double_eq_tol(bins[13].accuracy, 0.5, 1e-12);
    ck_assert_uint_eq(bins[8].count, 1);
    ck_assert_uint_eq(bins[4].count, 1);
    ck_assert_uint_eq(bins[14].count, 0);
    ck_assert_double_eq_tol(bins[8].hi, 9.0 / 15.0, 1e-12);

    /* accumulating the same image again leaves ECE unchanged */
    ic_ece e2 = e;
    ic_ece_merge(&e2, &e);
    ck_assert_uint_eq(e2.n, 8);
    ck_assert_double_eq_tol(ic_ece_value(&e2), 1.9 / 4.0, 1e-7);

    ic_ece empty;
    ic_ece_init(&empty);
    ck_assert_double_eq(ic_ece_value(&empty), 0.0);
}
END_TEST

/* Perfect predictions at a known confidence c: ECE = 1 - c. */
START_TEST(test_ece_known_conf)
{
    enum { N = 100 };
    float conf[N];
    int32_t lab[N];
    for (int i = 0; i < N; i++) {
        conf[i] = 0.8f;
        lab[i] = i % 7;
    }
    ic_ece e;
    ic_ece_init(&e);
    ic_ece_add(&e, conf, lab, lab, N, 255);
    ck_assert_double_eq_tol(ic_ece_value(&e), 0.2, 1e-6);
    for (int i = 0; i < N; i++)
        conf[i] = 1.0f;
    ic_ece_init(&e);
    ic_ece_add(&e, conf, lab, lab, N, 255);
    ck_assert_double_eq(ic_ece_value(&e), 0.0);
}
END_TEST

START_TEST(test_probs_pass)
{
    /* C = 3, 4 pixels, planar (C, N) */
    float probs[12] = {
        0.7f, 0.2f, 1.0f, 0.4f, /* class 0 */
        0.2f, 0.8f, 0.0f, 0.3f, /* class 1 */
        0.1f, 0.0f, 0.0f, 0.3f, /* class 2 */
    };
    int32_t gt[4] = {0, 0, 255, 1};
    ic_conf_stats s;
    ic_ece e;
    ic_conf_stats_init(&s);
    ic_ece_init(&e);
    ck_assert_int_eq(ic_calib_add_probs(&s, &e, probs, 3, 4, gt, 255), 0);
    ck_assert_uint_eq(s.n, 4);
    ck_assert_double_eq_tol(ic_conf_stats_mean_conf(&s), (0.7 + 0.8 + 1.0 + 0.4) / 4, 1e-6);
    double h0 = -(0.7 * log(0.7) + 0.2 * log(0.2) + 0.1 * log(0.1));
    double h1 = -(0.2 * log(0.2) + 0.8 * log(0.8));
    double h3 = -(0.4 * log(0.4) + 2 * 0.3 * log(0.3));
    ck_assert_double_eq_tol(ic_conf_stats_mean_entropy(&s), (h0 + h1 + 0.0 + h3) / 4, 1e-6);
    ck_assert_uint_eq(s.hist[10], 1); /* 0.7 */
    ck_assert_uint_eq(s.hist[11], 1); /* 0.8 */
    ck_assert_uint_eq(s.hist[14], 1); /* 1.0 */
    ck_assert_uint_eq(s.hist[5], 1);  /* 0.4 */

    /* same as the primitive path: preds 0, 1, -, 0; gt 0, 0, -, 1 */
    float conf[3] = {0.7f, 0.8f, 0.4f};
    int32_t pred[3] = {0, 1, 0}, g[3] = {0, 0, 1};
    ic_ece ref;
    ic_ece_init(&ref);
    ic_ece_add(&ref, conf, pred, g, 3, 255);
    ck_assert_uint_eq(e.n, 3);
    ck_assert_double_eq_tol(ic_ece_value(&e), ic_ece_value(&ref), 1e-12);
    ck_assert_double_eq_tol(ic_ece_value(&e), (0.3 + 0.8 + 0.4) / 3, 1e-6);

    /* label-free call, and the primitive stats add */
    ic_conf_stats s2;
    ic_conf_stats_init(&s2);
    ck_assert_int_eq(ic_calib_add_probs(&s2, NULL, probs, 3, 4, NULL, 255), 0);
    float ent[4] = {(float)h0, (float)h1, 0.0f, (float)h3}, mp[4] = {0.7f, 0.8f, 1.0f, 0.4f};
    ic_conf_stats s3;
    ic_conf_stats_init(&s3);
    ic_conf_stats_add(&s3, mp, ent, 4);
    ck_assert_double_eq_tol(s3.sum_entropy, s2.sum_entropy, 1e-6);
    ic_conf_stats_merge(&s3, &s2);
    ck_assert_uint_eq(s3.n, 8);
    ck_assert_int_eq(ic_calib_add_probs(&s2, NULL, probs, 0, 4, NULL, 255), IC_EINVAL);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("calib");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_bins);
    tcase_add_test(tc, test_ece_hand);
    tcase_add_test(tc, test_ece_known_conf);
    tcase_add_test(tc, test_probs_pass);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
