/* Tests for core/ops/add: PyTorch fixtures with and without the fused ReLU,
 * the output aliasing either input, shape errors. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "ops/add.h"
#include "testutil.h"

START_TEST(test_golden)
{
    ic_safetensors *st = tu_fixture("ops_add");
    for (int i = 0; i < 2; i++) {
        ic_tensor a = tu_copy4(tu_case_tensor(st, i, "a"));
        ic_tensor b = tu_copy4(tu_case_tensor(st, i, "b"));
        ic_tensor want = tu_copy4(tu_case_tensor(st, i, "y"));
        ic_tensor want_relu = tu_copy4(tu_case_tensor(st, i, "y_relu"));
        size_t n = ic_tensor_numel(&a);
        ic_tensor y = a;
        y.data = malloc(n * sizeof(float));
        ck_assert_int_eq(ic_add_forward(&y, &a, &b, 0), 0);
        ck_assert_uint_eq(tu_compare(y.data, want.data, n, 1e-6, "add", NULL), 0);
        ck_assert_int_eq(ic_add_forward(&y, &a, &b, 1), 0);
        ck_assert_uint_eq(tu_compare(y.data, want_relu.data, n, 1e-6, "add+relu", NULL), 0);
        ck_assert_int_eq(ic_add_forward(&b, &a, &b, 0), 0); /* y aliases b */
        ck_assert_uint_eq(tu_compare(b.data, want.data, n, 1e-6, "add into b", NULL), 0);
        for (size_t k = 0; k < n; k++) /* expected relu(a + a) */
            y.data[k] = a.data[k] > 0 ? 2 * a.data[k] : 0;
        ck_assert_int_eq(ic_add_forward(&a, &a, &a, 1), 0); /* y aliases both */
        ck_assert_int_eq(memcmp(a.data, y.data, n * sizeof(float)), 0);
        free(a.data);
        free(b.data);
        free(y.data);
        free(want.data);
        free(want_relu.data);
    }
    ic_st_close(&st);
}
END_TEST

START_TEST(test_errors)
{
    float a[6] = {0}, b[6] = {0};
    ic_tensor at = ic_tensor_wrap(a, 1, 1, 2, 3), bt = ic_tensor_wrap(b, 1, 1, 3, 2);
    ck_assert_int_eq(ic_add_forward(&at, &at, &bt, 0), IC_ESHAPE);
    ck_assert_int_eq(ic_add_forward(&bt, &at, &at, 0), IC_ESHAPE);
}
END_TEST

/* A map big enough that the op splits its elements over threads
 * (ic_parallel_threads_for: at least 2 x IC_PARALLEL_MIN_STREAM floats of work) still
 * matches the reference. */
START_TEST(test_threaded_size)
{
    uint64_t rng = 0xADD1;
    ic_tensor a = ic_tensor_wrap(NULL, 1, 4, 512, 520), b = a, y = a;
    const size_t n = ic_tensor_numel(&a);
    a.data = malloc(n * sizeof(float));
    b.data = malloc(n * sizeof(float));
    y.data = malloc(n * sizeof(float));
    tu_rand_fill(a.data, n, &rng, -1, 1);
    tu_rand_fill(b.data, n, &rng, -1, 1);
    for (int relu = 0; relu < 2; relu++) {
        ck_assert_int_eq(ic_add_forward(&y, &a, &b, relu), 0);
        size_t bad = 0, first = 0;
        for (size_t i = 0; i < n; i++) {
            float want = a.data[i] + b.data[i];
            if (relu && want < 0.0f)
                want = 0.0f;
            if (y.data[i] != want && !bad++)
                first = i;
        }
        ck_assert_msg(bad == 0, "relu %d: %zu wrong values, first at %zu", relu, bad, first);
    }
    free(a.data);
    free(b.data);
    free(y.data);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("ops/add");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_golden);
    tcase_add_test(tc, test_threaded_size);
    tcase_add_test(tc, test_errors);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
