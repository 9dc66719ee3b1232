/* Tests for core/ops/bn: InstCal-calibrated BatchNorm against PyTorch
 * fixtures (eval BN, m = 1, per-channel and per-image strengths, fused ReLU,
 * folding into a conv), the fast paths against the references on random
 * shapes, variance accuracy under a large mean, and argument errors. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "ops/bn.h"
#include "testutil.h"

static void expect_close(const float *got, const float *want, size_t n, const char *label, int i)
{
    char l[96];
    snprintf(l, sizeof l, "case %d %s", i, label);
    double rel;
    ck_assert_msg(tu_compare(got, want, n, 1e-4, l, &rel) == 0, "%s: max rel %g", l, rel);
}

START_TEST(test_golden_calibrated)
{
    ic_safetensors *st = tu_fixture("ops_bn");
    int ncases = 0;
    for (int i = 0; tu_has_case(st, i); i++, ncases++) {
        ic_tensor x = tu_copy4(tu_case_tensor(st, i, "x"));
        int N = x.n, C = x.c;
        ic_bn bn = {C, tu_case_tensor(st, i, "gamma")->f32, tu_case_tensor(st, i, "beta")->f32, tu_case_tensor(st, i, "mean")->f32,
                    tu_case_tensor(st, i, "var")->f32, tu_case_tensor(st, i, "p")->f32[0], 0};
        size_t nc = (size_t)N * (size_t)C, n = ic_tensor_numel(&x);
        float *mean_t = malloc(nc * sizeof(float)), *var_t = malloc(nc * sizeof(float));
        float *ones = malloc((size_t)C * sizeof(float));
        for (int c = 0; c < C; c++)
            ones[c] = 1.0f;
        ic_bn_instance_stats(mean_t, var_t, &x);
        expect_close(mean_t, tu_case_tensor(st, i, "mean_t")->f32, nc, "mean_t", i);
        expect_close(var_t, tu_case_tensor(st, i, "var_t")->f32, nc, "var_t", i);

        ic_tensor y = x;
        y.data = malloc(n * sizeof(float));
        ck_assert_int_eq(ic_bn_forward_inference(&y, &x, &bn, 0), 0);
        expect_close(y.data, tu_case_tensor(st, i, "y_m0")->f32, n, "m=0", i);
        ck_assert_int_eq(ic_bn_forward_calibrated(&y, &x, &bn, ones, ones, 0, mean_t, var_t, 0), 0);
        expect_close(y.data, tu_case_tensor(st, i, "y_m1")->f32, n, "m=1", i);
        const float *m_mu = tu_case_tensor(st, i, "m_mu")->f32, *m_var = tu_case_tensor(st, i, "m_var")->f32;
        ck_assert_int_eq(ic_bn_forward_calibrated(&y, &x, &bn, m_mu, m_var, 0, mean_t, var_t, 0), 0);
        expect_close(y.data, tu_case_tensor(st, i, "y_mc")->f32, n, "per-channel m", i);
        ck_assert_int_eq(ic_bn_forward_calibrated(&y, &x, &bn, tu_case_tensor(st, i, "mi_mu")->f32,
                                                  tu_case_tensor(st, i, "mi_var")->f32, 1, mean_t, var_t, 0),
                         0);
        expect_close(y.data, tu_case_tensor(st, i, "y_mi")->f32, n, "per-image m", i);

        /* in place, fused ReLU: the output overwrites the input */
        ck_assert_int_eq(ic_bn_forward_calibrated(&x, &x, &bn, m_mu, m_var, 0, mean_t, var_t, 1), 0);
        expect_close(x.data, tu_case_tensor(st, i, "y_mc_relu")->f32, n, "per-channel m + relu, in place", i);

        free(y.data);
        free(x.data);
        free(mean_t);
        free(var_t);
        free(ones);
    }
    ck_assert_int_ge(ncases, 5);
    ic_st_close(&st);
}
END_TEST

/* 3x3, padding 1, stride 1 direct convolution with bias: enough to check
 * folding without depending on core/ops/conv2d. */
static void tiny_conv3x3(ic_tensor *y, const ic_tensor *x, const float *w, const float *b)
{
    for (int n = 0; n < y->n; n++)
        for (int o = 0; o < y->c; o++)
            for (int r = 0; r < y->h; r++)
                for (int c = 0; c < y->w; c++) {
                    double s = b[o];
                    for (int i = 0; i < x->c; i++)
                        for (int kr = 0; kr < 3; kr++)
                            for (int kc = 0; kc < 3; kc++) {
                                int rr = r + kr - 1, cc = c + kc - 1;
                                if (rr < 0 || rr >= x->h || cc < 0 || cc >= x->w)
                                    continue;
                                s += (double)w[((o * x->c + i) * 3 + kr) * 3 + kc] *
                                     ic_tensor_at(x, n, i)[rr * x->w + cc];
                            }
                    ic_tensor_at(y, n, o)[r * y->w + c] = (float)s;
                }
}

START_TEST(test_golden_fold)
{
    ic_safetensors *st = tu_fixture("ops_bn");
    ic_tensor x = tu_copy4(tu_fixture_tensor(st, "fold.x"));
    const ic_st_tensor *w = tu_fixture_tensor(st, "fold.w"), *b = tu_fixture_tensor(st, "fold.b");
    const ic_st_tensor *want = tu_fixture_tensor(st, "fold.y");
    int cout = (int)w->shape[0];
    size_t per_out = w->numel / (size_t)cout;
    ic_bn bn = {cout, tu_fixture_tensor(st, "fold.gamma")->f32, tu_fixture_tensor(st, "fold.beta")->f32,
                tu_fixture_tensor(st, "fold.mean")->f32, tu_fixture_tensor(st, "fold.var")->f32, 1e-5f, 0};
    float *wf = malloc(w->numel * sizeof(float)), *bf = malloc((size_t)cout * sizeof(float));
    memcpy(wf, w->f32, w->numel * sizeof(float));
    memcpy(bf, b->f32, (size_t)cout * sizeof(float));
    /* in place: w_out aliases w, b_out aliases b */
    ck_assert_int_eq(ic_bn_fold(wf, bf, wf, bf, &bn, cout, per_out), 0);
    float *yd = malloc(want->numel * sizeof(float));
    ic_tensor y = ic_tensor_wrap(yd, x.n, cout, x.h, x.w);
    tiny_conv3x3(&y, &x, wf, bf);
    expect_close(y.data, want->f32, want->numel, "fold", 0);

    /* without a conv bias: b_out = beta - mean * scale */
    float *bz = malloc((size_t)cout * sizeof(float));
    ck_assert_int_eq(ic_bn_fold(wf, bz, w->f32, NULL, &bn, cout, per_out), 0);
    for (int o = 0; o < cout; o++) {
        float s = bn.gamma[o] / sqrtf(bn.var[o] + bn.eps);
        ck_assert_float_eq_tol(bz[o], bn.beta[o] - bn.mean[o] * s, 1e-5);
    }
    ck_assert_int_eq(ic_bn_fold(wf, bz, w->f32, NULL, &bn, cout + 1, per_out), IC_ESHAPE);
    free(bz);
    free(yd);
    free(wf);
    free(bf);
    free(x.data);
    ic_st_close(&st);
}
END_TEST

START_TEST(test_random_vs_ref)
{
    uint64_t rng = 0xB417;
    for (int iter = 0; iter < 60; iter++) {
        int N = tu_rand_int(&rng, 1, 3), C = tu_rand_int(&rng, 1, 9);
        int H = tu_rand_int(&rng, 1, 13), W = tu_rand_int(&rng, 1, 17);
        if (iter % 10 == 0)
            H = W = 1;
        ic_tensor x = ic_tensor_wrap(NULL, N, C, H, W);
        size_t n = ic_tensor_numel(&x), nc = (size_t)N * (size_t)C;
        x.data = malloc(n * sizeof(float));
        float shift = tu_rand_uniform(&rng, -20, 20);
        tu_rand_fill(x.data, n, &rng, shift - 3, shift + 3);
        float *prm = malloc((4 * (size_t)C + 4 * nc) * sizeof(float));
        float *gamma = prm, *beta = gamma + C, *mean = beta + C, *var = mean + C;
        float *m_mu = var + C, *m_var = m_mu + nc, *mean_t = m_var + nc, *var_t = mean_t + nc;
        tu_rand_fill(gamma, (size_t)C, &rng, 0.5f, 1.5f);
        tu_rand_fill(beta, (size_t)C, &rng, -1, 1);
        tu_rand_fill(mean, (size_t)C, &rng, -3, 3);
        tu_rand_fill(var, (size_t)C, &rng, 0.1f, 4);
        tu_rand_fill(m_mu, nc, &rng, 0, 1);
        tu_rand_fill(m_var, nc, &rng, 0, 1);
        float *ref_mt = malloc(2 * nc * sizeof(float)), *ref_vt = ref_mt + nc;
        ic_bn_instance_stats(mean_t, var_t, &x);
        ic_bn_instance_stats_ref(ref_mt, ref_vt, &x);
        ck_assert_uint_eq(tu_compare(mean_t, ref_mt, nc, 1e-5, "mean_t", NULL), 0);
        ck_assert_uint_eq(tu_compare(var_t, ref_vt, nc, 1e-5, "var_t", NULL), 0);

        /* every third case with the mixture variance (InstCal-G) */
        ic_bn bn = {C, gamma, iter % 7 == 3 ? NULL : beta, mean, var, 1e-5f, iter % 3 == 1};
        int per_image = iter & 1, relu = (iter >> 1) & 1;
        ic_tensor y = x, yr = x;
        y.data = malloc(n * sizeof(float));
        yr.data = malloc(n * sizeof(float));
        ck_assert_int_eq(ic_bn_forward_calibrated(&y, &x, &bn, m_mu, m_var, per_image, mean_t, var_t, relu), 0);
        ck_assert_int_eq(ic_bn_forward_calibrated_ref(&yr, &x, &bn, m_mu, m_var, per_image, mean_t, var_t, relu), 0);
        /* x * scale + bias (PyTorch's form) loses about |mu| / std * 2^-24 to
         * cancellation against the textbook formula, so the project's 1e-4 */
        ck_assert_uint_eq(tu_compare(y.data, yr.data, n, 1e-4, "bn fast vs ref", NULL), 0);
        /* only the mean calibrated: the variance stays the source one */
        ck_assert_int_eq(ic_bn_forward_calibrated(&y, &x, &bn, m_mu, NULL, per_image, mean_t, NULL, relu), 0);
        ck_assert_int_eq(ic_bn_forward_calibrated_ref(&yr, &x, &bn, m_mu, NULL, per_image, mean_t, NULL, relu), 0);
        ck_assert_uint_eq(tu_compare(y.data, yr.data, n, 1e-4, "bn mean-only", NULL), 0);
        free(y.data);
        free(yr.data);
        free(ref_mt);
        free(prm);
        free(x.data);
    }
}
END_TEST

/* A plane with mean 1e4 and std 0.1: a naive float or unshifted one-pass
 * variance would lose most digits here. */
START_TEST(test_stats_large_mean)
{
    uint64_t rng = 99;
    int H = 64, W = 80;
    float *d = malloc((size_t)H * W * sizeof(float));
    for (int i = 0; i < H * W; i++)
        d[i] = 1e4f + tu_rand_uniform(&rng, -0.17f, 0.17f);
    d[0] = 1e4f + 0.5f; /* the shift value itself is off-centre */
    ic_tensor x = ic_tensor_wrap(d, 1, 1, H, W);
    float m, v, mr, vr;
    ic_bn_instance_stats(&m, &v, &x);
    ic_bn_instance_stats_ref(&mr, &vr, &x);
    ck_assert_float_eq_tol(m, mr, 1e-3);
    ck_assert_msg(fabs(v - vr) <= 1e-4 * vr, "var %g vs %g", v, vr);
    free(d);
}
END_TEST

START_TEST(test_errors)
{
    float buf[2 * 3 * 4] = {0}, p[3] = {1, 1, 1};
    ic_tensor x = ic_tensor_wrap(buf, 1, 2, 3, 4);
    ic_bn bn = {3, p, p, p, p, 1e-5f, 0};
    ck_assert_int_eq(ic_bn_forward_inference(&x, &x, &bn, 0), IC_ESHAPE);
    bn.c = 2;
    ic_tensor y = ic_tensor_wrap(buf, 1, 2, 4, 3);
    ck_assert_int_eq(ic_bn_forward_inference(&y, &x, &bn, 0), IC_ESHAPE);
    ck_assert_int_eq(ic_bn_forward_calibrated(&x, &x, &bn, p, NULL, 0, NULL, NULL, 0), IC_EINVAL);
    ck_assert_int_eq(ic_bn_forward_calibrated(&x, &x, &bn, NULL, p, 0, p, NULL, 0), IC_EINVAL);
    /* the mixture variance needs the instance means too */
    ck_assert_int_eq(ic_bn_forward_calibrated(&x, &x, &bn, NULL, p, 0, NULL, p, 0), 0);
    bn.mixture = 1;
    ck_assert_int_eq(ic_bn_forward_calibrated(&x, &x, &bn, NULL, p, 0, NULL, p, 0), IC_EINVAL);
    ck_assert_int_eq(ic_bn_backward_calibrated(NULL, NULL, NULL, NULL, NULL, &x, NULL, &x, &bn, NULL,
                                               p, 0, NULL, p, 0), IC_EINVAL);
    bn.mixture = 0;
    bn.var = NULL;
    ck_assert_int_eq(ic_bn_forward_inference(&x, &x, &bn, 0), IC_EINVAL);
    ck_assert_str_ne(ic_error_message(), "");
}
END_TEST

/* The mixture variance by hand: m_var = 0.25, var_s = 1, var_t = 3,
 * mu_t - mu_s = 2: var = 0.75 + 0.75 + 0.1875 * 4 = 2.25, scale 1 / 1.5. */
START_TEST(test_mixture_by_hand)
{
    float g = 1, b = 0, mu = 1, var = 1, mt = 3, vt = 3, m = 0.25f, s, bi;
    ic_bn bn = {1, &g, &b, &mu, &var, 0.0f, 1};
    ck_assert_int_eq(ic_bn_calibrated_affine(&s, &bi, 1, &bn, NULL, &m, 0, &mt, &vt), 0);
    ck_assert_float_eq_tol(s, 1.0f / 1.5f, 1e-6);
    ck_assert_float_eq_tol(bi, -1.0f / 1.5f, 1e-6); /* the mean stays mu_s (m_mu = 0) */
    bn.mixture = 0;
    ck_assert_int_eq(ic_bn_calibrated_affine(&s, &bi, 1, &bn, NULL, &m, 0, &mt, &vt), 0);
    ck_assert_float_eq_tol(s, 1.0f / sqrtf(1.5f), 1e-6);
}
END_TEST

START_TEST(test_affine_matches_forward)
{
    /* ic_bn_calibrated_affine gives the (scale, bias) the forward applies */
    float x1[2 * 2] = {1, 2, 3, 5}; /* (N=2, C=2, 1, 1) */
    float g[2] = {2, 0.5f}, b[2] = {0.1f, -0.2f}, mu[2] = {1, -1}, var[2] = {4, 0.25f};
    float mt[4] = {0.5f, 1, 2, 3}, vt[4] = {1, 2, 3, 4}, mm[4] = {0.2f, 0.4f, 0.6f, 0.8f};
    ic_bn bn = {2, g, b, mu, var, 1e-5f, 0};
    float s[4], bi[4], y[4];
    ck_assert_int_eq(ic_bn_calibrated_affine(s, bi, 2, &bn, mm, mm, 1, mt, vt), 0);
    ic_tensor xt = ic_tensor_wrap(x1, 2, 2, 1, 1), yt = ic_tensor_wrap(y, 2, 2, 1, 1);
    ck_assert_int_eq(ic_bn_forward_calibrated(&yt, &xt, &bn, mm, mm, 1, mt, vt, 0), 0);
    for (int i = 0; i < 4; i++)
        ck_assert_float_eq_tol(y[i], x1[i] * s[i] + bi[i], 1e-6);
}
END_TEST

/* A map big enough that the op splits its planes over threads
 * (ic_parallel_threads_for: at least 2 x IC_PARALLEL_MIN_STREAM floats of work) still
 * matches the reference. */
/* The fused instance pass against the two separate passes on random
 * shapes, in place and not, with and without ReLU and strengths. */
START_TEST(test_instance_fused)
{
    uint64_t rng = 0xF05E;
    for (int iter = 0; iter < 50; iter++) {
        int N = tu_rand_int(&rng, 1, 3), C = tu_rand_int(&rng, 1, 9);
        int H = tu_rand_int(&rng, 1, 40), W = tu_rand_int(&rng, 1, 40);
        ic_tensor x = ic_tensor_wrap(NULL, N, C, H, W), y = x, yf = x;
        size_t n = ic_tensor_numel(&x), nc = (size_t)N * (size_t)C;
        x.data = malloc(n * sizeof(float));
        y.data = malloc(n * sizeof(float));
        yf.data = malloc(n * sizeof(float));
        float *prm = malloc((4 * (size_t)C + 6 * nc) * sizeof(float));
        ck_assert(x.data && y.data && yf.data && prm);
        float *gamma = prm, *beta = gamma + C, *mean = beta + C, *var = mean + C;
        float *m_mu = var + C, *m_var = m_mu + nc, *mt = m_var + nc, *vt = mt + nc;
        float *fmt = vt + nc, *fvt = fmt + nc;
        tu_rand_fill(x.data, n, &rng, -3, 5);
        tu_rand_fill(gamma, (size_t)C, &rng, 0.5f, 1.5f);
        tu_rand_fill(beta, (size_t)C, &rng, -1, 1);
        tu_rand_fill(mean, (size_t)C, &rng, -3, 3);
        tu_rand_fill(var, (size_t)C, &rng, 0.1f, 4);
        tu_rand_fill(m_mu, nc, &rng, 0, 1);
        tu_rand_fill(m_var, nc, &rng, 0, 1);
        ic_bn bn = {C, gamma, iter % 5 == 2 ? NULL : beta, mean, var, 1e-5f, iter % 4 == 1};
        const int relu = iter & 1, none = iter % 7 == 3;
        const float *mm = none ? NULL : m_mu, *mv = none ? NULL : m_var;
        ic_bn_instance_stats(mt, vt, &x);
        ck_assert_int_eq(ic_bn_forward_calibrated(&y, &x, &bn, mm, mv, 1, mt, vt, relu), 0);
        if (iter % 3 == 0) { /* in place */
            memcpy(yf.data, x.data, n * sizeof(float));
            ck_assert_int_eq(ic_bn_forward_instance(&yf, &yf, &bn, mm, mv, fmt, fvt, relu), 0);
        } else {
            ck_assert_int_eq(ic_bn_forward_instance(&yf, &x, &bn, mm, mv, fmt, fvt, relu), 0);
        }
        ck_assert_int_eq(memcmp(fmt, mt, nc * sizeof(float)), 0);
        ck_assert_int_eq(memcmp(fvt, vt, nc * sizeof(float)), 0);
        ck_assert_int_eq(memcmp(yf.data, y.data, n * sizeof(float)), 0);
        free(x.data);
        free(y.data);
        free(yf.data);
        free(prm);
    }
    float one[1];
    ic_tensor t = ic_tensor_wrap(one, 1, 1, 1, 1);
    float g = 1, b = 0, m = 0, v = 1;
    ic_bn bn = {1, &g, &b, &m, &v, 1e-5f, 0};
    ck_assert_int_eq(ic_bn_forward_instance(&t, &t, &bn, NULL, NULL, NULL, one, 0), IC_EINVAL);
}
END_TEST

START_TEST(test_threaded_size)
{
    uint64_t rng = 0xB418;
    enum { N = 2, C = 8, H = 256, W = 260, NC = N * C };
    ic_tensor x = ic_tensor_wrap(NULL, N, C, H, W), y = x, yr = x;
    const size_t n = ic_tensor_numel(&x);
    x.data = malloc(n * sizeof(float));
    y.data = malloc(n * sizeof(float));
    yr.data = malloc(n * sizeof(float));
    tu_rand_fill(x.data, n, &rng, -2, 4);
    float gamma[C], beta[C], mean[C], var[C], m_mu[NC], m_var[NC];
    float mean_t[NC], var_t[NC], ref_mt[NC], ref_vt[NC];
    tu_rand_fill(gamma, C, &rng, 0.5f, 1.5f);
    tu_rand_fill(beta, C, &rng, -1, 1);
    tu_rand_fill(mean, C, &rng, -3, 3);
    tu_rand_fill(var, C, &rng, 0.1f, 4);
    tu_rand_fill(m_mu, NC, &rng, 0, 1);
    tu_rand_fill(m_var, NC, &rng, 0, 1);
    ic_bn_instance_stats(mean_t, var_t, &x);
    ic_bn_instance_stats_ref(ref_mt, ref_vt, &x);
    ck_assert_uint_eq(tu_compare(mean_t, ref_mt, NC, 1e-5, "mean_t", NULL), 0);
    ck_assert_uint_eq(tu_compare(var_t, ref_vt, NC, 1e-5, "var_t", NULL), 0);
    ic_bn bn = {C, gamma, beta, mean, var, 1e-5f, 0};
    ck_assert_int_eq(ic_bn_forward_calibrated(&y, &x, &bn, m_mu, m_var, 1, mean_t, var_t, 1), 0);
    ck_assert_int_eq(ic_bn_forward_calibrated_ref(&yr, &x, &bn, m_mu, m_var, 1, mean_t, var_t, 1),
                     0);
    ck_assert_uint_eq(tu_compare(y.data, yr.data, n, 1e-5, "calibrated", NULL), 0);
    /* the fused pass gives the same statistics and output, bit for bit */
    float fmt[NC], fvt[NC];
    ck_assert_int_eq(ic_bn_forward_instance(&yr, &x, &bn, m_mu, m_var, fmt, fvt, 1), 0);
    ck_assert_int_eq(memcmp(fmt, mean_t, sizeof fmt), 0);
    ck_assert_int_eq(memcmp(fvt, var_t, sizeof fvt), 0);
    ck_assert_int_eq(memcmp(yr.data, y.data, n * sizeof(float)), 0);
    free(x.data);
    free(y.data);
    free(yr.data);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("ops/bn");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_golden_calibrated);
    tcase_add_test(tc, test_golden_fold);
    tcase_add_test(tc, test_random_vs_ref);
    tcase_add_test(tc, test_threaded_size);
    tcase_add_test(tc, test_instance_fused);
    tcase_add_test(tc, test_stats_large_mean);
    tcase_add_test(tc, test_errors);
    tcase_add_test(tc, test_affine_matches_forward);
    tcase_add_test(tc, test_mixture_by_hand);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
