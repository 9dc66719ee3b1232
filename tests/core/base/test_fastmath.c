/* ic_fast_exp and ic_fast_log against double exp and log: relative error
 * under 3e-7 over the whole float range they promise, and the edges
 * (underflow to 0, -inf, powers of two, 1). */
#include <check.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>

#include "base/fastmath.h"

START_TEST(test_exp_range)
{
    double worst = 0;
    float at = 0;
    for (float x = -87.0f; x < 88.0f; x += 1.7e-4f) {
        const double want = exp((double)x);
        const double err = fabs(ic_fast_exp(x) - want) / want;
        if (err > worst) {
            worst = err;
            at = x;
        }
    }
    ck_assert_msg(worst < 3e-7, "exp: relative error %g at %g", worst, (double)at);
    /* exactly representable points and tiny arguments */
    for (int k = -20; k <= 20; k++) {
        const float x = (float)k * 0.6931471805599453f;
        ck_assert_double_le(fabs(ic_fast_exp(x) / exp((double)x) - 1), 3e-7);
    }
    ck_assert_double_le(fabs(ic_fast_exp(1e-7f) - exp(1e-7)), 3e-7);
    ck_assert_double_le(fabs(ic_fast_exp(0.0f) - 1.0), 1e-7);
}
END_TEST

START_TEST(test_exp_underflow)
{
    ck_assert(ic_fast_exp(-88.0f) == 0.0f);
    ck_assert(ic_fast_exp(-1e30f) == 0.0f);
    ck_assert(ic_fast_exp(-INFINITY) == 0.0f);
    ck_assert(ic_fast_exp(-87.0f) > 0.0f);
}
END_TEST

START_TEST(test_log_range)
{
    double worst = 0;
    float at = 0;
    for (float x = FLT_MIN; x < FLT_MAX / 1.0001f; x *= 1.0001f) {
        const double want = log((double)x);
        const double err = fabs(ic_fast_log(x) - want) / fmax(fabs(want), 1.0);
        if (err > worst) {
            worst = err;
            at = x;
        }
    }
    ck_assert_msg(worst < 3e-7, "log: error %g at %g", worst, (double)at);
    /* around 1, where ln x is small: relative to ln x itself */
    for (float x = 0.5f; x < 2.0f; x += 1e-5f) {
        const double want = log((double)x);
        if (fabs(want) > 1e-3)
            ck_assert_double_le(fabs(ic_fast_log(x) - want) / fabs(want), 3e-6);
    }
    ck_assert(ic_fast_log(1.0f) == 0.0f);
    ck_assert_double_le(fabs(ic_fast_log(0.125f) + 3 * 0.6931471805599453), 3e-7);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("fastmath");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_exp_range);
    tcase_add_test(tc, test_exp_underflow);
    tcase_add_test(tc, test_log_range);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
