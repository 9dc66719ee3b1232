/* Tests for core/ops/relu: PyTorch fixture, in place and out of place, NaN
 * passes through, shape errors. */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "ops/relu.h"
#include "testutil.h"

START_TEST(test_golden)
{
    ic_safetensors *st = tu_fixture("ops_relu");
    const ic_st_tensor *x = tu_fixture_tensor(st, "c0.x"), *want = tu_fixture_tensor(st, "c0.y");
    ck_assert_int_eq(x->ndim, 4);
    float *a = malloc(x->numel * sizeof(float)), *b = malloc(x->numel * sizeof(float));
    memcpy(a, x->f32, x->numel * sizeof(float));
    ic_tensor xt = ic_tensor_wrap(a, (int)x->shape[0], (int)x->shape[1], (int)x->shape[2], (int)x->shape[3]);
    ic_tensor yt = xt;
    yt.data = b;
    ck_assert_int_eq(ic_relu_forward(&yt, &xt), 0);
    ck_assert_int_eq(memcmp(b, want->f32, x->numel * sizeof(float)), 0);
    ck_assert_int_eq(ic_relu_forward(&xt, &xt), 0); /* in place */
    ck_assert_int_eq(memcmp(a, want->f32, x->numel * sizeof(float)), 0);
    free(a);
    free(b);
    ic_st_close(&st);
}
END_TEST

START_TEST(test_nan_and_errors)
{
    float x[4] = {NAN, -1, 2, -0.0f}, y[4];
    ic_relu_array(y, x, 4);
    ck_assert(isnan(y[0]));
    ck_assert_float_eq(y[1], 0);
    ck_assert_float_eq(y[2], 2);
    ck_assert_float_eq(y[3], 0);
    ic_tensor xt = ic_tensor_wrap(x, 1, 1, 2, 2), yt = ic_tensor_wrap(y, 1, 1, 4, 1);
    ck_assert_int_eq(ic_relu_forward(&yt, &xt), IC_ESHAPE);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("ops/relu");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_golden);
    tcase_add_test(tc, test_nan_and_errors);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
