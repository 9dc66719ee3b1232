/* Tests of core/engine/eops.c and blk.c: every op on blocked tensors, with
 * and without pending affines on its inputs, on random shapes (channel
 * counts that are not multiples of 16, concat parts that do not start on a
 * block), 1 and 2 threads, against the NCHW ops of core/ops run on the
 * affine-applied NCHW tensors. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/err.h"
#include "engine/blk.h"
#include "engine/eops.h"
#include "ops/add.h"
#include "ops/concat.h"
#include "ops/pool.h"
#include "ops/resize.h"
#include "testutil.h"

#define TOL 1e-6

/* One test tensor: NCHW values, its blocked copy, a pending affine and the
 * NCHW tensor with the affine applied (what the NCHW op sees). */
typedef struct tt {
    ic_tensor nchw, blk, applied;
    ic_blk_pend pend;
    int has_pend;
} tt;

static ic_tensor nchw_new(int n, int c, int h, int w)
{
    float *d = malloc((size_t)n * c * h * w * sizeof *d);
    ck_assert_ptr_nonnull(d);
    return ic_tensor_wrap(d, n, c, h, w);
}

static ic_tensor blk_new(int n, int c, int h, int w)
{
    size_t nf = ic_blk_floats(n, c, h, w);
    float *d = ic_malloc_aligned(nf * sizeof *d);
    ck_assert_ptr_nonnull(d);
    for (size_t i = 0; i < nf; i++)
        d[i] = NAN; /* anything read but not written shows up */
    return ic_tensor_wrap(d, n, c, h, w);
}

static void tt_make(tt *t, int n, int c, int h, int w, int pend, uint64_t *rng)
{
    memset(t, 0, sizeof *t);
    t->nchw = nchw_new(n, c, h, w);
    tu_rand_fill(t->nchw.data, ic_tensor_numel(&t->nchw), rng, -1.0f, 1.0f);
    t->blk = blk_new(n, c, h, w);
    ic_blk_from_nchw(&t->blk, &t->nchw);
    t->applied = nchw_new(n, c, h, w);
    const int c16 = ic_blk_cb(c) * 16;
    float *a = calloc((size_t)n * c16, sizeof *a), *b = calloc((size_t)n * c16, sizeof *b);
    ck_assert(a && b);
    for (int i = 0; i < n; i++)
        for (int k = 0; k < c; k++) {
            a[(size_t)i * c16 + k] = tu_rand_uniform(rng, -2.0f, 2.0f);
            b[(size_t)i * c16 + k] = tu_rand_uniform(rng, -0.5f, 0.5f);
        }
    t->pend = (ic_blk_pend){a, b, tu_rand_int(rng, 0, 1)};
    t->has_pend = pend;
    for (int i = 0; i < n; i++)
        for (int k = 0; k < c; k++)
            for (size_t p = 0; p < (size_t)h * w; p++) {
                float v = ic_tensor_at(&t->nchw, i, k)[p];
                if (pend) {
                    v = v * a[(size_t)i * c16 + k] + b[(size_t)i * c16 + k];
                    if (t->pend.relu && !(v > 0.0f))
                        v = 0.0f;
                }
                ic_tensor_at(&t->applied, i, k)[p] = v;
            }
}

/* max |got - want| / max |want| must be within TOL (a NaN fails too). */
static void close_to(const float *got, const float *want, size_t n, const char *what)
{
    const double e = tu_max_rel_error(got, want, n, TOL, what);
    ck_assert_msg(e <= TOL, "%s: error %.3g", what, e);
}

static const ic_blk_pend *tt_pend(const tt *t)
{
    return t->has_pend ? &t->pend : NULL;
}

static void tt_free(tt *t)
{
    free(t->nchw.data);
    free(t->applied.data);
    ic_free_aligned(t->blk.data);
    free((void *)t->pend.scale);
    free((void *)t->pend.bias);
}

/* Blocked `got` against NCHW `want`; the spare lanes of the last block must be 0. */
static void expect_blk(const ic_tensor *got, const ic_tensor *want, const char *what)
{
    ck_assert(ic_tensor_same_shape(got, want));
    ic_tensor g = nchw_new(got->n, got->c, got->h, got->w);
    ic_blk_to_nchw(&g, got, NULL);
    close_to(g.data, want->data, ic_tensor_numel(want), what);
    const int cb = ic_blk_cb(got->c) - 1;
    for (int n = 0; n < got->n; n++)
        for (size_t p = 0; p < (size_t)got->h * got->w; p++)
            for (int l = got->c - cb * 16; l < 16; l++)
                ck_assert_msg(ic_blk_at(got, n, cb)[p * 16 + (size_t)l] == 0.0f,
                              "%s: spare lane %d is %g", what, l,
                              ic_blk_at(got, n, cb)[p * 16 + (size_t)l]);
    free(g.data);
}

START_TEST(test_layout_roundtrip)
{
    uint64_t rng = 3;
    for (int it = 0; it < 20; it++) {
        tt a;
        tt_make(&a, tu_rand_int(&rng, 1, 2), tu_rand_int(&rng, 1, 40), tu_rand_int(&rng, 1, 9),
                tu_rand_int(&rng, 1, 11), 1, &rng);
        /* to NCHW with the affine, and the affine in place */
        ic_tensor g = nchw_new(a.nchw.n, a.nchw.c, a.nchw.h, a.nchw.w);
        ic_blk_to_nchw(&g, &a.blk, &a.pend);
        close_to(g.data, a.applied.data, ic_tensor_numel(&g), "to_nchw with affine");
        ic_blk_apply(&a.blk, &a.pend);
        expect_blk(&a.blk, &a.applied, "apply in place");
        free(g.data);
        tt_free(&a);
    }
}
END_TEST

START_TEST(test_add)
{
    uint64_t rng = 5;
    for (int it = 0; it < 20; it++) {
        const int n = tu_rand_int(&rng, 1, 2), c = tu_rand_int(&rng, 1, 50);
        const int h = tu_rand_int(&rng, 1, 9), w = tu_rand_int(&rng, 1, 13);
        const int relu = tu_rand_int(&rng, 0, 1);
        tt a, b;
        tt_make(&a, n, c, h, w, tu_rand_int(&rng, 0, 1), &rng);
        tt_make(&b, n, c, h, w, tu_rand_int(&rng, 0, 1), &rng);
        ic_tensor want = nchw_new(n, c, h, w);
        ck_assert_int_eq(ic_add_forward(&want, &a.applied, &b.applied, relu), 0);
        ck_assert_int_eq(ic_eng_add(&a.blk, tt_pend(&a), &b.blk, tt_pend(&b), relu, it % 2 + 1), 0);
        expect_blk(&a.blk, &want, "add");
        free(want.data);
        tt_free(&a);
        tt_free(&b);
    }
}
END_TEST

START_TEST(test_concat)
{
    uint64_t rng = 7;
    for (int it = 0; it < 45; it++) {
        const int n = tu_rand_int(&rng, 1, 2), h = tu_rand_int(&rng, 1, 7), w = tu_rand_int(&rng, 1, 9);
        const int k = tu_rand_int(&rng, 1, 5);
        tt parts[5];
        const ic_tensor *xs[5], *ws[5];
        const ic_blk_pend *pends[5];
        int c = 0;
        for (int i = 0; i < k; i++) {
            /* a third of the cases on block boundaries, as the large networks
             * are; a third all in one block, as the tiny test model's decoder
             * (a part that starts the last block without filling it) */
            const int ci = it % 3 == 1   ? 16 * tu_rand_int(&rng, 1, 3)
                           : it % 3 == 2 ? tu_rand_int(&rng, 1, 16 / k)
                                         : tu_rand_int(&rng, 1, 40);
            tt_make(&parts[i], n, ci, h, w, tu_rand_int(&rng, 0, 1), &rng);
            xs[i] = &parts[i].blk;
            ws[i] = &parts[i].applied;
            pends[i] = tt_pend(&parts[i]);
            c += ci;
        }
        ic_tensor want = nchw_new(n, c, h, w), got = blk_new(n, c, h, w);
        ck_assert_int_eq(ic_concat_forward(&want, ws, k), 0);
        ck_assert_int_eq(ic_eng_concat(&got, xs, pends, k, it % 2 + 1), 0);
        expect_blk(&got, &want, "concat");
        free(want.data);
        ic_free_aligned(got.data);
        for (int i = 0; i < k; i++)
            tt_free(&parts[i]);
    }
}
END_TEST

START_TEST(test_resize)
{
    uint64_t rng = 11;
    for (int it = 0; it < 45; it++) {
        /* widths past 16 output columns: the NCHW edge writes 16 at a time */
        const int n = tu_rand_int(&rng, 1, 2), c = tu_rand_int(&rng, 1, 40);
        const int h = tu_rand_int(&rng, 1, 9), w = tu_rand_int(&rng, 1, it % 3 ? 12 : 30);
        tt a;
        tt_make(&a, n, c, h, w, tu_rand_int(&rng, 0, 1), &rng);
        if (it % 3 == 0) {
            /* scale factor, then the NCHW edge: x4 cropped and scaled */
            const double s = it % 2 ? 2.0 : 4.0;
            int oh, ow;
            ck_assert_int_eq(ic_resize_out_size(&oh, &ow, h, w, s, s), 0);
            ic_tensor want = nchw_new(n, c, oh, ow), got = blk_new(n, c, oh, ow);
            ck_assert_int_eq(ic_resize_bilinear_scale_forward(&want, &a.applied, s, s), 0);
            ck_assert_int_eq(ic_eng_resize(&got, &a.blk, tt_pend(&a), s, s, it % 2 + 1), 0);
            expect_blk(&got, &want, "resize by scale");
            const int ch = tu_rand_int(&rng, 1, oh), cw = tu_rand_int(&rng, 1, ow);
            const float mul = it % 2 ? 4.0f : 1.0f;
            ic_tensor crop = nchw_new(n, c, ch, cw), wc = nchw_new(n, c, ch, cw);
            for (int i = 0; i < n; i++)
                for (int k = 0; k < c; k++)
                    for (int y = 0; y < ch; y++)
                        for (int x = 0; x < cw; x++)
                            ic_tensor_at(&wc, i, k)[y * cw + x] =
                                ic_tensor_at(&want, i, k)[y * ow + x] * mul;
            ck_assert_int_eq(ic_eng_upsample_nchw(&crop, &a.blk, tt_pend(&a), s, mul, it % 2 + 1),
                             0);
            close_to(crop.data, wc.data, ic_tensor_numel(&wc), "upsample to NCHW");
            free(crop.data);
            free(wc.data);
            free(want.data);
            ic_free_aligned(got.data);
        } else {
            const int oh = tu_rand_int(&rng, 1, 20), ow = tu_rand_int(&rng, 1, 20);
            ic_tensor want = nchw_new(n, c, oh, ow), got = blk_new(n, c, oh, ow);
            ck_assert_int_eq(ic_resize_bilinear_forward(&want, &a.applied), 0);
            ck_assert_int_eq(ic_eng_resize(&got, &a.blk, tt_pend(&a), 0, 0, it % 2 + 1), 0);
            expect_blk(&got, &want, "resize to a size");
            free(want.data);
            ic_free_aligned(got.data);
        }
        tt_free(&a);
    }
}
END_TEST

START_TEST(test_pool)
{
    uint64_t rng = 13;
    for (int it = 0; it < 40; it++) {
        const int n = tu_rand_int(&rng, 1, 2), c = tu_rand_int(&rng, 1, 40);
        const int h = tu_rand_int(&rng, 1, 12), w = tu_rand_int(&rng, 1, 15);
        tt a;
        tt_make(&a, n, c, h, w, tu_rand_int(&rng, 0, 1), &rng);
        ic_pool2d p = {.kh = tu_rand_int(&rng, 1, h), .kw = tu_rand_int(&rng, 1, w)};
        p.sh = tu_rand_int(&rng, 1, 2);
        p.sw = tu_rand_int(&rng, 1, 2);
        p.ph = tu_rand_int(&rng, 0, p.kh / 2);
        p.pw = tu_rand_int(&rng, 0, p.kw / 2);
        p.exclude_pad = tu_rand_int(&rng, 0, 1);
        const int kind = it % 3; /* max, avg, global avg */
        if (kind == 2)
            p = (ic_pool2d){.kh = h, .kw = w, .sh = 1, .sw = 1};
        int oh, ow;
        ck_assert_int_eq(ic_pool_out_size(&oh, &ow, h, w, &p), 0);
        ic_tensor want = nchw_new(n, c, oh, ow), got = blk_new(n, c, oh, ow);
        const int th = it % 2 + 1;
        char what[96];
        snprintf(what, sizeof what, "%s pool k%dx%d s%dx%d p%dx%d%s on %dx%d",
                 kind == 0 ? "max" : kind == 1 ? "avg" : "global", p.kh, p.kw, p.sh, p.sw, p.ph,
                 p.pw, p.exclude_pad ? " excl" : "", h, w);
        if (kind == 0) {
            ck_assert_int_eq(ic_pool_max_forward_ref(&want, &a.applied, &p), 0);
            ck_assert_int_eq(ic_eng_maxpool(&got, &a.blk, tt_pend(&a), &p, th), 0);
        } else if (kind == 1) {
            ck_assert_int_eq(ic_pool_avg_forward_ref(&want, &a.applied, &p), 0);
            ck_assert_int_eq(ic_eng_avgpool(&got, &a.blk, tt_pend(&a), &p, th), 0);
        } else {
            ck_assert_int_eq(ic_pool_global_avg_forward(&want, &a.applied), 0);
            ck_assert_int_eq(ic_eng_gap(&got, &a.blk, tt_pend(&a), th), 0);
        }
        expect_blk(&got, &want, what);
        free(want.data);
        ic_free_aligned(got.data);
        tt_free(&a);
    }
}
END_TEST

START_TEST(test_shape_errors)
{
    uint64_t rng = 17;
    tt a, b;
    tt_make(&a, 1, 5, 4, 4, 0, &rng);
    tt_make(&b, 1, 6, 4, 4, 0, &rng);
    ck_assert_int_eq(ic_eng_add(&a.blk, NULL, &b.blk, NULL, 0, 1), IC_ESHAPE);
    const ic_tensor *xs[2] = {&a.blk, &b.blk};
    ic_tensor y = blk_new(1, 12, 4, 4);
    ck_assert_int_eq(ic_eng_concat(&y, xs, NULL, 2, 1), IC_ESHAPE);
    ic_pool2d p = {.kh = 2, .kw = 2, .sh = 2, .sw = 2};
    ck_assert_int_eq(ic_eng_maxpool(&y, &a.blk, NULL, &p, 1), IC_ESHAPE);
    ic_tensor crop = nchw_new(1, 5, 17, 4);
    ck_assert_int_eq(ic_eng_upsample_nchw(&crop, &a.blk, NULL, 4.0, 1.0f, 1), IC_ESHAPE);
    free(crop.data);
    ic_free_aligned(y.data);
    tt_free(&a);
    tt_free(&b);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("engine_eops");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_layout_roundtrip);
    tcase_add_test(tc, test_add);
    tcase_add_test(tc, test_concat);
    tcase_add_test(tc, test_resize);
    tcase_add_test(tc, test_pool);
    tcase_add_test(tc, test_shape_errors);
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
