/* Gradient checks for core/ops/relu and the fused ReLU of core/ops/add:
 * finite differences away from the kink, accumulation into dx, shape errors. */
#include <check.h>
#include <stdlib.h>

#include "base/err.h"
#include "gradcheck.h"
#include "ops/add.h"
#include "ops/relu.h"
#include "testutil.h"

typedef struct relu_ctx {
    ic_tensor x, y, a, b;
    float *r;
    int add;
} relu_ctx;

static double relu_loss(void *p)
{
    relu_ctx *c = p;
    if (c->add)
        ck_assert_int_eq(ic_add_forward(&c->y, &c->a, &c->b, 1), 0);
    else
        ck_assert_int_eq(ic_relu_forward(&c->y, &c->x), 0);
    return gc_dot(c->y.data, c->r, ic_tensor_numel(&c->y));
}

/* Values in +-[0.05, 1]: at least 25 steps of h away from 0. */
static void fill_away_from_zero(float *x, size_t n, uint64_t *rng)
{
    for (size_t i = 0; i < n; i++) {
        float v = tu_rand_uniform(rng, 0.05f, 1.0f);
        x[i] = tu_rand_u64(rng) & 1 ? v : -v;
    }
}

START_TEST(test_relu_fd)
{
    uint64_t rng = 11;
    int N = 2, C = 3, H = 5, W = 7;
    size_t n = (size_t)N * C * H * W;
    float *x = malloc(n * 4), *y = malloc(n * 4), *r = malloc(n * 4), *dx = malloc(n * 4);
    fill_away_from_zero(x, n, &rng);
    tu_rand_fill(r, n, &rng, -1, 1);
    relu_ctx c = {.x = ic_tensor_wrap(x, N, C, H, W), .y = ic_tensor_wrap(y, N, C, H, W), .r = r};
    relu_loss(&c);
    /* accumulation: start from 1 and subtract it afterwards */
    for (size_t i = 0; i < n; i++)
        dx[i] = 1.0f;
    ic_tensor dxt = ic_tensor_wrap(dx, N, C, H, W), dyt = ic_tensor_wrap(r, N, C, H, W);
    ck_assert_int_eq(ic_relu_backward(&dxt, &dyt, &c.y), 0);
    for (size_t i = 0; i < n; i++)
        dx[i] -= 1.0f;
    ck_assert(gc_check(relu_loss, &c, x, n, dx, 1e-3f, 0, "relu dx") < 1e-3);
    ic_tensor bad = ic_tensor_wrap(dx, N, C, H, W + 1);
    ck_assert_int_eq(ic_relu_backward(&bad, &dyt, &c.y), IC_ESHAPE);
    free(x);
    free(y);
    free(r);
    free(dx);
}
END_TEST

START_TEST(test_add_fd)
{
    uint64_t rng = 12;
    int N = 3, C = 2, H = 3, W = 5;
    size_t n = (size_t)N * C * H * W;
    float *a = malloc(n * 4), *b = malloc(n * 4), *y = malloc(n * 4), *r = malloc(n * 4);
    float *da = calloc(n, 4), *db = calloc(n, 4);
    /* a + b away from 0 too: b is small next to a */
    fill_away_from_zero(a, n, &rng);
    tu_rand_fill(b, n, &rng, -0.02f, 0.02f);
    tu_rand_fill(r, n, &rng, -1, 1);
    for (int relu = 0; relu < 2; relu++) {
        relu_ctx c = {.a = ic_tensor_wrap(a, N, C, H, W), .b = ic_tensor_wrap(b, N, C, H, W),
                      .y = ic_tensor_wrap(y, N, C, H, W), .r = r, .add = 1};
        if (relu)
            relu_loss(&c);
        else
            ck_assert_int_eq(ic_add_forward(&c.y, &c.a, &c.b, 0), 0);
        for (size_t i = 0; i < n; i++)
            da[i] = db[i] = 0;
        ic_tensor dat = ic_tensor_wrap(da, N, C, H, W), dbt = ic_tensor_wrap(db, N, C, H, W);
        ic_tensor dyt = ic_tensor_wrap(r, N, C, H, W);
        ck_assert_int_eq(ic_add_backward(&dat, &dbt, &dyt, &c.y, relu), 0);
        if (relu) {
            ck_assert(gc_check(relu_loss, &c, a, n, da, 1e-3f, 0, "add+relu da") < 1e-3);
            ck_assert(gc_check(relu_loss, &c, b, n, db, 1e-3f, 0, "add+relu db") < 1e-3);
            ck_assert_int_eq(ic_add_backward(&dat, NULL, &dyt, NULL, 1), IC_EINVAL);
        } else {
            for (size_t i = 0; i < n; i++)
                ck_assert(da[i] == r[i] && db[i] == r[i]);
        }
    }
    free(a);
    free(b);
    free(y);
    free(r);
    free(da);
    free(db);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("ops/relu_grad");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_relu_fd);
    tcase_add_test(tc, test_add_fd);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
