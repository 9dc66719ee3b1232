/* Tests of core/metrics/miou on hand-computed cases. */
#include <check.h>
#include <math.h>
#include <stdlib.h>

#include "base/err.h"
#include "metrics/miou.h"

START_TEST(test_perfect_and_partial)
{
    ic_confusion c;
    ck_assert_int_eq(ic_confusion_init(&c, 3), 0);
    int32_t gt[6] = {0, 0, 0, 1, 1, 1};
    ck_assert_int_eq(ic_confusion_add(&c, gt, gt, 6, 255), 0);
    int used;
    ck_assert_double_eq(ic_confusion_miou(&c, &used), 1.0);
    ck_assert_int_eq(used, 2); /* class 2 absent: not averaged */
    ck_assert(isnan(ic_confusion_iou(&c, 2)));

    /* one class-0 pixel predicted as 1: IoU0 = 2/3, IoU1 = 3/4 */
    ic_confusion_reset(&c);
    int32_t pred[6] = {0, 0, 1, 1, 1, 1};
    ck_assert_int_eq(ic_confusion_add(&c, pred, gt, 6, 255), 0);
    ck_assert_double_eq_tol(ic_confusion_iou(&c, 0), 2.0 / 3.0, 1e-12);
    ck_assert_double_eq_tol(ic_confusion_iou(&c, 1), 3.0 / 4.0, 1e-12);
    ck_assert_double_eq_tol(ic_confusion_miou(&c, NULL), (2.0 / 3.0 + 0.75) / 2, 1e-12);
    ck_assert_double_eq_tol(ic_confusion_pixel_acc(&c), 5.0 / 6.0, 1e-12);

    /* a predicted class absent from the labels counts (IoU 0) */
    ic_confusion_reset(&c);
    int32_t pred2[6] = {0, 0, 0, 1, 1, 2};
    ck_assert_int_eq(ic_confusion_add(&c, pred2, gt, 6, 255), 0);
    ck_assert_double_eq_tol(ic_confusion_miou(&c, &used), (1.0 + 2.0 / 3.0 + 0.0) / 3, 1e-12);
    ck_assert_int_eq(used, 3);
    ic_confusion_deinit(&c);
}
END_TEST

START_TEST(test_ignore_and_errors)
{
    ic_confusion c, d;
    ck_assert_int_eq(ic_confusion_init(&c, 2), 0);
    int32_t gt[4] = {0, 255, 1, 255};
    int32_t pred[4] = {0, 1, 1, 0};
    ck_assert_int_eq(ic_confusion_add(&c, pred, gt, 4, 255), 0);
    ck_assert_double_eq(ic_confusion_miou(&c, NULL), 1.0);
    /* bad labels: nothing added */
    int32_t bad_gt[2] = {0, 7}, bad_pred[2] = {0, -1}, ok[2] = {0, 1};
    ck_assert_int_eq(ic_confusion_add(&c, ok, bad_gt, 2, 255), IC_EINVAL);
    ck_assert_int_eq(ic_confusion_add(&c, bad_pred, ok, 2, 255), IC_EINVAL);
    ck_assert_double_eq(ic_confusion_pixel_acc(&c), 1.0);
    ck_assert_int_eq(ic_confusion_init(&d, 2), 0);
    ck_assert_int_eq(ic_confusion_add(&d, ok, ok, 2, 255), 0);
    ck_assert_int_eq(ic_confusion_merge(&d, &c), 0);
    ck_assert_uint_eq(d.m[0], 2);
    ck_assert_uint_eq(d.m[3], 2);
    ic_confusion_deinit(&d);
    ck_assert_int_eq(ic_confusion_init(&d, 3), 0);
    ck_assert_int_eq(ic_confusion_merge(&d, &c), IC_ESHAPE);
    ic_confusion_deinit(&d);
    ic_confusion_deinit(&c);
    ic_confusion_deinit(&c); /* twice is fine */
    ck_assert_int_eq(ic_confusion_init(&c, 0), IC_EINVAL);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("miou");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_perfect_and_partial);
    tcase_add_test(tc, test_ignore_and_errors);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
