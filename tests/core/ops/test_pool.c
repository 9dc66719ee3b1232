/* Tests for core/ops/pool: max, average and global average pooling against
 * PyTorch fixtures (stem 3/2/1, NMS-style stride 1, count_include_pad both
 * ways, the detectron2 ASPP 32x64 window at 1024x2048, 1x1 maps), the
 * separable stride-1 paths against the window-loop references on random
 * shapes, and parameter errors. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "ops/pool.h"
#include "testutil.h"

START_TEST(test_golden)
{
    ic_safetensors *st = tu_fixture("ops_pool");
    int ncases = 0;
    for (int i = 0; tu_has_case(st, i); i++, ncases++) {
        const float *p = tu_case_tensor(st, i, "p")->f32;
        int kind = (int)p[0];
        ic_pool2d prm = {(int)p[1], (int)p[2], (int)p[3], (int)p[4], (int)p[5], (int)p[6], (int)p[7]};
        ic_tensor x = tu_view4(tu_case_tensor(st, i, "x"));
        const ic_st_tensor *want = tu_case_tensor(st, i, "y");
        ic_tensor y = tu_view4(want);
        y.data = malloc(want->numel * sizeof(float));
        char label[64];
        for (int ref = 0; ref < 2; ref++) {
            int rc;
            memset(y.data, 0xff, want->numel * sizeof(float)); /* NaN: every output must be written */
            if (kind == 0)
                rc = ref ? ic_pool_max_forward_ref(&y, &x, &prm) : ic_pool_max_forward(&y, &x, &prm);
            else if (kind == 1)
                rc = ref ? ic_pool_avg_forward_ref(&y, &x, &prm) : ic_pool_avg_forward(&y, &x, &prm);
            else
                rc = ic_pool_global_avg_forward(&y, &x);
            ck_assert_msg(rc == 0, "case %d: %s", i, ic_error_message());
            snprintf(label, sizeof label, "pool case %d%s", i, ref ? " ref" : "");
            double rel;
            ck_assert_msg(tu_compare(y.data, want->f32, want->numel, 1e-4, label, &rel) == 0,
                          "%s: max rel %g", label, rel);
        }
        free(y.data);
    }
    ck_assert_int_ge(ncases, 14);
    ic_st_close(&st);
}
END_TEST

START_TEST(test_random_vs_ref)
{
    uint64_t rng = 0x9001;
    int fast_cases = 0, strided_cases = 0;
    for (int iter = 0; iter < 200; iter++) {
        ic_pool2d p = {0};
        p.kh = tu_rand_int(&rng, 1, 7);
        p.kw = tu_rand_int(&rng, 1, 9);
        /* half stride 1, half strided (max's separable path takes both) */
        p.sh = iter % 2 ? tu_rand_int(&rng, 1, 3) : 1;
        p.sw = iter % 2 ? tu_rand_int(&rng, 2, 3) : 1;
        p.ph = tu_rand_int(&rng, 0, p.kh / 2);
        p.pw = tu_rand_int(&rng, 0, p.kw / 2);
        p.exclude_pad = iter & 1;
        int N = tu_rand_int(&rng, 1, 2), C = tu_rand_int(&rng, 1, 3);
        int H = tu_rand_int(&rng, 1, 20), W = tu_rand_int(&rng, 1, 30);
        if (iter % 17 == 0)
            W = tu_rand_int(&rng, 1000, 1500); /* crosses the column chunk */
        int oh, ow;
        if (ic_pool_out_size(&oh, &ow, H, W, &p) != 0) {
            iter--; /* kernel larger than the padded input: draw again */
            continue;
        }
        fast_cases += p.sh == 1 && p.sw == 1;
        strided_cases += p.sw > 1;
        ic_tensor x = ic_tensor_wrap(NULL, N, C, H, W);
        size_t n = ic_tensor_numel(&x);
        x.data = malloc(n * sizeof(float));
        tu_rand_fill(x.data, n, &rng, -50, 50);
        ic_tensor y = ic_tensor_wrap(NULL, N, C, oh, ow), yr = y;
        size_t ny = ic_tensor_numel(&y);
        y.data = malloc(ny * sizeof(float));
        yr.data = malloc(ny * sizeof(float));
        ck_assert_int_eq(ic_pool_max_forward(&y, &x, &p), 0);
        ck_assert_int_eq(ic_pool_max_forward_ref(&yr, &x, &p), 0);
        ck_assert_int_eq(memcmp(y.data, yr.data, ny * sizeof(float)), 0); /* max is exact */
        ck_assert_int_eq(ic_pool_avg_forward(&y, &x, &p), 0);
        ck_assert_int_eq(ic_pool_avg_forward_ref(&yr, &x, &p), 0);
        ck_assert_uint_eq(tu_compare(y.data, yr.data, ny, 1e-5, "avg fast vs ref", NULL), 0);
        free(x.data);
        free(y.data);
        free(yr.data);
    }
    ck_assert_int_ge(fast_cases, 50);
    ck_assert_int_ge(strided_cases, 50);
}
END_TEST

START_TEST(test_max_nan_wins)
{
    float x[9] = {1, 2, 3, 4, NAN, 6, 7, 8, 9}, y[9], yr[9];
    ic_tensor xt = ic_tensor_wrap(x, 1, 1, 3, 3), yt = ic_tensor_wrap(y, 1, 1, 3, 3);
    ic_tensor yrt = ic_tensor_wrap(yr, 1, 1, 3, 3);
    ic_pool2d p = {3, 3, 1, 1, 1, 1, 0};
    ck_assert_int_eq(ic_pool_max_forward(&yt, &xt, &p), 0);
    ck_assert_int_eq(ic_pool_max_forward_ref(&yrt, &xt, &p), 0);
    for (int i = 0; i < 9; i++) {
        ck_assert(isnan(y[i])); /* every 3x3 window (padded) contains the centre */
        ck_assert(isnan(yr[i]));
    }
    /* -inf is a value, not a NaN: it must survive both paths */
    for (int i = 0; i < 9; i++)
        x[i] = i == 8 ? 5.0f : -INFINITY;
    ck_assert_int_eq(ic_pool_max_forward(&yt, &xt, &p), 0);
    ck_assert_int_eq(ic_pool_max_forward_ref(&yrt, &xt, &p), 0);
    ck_assert(isinf(y[0]) && y[0] < 0);
    ck_assert_float_eq(y[8], 5.0f);
    ck_assert_int_eq(memcmp(y, yr, sizeof y), 0);
    /* strided (the stem's 3x3 stride-2 pool): a NaN wins only its windows */
    float big[5 * 5], out[3 * 3];
    for (int i = 0; i < 25; i++)
        big[i] = (float)i;
    big[0] = NAN; /* only output (0, 0)'s window reads it */
    ic_tensor bt = ic_tensor_wrap(big, 1, 1, 5, 5), ot = ic_tensor_wrap(out, 1, 1, 3, 3);
    ic_pool2d s2 = {3, 3, 2, 2, 1, 1, 0};
    ck_assert_int_eq(ic_pool_max_forward(&ot, &bt, &s2), 0);
    ck_assert(isnan(out[0]));
    for (int i = 1; i < 9; i++)
        ck_assert(!isnan(out[i]));
    ck_assert_float_eq(out[8], 24.0f);
}
END_TEST

START_TEST(test_errors)
{
    int oh, ow;
    ic_pool2d bad_pad = {3, 3, 1, 1, 2, 0, 0};
    ck_assert_int_eq(ic_pool_out_size(&oh, &ow, 8, 8, &bad_pad), IC_EINVAL);
    ic_pool2d big = {5, 5, 1, 1, 0, 0, 0};
    ck_assert_int_eq(ic_pool_out_size(&oh, &ow, 4, 8, &big), IC_EINVAL);
    ic_pool2d zero = {0, 3, 1, 1, 0, 0, 0};
    ck_assert_int_eq(ic_pool_out_size(&oh, &ow, 4, 8, &zero), IC_EINVAL);
    float buf[64] = {0};
    ic_tensor x = ic_tensor_wrap(buf, 1, 1, 8, 8), y = ic_tensor_wrap(buf, 1, 1, 3, 3);
    ic_pool2d p = {3, 3, 2, 2, 1, 1, 0}; /* gives 4x4, not 3x3 */
    ck_assert_int_eq(ic_pool_max_forward(&y, &x, &p), IC_ESHAPE);
    ck_assert_int_eq(ic_pool_avg_forward(&y, &x, &p), IC_ESHAPE);
    ck_assert_int_eq(ic_pool_global_avg_forward(&y, &x), IC_ESHAPE);
}
END_TEST

/* A map big enough that the op splits its planes over threads
 * (ic_parallel_threads_for: at least 2 x IC_PARALLEL_MIN_STREAM floats of work) still
 * matches the reference. */
START_TEST(test_threaded_size)
{
    uint64_t rng = 0x9091;
    const ic_pool2d pools[2] = {{3, 3, 2, 2, 1, 1, 0}, {5, 5, 1, 1, 2, 2, 0}};
    for (int k = 0; k < 2; k++) {
        ic_tensor x = ic_tensor_wrap(NULL, 2, 6, 180, 262);
        int oh, ow;
        ck_assert_int_eq(ic_pool_out_size(&oh, &ow, x.h, x.w, &pools[k]), 0);
        ic_tensor y = ic_tensor_wrap(NULL, 2, 6, oh, ow), yr = y;
        x.data = malloc(ic_tensor_numel(&x) * sizeof(float));
        y.data = malloc(ic_tensor_numel(&y) * sizeof(float));
        yr.data = malloc(ic_tensor_numel(&y) * sizeof(float));
        tu_rand_fill(x.data, ic_tensor_numel(&x), &rng, -5, 5);
        ck_assert_int_eq(ic_pool_max_forward(&y, &x, &pools[k]), 0);
        ck_assert_int_eq(ic_pool_max_forward_ref(&yr, &x, &pools[k]), 0);
        ck_assert_int_eq(memcmp(y.data, yr.data, ic_tensor_numel(&y) * sizeof(float)), 0);
        ck_assert_int_eq(ic_pool_avg_forward(&y, &x, &pools[k]), 0);
        ck_assert_int_eq(ic_pool_avg_forward_ref(&yr, &x, &pools[k]), 0);
        ck_assert_uint_eq(tu_compare(y.data, yr.data, ic_tensor_numel(&y), 1e-5, "avg", NULL), 0);
        free(x.data);
        free(y.data);
        free(yr.data);
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("ops/pool");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_golden);
    tcase_add_test(tc, test_random_vs_ref);
    tcase_add_test(tc, test_threaded_size);
    tcase_add_test(tc, test_max_nan_wins);
    tcase_add_test(tc, test_errors);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
