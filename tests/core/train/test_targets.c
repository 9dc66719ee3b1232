/* Tests for core/train/targets: exact agreement with a Python port of
 * detectron2's PanopticDeepLabTargetGenerator (tests/golden/gen_grad.py,
 * grad_targets: stuff, void, a crowd thing, a thing cut by the border, small
 * things, a listed segment absent from the map), rounding half to even, and
 * argument errors. */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/err.h"
#include "testutil.h"
#include "train/targets.h"

/* An int32 fixture tensor (tu_fixture_tensor accepts only floats). */
static const ic_st_tensor *int_tensor(const ic_safetensors *st, const char *name)
{
    const ic_st_tensor *t = ic_st_find(st, name);
    ck_assert_msg(t && t->dtype == IC_ST_I32, "fixture tensor %s missing or not int32", name);
    return t;
}

typedef struct bufs {
    ic_pano_targets t;
    void *mem;
} bufs;

static bufs alloc_targets(int h, int w)
{
    size_t hw = (size_t)h * w;
    bufs b;
    b.mem = malloc(hw * 7 * 4);
    float *f = b.mem;
    b.t.semantic = (int32_t *)f;
    b.t.semantic_weights = f + hw;
    b.t.center = f + 2 * hw;
    b.t.center_weights = f + 3 * hw;
    b.t.offset = f + 4 * hw;
    b.t.offset_weights = f + 6 * hw;
    return b;
}

START_TEST(test_golden)
{
    ic_safetensors *st = tu_fixture("grad_targets");
    const ic_st_tensor *pt = int_tensor(st, "pan"), *sg = int_tensor(st, "segs");
    const ic_st_tensor *pp = int_tensor(st, "params");
    int h = (int)pt->shape[0], w = (int)pt->shape[1], nseg = (int)sg->shape[0];
    size_t hw = (size_t)h * w;
    int32_t *pan = malloc(hw * 4), s[64], prm[4];
    memcpy(pan, pt->raw, hw * 4);
    memcpy(s, sg->raw, sg->numel * 4);
    memcpy(prm, pp->raw, sizeof(prm));
    ic_pano_segment segs[16];
    for (int i = 0; i < nseg; i++)
        segs[i] = (ic_pano_segment){s[4 * i], s[4 * i + 1], s[4 * i + 2], s[4 * i + 3]};
    ic_target_params p = {.sigma = prm[0], .small_instance_area = prm[1],
                          .small_instance_weight = (float)prm[2], .ignore_label = prm[3]};
    bufs b = alloc_targets(h, w);
    ck_assert_int_eq(ic_targets_generate(&b.t, pan, h, w, segs, nseg, &p), 0);
    const ic_st_tensor *sem = int_tensor(st, "sem_seg");
    int32_t *want_sem = malloc(hw * 4);
    memcpy(want_sem, sem->raw, hw * 4);
    ck_assert_int_eq(memcmp(b.t.semantic, want_sem, hw * 4), 0);
    ck_assert_int_eq(memcmp(b.t.semantic_weights, tu_fixture_tensor(st, "sem_seg_weights")->f32, hw * 4), 0);
    ck_assert_int_eq(memcmp(b.t.center_weights, tu_fixture_tensor(st, "center_weights")->f32, hw * 4), 0);
    ck_assert_int_eq(memcmp(b.t.offset_weights, tu_fixture_tensor(st, "offset_weights")->f32, hw * 4), 0);
    ck_assert_int_eq(memcmp(b.t.offset, tu_fixture_tensor(st, "offset")->f32, 2 * hw * 4), 0);
    const float *wc = tu_fixture_tensor(st, "center")->f32;
    double maxd = 0;
    for (size_t i = 0; i < hw; i++)
        maxd = fmax(maxd, fabs((double)b.t.center[i] - wc[i]));
    ck_assert(maxd <= 1e-6);
    /* the fixture exercises what it claims: void, crowd, small instances */
    int n255 = 0, n3 = 0;
    for (size_t i = 0; i < hw; i++) {
        n255 += b.t.semantic[i] == 255;
        n3 += b.t.semantic_weights[i] == 3.0f;
    }
    ck_assert(n255 > 0 && n3 > 0);
    free(want_sem);
    free(pan);
    free(b.mem);
    ic_st_close(&st);
}
END_TEST

/* A 1 x 4 thing has centroid x = 1.5, which numpy rounds to 2 (half to even);
 * x = 2.5 (pixels 1..4) rounds to 2 as well. */
START_TEST(test_round_half_even)
{
    int32_t pan[6] = {7, 7, 7, 7, 0, 0};
    ic_pano_segment seg = {7, 1, 0, 1};
    ic_target_params p = ic_target_params_default();
    p.sigma = 1;
    bufs b = alloc_targets(1, 6);
    ck_assert_int_eq(ic_targets_generate(&b.t, pan, 1, 6, &seg, 1, &p), 0);
    ck_assert_float_eq(b.t.center[2], 1.0f);
    ck_assert_float_eq(b.t.offset[6 + 0], 1.5f);
    int32_t pan2[6] = {0, 7, 7, 7, 7, 0};
    ck_assert_int_eq(ic_targets_generate(&b.t, pan2, 1, 6, &seg, 1, &p), 0);
    ck_assert_float_eq(b.t.center[2], 1.0f);
    ck_assert(b.t.center[3] < 1.0f);
    free(b.mem);
}
END_TEST

/* Class weights scale the semantic weight of their class's pixels only, on
 * top of the small-instance weight; void keeps 1; bad weights are refused. */
START_TEST(test_class_weights)
{
    /* stuff class 0 (2 px), small thing class 1 (2 px), void (2 px) */
    int32_t pan[6] = {1, 1, 2, 2, 0, 0};
    ic_pano_segment segs[2] = {{1, 0, 0, 0}, {2, 1, 0, 1}};
    ic_target_params p = ic_target_params_default();
    p.sigma = 1;
    float cw[2] = {2.0f, 0.5f};
    p.class_weights = cw;
    p.n_class_weights = 2;
    bufs b = alloc_targets(1, 6);
    ck_assert_int_eq(ic_targets_generate(&b.t, pan, 1, 6, segs, 2, &p), 0);
    float want[6] = {2.0f, 2.0f, 1.5f, 1.5f, 1.0f, 1.0f};
    for (int i = 0; i < 6; i++)
        ck_assert_float_eq(b.t.semantic_weights[i], want[i]);
    p.n_class_weights = 1; /* class 1 beyond the list: weight 1 x small 3 */
    ck_assert_int_eq(ic_targets_generate(&b.t, pan, 1, 6, segs, 2, &p), 0);
    ck_assert_float_eq(b.t.semantic_weights[0], 2.0f);
    ck_assert_float_eq(b.t.semantic_weights[2], 3.0f);
    cw[0] = -1.0f;
    ck_assert_int_eq(ic_targets_generate(&b.t, pan, 1, 6, segs, 2, &p), IC_EINVAL);
    cw[0] = NAN;
    ck_assert_int_eq(ic_targets_generate(&b.t, pan, 1, 6, segs, 2, &p), IC_EINVAL);
    p.class_weights = NULL;
    ck_assert_int_eq(ic_targets_generate(&b.t, pan, 1, 6, segs, 2, &p), IC_EINVAL);
    free(b.mem);
}
END_TEST

START_TEST(test_errors)
{
    int32_t pan[4] = {1, 1, 2, 2};
    ic_pano_segment segs[2] = {{1, 0, 0, 0}, {1, 3, 0, 1}};
    ic_target_params p = ic_target_params_default();
    bufs b = alloc_targets(2, 2);
    ck_assert_int_eq(ic_targets_generate(&b.t, pan, 2, 2, segs, 2, &p), IC_EINVAL);
    segs[1].id = 2;
    segs[1].category = 255;
    ck_assert_int_eq(ic_targets_generate(&b.t, pan, 2, 2, segs, 2, &p), IC_EINVAL);
    segs[1].category = 3;
    p.sigma = 0;
    ck_assert_int_eq(ic_targets_generate(&b.t, pan, 2, 2, segs, 2, &p), IC_EINVAL);
    p.sigma = 2;
    ck_assert_int_eq(ic_targets_generate(&b.t, pan, 2, 2, segs, 2, &p), 0);
    ck_assert_int_eq(ic_targets_generate(&b.t, pan, 2, 2, NULL, 0, &p), 0);
    ck_assert_int_eq(b.t.semantic[0], 255);
    ic_alloc_fail_after(0);
    int rc = ic_targets_generate(&b.t, pan, 2, 2, segs, 2, &p);
    ic_alloc_fail_reset();
    ck_assert_int_eq(rc, IC_ENOMEM);
    free(b.mem);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("train/targets");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_golden);
    tcase_add_test(tc, test_round_half_even);
    tcase_add_test(tc, test_class_weights);
    tcase_add_test(tc, test_errors);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
