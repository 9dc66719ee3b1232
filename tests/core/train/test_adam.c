/* Tests for core/train/adam: two steps against the update rule of
 * torch.optim.Adam written out in double, kind filtering, weight decay and
 * global-norm clipping, reset. */
#include <check.h>
#include <math.h>
#include <string.h>

#include "train/adam.h"

static ic_param mk(const char *name, float *d, float *g, size_t n, ic_param_kind k)
{
    ic_param p;
    memset(&p, 0, sizeof p);
    strcpy(p.name, name);
    p.data = d;
    p.grad = g;
    p.n = n;
    p.ndim = 1;
    p.shape[0] = (int64_t)n;
    p.kind = k;
    return p;
}

/* torch.optim.Adam for one scalar, in double. */
static void ref_step(double *p, double *m, double *v, double g, double lr, int t, double wd)
{
    g += wd * *p;
    *m = 0.9 * *m + 0.1 * g;
    *v = 0.999 * *v + 0.001 * g * g;
    double bc1 = 1 - pow(0.9, t), bc2 = 1 - pow(0.999, t);
    *p -= lr / bc1 * *m / (sqrt(*v) / sqrt(bc2) + 1e-8);
}

START_TEST(test_two_steps_and_filter)
{
    float w[3] = {1.0f, -2.0f, 0.5f}, gw[3], b[2] = {3.0f, 4.0f}, gb[2], s[2] = {7, 8};
    ic_param ps[3] = {mk("w", w, gw, 3, IC_PARAM_WEIGHT), mk("bn", b, gb, 2, IC_PARAM_BN_AFFINE),
                      mk("stat", s, NULL, 2, IC_PARAM_BN_STAT)};
    ic_adam a;
    ck_assert_int_eq(ic_adam_init(&a, ps, 3, IC_PARAM_WEIGHT | IC_PARAM_BN_STAT, NULL), 0);
    ck_assert_int_eq(a.n, 1);
    ck_assert_uint_eq(a.total, 3);
    double rp[3] = {1.0, -2.0, 0.5}, rm[3] = {0}, rv[3] = {0};
    const float g1[3] = {0.5f, -0.25f, 0.0f}, g2[3] = {-0.25f, 1e-3f, 2.0f};
    for (int t = 1; t <= 2; t++) {
        const float *g = t == 1 ? g1 : g2;
        memcpy(gw, g, sizeof gw);
        gb[0] = gb[1] = 1.0f;
        ic_adam_step(&a, 0.1f, NULL);
        for (int i = 0; i < 3; i++) {
            ref_step(&rp[i], &rm[i], &rv[i], g[i], 0.1, t, 0);
            ck_assert_msg(fabs(w[i] - rp[i]) <= 1e-6 * (1 + fabs(rp[i])), "step %d w[%d] %.9g vs %.9g",
                          t, i, w[i], rp[i]);
        }
    }
    /* step 1 by hand: m = 0.05, v = 0.00025, p = 1 - 0.1/0.1 * 0.05 / (0.5 + 1e-8) */
    ck_assert_int_eq(a.step, 2);
    ck_assert(b[0] == 3.0f && b[1] == 4.0f && s[0] == 7 && s[1] == 8);
    ic_adam_reset(&a);
    ck_assert_int_eq(a.step, 0);
    ck_assert(a.m[0] == 0 && a.v[2] == 0);
    ic_adam_deinit(&a);
}
END_TEST

START_TEST(test_first_step_by_hand)
{
    float p = 1.0f, g = 0.5f;
    ic_param ps[1] = {mk("p", &p, &g, 1, IC_PARAM_CALIB_U)};
    ic_adam a;
    ck_assert_int_eq(ic_adam_init(&a, ps, 1, IC_PARAM_CALIB_U, NULL), 0);
    ic_adam_step(&a, 0.1f, NULL);
    ck_assert_float_eq_tol(p, 0.9f, 1e-6f);
    ic_adam_deinit(&a);
}
END_TEST

START_TEST(test_weight_decay_and_clip)
{
    float w[2] = {1.0f, 2.0f}, g[2] = {3.0f, 4.0f};
    ic_param ps[1] = {mk("w", w, g, 2, IC_PARAM_WEIGHT)};
    ic_adam_opts o = ic_adam_opts_default();
    o.weight_decay = 0.1f;
    o.clip_norm = 1.0f;
    ic_adam a;
    ck_assert_int_eq(ic_adam_init(&a, ps, 1, IC_PARAM_WEIGHT, &o), 0);
    double norm = 0;
    ic_adam_step(&a, 0.01f, &norm);
    ck_assert_double_eq_tol(norm, 5.0, 1e-9);
    /* clipped gradient 3/5, 4/5 (torch: max_norm / (norm + 1e-6)), then wd */
    double c = 1.0 / (5.0 + 1e-6);
    double rp0 = 1, rm0 = 0, rv0 = 0, rp1 = 2, rm1 = 0, rv1 = 0;
    ref_step(&rp0, &rm0, &rv0, 3 * c, 0.01, 1, 0.1);
    ref_step(&rp1, &rm1, &rv1, 4 * c, 0.01, 1, 0.1);
    ck_assert_double_eq_tol(w[0], rp0, 1e-6);
    ck_assert_double_eq_tol(w[1], rp1, 1e-6);
    ic_adam_deinit(&a);
    ck_assert_int_ne(ic_adam_init(&a, ps, 1, IC_PARAM_CALIB_C, NULL), 0);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("train/adam");
    TCase *tc = tcase_create("adam");
    tcase_add_test(tc, test_two_steps_and_filter);
    tcase_add_test(tc, test_first_step_by_hand);
    tcase_add_test(tc, test_weight_decay_and_clip);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *r = srunner_create(suite());
    srunner_run_all(r, CK_NORMAL);
    int failed = srunner_ntests_failed(r);
    srunner_free(r);
    return failed != 0;
}
