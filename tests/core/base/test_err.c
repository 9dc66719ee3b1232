#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"

START_TEST(test_names)
{
    ck_assert_str_eq(ic_err_name(IC_OK), "OK");
    ck_assert_str_eq(ic_err_name(IC_EFORMAT), "EFORMAT");
    ck_assert_str_eq(ic_err_name(12345), "EUNKNOWN");
    ck_assert_str_eq(ic_strerror(IC_ENOMEM), "out of memory");
}
END_TEST

START_TEST(test_message)
{
    ic_error_clear();
    ck_assert_str_eq(ic_error_message(), "");
    int rc = ic_error_set(IC_ELIMIT, "image %dx%d exceeds %d pixels", 10, 20, 100);
    ck_assert_int_eq(rc, IC_ELIMIT);
    ck_assert_int_eq(ic_error_code(), IC_ELIMIT);
    ck_assert_str_eq(ic_error_message(), "image 10x20 exceeds 100 pixels");
    char big[2000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = 0;
    ic_error_set(IC_EINVAL, "%s", big); /* truncated, not overflowed */
    ck_assert_uint_lt(strlen(ic_error_message()), 600);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("err");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_names);
    tcase_add_test(tc, test_message);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
