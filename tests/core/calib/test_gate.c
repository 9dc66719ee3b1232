/* Tests for core/calib/gate (InstCal-G): the strengths, the mixture-variance
 * BN they drive and every gradient against PyTorch float64 autograd
 * (tests/golden/gen_calib_g.py), the gradients of the strengths and gate
 * also by central finite differences, the gate's limits, and the mode's
 * place in ic_calib_strengths. */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../ops/gradcheck.h"
#include "base/err.h"
#include "calib/calib.h"
#include "ops/bn.h"
#include "testutil.h"

#define FX(name) tu_fixture_tensor(st, name)

typedef struct gctx {
    int n, c, h, w;
    ic_tensor x, y;
    ic_bn bn;
    float *mean_t, *var_t, *m_mu, *m_var, *u_mu, *u_var, *gate;
    const float *r;
} gctx;

/* L = sum(relu(BN_mixture(x; G strengths)) * r), statistics held fixed. */
static double g_loss(void *v)
{
    gctx *g = v;
    ic_calib_g_layer gl = {{g->u_mu, g->u_var}, g->gate};
    ic_calib_g_strengths(g->m_mu, g->m_var, NULL, &gl, 1e-5f, g->n, g->c, g->mean_t, g->var_t,
                         g->bn.mean, g->bn.var);
    ck_assert_int_eq(ic_bn_forward_calibrated(&g->y, &g->x, &g->bn, g->m_mu, g->m_var, 1,
                                              g->mean_t, g->var_t, 1), 0);
    return gc_dot(g->y.data, g->r, ic_tensor_numel(&g->y));
}

static float *dup(const ic_st_tensor *t)
{
    float *p = malloc(t->numel * sizeof(float));
    memcpy(p, t->f32, t->numel * sizeof(float));
    return p;
}

START_TEST(test_golden_and_fd)
{
    ic_safetensors *st = tu_fixture("calib_g");
    const ic_st_tensor *xt = FX("x");
    gctx g = {.n = (int)xt->shape[0], .c = (int)xt->shape[1], .h = (int)xt->shape[2],
              .w = (int)xt->shape[3]};
    int n = g.n, c = g.c;
    size_t nc = (size_t)n * c, numel = xt->numel;
    float *x = dup(xt), *y = malloc(numel * 4), *dx = calloc(numel, 4);
    g.x = ic_tensor_wrap(x, n, c, g.h, g.w);
    g.y = ic_tensor_wrap(y, n, c, g.h, g.w);
    g.bn = (ic_bn){c, FX("gamma")->f32, FX("beta")->f32, FX("mean_s")->f32, FX("var_s")->f32,
                   1e-5f, 1};
    g.mean_t = malloc(nc * 4);
    g.var_t = malloc(nc * 4);
    g.m_mu = malloc(nc * 4);
    g.m_var = malloc(nc * 4);
    g.u_mu = dup(FX("u_mu"));
    g.u_var = dup(FX("u_var"));
    g.gate = dup(FX("gate"));
    g.r = FX("r")->f32;

    ic_bn_instance_stats(g.mean_t, g.var_t, &g.x);
    ck_assert_uint_eq(tu_compare(g.mean_t, FX("mean_t")->f32, nc, 1e-5, "mean_t", NULL), 0);
    ck_assert_uint_eq(tu_compare(g.var_t, FX("var_t")->f32, nc, 1e-5, "var_t", NULL), 0);
    float drift[8], gates[8];
    for (int i = 0; i < n; i++)
        drift[i] = (float)ic_calib_g_drift(c, g.mean_t + (size_t)i * c, g.var_t + (size_t)i * c,
                                           g.bn.mean, g.bn.var);
    ck_assert_uint_eq(tu_compare(drift, FX("drift")->f32, (size_t)n, 1e-4, "drift", NULL), 0);

    /* through the mode dispatcher, as the network calls it */
    ic_calib_layer layer = {.c = c, .g = {{g.u_mu, g.u_var}, g.gate}};
    ic_calib_c_shape cs = {.clamp_eps = 1e-5f};
    ic_calib_opts co = {.mode = IC_CALIB_INSTCAL_G};
    ck_assert(ic_calib_uses_stats(&co) && ic_calib_uses_mixture(&co));
    ck_assert_int_eq(ic_calib_strengths(g.m_mu, g.m_var, &co, &layer, &cs, n, g.mean_t, g.var_t,
                                        g.bn.mean, g.bn.var, NULL), 0);
    ck_assert_uint_eq(tu_compare(g.m_mu, FX("m_mu")->f32, nc, 1e-4, "m_mu", NULL), 0);
    ck_assert_uint_eq(tu_compare(g.m_var, FX("m_var")->f32, nc, 1e-4, "m_var", NULL), 0);
    ic_calib_g_strengths(g.m_mu, g.m_var, gates, &layer.g, 1e-5f, n, c, g.mean_t, g.var_t,
                         g.bn.mean, g.bn.var);
    ck_assert_uint_eq(tu_compare(gates, FX("g")->f32, (size_t)n, 1e-4, "gate", NULL), 0);
    /* the fixture covers what it claims: a nearly closed and an open gate */
    ck_assert(gates[0] < 0.02f && gates[n - 1] > 0.5f);

    g_loss(&g);
    ck_assert_uint_eq(tu_compare(y, FX("y")->f32, numel, 1e-4, "y", NULL), 0);

    /* backward: BN (mixture) -> dm, then the gate rule */
    float dgam[16] = {0}, dbet[16] = {0}, *dmm = calloc(nc, 4), *dmv = calloc(nc, 4);
    float du_mu[16] = {0}, du_var[16] = {0}, dgate[2] = {0};
    ic_tensor dxt = ic_tensor_wrap(dx, n, c, g.h, g.w), dyt = ic_tensor_wrap((float *)g.r, n, c,
                                                                              g.h, g.w);
    ck_assert_int_eq(ic_bn_backward_calibrated(&dxt, dgam, dbet, dmm, dmv, &dyt, &g.y, &g.x, &g.bn,
                                               g.m_mu, g.m_var, 1, g.mean_t, g.var_t, 1), 0);
    ic_calib_g_grads gr = {{du_mu, du_var}, dgate};
    for (int i = 0; i < n; i++)
        ic_calib_g_backward(&gr, dmm + (size_t)i * c, dmv + (size_t)i * c, &layer.g, 1e-5f, c,
                            g.mean_t + (size_t)i * c, g.var_t + (size_t)i * c, g.bn.mean, g.bn.var);
    ck_assert_uint_eq(tu_compare(dx, FX("d_x")->f32, numel, 1e-3, "d_x", NULL), 0);
    ck_assert_uint_eq(tu_compare(dgam, FX("d_gamma")->f32, (size_t)c, 1e-3, "d_gamma", NULL), 0);
    ck_assert_uint_eq(tu_compare(dbet, FX("d_beta")->f32, (size_t)c, 1e-3, "d_beta", NULL), 0);
    ck_assert_uint_eq(tu_compare(du_mu, FX("d_u_mu")->f32, (size_t)c, 1e-3, "d_u_mu", NULL), 0);
    ck_assert_uint_eq(tu_compare(du_var, FX("d_u_var")->f32, (size_t)c, 1e-3, "d_u_var", NULL), 0);
    ck_assert_uint_eq(tu_compare(dgate, FX("d_gate")->f32, 2, 1e-3, "d_gate", NULL), 0);

    /* finite differences of the same objective, with every strength inside
     * [eps, 1 - eps] (the golden case clamps one, whose numerical derivative
     * is 0 by design: the clamp is a projection, outside the graph) */
    g.u_var[1] = 0.7f;
    g_loss(&g);
    memset(dmm, 0, nc * 4);
    memset(dmv, 0, nc * 4);
    memset(du_mu, 0, sizeof du_mu);
    memset(du_var, 0, sizeof du_var);
    memset(dgate, 0, sizeof dgate);
    ck_assert_int_eq(ic_bn_backward_calibrated(NULL, NULL, NULL, dmm, dmv, &dyt, &g.y, &g.x, &g.bn,
                                               g.m_mu, g.m_var, 1, g.mean_t, g.var_t, 1), 0);
    for (int i = 0; i < n; i++)
        ic_calib_g_backward(&gr, dmm + (size_t)i * c, dmv + (size_t)i * c, &layer.g, 1e-5f, c,
                            g.mean_t + (size_t)i * c, g.var_t + (size_t)i * c, g.bn.mean, g.bn.var);
    ck_assert(gc_check(g_loss, &g, g.u_mu, (size_t)c, du_mu, 1e-2f, 1, "instcal-g du_mu") < 1e-3);
    ck_assert(gc_check(g_loss, &g, g.u_var, (size_t)c, du_var, 1e-2f, 1, "instcal-g du_var") < 1e-3);
    ck_assert(gc_check(g_loss, &g, g.gate, 2, dgate, 1e-2f, 1, "instcal-g dgate") < 1e-3);

    free(dmm);
    free(dmv);
    free(x);
    free(y);
    free(dx);
    free(g.mean_t);
    free(g.var_t);
    free(g.m_mu);
    free(g.m_var);
    free(g.u_mu);
    free(g.u_var);
    free(g.gate);
    ic_st_close(&st);
}
END_TEST

/* Identical statistics: drift 0 and a closed gate (m = 0 up to the sigmoid's
 * tail, 1e-12 ** k); a dead channel (var_t = 0) keeps the drift in [0, 1]. */
START_TEST(test_limits)
{
    float mu[3] = {0.5f, -1, 2}, var[3] = {1, 0.3f, 4}, u[3] = {0.9f, 0.9f, 0.9f};
    float gate[2] = {2, -3}, mm[3], mv[3], gt;
    ck_assert(ic_calib_g_drift(3, mu, var, mu, var) < 1e-12);
    ic_calib_g_layer gl = {{u, u}, gate};
    ic_calib_g_strengths(mm, mv, &gt, &gl, 1e-5f, 1, 3, mu, var, mu, var);
    ck_assert(gt < 1e-20f && mm[0] < 1e-20f && mv[2] < 1e-20f);
    float dead[3] = {0, 0, 0}, far[3] = {100, -100, 100};
    double d = ic_calib_g_drift(3, far, dead, mu, var);
    ck_assert(d > 0.99 && d <= 1.0);
    ic_calib_g_strengths(mm, mv, &gt, &gl, 1e-5f, 1, 3, far, dead, mu, var);
    ck_assert(gt > 0.99f && fabsf(mm[1] - 0.9f * gt) < 1e-6f);
    /* the mode refuses a model without its tensors */
    ic_calib_layer none = {.c = 3};
    ic_calib_c_shape cs = {.clamp_eps = 1e-5f};
    ic_calib_opts co = {.mode = IC_CALIB_INSTCAL_G};
    ck_assert_int_eq(ic_calib_strengths(mm, mv, &co, &none, &cs, 1, mu, var, mu, var, NULL),
                     IC_EINVAL);
    ic_calib_mode m;
    ck_assert_int_eq(ic_calib_mode_parse("instcal-g", &m), 0);
    ck_assert_int_eq(m, IC_CALIB_INSTCAL_G);
    ck_assert_str_eq(ic_calib_mode_name(IC_CALIB_INSTCAL_G), "instcal-g");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("calib/gate");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_golden_and_fd);
    tcase_add_test(tc, test_limits);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
