/* Whole-network gradients against PyTorch autograd (float64) for a random
 * linear loss of the tiny model's outputs, in every training mode
 * (tests/golden/gen_model_grad.py), InstCal-G included. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "model/pdl_train.h"
#include "testutil.h"

static void run_mode(const char *tag, ic_pdl_train_opts o, unsigned kinds)
{
    ic_pdl *net = NULL;
    ck_assert_int_eq(ic_pdl_load(&net, tu_path("golden/fixtures/model_tiny_weights.safetensors"), NULL), 0);
    ck_assert_int_eq(ic_pdl_make_trainable(net), 0);
    const ic_pdl_config *cfg = ic_pdl_get_config(net);
    ic_safetensors *io = tu_fixture("model_tiny_io"), *gs = tu_fixture("model_tiny_grad");
    if (o.calib.mode == IC_CALIB_INSTCAL_G) {
        /* the weights fixture has no InstCal-G: add it, then take the
         * reference's values (g-init.<name>) for every one of its tensors */
        ck_assert_int_eq(ic_pdl_add_calibration(net, IC_CALIB_INSTCAL_G, 0.5f, 0), 0);
        ic_param *ps;
        int np, set = 0;
        ck_assert_int_eq(ic_pdl_params(net, &ps, &np), 0);
        for (int k = 0; k < np; k++) {
            if (!(ps[k].kind & (IC_PARAM_CALIB_G | IC_PARAM_CALIB_G_GATE)))
                continue;
            char key[256];
            snprintf(key, sizeof key, "g-init.%s", ps[k].name);
            const ic_st_tensor *v = tu_fixture_tensor(gs, key);
            ck_assert_uint_eq(v->numel, ps[k].n);
            memcpy(ps[k].data, v->f32, ps[k].n * sizeof(float));
            set++;
        }
        ck_assert_int_eq(set, 3 * ic_pdl_bn_count(net));
    }
    ic_arena a;
    ic_arena_init(&a, 0, 0);
    const ic_st_tensor *img = ic_st_find(io, "image");
    int n = (int)img->shape[0], H = (int)img->shape[2], W = (int)img->shape[3], h = 32, w = 64;
    ic_tensor x;
    ck_assert_int_eq(ic_tensor_alloc(&x, &a, n, 3, h, w), 0);
    const uint8_t *px = img->raw;
    for (int b = 0; b < n; b++)
        for (int c = 0; c < 3; c++)
            for (int yy = 0; yy < h; yy++)
                for (int xx = 0; xx < w; xx++)
                    ic_tensor_at(&x, b, c)[yy * w + xx] =
                        ((float)px[(((size_t)b * 3 + c) * H + yy) * W + xx] - cfg->pixel_mean[c]) /
                        cfg->pixel_std[c];
    o.grads = kinds;
    o.momentum = 0;
    ic_pdl_tape *tape;
    ic_pdl_outputs out;
    int rc = ic_pdl_forward_train(net, &x, &o, &a, &tape, &out);
    ck_assert_msg(rc == 0, "%s", ic_error_message());
    const ic_tensor *t[3] = {&out.sem, &out.center, &out.offset};
    static const char *rn[3] = {"r.sem_logits", "r.center", "r.offset"};
    ic_tensor d[3];
    double loss = 0;
    for (int k = 0; k < 3; k++) {
        const ic_st_tensor *r = tu_fixture_tensor(gs, rn[k]);
        ck_assert_uint_eq(r->numel, ic_tensor_numel(t[k]));
        d[k] = *t[k];
        d[k].data = (float *)r->f32;
        for (size_t i = 0; i < r->numel; i++)
            loss += (double)t[k]->data[i] * r->f32[i];
    }
    char key[256];
    snprintf(key, sizeof key, "%s.loss", tag);
    double want_loss = tu_fixture_tensor(gs, key)->f32[0];
    fprintf(stderr, "%-10s loss %.6g (torch %.6g)\n", tag, loss, want_loss);
    ic_pdl_zero_grad(net);
    rc = ic_pdl_backward(net, tape, &d[0], &d[1], &d[2], &a);
    ck_assert_msg(rc == 0, "%s", ic_error_message());
    ic_param *ps;
    int np, compared = 0, bad = 0;
    ck_assert_int_eq(ic_pdl_params(net, &ps, &np), 0);
    size_t prefix = strlen(tag) + 1;
    for (size_t i = 0; i < ic_st_count(gs); i++) {
        const ic_st_tensor *g = ic_st_get(gs, i);
        if (strncmp(g->name, tag, prefix - 1) || g->name[prefix - 1] != '.' ||
            strchr(g->name + prefix, '-') ||
            !strcmp(g->name + prefix, "loss"))
            continue;
        const ic_param *p = NULL;
        for (int k = 0; k < np; k++)
            if (!strcmp(ps[k].name, g->name + prefix))
                p = &ps[k];
        ck_assert_msg(p != NULL && p->grad, "%s: no such parameter", g->name);
        ck_assert_uint_eq(p->n, g->numel);
        double rel = tu_max_rel_error(p->grad, g->f32, g->numel, 1e-3, g->name);
        fprintf(stderr, "  %-62s %.2e\n", g->name + prefix, rel);
        compared++;
        bad += !(rel <= 1e-3);
    }
    ck_assert_int_gt(compared, 5);
    ck_assert_msg(bad == 0, "%s: %d of %d gradients differ from PyTorch by more than 1e-3", tag, bad,
                  compared);
    ic_st_close(&io);
    ic_st_close(&gs);
    ic_arena_deinit(&a);
    ic_pdl_free(&net);
}

START_TEST(test_train)
{
    run_mode("train", (ic_pdl_train_opts){.bn = IC_PDL_BN_TRAIN}, IC_PARAM_WEIGHT | IC_PARAM_BN_AFFINE);
}
END_TEST

START_TEST(test_source)
{
    run_mode("source",
             (ic_pdl_train_opts){.bn = IC_PDL_BN_CALIBRATED, .calib = {.mode = IC_CALIB_MANUAL, .m = 0}},
             IC_PARAM_WEIGHT | IC_PARAM_BN_AFFINE);
}
END_TEST

START_TEST(test_instcal_u)
{
    run_mode("instcal-u",
             (ic_pdl_train_opts){.bn = IC_PDL_BN_CALIBRATED, .calib = {.mode = IC_CALIB_INSTCAL_U}},
             IC_PARAM_CALIB_U);
}
END_TEST

START_TEST(test_instcal_c)
{
    run_mode("instcal-c",
             (ic_pdl_train_opts){.bn = IC_PDL_BN_CALIBRATED, .calib = {.mode = IC_CALIB_INSTCAL_C}},
             IC_PARAM_CALIB_C);
}
END_TEST

START_TEST(test_instcal_g)
{
    run_mode("instcal-g",
             (ic_pdl_train_opts){.bn = IC_PDL_BN_CALIBRATED, .calib = {.mode = IC_CALIB_INSTCAL_G}},
             IC_PARAM_CALIB_G | IC_PARAM_CALIB_G_GATE);
}
END_TEST

START_TEST(test_tbn)
{
    run_mode("tbn", (ic_pdl_train_opts){.bn = IC_PDL_BN_CALIBRATED, .calib = {.mode = IC_CALIB_TBN}},
             IC_PARAM_WEIGHT | IC_PARAM_BN_AFFINE);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("pdl_grad_golden");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_source);
    tcase_add_test(tc, test_train);
    tcase_add_test(tc, test_instcal_u);
    tcase_add_test(tc, test_instcal_c);
    tcase_add_test(tc, test_tbn);
    tcase_add_test(tc, test_instcal_g);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
