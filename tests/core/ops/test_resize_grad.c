/* Gradient checks for core/ops/resize: bilinear backward in both the size
 * and the scale-factor forms, up and down, odd sizes, one axis unchanged,
 * batch > 1. The op is linear, so the secant is exact up to rounding. */
#include <check.h>
#include <stdlib.h>

#include "base/err.h"
#include "gradcheck.h"
#include "ops/resize.h"
#include "testutil.h"

typedef struct rs_ctx {
    ic_tensor x, y;
    float *r;
    double sh, sw;
} rs_ctx;

static double rs_loss(void *v)
{
    rs_ctx *c = v;
    int rc = c->sh > 0 ? ic_resize_bilinear_scale_forward(&c->y, &c->x, c->sh, c->sw)
                       : ic_resize_bilinear_forward(&c->y, &c->x);
    ck_assert_int_eq(rc, 0);
    return gc_dot(c->y.data, c->r, ic_tensor_numel(&c->y));
}

static void run_case(int N, int C, int H, int W, int OH, int OW, double sh, double sw,
                     const char *label)
{
    uint64_t rng = 7 + (uint64_t)(OH * 131 + OW);
    if (sh > 0)
        ck_assert_int_eq(ic_resize_out_size(&OH, &OW, H, W, sh, sw), 0);
    size_t n = (size_t)N * C * H * W, m = (size_t)N * C * OH * OW;
    float *x = malloc(n * 4), *dx = calloc(n, 4), *y = malloc(m * 4), *r = malloc(m * 4);
    tu_rand_fill(x, n, &rng, -1, 1);
    tu_rand_fill(r, m, &rng, -1, 1);
    rs_ctx c = {.x = ic_tensor_wrap(x, N, C, H, W), .y = ic_tensor_wrap(y, N, C, OH, OW), .r = r,
                .sh = sh, .sw = sw};
    ic_tensor dxt = ic_tensor_wrap(dx, N, C, H, W), dyt = ic_tensor_wrap(r, N, C, OH, OW);
    int rc = sh > 0 ? ic_resize_bilinear_scale_backward(&dxt, &dyt, sh, sw)
                    : ic_resize_bilinear_backward(&dxt, &dyt);
    ck_assert_int_eq(rc, 0);
    ck_assert(gc_check(rs_loss, &c, x, n, dx, 1e-2f, 0, label) < 1e-3);
    free(x);
    free(dx);
    free(y);
    free(r);
}

START_TEST(test_size_fd)
{
    run_case(2, 3, 5, 7, 11, 13, 0, 0, "resize size up 5x7->11x13");
    run_case(1, 2, 9, 8, 4, 3, 0, 0, "resize size down 9x8->4x3");
    run_case(2, 1, 4, 6, 4, 13, 0, 0, "resize size one axis same");
}
END_TEST

START_TEST(test_scale_fd)
{
    run_case(2, 2, 5, 7, 0, 0, 2.0, 2.0, "resize scale x2");
    run_case(1, 3, 7, 5, 0, 0, 4.0, 4.0, "resize scale x4");
    run_case(2, 1, 9, 11, 0, 0, 0.6, 1.7, "resize scale 0.6x1.7");
}
END_TEST

START_TEST(test_errors)
{
    float a[4] = {0}, b[4] = {0};
    ic_tensor x = ic_tensor_wrap(a, 1, 1, 2, 2), y = ic_tensor_wrap(b, 1, 1, 4, 1);
    ck_assert_int_eq(ic_resize_bilinear_scale_backward(&x, &y, 2.0, 2.0), IC_ESHAPE);
    ck_assert_int_eq(ic_resize_bilinear_scale_backward(&x, &y, -1.0, 2.0), IC_EINVAL);
    ic_tensor z = ic_tensor_wrap(b, 2, 1, 2, 1);
    ck_assert_int_eq(ic_resize_bilinear_backward(&x, &z), IC_ESHAPE);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("ops/resize_grad");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_size_fd);
    tcase_add_test(tc, test_scale_fd);
    tcase_add_test(tc, test_errors);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
