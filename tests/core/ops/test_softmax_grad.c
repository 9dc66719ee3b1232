/* Gradient check for the softmax backward of core/ops/softmax (finite
 * differences through ic_softmax_forward, batch > 1, odd sizes). */
#include <check.h>
#include <stdlib.h>

#include "base/err.h"
#include "gradcheck.h"
#include "ops/softmax.h"
#include "testutil.h"

typedef struct sm_ctx {
    ic_tensor x, y;
    float *r;
} sm_ctx;

static double sm_loss(void *v)
{
    sm_ctx *c = v;
    ck_assert_int_eq(ic_softmax_forward(&c->y, &c->x), 0);
    return gc_dot(c->y.data, c->r, ic_tensor_numel(&c->y));
}

START_TEST(test_softmax_fd)
{
    uint64_t rng = 9;
    int N = 2, C = 5, H = 3, W = 5;
    size_t n = (size_t)N * C * H * W;
    float *x = malloc(n * 4), *y = malloc(n * 4), *r = malloc(n * 4), *dx = calloc(n, 4);
    tu_rand_fill(x, n, &rng, -3, 3);
    tu_rand_fill(r, n, &rng, -1, 1);
    sm_ctx c = {ic_tensor_wrap(x, N, C, H, W), ic_tensor_wrap(y, N, C, H, W), r};
    sm_loss(&c);
    ic_tensor dxt = ic_tensor_wrap(dx, N, C, H, W), dyt = ic_tensor_wrap(r, N, C, H, W);
    ck_assert_int_eq(ic_softmax_backward(&dxt, &dyt, &c.y), 0);
    ck_assert(gc_check(sm_loss, &c, x, n, dx, 1e-2f, 1, "softmax dx") < 1e-3);
    ic_tensor bad = ic_tensor_wrap(dx, N, C, H, W - 1);
    ck_assert_int_eq(ic_softmax_backward(&bad, &dyt, &c.y), IC_ESHAPE);
    free(x);
    free(y);
    free(r);
    free(dx);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("ops/softmax_grad");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_softmax_fd);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
