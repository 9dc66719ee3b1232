/* Golden gradients of a small block against PyTorch autograd
 * (tests/golden/gen_grad.py, grad_block): calibrated BN (strengths per channel
 * and per image, instance statistics stop-gradient) + fused ReLU + bilinear x2
 * (scale factor) + concat with a skip + bilinear to an odd size, split into
 * semantic logits / center / offset and trained with DeepLabCE (top_k 0.2) +
 * 200 * center MSE + 0.01 * offset L1. The conv in front of the BN runs only
 * in PyTorch: its output is the fixture's input `a`. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "ops/bn.h"
#include "ops/concat.h"
#include "ops/loss.h"
#include "ops/resize.h"
#include "testutil.h"

/* An int32 fixture tensor (tu_fixture_tensor accepts only floats). */
static const ic_st_tensor *int_tensor(const ic_safetensors *st, const char *name)
{
    const ic_st_tensor *t = ic_st_find(st, name);
    ck_assert_msg(t && t->dtype == IC_ST_I32, "fixture tensor %s missing or not int32", name);
    return t;
}

static float *copy_f(const ic_st_tensor *t)
{
    float *p = malloc(t->numel * sizeof(float));
    memcpy(p, t->f32, t->numel * sizeof(float));
    return p;
}

/* Copies channels [c0, c0 + dst->c) of src into dst (to_dst) or back. */
static void channel_slice(ic_tensor *dst, ic_tensor *src, int c0, int to_dst)
{
    size_t bytes = (size_t)dst->c * ic_tensor_plane(dst) * sizeof(float);
    for (int n = 0; n < dst->n; n++) {
        if (to_dst)
            memcpy(ic_tensor_at(dst, n, 0), ic_tensor_at(src, n, c0), bytes);
        else
            memcpy(ic_tensor_at(src, n, c0), ic_tensor_at(dst, n, 0), bytes);
    }
}

static void check_grad(const float *got, const ic_safetensors *st, const char *name)
{
    const ic_st_tensor *t = tu_fixture_tensor(st, name);
    ck_assert(tu_max_rel_error(got, t->f32, t->numel, 1e-4, name) <= 1e-4);
    printf("golden %-12s max rel error %.3e\n", name, tu_max_rel_error(got, t->f32, t->numel, 1, name));
}

static void run_case(const char *tag, int per_image)
{
    ic_safetensors *st = tu_fixture("grad_block");
    const ic_st_tensor *at = tu_fixture_tensor(st, "a"), *skt = tu_fixture_tensor(st, "skip");
    const float *dims = tu_fixture_tensor(st, "dims")->f32;
    int K = (int)dims[0], OH = (int)dims[1], OW = (int)dims[2];
    int N = (int)at->shape[0], C = (int)at->shape[1], H = (int)at->shape[2], W = (int)at->shape[3];
    int CS = (int)skt->shape[1], CT = C + CS;
    char name[64];
#define FX(s) (snprintf(name, sizeof(name), "%s.%s", tag, s), tu_fixture_tensor(st, name))
    float *a = copy_f(at), *skip = copy_f(skt);
    float *mean_t = malloc((size_t)N * C * 4), *var_t = malloc((size_t)N * C * 4);
    ic_bn bn = {C, tu_fixture_tensor(st, "gamma")->f32, tu_fixture_tensor(st, "beta")->f32,
                tu_fixture_tensor(st, "mean_s")->f32, tu_fixture_tensor(st, "var_s")->f32,
                tu_fixture_tensor(st, "eps")->f32[0], 0};
    const float *m_mu = FX("m_mu")->f32, *m_var = FX("m_var")->f32;
    size_t nb = (size_t)N * C * H * W, nu = (size_t)N * C * 4 * H * W;
    size_t ncat = (size_t)N * CT * 4 * H * W, nf = (size_t)N * CT * OH * OW, np = (size_t)N * OH * OW;
    ic_tensor at_ = ic_tensor_wrap(a, N, C, H, W), skip_t = ic_tensor_wrap(skip, N, CS, 2 * H, 2 * W);
    ic_tensor b = ic_tensor_wrap(malloc(nb * 4), N, C, H, W);
    ic_tensor u = ic_tensor_wrap(malloc(nu * 4), N, C, 2 * H, 2 * W);
    ic_tensor cat = ic_tensor_wrap(malloc(ncat * 4), N, CT, 2 * H, 2 * W);
    ic_tensor f = ic_tensor_wrap(malloc(nf * 4), N, CT, OH, OW);
    ic_tensor lg = ic_tensor_wrap(malloc(np * K * 4), N, K, OH, OW);
    ic_tensor ce = ic_tensor_wrap(malloc(np * 4), N, 1, OH, OW);
    ic_tensor of = ic_tensor_wrap(malloc(np * 2 * 4), N, 2, OH, OW);

    /* forward */
    ic_bn_instance_stats(mean_t, var_t, &at_);
    ck_assert_int_eq(ic_bn_forward_calibrated(&b, &at_, &bn, m_mu, m_var, per_image, mean_t, var_t, 1), 0);
    ck_assert_int_eq(ic_resize_bilinear_scale_forward(&u, &b, 2.0, 2.0), 0);
    const ic_tensor *parts[2] = {&u, &skip_t};
    ck_assert_int_eq(ic_concat_forward(&cat, parts, 2), 0);
    ck_assert_int_eq(ic_resize_bilinear_forward(&f, &cat), 0);
    channel_slice(&lg, &f, 0, 1);
    channel_slice(&ce, &f, K, 1);
    channel_slice(&of, &f, K + 1, 1);
    const ic_st_tensor *lt = int_tensor(st, "labels");
    int32_t *labels = malloc(np * 4);
    memcpy(labels, lt->raw, np * 4);
    const float *sem_w = tu_fixture_tensor(st, "sem_w")->f32;
    float *ctb = copy_f(tu_fixture_tensor(st, "ct")), *cwb = copy_f(tu_fixture_tensor(st, "cw"));
    float *otb = copy_f(tu_fixture_tensor(st, "ot")), *owb = copy_f(tu_fixture_tensor(st, "ow"));
    ic_tensor ct = ic_tensor_wrap(ctb, N, 1, OH, OW), cw = ic_tensor_wrap(cwb, N, 1, OH, OW);
    ic_tensor ot = ic_tensor_wrap(otb, N, 2, OH, OW), ow = ic_tensor_wrap(owb, N, 1, OH, OW);
    float *coef = malloc(np * 4), *work = malloc(np * 4), l_ce, l_mse, l_l1;
    ck_assert_int_eq(ic_loss_deeplab_ce_forward(&l_ce, coef, work, &lg, labels, sem_w, 0.2, 255), 0);
    ck_assert_int_eq(ic_loss_center_mse_forward(&l_mse, &ce, &ct, &cw), 0);
    ck_assert_int_eq(ic_loss_offset_l1_forward(&l_l1, &of, &ot, &ow), 0);
    const float *want = FX("losses")->f32;
    float got[4] = {l_ce, l_mse, l_l1, l_ce + IC_LOSS_CENTER_WEIGHT * l_mse + IC_LOSS_OFFSET_WEIGHT * l_l1};
    for (int i = 0; i < 4; i++)
        ck_assert_double_eq_tol(got[i], want[i], 1e-5 * fabs(want[i]) + 1e-7);

    /* backward, in reverse order; every gradient buffer starts at zero */
    ic_tensor dlg = ic_tensor_wrap(calloc(np * K, 4), N, K, OH, OW);
    ic_tensor dce = ic_tensor_wrap(calloc(np, 4), N, 1, OH, OW);
    ic_tensor dof = ic_tensor_wrap(calloc(np * 2, 4), N, 2, OH, OW);
    ck_assert_int_eq(ic_loss_deeplab_ce_backward(&dlg, 1.0f, coef, &lg, labels, 255), 0);
    ck_assert_int_eq(ic_loss_center_mse_backward(&dce, IC_LOSS_CENTER_WEIGHT, &ce, &ct, &cw), 0);
    ck_assert_int_eq(ic_loss_offset_l1_backward(&dof, IC_LOSS_OFFSET_WEIGHT, &of, &ot, &ow), 0);
    ic_tensor df = ic_tensor_wrap(calloc(nf, 4), N, CT, OH, OW);
    channel_slice(&dlg, &df, 0, 0);
    channel_slice(&dce, &df, K, 0);
    channel_slice(&dof, &df, K + 1, 0);
    ic_tensor dcat = ic_tensor_wrap(calloc(ncat, 4), N, CT, 2 * H, 2 * W);
    ck_assert_int_eq(ic_resize_bilinear_backward(&dcat, &df), 0);
    ic_tensor du = ic_tensor_wrap(calloc(nu, 4), N, C, 2 * H, 2 * W);
    ic_tensor dskip = ic_tensor_wrap(calloc((size_t)N * CS * 4 * H * W, 4), N, CS, 2 * H, 2 * W);
    ic_tensor *dparts[2] = {&du, &dskip};
    ck_assert_int_eq(ic_concat_backward(dparts, &dcat, NULL, 2), 0);
    ic_tensor db = ic_tensor_wrap(calloc(nb, 4), N, C, H, W);
    ck_assert_int_eq(ic_resize_bilinear_scale_backward(&db, &du, 2.0, 2.0), 0);
    ic_tensor da = ic_tensor_wrap(calloc(nb, 4), N, C, H, W);
    size_t nm = per_image ? (size_t)N * C : (size_t)C;
    float *dg = calloc((size_t)C, 4), *dbeta = calloc((size_t)C, 4);
    float *dmm = calloc(nm, 4), *dmv = calloc(nm, 4);
    ck_assert_int_eq(ic_bn_backward_calibrated(&da, dg, dbeta, dmm, dmv, &db, &b, &at_, &bn, m_mu, m_var,
                                               per_image, mean_t, var_t, 1), 0);
    snprintf(name, sizeof(name), "%s.d_a", tag);
    check_grad(da.data, st, name);
    snprintf(name, sizeof(name), "%s.d_gamma", tag);
    check_grad(dg, st, name);
    snprintf(name, sizeof(name), "%s.d_beta", tag);
    check_grad(dbeta, st, name);
    snprintf(name, sizeof(name), "%s.d_m_mu", tag);
    check_grad(dmm, st, name);
    snprintf(name, sizeof(name), "%s.d_m_var", tag);
    check_grad(dmv, st, name);
    snprintf(name, sizeof(name), "%s.d_skip", tag);
    check_grad(dskip.data, st, name);
#undef FX
    float *bufs[] = {a, skip, mean_t, var_t, b.data, u.data, cat.data, f.data, lg.data, ce.data,
                     of.data, ctb, cwb, otb, owb, coef, work, dlg.data, dce.data, dof.data, df.data,
                     dcat.data, du.data, dskip.data, db.data, da.data, dg, dbeta, dmm, dmv};
    for (size_t i = 0; i < sizeof(bufs) / sizeof(bufs[0]); i++)
        free(bufs[i]);
    free(labels);
    ic_st_close(&st);
}

START_TEST(test_instcal_u)
{
    run_case("u", 0);
}
END_TEST

START_TEST(test_instcal_c)
{
    run_case("c", 1);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("ops/block_grad");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_instcal_u);
    tcase_add_test(tc, test_instcal_c);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
