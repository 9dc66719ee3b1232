#include <check.h>
#include <stdint.h>
#include <stdlib.h>

#include "base/alloc.h"

START_TEST(test_fail_injection)
{
    ic_alloc_fail_after(2);
    void *a = ic_malloc(16), *b = ic_malloc(16), *c = ic_malloc(16);
    ck_assert_ptr_nonnull(a);
    ck_assert_ptr_nonnull(b);
    ck_assert_ptr_null(c);
    ck_assert_ptr_null(ic_malloc_aligned(64));
    ic_alloc_fail_reset();
    void *d = ic_malloc_aligned(100);
    ck_assert_ptr_nonnull(d);
    ck_assert_uint_eq((uintptr_t)d % 64, 0);
    ic_free(a);
    ic_free(b);
    ic_free_aligned(d);
    ck_assert_uint_ge(ic_alloc_injected_failures(), 2);
}
END_TEST

START_TEST(test_checked_math)
{
    size_t r;
    ck_assert_int_eq(ic_size_mul(&r, 1000, 1000), 0);
    ck_assert_uint_eq(r, 1000000);
    ck_assert_int_eq(ic_size_mul(&r, SIZE_MAX / 2, 3), -1);
    ck_assert_int_eq(ic_size_add(&r, SIZE_MAX, 1), -1);
    ck_assert_int_eq(ic_size_add(&r, 1, 2), 0);
    ck_assert_uint_eq(r, 3);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("alloc");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_fail_injection);
    tcase_add_test(tc, test_checked_math);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
