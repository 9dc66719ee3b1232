/* Tests of core/calib/drift: the per-channel distance against PyTorch's
 * KL divergences (tests/golden/gen_drift.py), its invariances, the
 * unfolding of folded-BN statistics, and the whole network's score in
 * every mode against the PyTorch reference, per image of a batch. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "base/err.h"
#include "calib/drift.h"
#include "model/pdl.h"
#include "ops/bn.h"
#include "testutil.h"

START_TEST(test_channel_matches_torch)
{
    ic_safetensors *st = tu_fixture("drift");
    const ic_st_tensor *mt = tu_fixture_tensor(st, "chan.mean_t"),
                       *vt = tu_fixture_tensor(st, "chan.var_t"),
                       *ms = tu_fixture_tensor(st, "chan.mean_s"),
                       *vs = tu_fixture_tensor(st, "chan.var_s"), *d = tu_fixture_tensor(st, "chan.d");
    float eps = (float)atof(ic_st_metadata(st, "eps"));
    int n = (int)d->numel;
    double sum = 0;
    for (int i = 0; i < n; i++) {
        double got = ic_drift_channel(mt->f32[i], vt->f32[i], ms->f32[i], vs->f32[i], eps);
        ck_assert_msg(fabs(got - d->f32[i]) <= 1e-6 * (fabs(d->f32[i]) + 1e-6),
                      "channel %d: %.9g, torch %.9g", i, got, d->f32[i]);
        sum += d->f32[i];
    }
    ck_assert_double_eq(ic_drift_channel(mt->f32[0], vt->f32[0], ms->f32[0], vs->f32[0], eps), 0.0);
    ck_assert_double_eq_tol(ic_drift_layer(n, mt->f32, vt->f32, ms->f32, vs->f32, eps), sum / n,
                            1e-6 * sum / n);
    ck_assert_double_eq(ic_drift_layer(0, mt->f32, vt->f32, ms->f32, vs->f32, eps), 0.0);
    ic_st_close(&st);
}
END_TEST

/* Symmetric, and unchanged by an affine map of the channel (with eps 0,
 * where the map carries eps along only when it scales by 1). */
START_TEST(test_invariances)
{
    double a = ic_drift_channel(1.5, 0.4, -0.2, 2.0, 0), b = ic_drift_channel(-0.2, 2.0, 1.5, 0.4, 0);
    ck_assert_double_eq_tol(a, b, 1e-15);
    double s = -3.0, t = 7.0; /* u -> s u + t */
    double c = ic_drift_channel(s * 1.5 + t, s * s * 0.4, s * -0.2 + t, s * s * 2.0, 0);
    ck_assert_double_eq_tol(a, c, 1e-12);
    ck_assert(ic_drift_channel(0, 1, 0, 1, 1e-5) == 0.0);
    ck_assert(ic_drift_channel(0.1, 1, 0, 1, 1e-5) < ic_drift_channel(0.2, 1, 0, 1, 1e-5));
    ck_assert(ic_drift_channel(0, 0.5, 0, 1, 1e-5) < ic_drift_channel(0, 0.25, 0, 1, 1e-5));
}
END_TEST

/* Statistics of eval-mode BN's output, unfolded, equal those of its input. */
START_TEST(test_unfold)
{
    enum { C = 5, H = 6, W = 7 };
    uint64_t rs = 11;
    float gamma[C] = {0.7f, -1.3f, 0.0f, 2.0f, 1e-3f}, beta[C], mean_s[C], var_s[C];
    tu_rand_fill(beta, C, &rs, -1, 1);
    tu_rand_fill(mean_s, C, &rs, -2, 2);
    tu_rand_fill(var_s, C, &rs, 0.1f, 3);
    ic_arena a;
    ic_arena_init(&a, 0, 0);
    ic_tensor u, z;
    ck_assert_int_eq(ic_tensor_alloc(&u, &a, 1, C, H, W), 0);
    ck_assert_int_eq(ic_tensor_alloc(&z, &a, 1, C, H, W), 0);
    tu_rand_fill(u.data, ic_tensor_numel(&u), &rs, -3, 4);
    ic_bn bn = {.c = C, .gamma = gamma, .beta = beta, .mean = mean_s, .var = var_s, .eps = 1e-5f};
    ck_assert_int_eq(ic_bn_forward_inference(&z, &u, &bn, 0), 0);
    float mu[C], vu[C], mz[C], vz[C];
    ic_bn_instance_stats_ref(mu, vu, &u);
    ic_bn_instance_stats_ref(mz, vz, &z);
    ic_drift_unfold_stats(C, mz, vz, gamma, beta, mean_s, var_s, bn.eps);
    for (int c = 0; c < C; c++) {
        if (gamma[c] == 0) { /* no information: the stored statistics */
            ck_assert_float_eq(mz[c], mean_s[c]);
            ck_assert_float_eq(vz[c], var_s[c]);
            continue;
        }
        double tol = c == 4 ? 2e-3 : 1e-5; /* tiny gamma amplifies float rounding of z */
        ck_assert_msg(fabs(mz[c] - mu[c]) <= tol * (1 + fabs(mu[c])), "mean %d: %g vs %g", c,
                      mz[c], mu[c]);
        ck_assert_msg(fabs(vz[c] - vu[c]) <= tol * vu[c], "var %d: %g vs %g", c, vz[c], vu[c]);
    }
    /* gamma, beta NULL: ones and zeros */
    float m1[1] = {2.0f}, v1[1] = {4.0f}, ms1[1] = {1.0f}, vs1[1] = {3.0f};
    ic_drift_unfold_stats(1, m1, v1, NULL, NULL, ms1, vs1, 1.0f); /* s = 1/2 */
    ck_assert_float_eq_tol(m1[0], 1.0f + 2.0f * 2.0f, 1e-6f);
    ck_assert_float_eq_tol(v1[0], 16.0f, 1e-5f);
    ic_arena_deinit(&a);
}
END_TEST

START_TEST(test_accumulator)
{
    double sum[2];
    ic_drift_acc acc;
    ic_drift_acc_init(&acc, 2, sum);
    ck_assert_double_eq(ic_drift_acc_score(&acc, 0), 0.0);
    float mt[4] = {0, 0, 1, 0}, vt[4] = {1, 1, 1, 1}, ms[2] = {0, 0}, vs[2] = {1, 1};
    ic_drift_acc_add(&acc, 2, mt, vt, ms, vs, 0);
    ic_drift_acc_add(&acc, 2, mt, vt, ms, vs, 0);
    ck_assert_int_eq(acc.layers, 2);
    ck_assert_double_eq(ic_drift_acc_score(&acc, 0), 0.0);
    /* image 1: one channel has a mean gap of 1 at unit variances: D = 1/2, layer mean 1/4 */
    ck_assert_double_eq_tol(ic_drift_acc_score(&acc, 1), 0.25, 1e-15);
}
END_TEST

/* The network's score per image and mode equals PyTorch's; in `none` the
 * C forward measures the folded output, so this also checks the unfolding
 * through every BN layer. A batch-1 run of image 1 gives image 1's score. */
START_TEST(test_model_matches_torch)
{
    ic_pdl *net = NULL;
    ck_assert_int_eq(ic_pdl_load(&net, tu_path("golden/fixtures/model_tiny_weights.safetensors"),
                                 NULL), 0);
    ic_safetensors *io = tu_fixture("model_tiny_io"), *st = tu_fixture("drift");
    static const struct {
        const char *name;
        ic_calib_mode mode;
    } modes[] = {{"none", IC_CALIB_NONE},
                 {"tbn", IC_CALIB_TBN},
                 {"manual", IC_CALIB_MANUAL},
                 {"instcal-u", IC_CALIB_INSTCAL_U},
                 {"instcal-c", IC_CALIB_INSTCAL_C}};
    float m = (float)atof(ic_st_metadata(st, "manual_m"));
    const ic_pdl_config *cfg = ic_pdl_get_config(net);
    ic_arena a;
    ic_arena_init(&a, 0, 0);
    for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++) {
        ic_arena_reset(&a);
        ic_tensor x = tu_fixture_image(io, cfg->pixel_mean, cfg->pixel_std, &a);
        ic_calib_opts opts = {.mode = modes[i].mode, .m = m};
        ic_pdl_outputs out;
        ck_assert_int_eq(ic_pdl_forward(net, &x, &opts, IC_PDL_STRIDE4, &a, &out), 0);
        char key[64];
        snprintf(key, sizeof key, "%s.drift", modes[i].name);
        const ic_st_tensor *want = tu_fixture_tensor(st, key);
        for (int n = 0; n < 2; n++) {
            double w = want->f32[n], rel = fabs(out.drift[n] - w) / w;
            fprintf(stderr, "%-10s image %d drift %.6g torch %.6g rel %.1e\n", modes[i].name, n,
                    out.drift[n], w, rel);
            ck_assert_msg(rel < 1e-4, "%s image %d: %g, torch %g", modes[i].name, n, out.drift[n], w);
        }
        /* image 1 alone */
        double d1 = out.drift[1];
        ic_tensor x1 = x;
        x1.n = 1;
        x1.data = ic_tensor_at(&x, 1, 0);
        ck_assert_int_eq(ic_pdl_forward(net, &x1, &opts, IC_PDL_STRIDE4, &a, &out), 0);
        ck_assert_double_eq_tol(out.drift[0], d1, 1e-6 * d1);
    }
    ic_arena_deinit(&a);
    ic_st_close(&st);
    ic_st_close(&io);
    ic_pdl_free(&net);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("calib/drift");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_channel_matches_torch);
    tcase_add_test(tc, test_invariances);
    tcase_add_test(tc, test_unfold);
    tcase_add_test(tc, test_accumulator);
    tcase_add_test(tc, test_model_matches_torch);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
