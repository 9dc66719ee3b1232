/* Tests of core/metrics/auroc: hand cases, ties, a brute-force count of
 * all pairs on random scores, quantiles against numpy's definition, and
 * refused inputs. */
#include <check.h>
#include <math.h>
#include <stdlib.h>

#include "base/err.h"
#include "metrics/auroc.h"
#include "testutil.h"

START_TEST(test_hand)
{
    double scratch[8], a;
    double neg[3] = {0.1, 0.2, 0.3}, pos[3] = {0.4, 0.5, 0.6};
    ck_assert_int_eq(ic_auroc(neg, 3, pos, 3, scratch, &a), 0);
    ck_assert_double_eq(a, 1.0);
    ck_assert_int_eq(ic_auroc(pos, 3, neg, 3, scratch, &a), 0);
    ck_assert_double_eq(a, 0.0);
    /* one positive (0.25) beats 2 of 3 negatives: (2 + 3 + 3) / 9 */
    double pos2[3] = {0.25, 0.5, 0.6};
    ck_assert_int_eq(ic_auroc(neg, 3, pos2, 3, scratch, &a), 0);
    ck_assert_double_eq_tol(a, 8.0 / 9.0, 1e-15);
    /* ties count one half */
    double same[2] = {1, 1};
    ck_assert_int_eq(ic_auroc(same, 2, same, 2, scratch, &a), 0);
    ck_assert_double_eq(a, 0.5);
    double neg3[2] = {1, 2}, pos3[1] = {2};
    ck_assert_int_eq(ic_auroc(neg3, 2, pos3, 1, scratch, &a), 0);
    ck_assert_double_eq(a, 0.75);
}
END_TEST

START_TEST(test_brute_force)
{
    uint64_t st = 7;
    enum { NN = 157, NP = 93 };
    double neg[NN], pos[NP], scratch[NN + NP], a;
    for (int i = 0; i < NN; i++) /* coarse values so that ties happen */
        neg[i] = floor(tu_rand_uniform(&st, 0, 20));
    for (int i = 0; i < NP; i++)
        pos[i] = floor(tu_rand_uniform(&st, 5, 25));
    double u = 0;
    for (int i = 0; i < NP; i++)
        for (int j = 0; j < NN; j++)
            u += pos[i] > neg[j] ? 1.0 : pos[i] == neg[j] ? 0.5 : 0.0;
    ck_assert_int_eq(ic_auroc(neg, NN, pos, NP, scratch, &a), 0);
    ck_assert_double_eq_tol(a, u / (NN * NP), 1e-14);
    ck_assert(a > 0.6 && a < 0.95);
    /* the inputs are left alone */
    ck_assert_double_eq(neg[0], floor(neg[0]));
}
END_TEST

START_TEST(test_quantile)
{
    double x[4] = {4, 1, 3, 2}, q;
    ck_assert_int_eq(ic_quantile(x, 4, 0.5, &q), 0);
    ck_assert_double_eq_tol(q, 2.5, 1e-15);
    ck_assert_double_eq(x[0], 1); /* sorted in place */
    ck_assert_int_eq(ic_quantile(x, 4, 0.99, &q), 0); /* numpy.quantile([1,2,3,4], .99) */
    ck_assert_double_eq_tol(q, 3.97, 1e-12);
    ck_assert_int_eq(ic_quantile(x, 4, 0.0, &q), 0);
    ck_assert_double_eq(q, 1);
    ck_assert_int_eq(ic_quantile(x, 4, 1.0, &q), 0);
    ck_assert_double_eq(q, 4);
    double one = 5;
    ck_assert_int_eq(ic_quantile(&one, 1, 0.3, &q), 0);
    ck_assert_double_eq(q, 5);
    ck_assert_double_eq(ic_fraction_above(x, 4, 2.5), 0.5);
    ck_assert_double_eq(ic_fraction_above(x, 4, 4), 0.0);
}
END_TEST

START_TEST(test_refused)
{
    double s[4], a, v[2] = {1, NAN}, w[2] = {1, 2};
    ck_assert_int_eq(ic_auroc(w, 0, w, 2, s, &a), IC_EINVAL);
    ck_assert_int_eq(ic_auroc(w, 2, w, 0, s, &a), IC_EINVAL);
    ck_assert_int_eq(ic_auroc(v, 2, w, 2, s, &a), IC_EINVAL);
    ck_assert_int_eq(ic_auroc(w, 2, v, 2, s, &a), IC_EINVAL);
    ck_assert_int_eq(ic_auroc(NULL, 2, w, 2, s, &a), IC_EINVAL);
    ck_assert_int_eq(ic_quantile(w, 0, 0.5, &a), IC_EINVAL);
    ck_assert_int_eq(ic_quantile(w, 2, 1.5, &a), IC_EINVAL);
    ck_assert_int_eq(ic_quantile(w, 2, NAN, &a), IC_EINVAL);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("metrics/auroc");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_hand);
    tcase_add_test(tc, test_brute_force);
    tcase_add_test(tc, test_quantile);
    tcase_add_test(tc, test_refused);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
