/* Tests for core/ops/concat: torch.cat(dim=1) fixtures (several inputs,
 * batch > 1, 1x1 maps, a single input) and shape errors leaving y untouched. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "ops/concat.h"
#include "testutil.h"

static ic_tensor view4(const ic_st_tensor *t)
{
    ck_assert_int_eq(t->ndim, 4);
    return ic_tensor_wrap((float *)t->f32, (int)t->shape[0], (int)t->shape[1], (int)t->shape[2],
                          (int)t->shape[3]);
}

START_TEST(test_golden)
{
    ic_safetensors *st = tu_fixture("ops_concat");
    char name[64];
    int ncases = 0;
    for (int i = 0;; i++, ncases++) {
        snprintf(name, sizeof name, "c%d.y", i);
        if (!ic_st_find(st, name))
            break;
        const ic_st_tensor *want = tu_fixture_tensor(st, name);
        ic_tensor xs[8];
        const ic_tensor *ptrs[8];
        int k = 0;
        for (;; k++) {
            snprintf(name, sizeof name, "c%d.x%d", i, k);
            if (!ic_st_find(st, name))
                break;
            ck_assert_int_lt(k, 8);
            xs[k] = view4(tu_fixture_tensor(st, name));
            ptrs[k] = &xs[k];
        }
        ic_tensor y = view4(want);
        y.data = malloc(want->numel * sizeof(float));
        ck_assert_int_eq(ic_concat_forward(&y, ptrs, k), 0);
        ck_assert_int_eq(memcmp(y.data, want->f32, want->numel * sizeof(float)), 0);
        free(y.data);
    }
    ck_assert_int_ge(ncases, 3);
    ic_st_close(&st);
}
END_TEST

START_TEST(test_errors)
{
    float a[12], b[12], y[24];
    for (int i = 0; i < 24; i++)
        y[i] = 7;
    ic_tensor at = ic_tensor_wrap(a, 1, 2, 2, 3), bt = ic_tensor_wrap(b, 1, 2, 3, 2);
    ic_tensor yt = ic_tensor_wrap(y, 1, 4, 2, 3);
    const ic_tensor *in[2] = {&at, &bt};
    ck_assert_int_eq(ic_concat_forward(&yt, in, 2), IC_ESHAPE);
    for (int i = 0; i < 24; i++)
        ck_assert_float_eq(y[i], 7); /* nothing written on failure */
    in[1] = &at;
    yt.c = 3;
    ck_assert_int_eq(ic_concat_forward(&yt, in, 2), IC_ESHAPE);
    ck_assert_int_eq(ic_concat_forward(&yt, in, 0), IC_EINVAL);
    in[1] = NULL;
    ck_assert_int_eq(ic_concat_forward(&yt, in, 2), IC_EINVAL);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("ops/concat");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_golden);
    tcase_add_test(tc, test_errors);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
