/* Tests for core/train/trainer on the tiny config at 64x128 with SynthCity
 * rendered on the fly: a short run lowers the loss; N + M iterations with a
 * checkpoint and a resume in between give bit-identical tensors to N + M in
 * one go; learning InstCal-U or InstCal-C changes only the calibration
 * tensors. */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/err.h"
#include "train/checkpoint.h"
#include "train/trainer.h"
#include "train_testlib.h"

enum { H = 64, W = 128 };

typedef struct snap {
    int n;
    char (*name)[160];
    float **data;
    size_t *len;
    int *kind;
} snap;

static snap take(ic_pdl *net)
{
    ic_param *p;
    snap s;
    ck_assert_int_eq(ic_pdl_params(net, &p, &s.n), 0);
    s.name = malloc(sizeof *s.name * s.n);
    s.data = malloc(sizeof *s.data * s.n);
    s.len = malloc(sizeof *s.len * s.n);
    s.kind = malloc(sizeof *s.kind * s.n);
    for (int i = 0; i < s.n; i++) {
        strcpy(s.name[i], p[i].name);
        s.data[i] = malloc(p[i].n * sizeof(float));
        memcpy(s.data[i], p[i].data, p[i].n * sizeof(float));
        s.len[i] = p[i].n;
        s.kind[i] = p[i].kind;
    }
    return s;
}

static void drop(snap *s)
{
    for (int i = 0; i < s->n; i++)
        free(s->data[i]);
    free(s->name);
    free(s->data);
    free(s->len);
    free(s->kind);
}

static const float *find(const snap *s, const char *name, size_t *len)
{
    for (int i = 0; i < s->n; i++)
        if (!strcmp(s->name[i], name)) {
            *len = s->len[i];
            return s->data[i];
        }
    return NULL;
}

static ic_trainer_opts base_opts(int iters)
{
    ic_trainer_opts o = ic_trainer_opts_default(iters);
    o.batch = 2;
    o.sched = ic_lr_schedule_default(1e-2, iters);
    o.sched.warmup_iters = 0;
    o.seed = 5;
    return o;
}

START_TEST(test_loss_decreases)
{
    ic_pdl_config cfg;
    char *text = tt_tiny_config(&cfg);
    ic_pdl *net;
    ck_assert_int_eq(ic_pdl_create(&net, &cfg, text, 1), 0);
    ic_dataset *d;
    ck_assert_int_eq(ic_dataset_open_synth(&d, 3, 16, H, W, &cfg), 0);
    ic_loader_opts lo = ic_loader_opts_default(&cfg, H, W, 0, 4);
    ic_trainer_opts o = base_opts(30);
    o.batch = 4;
    ic_trainer *t;
    ck_assert_int_eq(ic_trainer_create(&t, net, d, &lo, &o), 0);
    double first = 0, last = 0;
    for (int i = 0; i < 30; i++) {
        ic_train_losses L;
        ck_assert_msg(ic_trainer_step(t, &L) == 0, "%s", ic_error_message());
        ck_assert(isfinite(L.total) && L.sem > 0 && L.center > 0);
        if (i < 5)
            first += L.total / 5;
        if (i >= 25)
            last += L.total / 5;
    }
    ck_assert_msg(last < 0.8 * first, "loss %g -> %g", first, last);
    ck_assert(ic_trainer_images_per_second(t) > 0);
    ic_trainer_free(&t);
    ic_dataset_free(&d);
    ic_pdl_free(&net);
    free(text);
}
END_TEST

START_TEST(test_resume_bit_identical)
{
    ic_pdl_config cfg;
    char *text = tt_tiny_config(&cfg);
    char dir[] = "/tmp/ic_test_resume_XXXXXX";
    ck_assert(mkdtemp(dir) != NULL);
    ic_dataset *d;
    ck_assert_int_eq(ic_dataset_open_synth(&d, 3, 5, H, W, &cfg), 0);
    ic_loader_opts lo = ic_loader_opts_default(&cfg, H, W, 0, 4);
    ic_trainer_opts o = base_opts(6);
    o.accum = 2;
    o.checkpoint_dir = dir;

    /* uninterrupted: 6 iterations */
    ic_pdl *a;
    ic_trainer *t;
    ck_assert_int_eq(ic_pdl_create(&a, &cfg, text, 1), 0);
    ck_assert_int_eq(ic_trainer_create(&t, a, d, &lo, &o), 0);
    ck_assert_int_eq(ic_trainer_run(t, 6), 0);
    snap sa = take(a);
    ic_trainer_free(&t);
    ic_pdl_free(&a);

    /* 3 iterations, checkpoint, a new process would load and resume */
    ic_pdl *b;
    ck_assert_int_eq(ic_pdl_create(&b, &cfg, text, 1), 0);
    ck_assert_int_eq(ic_trainer_create(&t, b, d, &lo, &o), 0);
    ck_assert_int_eq(ic_trainer_run(t, 3), 0);
    ck_assert_int_eq(ic_trainer_checkpoint(t), 0);
    ic_trainer_free(&t);
    ic_pdl_free(&b);
    ic_dataset_free(&d);
    ck_assert_int_eq(ic_dataset_open_synth(&d, 3, 5, H, W, &cfg), 0);

    char model[4096];
    int64_t it;
    ck_assert_int_eq(ic_checkpoint_latest(dir, &it, model, sizeof model), 0);
    ck_assert_int_eq(it, 3);
    ck_assert_msg(ic_pdl_load(&b, model, NULL) == 0, "%s", ic_error_message());
    ck_assert_int_eq(ic_trainer_create(&t, b, d, &lo, &o), 0);
    ck_assert_msg(ic_trainer_resume(t, dir) == 0, "%s", ic_error_message());
    ck_assert_int_eq(ic_trainer_iter(t), 3);
    ck_assert_int_eq(ic_trainer_run(t, 6), 0);
    snap sb = take(b);
    ck_assert_int_eq(sa.n, sb.n);
    for (int i = 0; i < sa.n; i++) {
        size_t len;
        const float *x = find(&sa, sb.name[i], &len);
        ck_assert_msg(x && len == sb.len[i], "%s", sb.name[i]);
        ck_assert_msg(memcmp(x, sb.data[i], len * sizeof(float)) == 0, "%s differs after resume",
                      sb.name[i]);
    }
    /* a wrong seed is refused */
    ic_trainer_opts o2 = o;
    o2.seed = 6;
    ic_trainer *t2;
    ck_assert_int_eq(ic_trainer_create(&t2, b, d, &lo, &o2), 0);
    ck_assert_int_eq(ic_trainer_resume(t2, dir), IC_EINVAL);
    ic_trainer_free(&t2);
    drop(&sa);
    drop(&sb);
    ic_trainer_free(&t);
    ic_pdl_free(&b);
    ic_dataset_free(&d);
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
    free(text);
}
END_TEST

static void calibrate_only(ic_calib_mode mode, unsigned kind)
{
    ic_pdl_config cfg;
    char *text = tt_tiny_config(&cfg);
    ic_pdl *net;
    ck_assert_int_eq(ic_pdl_create(&net, &cfg, text, 1), 0);
    snap before = take(net);
    ck_assert_int_eq(ic_pdl_add_calibration(net, mode, 0.1f, 2), 0);
    ic_dataset *d;
    ck_assert_int_eq(ic_dataset_open_synth(&d, 3, 6, H, W, &cfg), 0);
    if (mode == IC_CALIB_INSTCAL_G) {
        /* gates from two clean images: slope / std > 0, a finite threshold */
        ic_batch b;
        ck_assert_int_eq(ic_batch_init(&b, 2, H, W), 0);
        ic_loader_opts lo0 = ic_loader_opts_default(&cfg, H, W, 0, 4);
        ck_assert_int_eq(ic_loader_fill(&b, d, &lo0, 9, 0), 0);
        ck_assert_int_eq(ic_pdl_fit_gate(net, &b.image, 2.0f, 2.0f), 0);
        ck_assert_int_eq(ic_pdl_fit_gate(net, &b.image, 0.0f, 2.0f), IC_EINVAL);
        ic_batch_deinit(&b);
        snap g = take(net);
        int gates = 0;
        for (int i = 0; i < g.n; i++)
            if (g.kind[i] == IC_PARAM_CALIB_G_GATE) {
                gates++;
                ck_assert_msg(g.data[i][0] > 0 && isfinite(g.data[i][1]) &&
                              (g.data[i][0] != 1.0f || g.data[i][1] != 0.0f),
                              "%s not fitted", g.name[i]);
            }
        ck_assert_int_eq(gates, ic_pdl_bn_count(net));
        drop(&g);
    }
    snap init = take(net);
    ic_loader_opts lo = ic_loader_opts_default(&cfg, H, W, 1, 4);
    ic_trainer_opts o = base_opts(3);
    o.grads = kind;
    o.fwd.bn = IC_PDL_BN_CALIBRATED;
    o.fwd.calib.mode = mode;
    ic_trainer *t;
    ck_assert_int_eq(ic_trainer_create(&t, net, d, &lo, &o), 0);
    ck_assert_msg(ic_trainer_run(t, 3) == 0, "%s", ic_error_message());
    snap after = take(net);
    int n_calib = 0, n_changed = 0;
    for (int i = 0; i < after.n; i++) {
        size_t len;
        if (after.kind[i] & (int)kind) {
            n_calib++;
            const float *x = find(&init, after.name[i], &len);
            ck_assert(x != NULL);
            int ch = memcmp(x, after.data[i], len * sizeof(float)) != 0;
            /* the tiny config's InstCal-C MLPs have 3 hidden ReLUs, which
             * can all be off for a layer (no gradient to fc1 / fc2.weight);
             * strengths, bases and output biases always learn */
            if (kind != IC_PARAM_CALIB_C || strstr(after.name[i], "basis") ||
                strstr(after.name[i], "fc2.bias"))
                ck_assert_msg(ch, "%s did not learn", after.name[i]);
            n_changed += ch;
            if (after.kind[i] == IC_PARAM_CALIB_U || after.kind[i] == IC_PARAM_CALIB_G)
                for (size_t j = 0; j < len; j++)
                    ck_assert(after.data[i][j] >= cfg.clamp_eps &&
                              after.data[i][j] <= 1 - cfg.clamp_eps);
            continue;
        }
        const float *x = find(&before, after.name[i], &len);
        ck_assert_msg(x && len == after.len[i], "%s appeared", after.name[i]);
        ck_assert_msg(memcmp(x, after.data[i], len * sizeof(float)) == 0, "%s changed",
                      after.name[i]);
    }
    ck_assert(n_calib > 0 && 2 * n_changed > n_calib);
    drop(&before);
    drop(&init);
    drop(&after);
    ic_trainer_free(&t);
    ic_dataset_free(&d);
    ic_pdl_free(&net);
    free(text);
}

START_TEST(test_calibrate_u_only)
{
    calibrate_only(IC_CALIB_INSTCAL_U, IC_PARAM_CALIB_U);
}
END_TEST

START_TEST(test_calibrate_c_only)
{
    calibrate_only(IC_CALIB_INSTCAL_C, IC_PARAM_CALIB_C);
}
END_TEST

START_TEST(test_calibrate_g_only)
{
    calibrate_only(IC_CALIB_INSTCAL_G, IC_PARAM_CALIB_G | IC_PARAM_CALIB_G_GATE);
}
END_TEST

START_TEST(test_train_config)
{
    ic_pdl_config cfg;
    char *text = tt_tiny_config(&cfg);
    ic_train_config tc;
    ck_assert_int_eq(ic_train_config_parse(&tc, text), 0);
    ck_assert_double_eq(tc.sem_top_k, 0.2);
    ck_assert_float_eq(tc.center_weight, 200.0f);
    ck_assert_float_eq(tc.offset_weight, 0.01f);
    ck_assert_int_eq(tc.sigma, 10);
    ck_assert_int_eq(ic_train_config_parse(&tc, "{\"training\": {\"sem_loss_top_k\": 2}}"),
                     IC_EFORMAT);
    ck_assert_int_eq(ic_train_config_parse(&tc, NULL), 0);
    free(text);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("train/trainer");
    TCase *tc = tcase_create("trainer");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_train_config);
    tcase_add_test(tc, test_loss_decreases);
    tcase_add_test(tc, test_resume_bit_identical);
    tcase_add_test(tc, test_calibrate_u_only);
    tcase_add_test(tc, test_calibrate_c_only);
    tcase_add_test(tc, test_calibrate_g_only);
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
