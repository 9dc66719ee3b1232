/* Gradient checks for core/ops/concat: the split is exact (every dx element
 * is its dy element, accumulated), a skipped input keeps the others aligned,
 * and shape errors leave the gradients untouched. */
#include <check.h>
#include <stdlib.h>

#include "base/err.h"
#include "ops/concat.h"
#include "testutil.h"

START_TEST(test_split)
{
    uint64_t rng = 5;
    int N = 2, H = 3, W = 5, cs[3] = {2, 1, 3}, CT = 6;
    size_t hw = (size_t)H * W;
    float *dy = malloc((size_t)N * CT * hw * 4);
    tu_rand_fill(dy, (size_t)N * CT * hw, &rng, -1, 1);
    float *d[3];
    ic_tensor t[3];
    for (int i = 0; i < 3; i++) {
        d[i] = malloc((size_t)N * cs[i] * hw * 4);
        for (size_t j = 0; j < (size_t)N * cs[i] * hw; j++)
            d[i][j] = 0.5f;
        t[i] = ic_tensor_wrap(d[i], N, cs[i], H, W);
    }
    ic_tensor dyt = ic_tensor_wrap(dy, N, CT, H, W);
    ic_tensor *dxs[3] = {&t[0], NULL, &t[2]};
    ck_assert_int_eq(ic_concat_backward(dxs, &dyt, NULL, 3), IC_EINVAL);
    ck_assert_int_eq(ic_concat_backward(dxs, &dyt, cs, 3), 0);
    ic_tensor *all[3] = {&t[0], &t[1], &t[2]};
    ck_assert_int_eq(ic_concat_backward(all, &dyt, NULL, 3), 0);
    for (int n = 0; n < N; n++) {
        int c0 = 0;
        for (int i = 0; i < 3; i++) {
            for (int c = 0; c < cs[i]; c++)
                for (size_t j = 0; j < hw; j++) {
                    float g = ic_tensor_at(&dyt, n, c0 + c)[j];
                    float want = 0.5f + (i == 1 ? g : 2 * g);
                    ck_assert_float_eq_tol(ic_tensor_at(&t[i], n, c)[j], want, 1e-6);
                }
            c0 += cs[i];
        }
    }
    ic_tensor bad = ic_tensor_wrap(dy, N, CT - 1, H, W);
    ck_assert_int_eq(ic_concat_backward(all, &bad, NULL, 3), IC_ESHAPE);
    free(dy);
    for (int i = 0; i < 3; i++)
        free(d[i]);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("ops/concat_grad");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_split);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
