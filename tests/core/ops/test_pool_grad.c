/* Gradient checks for core/ops/pool: max (stride 1 and 2, padding, odd
 * sizes, batch > 1; inputs on a grid so no window has a near-tie within the
 * step), PyTorch's tie rule (first max in window order), average with and
 * without count_include_pad, and global average. */
#include <check.h>
#include <stdlib.h>

#include "base/err.h"
#include "gradcheck.h"
#include "ops/pool.h"
#include "testutil.h"

typedef struct pool_ctx {
    ic_tensor x, y;
    float *r;
    const ic_pool2d *p;
    int kind; /* 0 max, 1 avg, 2 global */
} pool_ctx;

static double pool_loss(void *v)
{
    pool_ctx *c = v;
    int rc = c->kind == 0   ? ic_pool_max_forward(&c->y, &c->x, c->p)
             : c->kind == 1 ? ic_pool_avg_forward(&c->y, &c->x, c->p)
                            : ic_pool_global_avg_forward(&c->y, &c->x);
    ck_assert_int_eq(rc, 0);
    return gc_dot(c->y.data, c->r, ic_tensor_numel(&c->y));
}

/* Distinct values 0.01 apart in shuffled order. */
static void fill_distinct(float *x, size_t n, uint64_t *rng)
{
    for (size_t i = 0; i < n; i++)
        x[i] = 0.01f * (float)i - 0.005f * (float)n;
    for (size_t i = n - 1; i > 0; i--) {
        size_t j = tu_rand_u64(rng) % (i + 1);
        float t = x[i];
        x[i] = x[j];
        x[j] = t;
    }
}

static void run_case(int kind, int N, int C, int H, int W, ic_pool2d p, const char *label)
{
    uint64_t rng = 100 + (uint64_t)(H * 31 + W);
    int oh = 1, ow = 1;
    if (kind != 2)
        ck_assert_int_eq(ic_pool_out_size(&oh, &ow, H, W, &p), 0);
    size_t n = (size_t)N * C * H * W, m = (size_t)N * C * oh * ow;
    float *x = malloc(n * 4), *dx = calloc(n, 4), *y = malloc(m * 4), *r = malloc(m * 4);
    fill_distinct(x, n, &rng);
    tu_rand_fill(r, m, &rng, -1, 1);
    pool_ctx c = {.x = ic_tensor_wrap(x, N, C, H, W), .y = ic_tensor_wrap(y, N, C, oh, ow), .r = r,
                  .p = &p, .kind = kind};
    ic_tensor dxt = ic_tensor_wrap(dx, N, C, H, W), dyt = ic_tensor_wrap(r, N, C, oh, ow);
    int rc = kind == 0   ? ic_pool_max_backward(&dxt, &dyt, &c.x, &p)
             : kind == 1 ? ic_pool_avg_backward(&dxt, &dyt, &p)
                         : ic_pool_global_avg_backward(&dxt, &dyt);
    ck_assert_int_eq(rc, 0);
    ck_assert(gc_check(pool_loss, &c, x, n, dx, 1e-3f, 0, label) < 1e-3);
    free(x);
    free(dx);
    free(y);
    free(r);
}

START_TEST(test_max_fd)
{
    run_case(0, 2, 3, 7, 9, (ic_pool2d){3, 3, 2, 2, 1, 1, 0}, "max 3x3/2 pad1");
    run_case(0, 1, 2, 6, 5, (ic_pool2d){3, 3, 1, 1, 1, 1, 0}, "max 3x3/1 pad1");
    run_case(0, 3, 1, 5, 8, (ic_pool2d){2, 3, 2, 1, 0, 1, 0}, "max 2x3/(2,1)");
}
END_TEST

START_TEST(test_avg_fd)
{
    run_case(1, 2, 3, 7, 9, (ic_pool2d){3, 3, 2, 2, 1, 1, 0}, "avg 3x3/2 pad1 incl");
    run_case(1, 2, 3, 7, 9, (ic_pool2d){3, 3, 2, 2, 1, 1, 1}, "avg 3x3/2 pad1 excl");
    run_case(1, 1, 2, 5, 11, (ic_pool2d){3, 5, 1, 1, 0, 0, 0}, "avg 3x5/1");
    run_case(2, 2, 3, 5, 3, (ic_pool2d){0}, "global avg");
}
END_TEST

/* Ties go to the first maximum in row-major window order, as PyTorch. */
START_TEST(test_max_ties)
{
    float x[9] = {1, 5, 5, 5, 2, 5, 0, 5, 1}, dx[9] = {0}, dy[1] = {1};
    ic_tensor xt = ic_tensor_wrap(x, 1, 1, 3, 3), dxt = ic_tensor_wrap(dx, 1, 1, 3, 3);
    ic_tensor dyt = ic_tensor_wrap(dy, 1, 1, 1, 1);
    ic_pool2d p = {3, 3, 1, 1, 0, 0, 0};
    ck_assert_int_eq(ic_pool_max_backward(&dxt, &dyt, &xt, &p), 0);
    ck_assert(dx[1] == 1 && dx[2] == 0 && dx[3] == 0);
    /* all -inf: the first element of the window */
    float xi[4] = {-INFINITY, -INFINITY, -INFINITY, -INFINITY}, dxi[4] = {0};
    ic_tensor xit = ic_tensor_wrap(xi, 1, 1, 2, 2), dxit = ic_tensor_wrap(dxi, 1, 1, 2, 2);
    ic_pool2d p2 = {2, 2, 1, 1, 0, 0, 0};
    ck_assert_int_eq(ic_pool_max_backward(&dxit, &dyt, &xit, &p2), 0);
    ck_assert(dxi[0] == 1 && dxi[1] == 0);
    ic_tensor bad = ic_tensor_wrap(dx, 1, 1, 1, 2);
    ck_assert_int_eq(ic_pool_max_backward(&dxt, &bad, &xt, &p), IC_ESHAPE);
    ck_assert_int_eq(ic_pool_global_avg_backward(&dxt, &bad), IC_ESHAPE);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("ops/pool_grad");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_max_fd);
    tcase_add_test(tc, test_avg_fd);
    tcase_add_test(tc, test_max_ties);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
