/* conv2d backward: the fast paths (1x1, depthwise, im2col) against the
 * seven-loop reference on random shapes, and the reference against finite
 * differences. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "gradcheck.h"
#include "ops/conv2d.h"
#include "testutil.h"

typedef struct fd_ctx {
    ic_tensor x, y;
    float *w, *b, *r;
    ic_conv2d_params p;
} fd_ctx;

static double objective(void *v)
{
    fd_ctx *c = v;
    ic_conv2d_forward_ref(&c->y, &c->x, c->w, c->b, &c->p);
    return gc_dot(c->y.data, c->r, ic_tensor_numel(&c->y));
}

static ic_conv2d_params random_params(uint64_t *s, int *h, int *w, int *n)
{
    static const int ks[] = {1, 3, 5};
    ic_conv2d_params p = {0};
    int kind = tu_rand_int(s, 0, 2); /* 0 dense, 1 depthwise, 2 grouped */
    p.kh = p.kw = ks[tu_rand_int(s, 0, 2)];
    p.stride_h = p.stride_w = tu_rand_int(s, 1, 2);
    p.dil_h = p.dil_w = tu_rand_int(s, 1, 2);
    p.pad_h = p.pad_w = tu_rand_int(s, 0, p.kh / 2 * p.dil_h);
    if (tu_rand_int(s, 0, 3) == 0) { /* exercise the 1x1 direct path */
        p.kh = p.kw = 1;
        p.stride_h = p.stride_w = 1;
        p.pad_h = p.pad_w = 0;
        p.dil_h = p.dil_w = 1;
    }
    int g = kind == 2 ? 2 : 1;
    p.cin = kind == 1 ? tu_rand_int(s, 1, 6) : g * tu_rand_int(s, 1, 4);
    p.cout = kind == 1 ? p.cin : g * tu_rand_int(s, 1, 4);
    p.groups = kind == 1 ? p.cin : g;
    *h = tu_rand_int(s, p.kh * p.dil_h, 13);
    *w = tu_rand_int(s, p.kw * p.dil_w, 13);
    *n = tu_rand_int(s, 1, 2);
    return p;
}

START_TEST(test_fast_vs_reference)
{
    uint64_t s = 7;
    for (int it = 0; it < 60; it++) {
        int h, w, n, oh, ow;
        ic_conv2d_params p = random_params(&s, &h, &w, &n);
        ck_assert_int_eq(ic_conv2d_out_size(&p, h, w, &oh, &ow), 0);
        size_t nx = (size_t)n * p.cin * h * w, ny = (size_t)n * p.cout * oh * ow;
        size_t nw = (size_t)p.cout * (p.cin / p.groups) * p.kh * p.kw;
        float *x = malloc(nx * 4), *dy = malloc(ny * 4), *wt = malloc(nw * 4);
        float *dx1 = calloc(nx, 4), *dx2 = calloc(nx, 4), *dw1 = calloc(nw, 4), *dw2 = calloc(nw, 4);
        float *db1 = calloc((size_t)p.cout, 4), *db2 = calloc((size_t)p.cout, 4);
        tu_rand_fill(x, nx, &s, -1, 1);
        tu_rand_fill(dy, ny, &s, -1, 1);
        tu_rand_fill(wt, nw, &s, -1, 1);
        ic_tensor X = ic_tensor_wrap(x, n, p.cin, h, w), DY = ic_tensor_wrap(dy, n, p.cout, oh, ow);
        ic_tensor DX1 = ic_tensor_wrap(dx1, n, p.cin, h, w), DX2 = ic_tensor_wrap(dx2, n, p.cin, h, w);
        size_t wsn = ic_conv2d_backward_workspace_floats(&p, h, w);
        float *ws = malloc((wsn + 1) * 4);
        ck_assert_int_eq(ic_conv2d_backward(&DX1, dw1, db1, &DY, &X, wt, &p, ws), 0);
        ck_assert_int_eq(ic_conv2d_backward_ref(&DX2, dw2, db2, &DY, &X, wt, &p), 0);
        char label[64];
        snprintf(label, sizeof label, "case %d dx", it);
        ck_assert(tu_max_rel_error(dx1, dx2, nx, 1e-5, label) <= 1e-5);
        snprintf(label, sizeof label, "case %d dw", it);
        ck_assert(tu_max_rel_error(dw1, dw2, nw, 1e-5, label) <= 1e-5);
        ck_assert(tu_max_rel_error(db1, db2, (size_t)p.cout, 1e-5, "db") <= 1e-5);
        free(x), free(dy), free(wt), free(dx1), free(dx2), free(dw1), free(dw2), free(db1),
            free(db2), free(ws);
    }
}
END_TEST

START_TEST(test_reference_vs_finite_differences)
{
    uint64_t s = 11;
    for (int it = 0; it < 8; it++) {
        int h, w, n, oh, ow;
        fd_ctx c;
        c.p = random_params(&s, &h, &w, &n);
        ck_assert_int_eq(ic_conv2d_out_size(&c.p, h, w, &oh, &ow), 0);
        size_t nx = (size_t)n * c.p.cin * h * w, ny = (size_t)n * c.p.cout * oh * ow;
        size_t nw = (size_t)c.p.cout * (c.p.cin / c.p.groups) * c.p.kh * c.p.kw;
        float *x = malloc(nx * 4), *y = malloc(ny * 4);
        c.w = malloc(nw * 4);
        c.b = malloc((size_t)c.p.cout * 4);
        c.r = malloc(ny * 4);
        float *dx = calloc(nx, 4), *dw = calloc(nw, 4), *db = calloc((size_t)c.p.cout, 4);
        tu_rand_fill(x, nx, &s, -1, 1);
        tu_rand_fill(c.w, nw, &s, -1, 1);
        tu_rand_fill(c.b, (size_t)c.p.cout, &s, -1, 1);
        tu_rand_fill(c.r, ny, &s, -1, 1);
        c.x = ic_tensor_wrap(x, n, c.p.cin, h, w);
        c.y = ic_tensor_wrap(y, n, c.p.cout, oh, ow);
        ic_tensor DY = ic_tensor_wrap(c.r, n, c.p.cout, oh, ow), DX = ic_tensor_wrap(dx, n, c.p.cin, h, w);
        ck_assert_int_eq(ic_conv2d_backward_ref(&DX, dw, db, &DY, &c.x, c.w, &c.p), 0);
        ck_assert(gc_check(objective, &c, x, nx, dx, 1e-2f, 1, "conv dx") < 1e-3);
        ck_assert(gc_check(objective, &c, c.w, nw, dw, 1e-2f, 1, "conv dw") < 1e-3);
        ck_assert(gc_check(objective, &c, c.b, (size_t)c.p.cout, db, 1e-2f, 1, "conv db") < 1e-3);
        free(x), free(y), free(c.w), free(c.b), free(c.r), free(dx), free(dw), free(db);
    }
}
END_TEST

START_TEST(test_bad_shapes)
{
    float buf[64] = {0};
    ic_conv2d_params p = {.cin = 2, .cout = 2, .kh = 3, .kw = 3, .stride_h = 1, .stride_w = 1,
                          .pad_h = 1, .pad_w = 1, .dil_h = 1, .dil_w = 1, .groups = 1};
    ic_tensor x = ic_tensor_wrap(buf, 1, 2, 4, 4), dy = ic_tensor_wrap(buf, 1, 3, 4, 4);
    ck_assert_int_eq(ic_conv2d_backward(NULL, buf, NULL, &dy, &x, buf, &p, buf), IC_ESHAPE);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("conv2d_grad");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_fast_vs_reference);
    tcase_add_test(tc, test_reference_vs_finite_differences);
    tcase_add_test(tc, test_bad_shapes);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
