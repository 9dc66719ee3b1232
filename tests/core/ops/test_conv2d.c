/* Tests of core/ops/conv2d.c: PyTorch golden fixtures (gen_conv.py), every
 * fast path against the seven-loop reference on random shapes (dav1d
 * checkasm style: same inputs, element-wise tolerance), the tiled im2col
 * path, and bad parameters that must become error codes. */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/err.h"
#include "ops/conv2d.h"
#include "testutil.h"

#define RTOL 1e-4

static float *alloc_floats(size_t n)
{
    float *p = ic_malloc((n ? n : 1) * sizeof(float));
    ck_assert_ptr_nonnull(p);
    return p;
}

/* Runs forward (with a fresh workspace) and the reference on the same
 * inputs; returns the number of mismatches. */
static size_t check_against_ref(const ic_conv2d_params *p, int n, int h, int w, int with_bias,
                                uint64_t *rng, const char *label)
{
    int oh, ow;
    ck_assert_int_eq(ic_conv2d_out_size(p, h, w, &oh, &ow), 0);
    size_t nx = (size_t)n * p->cin * h * w, ny = (size_t)n * p->cout * oh * ow;
    size_t nw = (size_t)p->cout * (p->cin / p->groups) * p->kh * p->kw;
    float *x = alloc_floats(nx), *wt = alloc_floats(nw), *b = alloc_floats(p->cout);
    float *y = alloc_floats(ny), *yr = alloc_floats(ny);
    tu_rand_fill(x, nx, rng, -1.0f, 1.0f);
    tu_rand_fill(wt, nw, rng, -1.0f, 1.0f);
    tu_rand_fill(b, p->cout, rng, -1.0f, 1.0f);
    size_t nws = ic_conv2d_workspace_floats(p, h, w);
    float *ws = nws ? alloc_floats(nws) : NULL;
    ic_tensor tx = ic_tensor_wrap(x, n, p->cin, h, w);
    ic_tensor ty = ic_tensor_wrap(y, n, p->cout, oh, ow);
    ic_tensor tr = ic_tensor_wrap(yr, n, p->cout, oh, ow);
    const float *bias = with_bias ? b : NULL;
    ck_assert_msg(ic_conv2d_forward(&ty, &tx, wt, bias, p, ws) == 0, "%s: %s", label,
                  ic_error_message());
    ck_assert_int_eq(ic_conv2d_forward_ref(&tr, &tx, wt, bias, p), 0);
    size_t bad = tu_compare(y, yr, ny, RTOL, label, NULL);
    ic_free(x);
    ic_free(wt);
    ic_free(b);
    ic_free(y);
    ic_free(yr);
    ic_free(ws);
    return bad;
}

/* ------------------------------------------------------------------------
 * Golden fixtures */

static const char *const golden_cases[] = {
    "k3_s2_d2", "k3_p1_relu", "groups2",   "dw3_d2", "dw5",        "dw3_s2",   "k1_spatial1",
    "k3_spatial1", "k1",      "k1_s2",     "k5x3_mixed", "k7_s2_p3", "dw_mult2",
};

static const ic_st_tensor *field(const ic_safetensors *st, const char *cname, const char *f)
{
    char key[128];
    snprintf(key, sizeof key, "%s.%s", cname, f);
    return ic_st_find(st, key);
}

START_TEST(test_golden)
{
    ic_safetensors *st = tu_fixture("conv");
    const char *cname = golden_cases[_i];
    const ic_st_tensor *tp = field(st, cname, "params");
    const ic_st_tensor *tx = field(st, cname, "x"), *tw = field(st, cname, "w");
    const ic_st_tensor *tb = field(st, cname, "b"), *tyw = field(st, cname, "y");
    ck_assert_msg(tp && tx && tw && tyw, "fixture case %s incomplete", cname);
    ck_assert_int_eq((int)tp->nbytes, 12 * 4);
    int32_t v[12];
    memcpy(v, tp->raw, sizeof v);
    ic_conv2d_params p = {.cin = v[0], .cout = v[1], .kh = v[2], .kw = v[3],
                          .stride_h = v[4], .stride_w = v[5], .pad_h = v[6], .pad_w = v[7],
                          .dil_h = v[8], .dil_w = v[9], .groups = v[10], .relu = v[11]};
    ic_tensor x = ic_tensor_wrap((float *)tx->f32, (int)tx->shape[0], (int)tx->shape[1],
                                 (int)tx->shape[2], (int)tx->shape[3]);
    ic_tensor y = {0}, yr = {0};
    y.n = yr.n = (int)tyw->shape[0];
    y.c = yr.c = (int)tyw->shape[1];
    y.h = yr.h = (int)tyw->shape[2];
    y.w = yr.w = (int)tyw->shape[3];
    y.data = alloc_floats(tyw->numel);
    yr.data = alloc_floats(tyw->numel);
    size_t nws = ic_conv2d_workspace_floats(&p, x.h, x.w);
    float *ws = nws ? alloc_floats(nws) : NULL;
    const float *bias = tb ? tb->f32 : NULL;

    ck_assert_msg(ic_conv2d_forward(&y, &x, tw->f32, bias, &p, ws) == 0, "%s: %s", cname,
                  ic_error_message());
    double maxrel = 0;
    ck_assert_uint_eq(tu_compare(y.data, tyw->f32, tyw->numel, RTOL, cname, &maxrel), 0);
    ck_assert_int_eq(ic_conv2d_forward_ref(&yr, &x, tw->f32, bias, &p), 0);
    ck_assert_uint_eq(tu_compare(yr.data, tyw->f32, tyw->numel, RTOL, cname, NULL), 0);

    ic_free(y.data);
    ic_free(yr.data);
    ic_free(ws);
    ic_st_close(&st);
}
END_TEST

/* ------------------------------------------------------------------------
 * Random shapes, one group of cases per path */

/* A random divisor of c. */
static int rand_divisor(uint64_t *rng, int c)
{
    for (;;) {
        int g = tu_rand_int(rng, 1, c);
        if (c % g == 0)
            return g;
    }
}

enum { RANDOM_CASES = 60 };

START_TEST(test_random_1x1)
{
    uint64_t rng = 0x1111;
    for (int i = 0; i < RANDOM_CASES; i++) {
        int g = tu_rand_int(&rng, 1, 3);
        ic_conv2d_params p = {.cin = g * tu_rand_int(&rng, 1, 9),
                              .cout = g * tu_rand_int(&rng, 1, 9),
                              .kh = 1, .kw = 1, .stride_h = 1, .stride_w = 1,
                              .dil_h = tu_rand_int(&rng, 1, 3), .dil_w = 1, .groups = g,
                              .relu = tu_rand_int(&rng, 0, 1)};
        int n = tu_rand_int(&rng, 1, 2), h = tu_rand_int(&rng, 1, 17),
            w = tu_rand_int(&rng, 1, 17);
        ck_assert_uint_eq(ic_conv2d_workspace_floats(&p, h, w), 0);
        char label[64];
        snprintf(label, sizeof label, "1x1 case %d", i);
        ck_assert_uint_eq(check_against_ref(&p, n, h, w, tu_rand_int(&rng, 0, 1), &rng, label), 0);
    }
}
END_TEST

START_TEST(test_random_depthwise)
{
    uint64_t rng = 0x2222;
    int done = 0;
    while (done < RANDOM_CASES) {
        int c = tu_rand_int(&rng, 1, 12);
        ic_conv2d_params p = {.cin = c, .cout = c, .groups = c,
                              .kh = tu_rand_int(&rng, 1, 5), .kw = tu_rand_int(&rng, 1, 5),
                              .stride_h = tu_rand_int(&rng, 1, 2),
                              .stride_w = tu_rand_int(&rng, 1, 2),
                              .pad_h = tu_rand_int(&rng, 0, 4), .pad_w = tu_rand_int(&rng, 0, 4),
                              .dil_h = tu_rand_int(&rng, 1, 3), .dil_w = tu_rand_int(&rng, 1, 3),
                              .relu = tu_rand_int(&rng, 0, 1)};
        if (p.kh == 1 && p.kw == 1)
            p.pad_h = 1; /* keep it off the 1x1 path */
        int n = tu_rand_int(&rng, 1, 2), h = tu_rand_int(&rng, 1, 20),
            w = tu_rand_int(&rng, 1, 20), oh, ow;
        if (ic_conv2d_out_size(&p, h, w, &oh, &ow))
            continue;
        ck_assert_uint_eq(ic_conv2d_workspace_floats(&p, h, w), 0);
        char label[64];
        snprintf(label, sizeof label, "depthwise case %d", done);
        ck_assert_uint_eq(check_against_ref(&p, n, h, w, tu_rand_int(&rng, 0, 1), &rng, label), 0);
        done++;
    }
}
END_TEST

/* Random grouped convolutions that are neither 1x1 nor depthwise; the
 * path (shifted or im2col) follows from the shape, and each must get at
 * least RANDOM_CASES cases, the shifted path at least RANDOM_CASES with a
 * stride above 1 (its phase-split input); the thin path (small K) too. */
START_TEST(test_random_general)
{
    uint64_t rng = 0x3333;
    int done_shifted = 0, done_strided = 0, done_thin = 0, done_im2col = 0;
    while (done_shifted < RANDOM_CASES || done_strided < RANDOM_CASES ||
           done_thin < RANDOM_CASES || done_im2col < RANDOM_CASES) {
        int cin = tu_rand_int(&rng, 1, 24);
        int g = rand_divisor(&rng, cin);
        ic_conv2d_params p = {.cin = cin, .cout = g * tu_rand_int(&rng, 1, 6), .groups = g,
                              .kh = tu_rand_int(&rng, 1, 5), .kw = tu_rand_int(&rng, 1, 5),
                              .stride_h = tu_rand_int(&rng, 1, 3),
                              .stride_w = tu_rand_int(&rng, 1, 3),
                              .pad_h = tu_rand_int(&rng, 0, 3), .pad_w = tu_rand_int(&rng, 0, 3),
                              .dil_h = tu_rand_int(&rng, 1, 3), .dil_w = tu_rand_int(&rng, 1, 3),
                              .relu = tu_rand_int(&rng, 0, 1)};
        if (tu_rand_int(&rng, 0, 1)) /* half the draws: stride 1, shifted if wide enough */
            p.stride_h = p.stride_w = 1;
        if (p.groups == p.cin && p.cout == p.cin)
            p.cout *= 2; /* depthwise has its own test */
        if (p.kh == 1 && p.kw == 1 && p.stride_h == 1 && p.stride_w == 1)
            p.pad_w = 1; /* keep it off the 1x1 path */
        int n = tu_rand_int(&rng, 1, 2), h = tu_rand_int(&rng, 1, 20),
            w = tu_rand_int(&rng, 1, 48), oh, ow;
        if (ic_conv2d_out_size(&p, h, w, &oh, &ow))
            continue;
        const char *path = ic_conv2d_path_name(&p, h, w);
        const int strided = p.stride_h > 1 || p.stride_w > 1;
        int *done = !strcmp(path, "thin")      ? &done_thin
                    : strcmp(path, "shifted") ? &done_im2col
                    : strided                 ? &done_strided
                                              : &done_shifted;
        ck_assert_msg(!strcmp(path, "shifted") || !strcmp(path, "im2col") ||
                          !strcmp(path, "thin"),
                      "path %s", path);
        if (*done >= RANDOM_CASES)
            continue;
        ck_assert_uint_gt(ic_conv2d_workspace_floats(&p, h, w), 0);
        char label[64];
        snprintf(label, sizeof label, "%s%s case %d", path, strided ? " strided" : "", *done);
        ck_assert_uint_eq(check_against_ref(&p, n, h, w, tu_rand_int(&rng, 0, 1), &rng, label), 0);
        (*done)++;
    }
}
END_TEST

/* Inputs big enough that im2col runs in several row tiles (with a shorter
 * last tile) and, for a large K, in several channel chunks accumulated
 * into y; both must still match the reference. */
START_TEST(test_im2col_tiled)
{
    uint64_t rng = 0x4444;
    /* the wide dilation makes the shifted path compute too many junk columns */
    ic_conv2d_params p = {.cin = 64, .cout = 3, .kh = 3, .kw = 3, .stride_h = 1, .stride_w = 1,
                          .pad_h = 10, .pad_w = 10, .dil_h = 10, .dil_w = 10, .groups = 1,
                          .relu = 1};
    int h = 230, w = 60;
    ck_assert_str_eq(ic_conv2d_path_name(&p, h, w), "im2col");
    size_t nws = ic_conv2d_workspace_floats(&p, h, w);
    ck_assert_uint_le(nws, IC_CONV2D_WS_BUDGET);
    ck_assert_uint_lt(nws, (size_t)64 * 9 * h * w); /* really tiled */
    ck_assert_uint_eq(check_against_ref(&p, 1, h, w, 1, &rng, "row tiles"), 0);

    /* K = 1024*3: channel chunks of fewer than 1024 channels (a 1x3
     * kernel, so no tap row is skipped and the junk columns keep it off
     * the shifted path) */
    ic_conv2d_params q = {.cin = 1024, .cout = 2, .kh = 1, .kw = 3, .stride_h = 1,
                          .stride_w = 1, .pad_h = 0, .pad_w = 12, .dil_h = 12, .dil_w = 12,
                          .groups = 1, .relu = 0};
    ck_assert_str_eq(ic_conv2d_path_name(&q, 24, 40), "im2col");
    nws = ic_conv2d_workspace_floats(&q, 24, 40);
    ck_assert_uint_lt(nws, (size_t)1024 * 3 * 24 * 40);
    ck_assert_uint_eq(check_against_ref(&q, 1, 24, 40, 1, &rng, "channel chunks"), 0);
}
END_TEST

/* The shifted path over several row tiles (the output tile is narrower
 * than the image), with dilation. */
START_TEST(test_shifted_tiled)
{
    uint64_t rng = 0x5555;
    ic_conv2d_params p = {.cin = 8, .cout = 512, .kh = 3, .kw = 3, .stride_h = 1,
                          .stride_w = 1, .pad_h = 2, .pad_w = 2, .dil_h = 2, .dil_w = 2,
                          .groups = 1, .relu = 1};
    int h = 60, w = 120;
    ck_assert_str_eq(ic_conv2d_path_name(&p, h, w), "shifted");
    size_t padded_in = (size_t)8 * 64 * 124;
    ck_assert_uint_lt(ic_conv2d_workspace_floats(&p, h, w), padded_in + (size_t)512 * 60 * 124);
    ck_assert_uint_eq(check_against_ref(&p, 2, h, w, 1, &rng, "shifted tiles"), 0);

    /* ASPP on a small map: the outer tap rows read only padding for most
     * output rows and are skipped there */
    ic_conv2d_params a = {.cin = 16, .cout = 8, .kh = 3, .kw = 3, .stride_h = 1, .stride_w = 1,
                          .pad_h = 6, .pad_w = 6, .dil_h = 6, .dil_w = 6, .groups = 1,
                          .relu = 0};
    ck_assert_str_eq(ic_conv2d_path_name(&a, 8, 40), "shifted");
    ck_assert_uint_eq(check_against_ref(&a, 1, 8, 40, 1, &rng, "skipped tap rows"), 0);

    /* no tap row covers every output row: the tile starts from zero */
    ic_conv2d_params z = {.cin = 8, .cout = 5, .kh = 2, .kw = 1, .stride_h = 1, .stride_w = 1,
                          .pad_h = 1, .pad_w = 0, .dil_h = 1, .dil_w = 1, .groups = 1,
                          .relu = 0};
    ck_assert_str_eq(ic_conv2d_path_name(&z, 9, 33), "shifted");
    ck_assert_uint_eq(check_against_ref(&z, 2, 9, 33, 1, &rng, "no full tap"), 0);
}
END_TEST

/* ------------------------------------------------------------------------
 * Bad parameters */

static const ic_conv2d_params good = {.cin = 4, .cout = 6, .kh = 3, .kw = 3, .stride_h = 1,
                                      .stride_w = 1, .pad_h = 1, .pad_w = 1, .dil_h = 1,
                                      .dil_w = 1, .groups = 2, .relu = 0};

/* Parameters no real layer has, whose shifted-path workspace would pass
 * 2^64 floats: the size saturates instead of wrapping to something small. */
START_TEST(test_workspace_saturates)
{
    ic_conv2d_params p = {.cin = 1 << 30, .cout = 1 << 30, .kh = 4, .kw = 4, .stride_h = 2,
                          .stride_w = 2, .pad_h = 1, .pad_w = 1, .dil_h = 1, .dil_w = 1,
                          .groups = 1, .relu = 0};
    ck_assert_str_eq(ic_conv2d_path_name(&p, 64, 64), "shifted");
    ck_assert_uint_eq(ic_conv2d_workspace_floats(&p, 64, 64), SIZE_MAX);
}
END_TEST

START_TEST(test_bad_params)
{
    int oh, ow;
    ic_conv2d_params p;
    ck_assert_int_eq(ic_conv2d_out_size(&good, 5, 5, &oh, &ow), 0);
    ck_assert_int_eq(oh, 5);
    ck_assert_int_eq(ow, 5);

#define EXPECT_BAD(field, value, code)                                        \
    do {                                                                      \
        p = good;                                                             \
        p.field = (value);                                                    \
        ck_assert_int_eq(ic_conv2d_out_size(&p, 5, 5, &oh, &ow), (code));     \
        ck_assert_str_ne(ic_error_message(), "");                             \
        ck_assert_uint_eq(ic_conv2d_workspace_floats(&p, 5, 5), 0);           \
    } while (0)
    EXPECT_BAD(cin, 0, IC_EINVAL);
    EXPECT_BAD(cout, -3, IC_EINVAL);
    EXPECT_BAD(kh, 0, IC_EINVAL);
    EXPECT_BAD(kw, -1, IC_EINVAL);
    EXPECT_BAD(stride_h, 0, IC_EINVAL);
    EXPECT_BAD(stride_w, -2, IC_EINVAL);
    EXPECT_BAD(pad_h, -1, IC_EINVAL);
    EXPECT_BAD(dil_w, 0, IC_EINVAL);
    EXPECT_BAD(groups, 0, IC_EINVAL);
    EXPECT_BAD(groups, 3, IC_EINVAL);
    EXPECT_BAD(cout, 5, IC_EINVAL);
    EXPECT_BAD(kh, 8, IC_ESHAPE);
    EXPECT_BAD(dil_w, 1 << 30, IC_ESHAPE);
    EXPECT_BAD(pad_h, 1 << 30, IC_ESHAPE);
#undef EXPECT_BAD
    ck_assert_int_eq(ic_conv2d_out_size(&good, 0, 5, &oh, &ow), IC_EINVAL);
    ck_assert_int_eq(ic_conv2d_out_size(NULL, 5, 5, &oh, &ow), IC_EINVAL);
}
END_TEST

START_TEST(test_bad_tensors)
{
    float x[4 * 5 * 5], y[6 * 5 * 5], w[6 * 2 * 9], ws[512];
    memset(x, 0, sizeof x);
    memset(w, 0, sizeof w);
    ck_assert_uint_le(ic_conv2d_workspace_floats(&good, 5, 5), 512);
    ic_tensor tx = ic_tensor_wrap(x, 1, 4, 5, 5), ty = ic_tensor_wrap(y, 1, 6, 5, 5);

    /* y is left untouched on error */
    for (size_t i = 0; i < sizeof y / sizeof y[0]; i++)
        y[i] = 7.0f;
    ic_tensor bad = ty;
    bad.c = 5;
    ck_assert_int_eq(ic_conv2d_forward(&bad, &tx, w, NULL, &good, ws), IC_ESHAPE);
    bad = ty;
    bad.w = 4;
    ck_assert_int_eq(ic_conv2d_forward(&bad, &tx, w, NULL, &good, ws), IC_ESHAPE);
    bad = ty;
    bad.n = 2;
    ck_assert_int_eq(ic_conv2d_forward_ref(&bad, &tx, w, NULL, &good), IC_ESHAPE);
    bad = tx;
    bad.c = 3;
    ck_assert_int_eq(ic_conv2d_forward(&ty, &bad, w, NULL, &good, ws), IC_ESHAPE);
    ck_assert_int_eq(ic_conv2d_forward(&ty, &tx, w, NULL, &good, NULL), IC_EINVAL);
    ck_assert_int_eq(ic_conv2d_forward(&ty, &tx, NULL, NULL, &good, ws), IC_EINVAL);
    ck_assert_int_eq(ic_conv2d_forward(NULL, &tx, w, NULL, &good, ws), IC_EINVAL);
    ck_assert_int_eq(ic_conv2d_forward(&ty, &tx, w, NULL, NULL, ws), IC_EINVAL);
    bad = tx;
    bad.data = NULL;
    ck_assert_int_eq(ic_conv2d_forward(&ty, &bad, w, NULL, &good, ws), IC_EINVAL);
    /* in place is refused: y would overwrite x while it is read */
    ic_tensor alias = ic_tensor_wrap(y, 1, 4, 5, 5);
    ic_conv2d_params sq = good;
    sq.cout = 4;
    ck_assert_int_eq(ic_conv2d_forward(&alias, &alias, w, NULL, &sq, ws), IC_EINVAL);
    for (size_t i = 0; i < sizeof y / sizeof y[0]; i++)
        ck_assert(y[i] == 7.0f);

    ck_assert_int_eq(ic_conv2d_forward(&ty, &tx, w, NULL, &good, ws), 0);
    for (size_t i = 0; i < sizeof y / sizeof y[0]; i++)
        ck_assert(y[i] == 0.0f);
}
END_TEST

/* A depthwise conv big enough to split its planes over threads. */
START_TEST(test_depthwise_threaded)
{
    uint64_t rng = 0xD3D3;
    ic_conv2d_params p = {.cin = 12, .cout = 12, .kh = 3, .kw = 3, .stride_h = 1,
                          .stride_w = 1, .pad_h = 2, .pad_w = 2, .dil_h = 2, .dil_w = 2,
                          .groups = 12, .relu = 1};
    ck_assert_str_eq(ic_conv2d_path_name(&p, 64, 96), "depthwise");
    ck_assert_uint_eq(check_against_ref(&p, 2, 64, 96, 1, &rng, "depthwise threaded"), 0);
    /* ASPP-like: a dilation so wide that most of each row is edge (some
     * kernel column reads padding), where each tap adds a short row */
    ic_conv2d_params q = p;
    q.pad_h = q.pad_w = q.dil_h = q.dil_w = 12;
    ck_assert_uint_eq(check_against_ref(&q, 1, 20, 40, 1, &rng, "depthwise wide edges"), 0);
    q.pad_h = q.pad_w = q.dil_h = q.dil_w = 3;
    q.kh = q.kw = 5;
    ck_assert_uint_eq(check_against_ref(&q, 1, 20, 40, 0, &rng, "depthwise 5x5 d3"), 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("conv2d");
    TCase *tc = tcase_create("golden");
    tcase_add_loop_test(tc, test_golden, 0, (int)(sizeof golden_cases / sizeof golden_cases[0]));
    suite_add_tcase(s, tc);
    tc = tcase_create("random");
    tcase_add_test(tc, test_random_1x1);
    tcase_add_test(tc, test_random_depthwise);
    tcase_add_test(tc, test_depthwise_threaded);
    tcase_add_test(tc, test_random_general);
    tcase_add_test(tc, test_shifted_tiled);
    tcase_add_test(tc, test_im2col_tiled);
    suite_add_tcase(s, tc);
    tc = tcase_create("errors");
    tcase_add_test(tc, test_bad_params);
    tcase_add_test(tc, test_workspace_saturates);
    tcase_add_test(tc, test_bad_tensors);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
