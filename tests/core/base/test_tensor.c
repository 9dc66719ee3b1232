#include <check.h>
#include <stdlib.h>

#include "base/err.h"
#include "base/tensor.h"

START_TEST(test_alloc_and_index)
{
    ic_arena a;
    ic_arena_init(&a, 0, 0);
    ic_tensor t;
    ck_assert_int_eq(ic_tensor_alloc(&t, &a, 2, 3, 4, 5), 0);
    ck_assert_uint_eq(ic_tensor_numel(&t), 120);
    ck_assert_uint_eq(ic_tensor_plane(&t), 20);
    ck_assert_ptr_eq(ic_tensor_at(&t, 1, 2), t.data + (1 * 3 + 2) * 20);
    ic_tensor u = ic_tensor_wrap(t.data, 2, 3, 4, 5);
    ck_assert(ic_tensor_same_shape(&t, &u));
    ck_assert_int_eq(ic_tensor_alloc(&t, &a, 0, 3, 4, 5), IC_EINVAL);
    ck_assert_int_eq(ic_tensor_alloc(&t, &a, 1 << 30, 1 << 30, 1 << 30, 1 << 30), IC_ENOMEM);
    ic_arena_deinit(&a);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("tensor");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_alloc_and_index);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
