/* Gradient checks for core/ops/bn:
 *  - training mode (batch statistics, differentiated through) against finite
 *    differences for x, gamma, beta, and the running-statistic update against
 *    PyTorch's rule (momentum 0.1, unbiased batch variance);
 *  - calibrated mode with the instance statistics held constant (stop-gradient):
 *    x, gamma, beta and the strengths per channel (InstCal-U) and per image
 *    (InstCal-C), with and without the fused ReLU;
 *  - pure instance statistics (m = 1, TENT's setting) for gamma and beta. */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "gradcheck.h"
#include "ops/bn.h"
#include "testutil.h"

/* ---- training mode ---- */

typedef struct train_ctx {
    ic_tensor x, y;
    float *gamma, *beta, *r;
} train_ctx;

static double train_loss(void *v)
{
    train_ctx *c = v;
    ck_assert_int_eq(ic_bn_forward_train(&c->y, NULL, NULL, NULL, NULL, &c->x, c->gamma, c->beta,
                                         1e-5f, 0.1f), 0);
    return gc_dot(c->y.data, c->r, ic_tensor_numel(&c->y));
}

static void train_case(int N, int C, int H, int W)
{
    uint64_t rng = 1000 + (uint64_t)(N * 7 + H);
    size_t n = (size_t)N * C * H * W;
    float *x = malloc(n * 4), *y = malloc(n * 4), *r = malloc(n * 4), *dx = calloc(n, 4);
    float gamma[8], beta[8], dg[8] = {0}, db[8] = {0}, mean[8], invstd[8], rm[8], rv[8];
    tu_rand_fill(x, n, &rng, -2, 2);
    for (size_t i = 0; i < n; i++)
        x[i] += (float)((i / ((size_t)H * W)) % (size_t)C); /* per-channel offsets */
    tu_rand_fill(r, n, &rng, -1, 1);
    tu_rand_fill(gamma, (size_t)C, &rng, 0.5f, 1.5f);
    tu_rand_fill(beta, (size_t)C, &rng, -0.5f, 0.5f);
    tu_rand_fill(rm, (size_t)C, &rng, -1, 1);
    tu_rand_fill(rv, (size_t)C, &rng, 0.5f, 2);
    float rm0[8], rv0[8];
    memcpy(rm0, rm, sizeof(rm));
    memcpy(rv0, rv, sizeof(rv));
    train_ctx c = {.x = ic_tensor_wrap(x, N, C, H, W), .y = ic_tensor_wrap(y, N, C, H, W),
                   .gamma = gamma, .beta = beta, .r = r};
    ck_assert_int_eq(ic_bn_forward_train(&c.y, mean, invstd, rm, rv, &c.x, gamma, beta, 1e-5f, 0.1f), 0);
    /* running statistics: r = 0.9 r + 0.1 batch, unbiased variance */
    size_t hw = (size_t)H * W, m = (size_t)N * hw;
    for (int ch = 0; ch < C; ch++) {
        double s = 0, q = 0;
        for (int b = 0; b < N; b++)
            for (size_t i = 0; i < hw; i++)
                s += ic_tensor_at(&c.x, b, ch)[i];
        double mu = s / (double)m;
        for (int b = 0; b < N; b++)
            for (size_t i = 0; i < hw; i++) {
                double d = ic_tensor_at(&c.x, b, ch)[i] - mu;
                q += d * d;
            }
        ck_assert_double_eq_tol(rm[ch], 0.9 * rm0[ch] + 0.1 * mu, 1e-6);
        ck_assert_double_eq_tol(rv[ch], 0.9 * rv0[ch] + 0.1 * q / (double)(m - 1), 1e-6);
        ck_assert_double_eq_tol(invstd[ch], 1 / sqrt(q / (double)m + 1e-5), 1e-6);
    }
    ic_tensor dxt = ic_tensor_wrap(dx, N, C, H, W), dyt = ic_tensor_wrap(r, N, C, H, W);
    ck_assert_int_eq(ic_bn_backward_train(&dxt, dg, db, &dyt, mean, invstd, &c.x, gamma), 0);
    ck_assert(gc_check(train_loss, &c, x, n, dx, 1e-2f, 1, "bn train dx") < 1e-3);
    ck_assert(gc_check(train_loss, &c, gamma, (size_t)C, dg, 1e-2f, 1, "bn train dgamma") < 1e-3);
    ck_assert(gc_check(train_loss, &c, beta, (size_t)C, db, 1e-2f, 1, "bn train dbeta") < 1e-3);
    free(x);
    free(y);
    free(r);
    free(dx);
}

START_TEST(test_train_fd)
{
    train_case(2, 3, 5, 7);
    train_case(3, 2, 1, 3);
    train_case(1, 4, 3, 3);
}
END_TEST

START_TEST(test_train_errors)
{
    float x[2] = {1, 2}, y[2];
    ic_tensor xt = ic_tensor_wrap(x, 1, 2, 1, 1), yt = ic_tensor_wrap(y, 1, 2, 1, 1);
    ck_assert_int_eq(ic_bn_forward_train(&yt, NULL, NULL, NULL, NULL, &xt, NULL, NULL, 1e-5f, 0.1f),
                     IC_EINVAL);
    ck_assert_int_eq(ic_bn_backward_train(&yt, NULL, NULL, &xt, NULL, NULL, &xt, NULL), IC_EINVAL);
}
END_TEST

/* ---- calibrated mode ---- */

typedef struct cal_ctx {
    ic_tensor x, y;
    ic_bn bn;
    float *gamma, *beta, *m_mu, *m_var, *mean_t, *var_t, *r;
    int per_image, relu, instance;
} cal_ctx;

static double cal_loss(void *v)
{
    cal_ctx *c = v;
    ck_assert_int_eq(ic_bn_forward_calibrated(&c->y, &c->x, &c->bn, c->m_mu, c->m_var, c->per_image,
                                              c->mean_t, c->var_t, c->relu), 0);
    return gc_dot(c->y.data, c->r, ic_tensor_numel(&c->y));
}

/* per_image: strengths (N, C); instance: m = 1 through ic_bn_backward_instance. */
static void cal_case(int N, int C, int H, int W, int per_image, int relu, int instance, int mix)
{
    uint64_t rng = 2000 + (uint64_t)(per_image * 2 + relu + instance * 4 + mix * 8);
    size_t n = (size_t)N * C * H * W, nm = per_image ? (size_t)N * C : (size_t)C;
    float *x = malloc(n * 4), *y = malloc(n * 4), *r = malloc(n * 4), *dx = calloc(n, 4);
    float g[8], b[8], mu_s[8], var_s[8], dg[8] = {0}, dbt[8] = {0};
    float m_mu[32], m_var[32], dmm[32] = {0}, dmv[32] = {0}, mean_t[32], var_t[32];
    tu_rand_fill(x, n, &rng, -2, 2);
    tu_rand_fill(r, n, &rng, -1, 1);
    tu_rand_fill(g, (size_t)C, &rng, 0.5f, 1.5f);
    tu_rand_fill(b, (size_t)C, &rng, -0.5f, 0.5f);
    tu_rand_fill(mu_s, (size_t)C, &rng, -1, 1);
    tu_rand_fill(var_s, (size_t)C, &rng, 0.3f, 3);
    tu_rand_fill(m_mu, nm, &rng, 0.05f, 0.95f);
    tu_rand_fill(m_var, nm, &rng, 0.05f, 0.95f);
    if (instance)
        for (size_t i = 0; i < nm; i++)
            m_mu[i] = m_var[i] = 1.0f;
    cal_ctx c = {.x = ic_tensor_wrap(x, N, C, H, W), .y = ic_tensor_wrap(y, N, C, H, W),
                 .bn = {C, g, b, mu_s, var_s, 1e-5f, mix}, .gamma = g, .beta = b, .m_mu = m_mu,
                 .m_var = m_var, .mean_t = mean_t, .var_t = var_t, .r = r,
                 .per_image = per_image, .relu = relu};
    /* keep every pre-activation at least 0.1 from the ReLU's kink: move x
     * (then the statistics) until none is close */
    for (int it = 0; it < 20; it++) {
        ic_bn_instance_stats(mean_t, var_t, &c.x);
        c.relu = 0;
        cal_loss(&c);
        c.relu = relu;
        int moved = 0;
        for (size_t i = 0; relu && i < n; i++)
            if (fabsf(y[i]) < 0.1f) {
                x[i] += y[i] >= 0 ? 0.2f : -0.2f;
                moved = 1;
            }
        if (!moved)
            break;
    }
    cal_loss(&c);
    ic_tensor dxt = ic_tensor_wrap(dx, N, C, H, W), dyt = ic_tensor_wrap(r, N, C, H, W);
    if (instance)
        ck_assert_int_eq(ic_bn_backward_instance(&dxt, dg, dbt, &dyt, &c.y, &c.x, &c.bn, mean_t,
                                                 var_t, relu), 0);
    else
        ck_assert_int_eq(ic_bn_backward_calibrated(&dxt, dg, dbt, dmm, dmv, &dyt, &c.y, &c.x, &c.bn,
                                                   m_mu, m_var, per_image, mean_t, var_t, relu), 0);
    char lab[64];
    const char *mode = instance ? (mix ? "inst/mix" : "inst")
                       : per_image ? (mix ? "cal/img/mix" : "cal/img")
                                   : (mix ? "cal/ch/mix" : "cal/ch");
    snprintf(lab, sizeof(lab), "bn %s%s dx", mode, relu ? "+relu" : "");
    ck_assert(gc_check(cal_loss, &c, x, n, dx, 1e-2f, 0, lab) < 1e-3);
    snprintf(lab, sizeof(lab), "bn %s%s dgamma", mode, relu ? "+relu" : "");
    ck_assert(gc_check(cal_loss, &c, g, (size_t)C, dg, 1e-2f, 1, lab) < 1e-3);
    snprintf(lab, sizeof(lab), "bn %s%s dbeta", mode, relu ? "+relu" : "");
    ck_assert(gc_check(cal_loss, &c, b, (size_t)C, dbt, 1e-2f, 1, lab) < 1e-3);
    if (!instance) {
        snprintf(lab, sizeof(lab), "bn %s%s dm_mu", mode, relu ? "+relu" : "");
        ck_assert(gc_check(cal_loss, &c, m_mu, nm, dmm, 1e-2f, 1, lab) < 1e-3);
        snprintf(lab, sizeof(lab), "bn %s%s dm_var", mode, relu ? "+relu" : "");
        ck_assert(gc_check(cal_loss, &c, m_var, nm, dmv, 1e-2f, 1, lab) < 1e-3);
    }
    free(x);
    free(y);
    free(r);
    free(dx);
}

START_TEST(test_calibrated_fd)
{
    for (int mix = 0; mix < 2; mix++) {
        cal_case(2, 3, 5, 7, 0, 0, 0, mix);
        cal_case(2, 3, 5, 7, 0, 1, 0, mix);
        cal_case(3, 4, 3, 5, 1, 0, 0, mix);
        cal_case(3, 4, 3, 5, 1, 1, 0, mix);
        cal_case(2, 3, 4, 3, 0, 0, 1, mix);
        cal_case(2, 3, 4, 3, 0, 1, 1, mix);
    }
}
END_TEST

/* m = NULL (m = 0) still yields the strength gradient at m = 0. */
START_TEST(test_calibrated_m0_and_errors)
{
    uint64_t rng = 3;
    int N = 2, C = 2, H = 3, W = 3;
    size_t n = (size_t)N * C * H * W;
    float x[36], dy[36], dx[36] = {0}, g[2] = {1.2f, 0.7f}, b[2] = {0.1f, -0.2f};
    float mu_s[2] = {0.3f, -0.4f}, var_s[2] = {1.5f, 0.8f}, mt[4], vt[4];
    float dmm[2] = {0}, dmv[2] = {0}, zero[2] = {0, 0}, dmm0[2] = {0}, dmv0[2] = {0};
    tu_rand_fill(x, n, &rng, -2, 2);
    tu_rand_fill(dy, n, &rng, -1, 1);
    ic_tensor xt = ic_tensor_wrap(x, N, C, H, W), dyt = ic_tensor_wrap(dy, N, C, H, W);
    ic_tensor dxt = ic_tensor_wrap(dx, N, C, H, W);
    ic_bn bn = {C, g, b, mu_s, var_s, 1e-5f, 0};
    ic_bn_instance_stats(mt, vt, &xt);
    ck_assert_int_eq(ic_bn_backward_calibrated(NULL, NULL, NULL, dmm, dmv, &dyt, NULL, &xt, &bn, NULL,
                                               NULL, 0, mt, vt, 0), 0);
    ck_assert_int_eq(ic_bn_backward_calibrated(NULL, NULL, NULL, dmm0, dmv0, &dyt, NULL, &xt, &bn,
                                               zero, zero, 0, mt, vt, 0), 0);
    for (int i = 0; i < 2; i++) {
        ck_assert_float_eq(dmm[i], dmm0[i]);
        ck_assert_float_eq(dmv[i], dmv0[i]);
    }
    ck_assert_int_eq(ic_bn_backward_calibrated(&dxt, NULL, NULL, dmm, NULL, &dyt, NULL, &xt, &bn,
                                               NULL, NULL, 0, NULL, NULL, 0), IC_EINVAL);
    ck_assert_int_eq(ic_bn_backward_calibrated(&dxt, NULL, NULL, NULL, NULL, &dyt, NULL, &xt, &bn,
                                               NULL, NULL, 0, NULL, NULL, 1), IC_EINVAL);
    ck_assert_int_eq(ic_bn_backward_instance(&dxt, NULL, NULL, &dyt, NULL, &xt, &bn, NULL, NULL, 0),
                     IC_EINVAL);
    ic_tensor bad = ic_tensor_wrap(dx, N, C, H, W - 1);
    ck_assert_int_eq(ic_bn_backward_calibrated(&bad, NULL, NULL, NULL, NULL, &dyt, NULL, &xt, &bn,
                                               NULL, NULL, 0, NULL, NULL, 0), IC_ESHAPE);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("ops/bn_grad");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_train_fd);
    tcase_add_test(tc, test_train_errors);
    tcase_add_test(tc, test_calibrated_fd);
    tcase_add_test(tc, test_calibrated_m0_and_errors);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
