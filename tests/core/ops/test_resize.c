/* Tests for core/ops/resize: bilinear resize against PyTorch
 * F.interpolate(align_corners=False) fixtures in both size and scale-factor
 * modes (x4, x2, downsampling, non-integer factors, 1x1 inputs, unchanged
 * axes), the tabulated fast path against the per-element reference on random
 * shapes, and argument errors. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "ops/resize.h"
#include "testutil.h"

START_TEST(test_golden)
{
    ic_safetensors *st = tu_fixture("ops_resize");
    int ncases = 0;
    for (int i = 0; tu_has_case(st, i); i++, ncases++) {
        const float *p = tu_case_tensor(st, i, "p")->f32;
        int scale_mode = p[0] != 0;
        ic_tensor x = tu_view4(tu_case_tensor(st, i, "x"));
        const ic_st_tensor *want = tu_case_tensor(st, i, "y");
        ic_tensor y = tu_view4(want);
        y.data = malloc(want->numel * sizeof(float));
        if (scale_mode) {
            int oh, ow;
            ck_assert_int_eq(ic_resize_out_size(&oh, &ow, x.h, x.w, p[1], p[2]), 0);
            ck_assert_int_eq(oh, y.h);
            ck_assert_int_eq(ow, y.w);
        }
        for (int ref = 0; ref < 2; ref++) {
            memset(y.data, 0xff, want->numel * sizeof(float));
            int rc;
            if (ref)
                rc = ic_resize_bilinear_forward_ref(&y, &x, scale_mode ? p[1] : 0, scale_mode ? p[2] : 0);
            else if (scale_mode)
                rc = ic_resize_bilinear_scale_forward(&y, &x, p[1], p[2]);
            else
                rc = ic_resize_bilinear_forward(&y, &x);
            ck_assert_msg(rc == 0, "case %d: %s", i, ic_error_message());
            char label[64];
            snprintf(label, sizeof label, "resize case %d%s", i, ref ? " ref" : "");
            double rel;
            ck_assert_msg(tu_compare(y.data, want->f32, want->numel, 1e-4, label, &rel) == 0,
                          "%s: max rel %g", label, rel);
            /* same taps as PyTorch; only the rounding of the 4-term sum may
             * differ (its build contracts to FMA), i.e. a few ulps */
            ck_assert_msg(rel < 1e-5, "%s: max rel %g, expected a few ulps", label, rel);
        }
        free(y.data);
    }
    ck_assert_int_ge(ncases, 11);
    ic_st_close(&st);
}
END_TEST

START_TEST(test_random_vs_ref)
{
    uint64_t rng = 0x5E5E;
    static const double scales[] = {0.25, 0.5, 0.6, 1.2, 1.7, 2.0, 2.5, 3.3, 4.0, 8.0};
    for (int iter = 0; iter < 80; iter++) {
        int N = tu_rand_int(&rng, 1, 2), C = tu_rand_int(&rng, 1, 3);
        int H = tu_rand_int(&rng, 1, 24), W = tu_rand_int(&rng, 1, 40);
        ic_tensor x = ic_tensor_wrap(NULL, N, C, H, W);
        size_t n = ic_tensor_numel(&x);
        x.data = malloc(n * sizeof(float));
        tu_rand_fill(x.data, n, &rng, -5, 5);
        double sh = 0, sw = 0;
        int oh, ow;
        if (iter & 1) {
            sh = scales[tu_rand_int(&rng, 0, 9)];
            sw = scales[tu_rand_int(&rng, 0, 9)];
            if (ic_resize_out_size(&oh, &ow, H, W, sh, sw) != 0) {
                free(x.data);
                continue; /* scaled to nothing */
            }
        } else {
            oh = tu_rand_int(&rng, 1, 50);
            ow = tu_rand_int(&rng, 1, iter % 10 == 0 ? 2500 : 60); /* > one column chunk */
        }
        ic_tensor y = ic_tensor_wrap(NULL, N, C, oh, ow), yr = y;
        size_t ny = ic_tensor_numel(&y);
        y.data = malloc(ny * sizeof(float));
        yr.data = malloc(ny * sizeof(float));
        if (iter & 1)
            ck_assert_int_eq(ic_resize_bilinear_scale_forward(&y, &x, sh, sw), 0);
        else
            ck_assert_int_eq(ic_resize_bilinear_forward(&y, &x), 0);
        ck_assert_int_eq(ic_resize_bilinear_forward_ref(&yr, &x, sh, sw), 0);
        ck_assert_int_eq(memcmp(y.data, yr.data, ny * sizeof(float)), 0);
        free(x.data);
        free(y.data);
        free(yr.data);
    }
}
END_TEST

START_TEST(test_constant_and_identity)
{
    /* a constant map stays constant; an unchanged size is an exact copy */
    float x[6 * 7], y[13 * 5], z[6 * 7];
    for (int i = 0; i < 42; i++)
        x[i] = i < 42 ? 2.5f : 0;
    ic_tensor xt = ic_tensor_wrap(x, 1, 1, 6, 7), yt = ic_tensor_wrap(y, 1, 1, 13, 5);
    ck_assert_int_eq(ic_resize_bilinear_forward(&yt, &xt), 0);
    for (int i = 0; i < 65; i++)
        ck_assert_float_eq(y[i], 2.5f);
    for (int i = 0; i < 42; i++)
        x[i] = (float)i * 0.37f;
    ic_tensor zt = ic_tensor_wrap(z, 1, 1, 6, 7);
    ck_assert_int_eq(ic_resize_bilinear_forward(&zt, &xt), 0);
    ck_assert_int_eq(memcmp(x, z, sizeof x), 0);
}
END_TEST

START_TEST(test_errors)
{
    int oh, ow;
    ck_assert_int_eq(ic_resize_out_size(&oh, &ow, 4, 4, 0.1, 1.0), IC_EINVAL);
    ck_assert_int_eq(ic_resize_out_size(&oh, &ow, 4, 4, -2.0, 1.0), IC_EINVAL);
    ck_assert_int_eq(ic_resize_out_size(&oh, &ow, 4, 4, NAN, 1.0), IC_EINVAL);
    ck_assert_int_eq(ic_resize_out_size(&oh, &ow, 4, 4, INFINITY, 1.0), IC_EINVAL);
    float buf[64] = {0}, out[64];
    ic_tensor x = ic_tensor_wrap(buf, 1, 2, 4, 4), y = ic_tensor_wrap(out, 1, 1, 8, 8);
    ck_assert_int_eq(ic_resize_bilinear_forward(&y, &x), IC_ESHAPE);
    y = ic_tensor_wrap(out, 1, 2, 8, 4);
    ck_assert_int_eq(ic_resize_bilinear_scale_forward(&y, &x, 2.0, 2.0), IC_ESHAPE);
    ck_assert_int_eq(ic_resize_bilinear_scale_forward(&y, &x, 0.0, 2.0), IC_EINVAL);
}
END_TEST

/* A map big enough that the op splits its planes over threads
 * (ic_parallel_threads_for: at least 2 x IC_PARALLEL_MIN_STREAM floats of work) still
 * matches the reference. */
START_TEST(test_threaded_size)
{
    uint64_t rng = 0x5E5F;
    ic_tensor x = ic_tensor_wrap(NULL, 2, 5, 40, 50), y = ic_tensor_wrap(NULL, 2, 5, 320, 341);
    ic_tensor yr = y;
    x.data = malloc(ic_tensor_numel(&x) * sizeof(float));
    y.data = malloc(ic_tensor_numel(&y) * sizeof(float));
    yr.data = malloc(ic_tensor_numel(&y) * sizeof(float));
    tu_rand_fill(x.data, ic_tensor_numel(&x), &rng, -5, 5);
    ck_assert_int_eq(ic_resize_bilinear_forward(&y, &x), 0);
    ck_assert_int_eq(ic_resize_bilinear_forward_ref(&yr, &x, 0, 0), 0);
    ck_assert_int_eq(memcmp(y.data, yr.data, ic_tensor_numel(&y) * sizeof(float)), 0);
    free(x.data);
    free(y.data);
    free(yr.data);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("ops/resize");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_golden);
    tcase_add_test(tc, test_random_vs_ref);
    tcase_add_test(tc, test_threaded_size);
    tcase_add_test(tc, test_constant_and_identity);
    tcase_add_test(tc, test_errors);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
