/* Tests for core/train/schedule: detectron2's WarmupPolyLR values (linear
 * warm-up factor times the poly term), the end of the schedule, defaults. */
#include <check.h>
#include <math.h>

#include "train/schedule.h"

START_TEST(test_values)
{
    ic_lr_schedule s = {.base_lr = 1.0, .max_iters = 100, .warmup_iters = 10,
                        .warmup_factor = 0.001, .power = 0.9};
    ck_assert_double_eq_tol(ic_lr_at(&s, 0), 0.001, 1e-12);
    ck_assert_double_eq_tol(ic_lr_at(&s, 5), 0.5005 * pow(0.95, 0.9), 1e-12);
    ck_assert_double_eq_tol(ic_lr_at(&s, 10), pow(0.9, 0.9), 1e-12);
    ck_assert_double_eq_tol(ic_lr_at(&s, 50), pow(0.5, 0.9), 1e-12);
    ck_assert_double_eq_tol(ic_lr_at(&s, 99), pow(0.01, 0.9), 1e-12);
    ck_assert(ic_lr_at(&s, 100) == 0.0 && ic_lr_at(&s, 1000) == 0.0);
    for (int i = 11; i < 100; i++)
        ck_assert(ic_lr_at(&s, i) < ic_lr_at(&s, i - 1));
    s.warmup_iters = 0;
    ck_assert_double_eq_tol(ic_lr_at(&s, 0), 1.0, 1e-12);
}
END_TEST

START_TEST(test_defaults)
{
    ic_lr_schedule s = ic_lr_schedule_default(1e-3, 90000);
    ck_assert_int_eq(s.warmup_iters, 1000);
    ck_assert_double_eq(s.warmup_factor, 0.001);
    ck_assert_double_eq(s.power, 0.9);
    ck_assert_int_eq(ic_lr_schedule_default(1e-3, 30).warmup_iters, 30);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("train/schedule");
    TCase *tc = tcase_create("schedule");
    tcase_add_test(tc, test_values);
    tcase_add_test(tc, test_defaults);
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
