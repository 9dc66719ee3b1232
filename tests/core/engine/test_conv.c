/* Tests of core/engine/conv.c and its paths (conv_direct.c, conv_wino.c,
 * conv_dw.c): random shapes, channel counts that are not multiples of 16,
 * every write-out option (pending input affine, scale/shift, residual,
 * ReLU, statistics), 1 and 2 threads, against ic_conv2d_forward_ref on the
 * NCHW tensors. The direct and depthwise paths must agree to float
 * rounding; Winograd F(4x4, 3x3) has its own, measured, tolerance. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/err.h"
#include "engine/conv.h"
#include "ops/conv2d.h"
#include "testutil.h"

/* max |got - want| / max |want| allowed: direct products (float sums in a
 * different order than the double reference), and Winograd F(4x4, 3x3). */
#define TOL_EXACT 2e-6
#define TOL_WINO 1e-5

/* pend: 0 none, 1 a pending affine then ReLU, 2 the affine alone; res: 0
 * none, 1 a residual, 2 the residual held in y (where the path allows it,
 * else the forward must refuse it); xres: an input residual (x_res) 0
 * none, 1 plain, 2 with an affine, 3 with an affine then ReLU (1x1
 * stride-1 convs; the others must refuse it) */
typedef struct opts {
    int pend, scale, res, relu, stats, threads, flags, xres;
} opts;

static float *blk_alloc(ic_tensor *t, int n, int c, int h, int w)
{
    size_t nf = ic_blk_floats(n, c, h, w);
    float *d = ic_malloc_aligned(nf * sizeof *d);
    ck_assert_ptr_nonnull(d);
    for (size_t i = 0; i < nf; i++)
        d[i] = NAN; /* anything read but not written shows up */
    *t = ic_tensor_wrap(d, n, c, h, w);
    return d;
}

/* One case; returns the measured relative error. */
static double run_case(const ic_conv2d_params *p, int n, int h, int w, const opts *op,
                       uint64_t *rng, const char *what)
{
    int oh, ow;
    ck_assert_int_eq(ic_conv2d_out_size(p, h, w, &oh, &ow), 0);
    const int kk = p->kh * p->kw, gin = p->cin / p->groups;
    float *wt = malloc((size_t)p->cout * gin * kk * sizeof *wt);
    float *bias = malloc((size_t)p->cout * sizeof *bias);
    tu_rand_fill(wt, (size_t)p->cout * gin * kk, rng, -1.0f, 1.0f);
    tu_rand_fill(bias, (size_t)p->cout, rng, -0.5f, 0.5f);
    ic_eng_conv cv;
    ck_assert_int_eq(ic_eng_conv_pack(&cv, p, wt, bias, op->flags), 0);
    const int cinb = ic_blk_cb(p->cin), coutb = ic_blk_cb(p->cout);
    const int c16i = cinb * 16, c16o = coutb * 16, o32 = cv.pairs * 32;

    /* NCHW input, the pending affine, and the input the reference sees */
    ic_tensor xn = ic_tensor_wrap(malloc((size_t)n * p->cin * h * w * sizeof(float)), n, p->cin, h, w);
    tu_rand_fill(xn.data, ic_tensor_numel(&xn), rng, -1.0f, 1.0f);
    float *pa = calloc((size_t)n * c16i, sizeof *pa), *pb = calloc((size_t)n * c16i, sizeof *pb);
    for (int i = 0; i < n; i++)
        for (int c = 0; c < p->cin; c++) {
            pa[(size_t)i * c16i + c] = tu_rand_uniform(rng, -2.0f, 2.0f);
            pb[(size_t)i * c16i + c] = tu_rand_uniform(rng, -0.5f, 0.5f);
        }
    ic_blk_pend pend = {pa, pb, op->pend == 1};
    /* the input residual and its affine */
    const int xres = op->xres && ic_eng_conv_applies_in_place(&cv);
    ic_tensor rxn = ic_tensor_wrap(malloc(ic_tensor_numel(&xn) * sizeof(float)), n, p->cin, h, w);
    tu_rand_fill(rxn.data, ic_tensor_numel(&rxn), rng, -1.0f, 1.0f);
    float *ra = calloc((size_t)n * c16i, sizeof *ra), *rbi = calloc((size_t)n * c16i, sizeof *rbi);
    for (size_t i = 0; i < (size_t)n * c16i; i++)
        if (i % c16i < (size_t)p->cin) {
            ra[i] = tu_rand_uniform(rng, -2.0f, 2.0f);
            rbi[i] = tu_rand_uniform(rng, -0.5f, 0.5f);
        }
    ic_blk_pend rpend = {ra, rbi, op->xres == 3};
    ic_tensor xr = ic_tensor_wrap(malloc(ic_tensor_numel(&xn) * sizeof(float)), n, p->cin, h, w);
    for (int i = 0; i < n; i++)
        for (int c = 0; c < p->cin; c++)
            for (size_t k = 0; k < (size_t)h * w; k++) {
                float v = ic_tensor_at(&xn, i, c)[k];
                if (op->pend) {
                    v = v * pa[(size_t)i * c16i + c] + pb[(size_t)i * c16i + c];
                    if (op->pend == 1)
                        v = v > 0.0f ? v : 0.0f;
                }
                if (xres) {
                    float r = ic_tensor_at(&rxn, i, c)[k];
                    if (op->xres >= 2) {
                        r = r * ra[(size_t)i * c16i + c] + rbi[(size_t)i * c16i + c];
                        if (op->xres == 3)
                            r = r > 0.0f ? r : 0.0f;
                    }
                    v += r;
                    v = v > 0.0f ? v : 0.0f;
                }
                ic_tensor_at(&xr, i, c)[k] = v;
            }
    /* reference raw conv (no bias) */
    ic_tensor raw = ic_tensor_wrap(malloc((size_t)n * p->cout * oh * ow * sizeof(float)), n, p->cout, oh, ow);
    ic_conv2d_params pr = *p;
    pr.relu = 0;
    ck_assert_int_eq(ic_conv2d_forward_ref(&raw, &xr, wt, NULL, &pr), 0);

    /* write-out parameters */
    float *sc = calloc((size_t)o32, sizeof *sc), *sb = calloc((size_t)o32, sizeof *sb);
    float *shift = calloc((size_t)o32, sizeof *shift);
    for (int c = 0; c < p->cout; c++) {
        sc[c] = tu_rand_uniform(rng, 0.25f, 2.0f);
        sb[c] = tu_rand_uniform(rng, -1.0f, 1.0f);
        shift[c] = tu_rand_uniform(rng, -0.5f, 0.5f);
    }
    ic_tensor resn = ic_tensor_wrap(malloc(ic_tensor_numel(&raw) * sizeof(float)), n, p->cout, oh, ow);
    tu_rand_fill(resn.data, ic_tensor_numel(&resn), rng, -1.0f, 1.0f);
    ic_tensor xb, yb, rb, rxb;
    float *xbd = blk_alloc(&xb, n, p->cin, h, w), *ybd = blk_alloc(&yb, n, p->cout, oh, ow);
    float *rbd = blk_alloc(&rb, n, p->cout, oh, ow), *rxbd = blk_alloc(&rxb, n, p->cin, h, w);
    ic_blk_from_nchw(&xb, &xn);
    ic_blk_from_nchw(&rb, &resn);
    ic_blk_from_nchw(&rxb, &rxn);
    double *stats = calloc((size_t)n * 2 * c16o, sizeof *stats);
    ic_eng_out o = {.scale = op->scale ? sc : NULL, .bias = op->scale ? sb : NULL,
                    .relu = op->relu, .res = op->res ? &rb : NULL,
                    .stats = op->stats ? stats : NULL, .shift = shift};
    size_t wsn = ic_eng_conv_ws_floats(&cv, n, h, w, op->threads, op->flags);
    float *ws = ic_malloc_aligned((wsn + 16) * sizeof *ws);
    if (op->xres) {
        ic_eng_out ox = o;
        ox.x_res = &rxb;
        ox.x_res_pend = op->xres >= 2 ? &rpend : NULL;
        if (xres) {
            o = ox;
        } else {
            ck_assert_int_eq(ic_eng_conv_forward(&cv, &yb, &xb, op->pend ? &pend : NULL, &ox, ws,
                                                 op->threads, op->flags),
                             IC_EINVAL);
        }
    }
    if (op->res == 2) {
        o.res = &yb;
        if (ic_eng_conv_res_in_place(&cv, h, w, op->flags)) {
            ic_blk_from_nchw(&yb, &resn);
        } else {
            ck_assert_int_eq(ic_eng_conv_forward(&cv, &yb, &xb, op->pend ? &pend : NULL, &o, ws,
                                                 op->threads, op->flags),
                             IC_EINVAL);
            o.res = &rb;
        }
    }
    ck_assert_int_eq(ic_eng_conv_forward(&cv, &yb, &xb, op->pend ? &pend : NULL, &o, ws,
                                         op->threads, op->flags),
                     0);
    /* an im2col conv reads the NCHW input itself to the same bits */
    if (ic_eng_conv_im2col(&cv) && op->res != 2) {
        ic_tensor y2;
        float *y2d = blk_alloc(&y2, n, p->cout, oh, ow);
        double *stats2 = calloc((size_t)n * 2 * c16o, sizeof *stats2);
        ic_eng_out o2 = o;
        o2.stats = op->stats ? stats2 : NULL;
        ck_assert_int_eq(ic_eng_conv_forward(&cv, &y2, &xn, op->pend ? &pend : NULL, &o2, ws,
                                             op->threads, op->flags | IC_ENG_X_NCHW),
                         0);
        ck_assert_msg(!memcmp(y2d, ybd, ic_blk_floats(n, p->cout, oh, ow) * sizeof *y2d),
                      "%s: NCHW input differs from blocked", what);
        ck_assert(!memcmp(stats2, stats, (size_t)n * 2 * c16o * sizeof *stats));
        ic_free_aligned(y2d);
        free(stats2);
    } else if (!ic_eng_conv_im2col(&cv)) {
        ck_assert_int_eq(ic_eng_conv_forward(&cv, &yb, &xn, NULL, &o, ws, op->threads,
                                             op->flags | IC_ENG_X_NCHW),
                         IC_EINVAL);
    }
    /* expected write-out */
    ic_tensor want = ic_tensor_wrap(malloc(ic_tensor_numel(&raw) * sizeof(float)), n, p->cout, oh, ow);
    for (int i = 0; i < n; i++)
        for (int c = 0; c < p->cout; c++)
            for (size_t k = 0; k < (size_t)oh * ow; k++) {
                double v = ic_tensor_at(&raw, i, c)[k];
                v = op->scale ? v * sc[c] + sb[c] : v + bias[c];
                if (op->res)
                    v += ic_tensor_at(&resn, i, c)[k];
                if (op->relu && v < 0)
                    v = 0;
                ic_tensor_at(&want, i, c)[k] = (float)v;
            }
    ic_tensor got = ic_tensor_wrap(malloc(ic_tensor_numel(&raw) * sizeof(float)), n, p->cout, oh, ow);
    ic_blk_to_nchw(&got, &yb, NULL);
    char label[256];
    snprintf(label, sizeof label, "%s (%s)", what, ic_eng_conv_path_name(&cv, h, w, op->flags));
    double err = tu_max_rel_error(got.data, want.data, ic_tensor_numel(&want), 1.0, label);
    /* padded output lanes stay zero */
    for (int i = 0; i < n; i++)
        for (size_t k = 0; k < (size_t)oh * ow; k++)
            for (int c = p->cout; c < c16o; c++)
                ck_assert_msg(ic_blk_at(&yb, i, coutb - 1)[k * 16 + c % 16] == 0.0f,
                              "%s: padded lane %d is %g", label, c,
                              ic_blk_at(&yb, i, coutb - 1)[k * 16 + c % 16]);
    if (op->stats) {
        const double tol = (op->flags & IC_ENG_EXACT) || cv.u == NULL ? 1e-5 : 1e-4;
        for (int i = 0; i < n; i++)
            for (int c = 0; c < p->cout; c++) {
                double s1 = 0, s2 = 0, scale = 1;
                for (size_t k = 0; k < (size_t)oh * ow; k++) {
                    double d = ic_tensor_at(&raw, i, c)[k] - shift[c];
                    s1 += d;
                    s2 += d * d;
                    scale += fabs(d);
                }
                const double *gs = stats + (size_t)i * 2 * c16o;
                ck_assert_msg(fabs(gs[c] - s1) <= tol * scale, "%s: sum %d: %g vs %g", label, c,
                              gs[c], s1);
                ck_assert_msg(fabs(gs[c16o + c] - s2) <= tol * (s2 + 1), "%s: sumsq %d: %g vs %g",
                              label, c, gs[c16o + c], s2);
            }
    }
    /* a 1x1 stride-1 conv applies the pending affine (and adds the input
     * residual) to its input in place */
    if ((op->pend || xres) && p->kh == 1 && p->kw == 1 && p->stride_h == 1 && p->stride_w == 1 &&
        p->pad_h == 0 && p->pad_w == 0 && p->groups == 1) {
        ic_tensor xa = ic_tensor_wrap(malloc(ic_tensor_numel(&xn) * sizeof(float)), n, p->cin, h, w);
        ic_blk_to_nchw(&xa, &xb, NULL);
        tu_max_rel_error(xa.data, xr.data, ic_tensor_numel(&xr), 1e-6, "input applied in place");
        free(xa.data);
    }
    ic_free_aligned(ws);
    ic_free_aligned(xbd);
    ic_free_aligned(ybd);
    ic_free_aligned(rbd);
    ic_free_aligned(rxbd);
    free(rxn.data);
    free(ra);
    free(rbi);
    free(stats);
    free(got.data);
    free(want.data);
    free(resn.data);
    free(sc);
    free(sb);
    free(shift);
    free(raw.data);
    free(xr.data);
    free(pa);
    free(pb);
    free(xn.data);
    free(wt);
    free(bias);
    ic_eng_conv_free(&cv);
    return err;
}

static ic_conv2d_params P(int cin, int cout, int k, int s, int pad, int d, int groups)
{
    ic_conv2d_params p = {.cin = cin, .cout = cout, .kh = k, .kw = k, .stride_h = s,
                          .stride_w = s, .pad_h = pad, .pad_w = pad, .dil_h = d, .dil_w = d,
                          .groups = groups};
    return p;
}

static void check(const ic_conv2d_params *p, int n, int h, int w, const opts *op, uint64_t *rng,
                  double tol, const char *what)
{
    double e = run_case(p, n, h, w, op, rng, what);
    if (getenv("IC_TEST_VERBOSE"))
        printf("%-60s %.3g\n", what, e);
    ck_assert_msg(e <= tol, "%s: error %.3g above %.3g", what, e, tol);
}

/* Every option on every path, fixed shapes that hit the edge cases. */
START_TEST(test_paths_and_options)
{
    uint64_t rng = 7;
    const struct {
        ic_conv2d_params p;
        int h, w;
        const char *name;
    } cases[] = {
        {P(19, 37, 1, 1, 0, 1, 1), 7, 11, "1x1"},
        {P(33, 20, 1, 2, 0, 1, 1), 9, 13, "1x1 stride 2"},
        {P(17, 31, 3, 1, 1, 1, 1), 13, 10, "3x3"},
        {P(16, 64, 3, 2, 1, 1, 1), 15, 17, "3x3 stride 2"},
        {P(3, 16, 3, 2, 1, 1, 1), 16, 20, "stem 3x3 stride 2, 3 channels"},
        {P(20, 18, 3, 1, 2, 2, 1), 14, 19, "3x3 dilation 2"},
        {P(8, 8, 3, 1, 3, 3, 1), 11, 9, "3x3 dilation 3"},
        {P(24, 24, 5, 1, 2, 1, 24), 12, 21, "depthwise 5x5"},
        {P(20, 20, 3, 1, 1, 1, 20), 10, 23, "depthwise 3x3"},
        {P(40, 40, 3, 1, 6, 6, 40), 9, 30, "depthwise 3x3 dilation 6"},
        {P(18, 18, 3, 2, 1, 1, 18), 13, 15, "depthwise 3x3 stride 2"},
        {P(6, 10, 5, 1, 2, 1, 1), 9, 9, "5x5"},
    };
    const opts all[] = {
        {0, 0, 0, 0, 0, 1, IC_ENG_EXACT, 0}, {1, 1, 1, 1, 1, 2, IC_ENG_EXACT, 0},
        {1, 0, 0, 1, 1, 1, 0, 0},            {0, 1, 1, 1, 0, 2, 0, 0},
        {1, 1, 0, 0, 1, 3, 0, 0},            {2, 0, 1, 0, 1, 2, 0, 0},
        {2, 1, 0, 1, 0, 1, IC_ENG_EXACT, 0}, {0, 1, 2, 1, 1, 2, IC_ENG_EXACT, 0},
        {1, 0, 2, 1, 0, 1, 0, 0},            {2, 1, 0, 0, 1, 2, 0, 1},
        {2, 0, 1, 1, 0, 1, IC_ENG_EXACT, 2}, {0, 1, 2, 1, 1, 2, 0, 3},
        {1, 1, 0, 1, 1, 1, 0, 2},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        for (size_t k = 0; k < sizeof all / sizeof *all; k++) {
            char what[128];
            snprintf(what, sizeof what, "%s, options %zu", cases[i].name, k);
            const int wino = !(all[k].flags & IC_ENG_EXACT) && cases[i].p.kh == 3 &&
                             cases[i].p.stride_h == 1 && cases[i].p.groups == 1;
            check(&cases[i].p, 2, cases[i].h, cases[i].w, &all[k], &rng,
                  wino ? TOL_WINO : TOL_EXACT, what);
        }
}
END_TEST

/* Random shapes of every kind (sizes around the 14-pixel register tile and
 * the 16-channel blocks). */
START_TEST(test_random_shapes)
{
    uint64_t rng = 12345;
    for (int it = 0; it < 60; it++) {
        const int kind = it % 5;
        int cin = tu_rand_int(&rng, 1, 70), cout = tu_rand_int(&rng, 1, 70);
        int k = 1, s = 1, d = 1, g = 1;
        if (kind == 1)
            s = 2;
        if (kind == 2 || kind == 3) {
            k = 3;
            d = tu_rand_int(&rng, 1, 3);
            s = kind == 3 ? 2 : 1;
        }
        if (kind == 4) {
            k = tu_rand_int(&rng, 1, 3) * 2 + 1;
            cout = cin;
            g = cin;
            d = tu_rand_int(&rng, 1, 4);
            s = tu_rand_int(&rng, 1, 2);
        }
        ic_conv2d_params p = P(cin, cout, k, s, d * (k / 2), d, g);
        const int h = tu_rand_int(&rng, d * (k - 1) + 1, 33), w = tu_rand_int(&rng, d * (k - 1) + 1, 40);
        opts op = {tu_rand_int(&rng, 0, 2), tu_rand_int(&rng, 0, 1), tu_rand_int(&rng, 0, 2),
                   tu_rand_int(&rng, 0, 1), tu_rand_int(&rng, 0, 1), tu_rand_int(&rng, 1, 2),
                   tu_rand_int(&rng, 0, 1) ? IC_ENG_EXACT : 0, tu_rand_int(&rng, 0, 3)};
        char what[160];
        snprintf(what, sizeof what, "random %d: %d->%d k%d s%d d%d g%d %dx%d", it, cin, cout, k, s,
                 d, g, h, w);
        const int wino = !(op.flags & IC_ENG_EXACT) && k == 3 && s == 1 && g == 1;
        check(&p, tu_rand_int(&rng, 1, 2), h, w, &op, &rng, wino ? TOL_WINO : TOL_EXACT, what);
    }
}
END_TEST

START_TEST(test_unsupported_and_shapes)
{
    ic_conv2d_params p = P(8, 8, 3, 1, 1, 1, 2);
    float wt[8 * 4 * 9] = {0};
    ic_eng_conv cv;
    ck_assert_int_eq(ic_eng_conv_pack(&cv, &p, wt, NULL, 0), IC_EUNSUPPORTED);
    p = P(8, 8, 3, 1, 1, 1, 1);
    float w2[8 * 8 * 9] = {0};
    ck_assert_int_eq(ic_eng_conv_pack(&cv, &p, w2, NULL, 0), 0);
    ic_tensor x, y;
    float *xd = blk_alloc(&x, 1, 8, 5, 5), *yd = blk_alloc(&y, 1, 8, 4, 5);
    ic_eng_out o = {0};
    ck_assert_int_eq(ic_eng_conv_forward(&cv, &y, &x, NULL, &o, NULL, 1, 0), IC_ESHAPE);
    /* a 3x3 stride-1 layer packed for Winograd keeps no gemm copy, so it
     * cannot run exact; packed exact it has no Winograd; both on request */
    ck_assert_ptr_nonnull(cv.u);
    ck_assert_ptr_null(cv.w);
    ic_tensor y5;
    float *y5d = blk_alloc(&y5, 1, 8, 5, 5);
    float *ws = ic_malloc_aligned(ic_eng_conv_ws_floats(&cv, 1, 5, 5, 1, 0) * sizeof *ws);
    ck_assert_int_eq(ic_eng_conv_forward(&cv, &y5, &x, NULL, &o, ws, 1, 0), 0);
    ck_assert_int_eq(ic_eng_conv_forward(&cv, &y5, &x, NULL, &o, ws, 1, IC_ENG_EXACT), IC_EINVAL);
    ic_eng_conv_free(&cv);
    ck_assert_int_eq(ic_eng_conv_pack(&cv, &p, w2, NULL, IC_ENG_EXACT), 0);
    ck_assert_ptr_null(cv.u);
    ck_assert_ptr_nonnull(cv.w);
    ic_eng_conv_free(&cv);
    ck_assert_int_eq(ic_eng_conv_pack(&cv, &p, w2, NULL, IC_ENG_PACK_BOTH), 0);
    ck_assert_ptr_nonnull(cv.u);
    ck_assert_ptr_nonnull(cv.w);
    ic_free_aligned(ws);
    ic_free_aligned(y5d);
    ic_eng_conv_free(&cv);
    /* a residual in y's place: the gemm path with one K chunk only */
    static float w3[1100 * 16];
    const struct {
        ic_conv2d_params p;
        int flags, ok;
    } inplace[] = {
        {P(64, 16, 1, 1, 0, 1, 1), 0, 1},      {P(1024, 16, 1, 1, 0, 1, 1), 0, 1},
        {P(1100, 16, 1, 1, 0, 1, 1), 0, 0},    /* two K chunks */
        {P(16, 16, 3, 1, 1, 1, 1), 0, 0},      /* Winograd */
        {P(16, 16, 3, 1, 1, 1, 1), IC_ENG_EXACT, 1},
        {P(16, 16, 3, 1, 1, 1, 16), 0, 0},     /* depthwise */
    };
    for (size_t i = 0; i < sizeof inplace / sizeof *inplace; i++) {
        ck_assert_int_eq(ic_eng_conv_pack(&cv, &inplace[i].p, w3, NULL, inplace[i].flags), 0);
        ck_assert_int_eq(ic_eng_conv_res_in_place(&cv, 8, 8, inplace[i].flags), inplace[i].ok);
        ic_eng_conv_free(&cv);
    }
    ic_free_aligned(xd);
    ic_free_aligned(yd);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("engine_conv");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_paths_and_options);
    tcase_add_test(tc, test_random_shapes);
    tcase_add_test(tc, test_unsupported_and_shapes);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
