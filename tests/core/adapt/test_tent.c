/* Tests for core/adapt/tent: after TENT requests the private model is
 * bit-identical to the weights file, adaptation changes the answer relative
 * to plain tbn, repeated requests give identical outputs (episodic), padding
 * of odd sizes, and the entropy gradient against finite differences. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/err.h"
#include "adapt/tent.h"
#include "io/safetensors.h"
#include "model/pdl_train.h"
#include "testutil.h"

static char *tiny_model(char *path)
{
    FILE *f = fopen(tu_path("../models/configs/tiny-test.json"), "rb");
    ck_assert(f != NULL);
    char *text = malloc(1 << 16);
    size_t n = fread(text, 1, (1 << 16) - 1, f);
    fclose(f);
    text[n] = 0;
    ic_pdl_config cfg;
    ck_assert_int_eq(ic_pdl_config_parse(&cfg, text, n), 0);
    ic_pdl *net;
    ck_assert_int_eq(ic_pdl_create(&net, &cfg, text, 4), 0);
    /* non-trivial gamma/beta and running statistics, so a restore that
     * wrote defaults would show */
    ic_param *p;
    int np;
    ck_assert_int_eq(ic_pdl_params(net, &p, &np), 0);
    uint64_t st = 99;
    for (int i = 0; i < np; i++)
        if (p[i].kind == IC_PARAM_BN_AFFINE)
            tu_rand_fill(p[i].data, p[i].n, &st, 0.5f, 1.5f);
        else if (p[i].kind == IC_PARAM_BN_STAT)
            tu_rand_fill(p[i].data, p[i].n, &st, 0.1f, 1.0f);
    int fd = mkstemp(path);
    ck_assert(fd >= 0);
    close(fd);
    ck_assert_int_eq(ic_pdl_save(net, path, NULL), 0);
    ic_pdl_free(&net);
    return text;
}

/* Every tensor of the TENT model equals the file's, bit for bit. */
static void assert_same_as_file(ic_tent *t, const char *path)
{
    ic_safetensors *st;
    ck_assert_int_eq(ic_st_open(&st, path), 0);
    ic_param *p;
    int np;
    ck_assert_int_eq(ic_pdl_params((ic_pdl *)ic_tent_model(t), &p, &np), 0);
    ck_assert_int_eq((int)ic_st_count(st), np);
    for (int i = 0; i < np; i++) {
        const ic_st_tensor *x = ic_st_find(st, p[i].name);
        ck_assert_msg(x && x->numel == p[i].n, "%s", p[i].name);
        ck_assert_msg(memcmp(x->f32, p[i].data, p[i].n * sizeof(float)) == 0, "%s changed",
                      p[i].name);
    }
    ic_st_close(&st);
}

static void rand_input(ic_tensor *x, ic_arena *a, int h, int w, uint64_t seed)
{
    ck_assert_int_eq(ic_tensor_alloc(x, a, 1, 3, h, w), 0);
    tu_rand_fill(x->data, ic_tensor_numel(x), &seed, -2.0f, 2.0f);
}

START_TEST(test_restores_bit_identical)
{
    char path[] = "/tmp/ic_test_tent_XXXXXX";
    char *text = tiny_model(path);
    ic_tent *t;
    ck_assert_msg(ic_tent_create(&t, path, NULL) == 0, "%s", ic_error_message());
    ic_pdl *plain;
    ck_assert_int_eq(ic_pdl_load(&plain, path, NULL), 0);
    ic_arena a;
    ic_arena_init(&a, 0, 0);
    const int sizes[2][2] = {{48, 64}, {40, 56}};
    for (int k = 0; k < 2; k++) {
        ic_arena_reset(&a);
        ic_tensor x;
        rand_input(&x, &a, sizes[k][0], sizes[k][1], 7 + (uint64_t)k);
        ic_calib_opts o = {.mode = IC_CALIB_TENT, .tent_steps = 2, .tent_lr = 1e-2f};
        ic_pdl_outputs o1, o2, ref;
        double e1 = 0, e2 = 0;
        ck_assert_msg(ic_tent_forward(t, &x, &o, 0, &a, &o1, &e1) == 0, "%s", ic_error_message());
        assert_same_as_file(t, path);
        ck_assert_int_eq(ic_tent_forward(t, &x, &o, 0, &a, &o2, &e2), 0);
        assert_same_as_file(t, path);
        size_t n = ic_tensor_numel(&o1.sem);
        ck_assert(o1.sem.h == x.h && o1.sem.w == x.w);
        /* episodic: the second request starts from the same weights */
        ck_assert(e1 == e2);
        ck_assert_int_eq(memcmp(o1.sem.data, o2.sem.data, n * sizeof(float)), 0);
        ck_assert_int_eq(memcmp(o1.offset.data, o2.offset.data, 2 * n / o1.sem.c * sizeof(float)),
                         0);
        /* adaptation changed the answer relative to plain tbn */
        ic_calib_opts tbn = {.mode = IC_CALIB_TBN};
        ck_assert_int_eq(ic_pdl_forward(plain, &x, &tbn, 0, &a, &ref), 0);
        ck_assert_int_ne(memcmp(o1.sem.data, ref.sem.data, n * sizeof(float)), 0);
        double ent_ref = ic_tent_entropy(&ref.sem, x.h, x.w, NULL);
        double ent_tent = ic_tent_entropy(&o1.sem, x.h, x.w, NULL);
        ck_assert_msg(fabs(ent_ref - e1) < 1e-4, "entropy before adaptation %g vs tbn %g", e1,
                      ent_ref);
        ck_assert_msg(ent_tent < ent_ref, "entropy %g -> %g", ent_ref, ent_tent);
    }
    ic_calib_opts bad = {.tent_steps = IC_TENT_MAX_STEPS + 1};
    ic_tensor x;
    rand_input(&x, &a, 32, 32, 1);
    ic_pdl_outputs out;
    ck_assert_int_eq(ic_tent_forward(t, &x, &bad, 0, &a, &out, NULL), IC_EINVAL);
    ic_arena_deinit(&a);
    ic_pdl_free(&plain);
    ic_tent_free(&t);
    ck_assert(t == NULL);
    unlink(path);
    free(text);
}
END_TEST

START_TEST(test_entropy_gradient)
{
    enum { N = 2, C = 4, HH = 3, WW = 5 };
    static float z[N * C * HH * WW], g[N * C * HH * WW];
    uint64_t st = 3;
    tu_rand_fill(z, N * C * HH * WW, &st, -3, 3);
    memset(g, 0, sizeof g);
    ic_tensor zt = ic_tensor_wrap(z, N, C, HH, WW), gt = ic_tensor_wrap(g, N, C, HH, WW);
    /* the top-left 2 x 4 window only */
    ic_tent_entropy(&zt, 2, 4, &gt);
    for (size_t i = 0; i < N * C * HH * WW; i++) {
        float keep = z[i];
        double h = 1e-3;
        z[i] = keep + (float)h;
        double up = ic_tent_entropy(&zt, 2, 4, NULL);
        z[i] = keep - (float)h;
        double dn = ic_tent_entropy(&zt, 2, 4, NULL);
        z[i] = keep;
        double fd = (up - dn) / (2 * h);
        ck_assert_msg(fabs(fd - g[i]) <= 1e-4 + 1e-3 * fabs(fd), "i %zu fd %g got %g", i, fd, g[i]);
    }
    /* uniform logits: entropy log C, zero gradient */
    float u[C] = {1, 1, 1, 1};
    ic_tensor ut = ic_tensor_wrap(u, 1, C, 1, 1);
    ck_assert_double_eq_tol(ic_tent_entropy(&ut, 1, 1, NULL), log(4.0), 1e-9);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("adapt/tent");
    TCase *tc = tcase_create("tent");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_restores_bit_identical);
    tcase_add_test(tc, test_entropy_gradient);
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
