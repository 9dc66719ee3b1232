/* Tests of core/post/panoptic: golden comparison with a torch port of
 * detectron2's get_panoptic_segmentation (tests/golden/gen_post.py), hand
 * cases for the rules (plateaus, top-k cut, majority tie-break, stuff area),
 * and a timing of the 1024x2048 case. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/alloc.h"
#include "base/arena.h"
#include "base/err.h"
#include "post/panoptic.h"
#include "post/rle.h"
#include "testutil.h"

static const int32_t *i32(const ic_safetensors *st, const char *name, size_t *n)
{
    const ic_st_tensor *t = ic_st_find(st, name);
    ck_assert_msg(t != NULL, "fixture tensor %s missing", name);
    ck_assert_int_eq(t->dtype, IC_ST_I32);
    if (n)
        *n = t->numel;
    return (const int32_t *)t->raw;
}

static void check_golden(const char *name)
{
    ic_safetensors *st = tu_fixture(name);
    size_t n;
    const int32_t *prm = i32(st, "params", NULL);
    const int32_t *thing = i32(st, "thing_ids", &n);
    const ic_st_tensor *sem_t = ic_st_find(st, "sem");
    int h = (int)sem_t->shape[0], w = (int)sem_t->shape[1];
    size_t hw = (size_t)h * w;

    int thing_ids[16];
    for (size_t i = 0; i < n; i++)
        thing_ids[i] = thing[i];
    ic_pano_params p;
    ic_pano_params_default(&p);
    p.n_classes = prm[0];
    p.label_divisor = prm[1];
    p.stuff_area = prm[2];
    p.nms_kernel = prm[3];
    p.top_k = prm[4];
    p.thing_ids = thing_ids;
    p.n_thing_ids = (int)n;

    ic_pano_inputs in = {
        .h = h,
        .w = w,
        .sem = i32(st, "sem", NULL),
        .center = tu_fixture_tensor(st, "center")->f32,
        .offset = tu_fixture_tensor(st, "offset")->f32,
        .sem_scores = tu_fixture_tensor(st, "logits")->f32,
    };
    ic_arena a;
    ic_arena_init(&a, 0, 0);
    ic_pano_result r;
    ck_assert_int_eq(ic_pano_run(&r, &a, &p, &in), 0);

    size_t nc;
    const int32_t *centers = i32(st, "centers", &nc);
    ck_assert_int_eq(r.n_centers * 2, (int)nc);
    for (size_t i = 0; i < nc; i++)
        ck_assert_int_eq(r.centers[i], centers[i]);

    const int32_t *pan = i32(st, "pan", NULL);
    size_t bad = 0;
    for (size_t i = 0; i < hw; i++)
        if (r.pan[i] != pan[i] && bad++ < 5)
            fprintf(stderr, "%s: pixel %zu: got %d want %d\n", name, i, r.pan[i], pan[i]);
    ck_assert_msg(bad == 0, "%s: %zu panoptic mismatches", name, bad);

    /* segments: every non-void id once, ascending, with area and bbox */
    size_t n_inst;
    const int32_t *inst_ids = i32(st, "inst_ids", &n_inst);
    const float *inst_scores = tu_fixture_tensor(st, "inst_scores")->f32;
    size_t seen_inst = 0;
    for (int s = 0; s < r.n_segments; s++) {
        const ic_pano_segment *g = &r.segments[s];
        if (s > 0)
            ck_assert_int_lt(r.segments[s - 1].id, g->id);
        int64_t area = 0;
        int x0 = w, y0 = h, x1 = -1, y1 = -1;
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
                if (pan[y * w + x] == g->id) {
                    area++;
                    x0 = x < x0 ? x : x0;
                    x1 = x > x1 ? x : x1;
                    y0 = y < y0 ? y : y0;
                    y1 = y > y1 ? y : y1;
                }
        ck_assert_int_eq(g->area, area);
        ck_assert_int_eq(g->bbox[0], x0);
        ck_assert_int_eq(g->bbox[1], y0);
        ck_assert_int_eq(g->bbox[2], x1 - x0 + 1);
        ck_assert_int_eq(g->bbox[3], y1 - y0 + 1);
        ck_assert_int_eq(g->category_id, g->id / 1000);
        if (g->isthing) {
            ck_assert_uint_lt(seen_inst, n_inst);
            ck_assert_int_eq(g->id, inst_ids[seen_inst]);
            float want = inst_scores[seen_inst];
            ck_assert_msg(fabsf(g->score - want) <= 1e-5f * fabsf(want) + 1e-7f,
                          "%s: segment %d score %g want %g", name, g->id, g->score, want);
            seen_inst++;
        } else {
            ck_assert_float_eq(g->score, 1.0f);
        }
    }
    ck_assert_uint_eq(seen_inst, n_inst);

    /* probabilities instead of logits give the same scores */
    const float *logits = in.sem_scores;
    float *probs = malloc((size_t)p.n_classes * hw * sizeof *probs);
    for (size_t i = 0; i < hw; i++) {
        float m = -INFINITY, sum = 0.0f;
        for (int c = 0; c < p.n_classes; c++)
            m = fmaxf(m, logits[c * hw + i]);
        for (int c = 0; c < p.n_classes; c++)
            sum += expf(logits[c * hw + i] - m);
        for (int c = 0; c < p.n_classes; c++)
            probs[c * hw + i] = expf(logits[c * hw + i] - m) / sum;
    }
    in.sem_scores = probs;
    in.scores_are_probs = 1;
    ic_pano_result r2;
    ck_assert_int_eq(ic_pano_run(&r2, &a, &p, &in), 0);
    ck_assert_int_eq(r2.n_segments, r.n_segments);
    for (int s = 0; s < r.n_segments; s++)
        ck_assert_float_eq_tol(r2.segments[s].score, r.segments[s].score, 1e-6f);
    /* logits plus the max probability (the pipeline's fast path) too */
    float *maxprob = malloc(hw * sizeof *maxprob);
    for (size_t i = 0; i < hw; i++) {
        maxprob[i] = 0.0f;
        for (int c = 0; c < p.n_classes; c++)
            maxprob[i] = fmaxf(maxprob[i], probs[c * hw + i]);
    }
    in.sem_scores = logits;
    in.scores_are_probs = 0;
    in.sem_maxprob = maxprob;
    ck_assert_int_eq(ic_pano_run(&r2, &a, &p, &in), 0);
    for (int s = 0; s < r.n_segments; s++)
        ck_assert_float_eq_tol(r2.segments[s].score, r.segments[s].score, 1e-6f);
    free(maxprob);
    free(probs);
    ic_arena_deinit(&a);
    ic_st_close(&st);
}

START_TEST(test_golden_a)
{
    check_golden("post_pano_a");
}
END_TEST

START_TEST(test_golden_b)
{
    check_golden("post_pano_b");
}
END_TEST

/* Hand case, 1 x 12 strip: stuff class 0, things 1 and 2. */
START_TEST(test_rules)
{
    enum { H = 1, W = 12 };
    int32_t sem[W] = {0, 0, 0, 1, 1, 2, 2, 1, 2, 0, 0, 0};
    float center[W] = {0, 0, 0, 0.5f, 0.5f, 0, 0, 0, 0.3f, 0, 0, 0};
    float offset[2 * W] = {0};
    int things[2] = {1, 2};
    ic_pano_params p;
    ic_pano_params_default(&p);
    p.n_classes = 3;
    p.thing_ids = things;
    p.n_thing_ids = 2;
    p.stuff_area = 6;
    p.nms_kernel = 3;
    ic_pano_inputs in = {.h = H, .w = W, .sem = sem, .center = center, .offset = offset};
    ic_arena a;
    ic_arena_init(&a, 0, 0);
    ic_pano_result r;
    ck_assert_int_eq(ic_pano_run(&r, &a, &p, &in), 0);
    /* plateau at x = 3, 4 keeps both; 0.3 at x = 8 is a window max */
    ck_assert_int_eq(r.n_centers, 3);
    ck_assert_int_eq(r.centers[1], 3);
    ck_assert_int_eq(r.centers[3], 4);
    ck_assert_int_eq(r.centers[5], 8);
    /* zero offsets: x=5 is nearer 4 (id 2); x=6 ties 4 and 8 at 2 -> lowest
     * index (id 2); x=7 nearer 8 (id 3). Instance 1 = {3}: class 1.
     * Instance 2 = {4, 5, 6}: classes 1, 2, 2 -> 2. Instance 3 = {7, 8}:
     * classes 1, 2 tie -> smallest class id 1. */
    int32_t want[W] = {0, 0, 0, 1001, 2001, 2001, 2001, 1002, 1002, 0, 0, 0};
    for (int x = 0; x < W; x++)
        ck_assert_int_eq(r.pan[x], want[x]);
    ck_assert_int_eq(r.n_segments, 4);

    /* stuff below stuff_area becomes void */
    p.stuff_area = 7;
    ck_assert_int_eq(ic_pano_run(&r, &a, &p, &in), 0);
    ck_assert_int_eq(r.pan[0], -1);
    ck_assert_int_eq(r.n_segments, 3);

    /* top_k = 2: cut at the 2nd value (0.5), only values above survive: none */
    p.top_k = 2;
    ck_assert_int_eq(ic_pano_run(&r, &a, &p, &in), 0);
    ck_assert_int_eq(r.n_centers, 0);
    for (int x = 3; x < 9; x++)
        ck_assert_int_eq(r.pan[x], -1); /* things without a center are void */

    /* top_k = 3: cut at 0.3, keeps the plateau */
    p.top_k = 3;
    ck_assert_int_eq(ic_pano_run(&r, &a, &p, &in), 0);
    ck_assert_int_eq(r.n_centers, 2);

    /* max_centers safety cap */
    p.top_k = 200;
    p.max_centers = 1;
    ck_assert_int_eq(ic_pano_run(&r, &a, &p, &in), 0);
    ck_assert_int_eq(r.n_centers, 1);
    ck_assert_int_eq(r.n_centers_dropped, 2);

    /* bad inputs are errors, and leave the arena as it was */
    size_t used = ic_arena_used(&a);
    sem[2] = 3;
    ck_assert_int_eq(ic_pano_run(&r, &a, &p, &in), IC_EINVAL);
    sem[2] = -1;
    ck_assert_int_eq(ic_pano_run(&r, &a, &p, &in), IC_EINVAL);
    sem[2] = 0;
    ck_assert_uint_eq(ic_arena_used(&a), used);
    p.nms_kernel = 4;
    ck_assert_int_eq(ic_pano_run(&r, &a, &p, &in), IC_EINVAL);
    p.nms_kernel = 3;
    things[0] = 7;
    ck_assert_int_eq(ic_pano_run(&r, &a, &p, &in), IC_EINVAL);
    things[0] = 1;
    ic_arena_deinit(&a);

    /* allocation failures become IC_ENOMEM, at every point */
    for (long k = 0; k < 4; k++) {
        ic_arena_init(&a, 64, 0); /* tiny blocks: every alloc takes a block */
        ic_alloc_fail_after(k);
        int rc = ic_pano_run(&r, &a, &p, &in);
        ic_alloc_fail_reset();
        ck_assert_int_eq(rc, IC_ENOMEM);
        ic_arena_deinit(&a);
    }
}
END_TEST

/* Cityscapes-sized input with ~50 instances; prints the time. */
START_TEST(test_timing_1024x2048)
{
    const int h = 1024, w = 2048, nc = 19;
    const size_t hw = (size_t)h * w;
    int32_t *sem = malloc(hw * sizeof *sem);
    float *center = calloc(hw, sizeof *center);
    float *offset = malloc(2 * hw * sizeof *offset);
    float *logits = malloc((size_t)nc * hw * sizeof *logits);
    ck_assert_ptr_nonnull(sem);
    ck_assert_ptr_nonnull(logits);
    uint64_t rng = 7;
    tu_rand_fill(logits, (size_t)nc * hw, &rng, -1.0f, 1.0f);
    int cy[50], cx[50];
    for (int k = 0; k < 50; k++) {
        cy[k] = 20 + (k / 10) * 200;
        cx[k] = 40 + (k % 10) * 200;
    }
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            size_t i = (size_t)y * w + x;
            int near = (y % 200) < 120 && (x % 200) < 120; /* ~36% thing pixels */
            int k = (y / 200) * 10 + (x / 200);
            if (k >= 50)
                k = 49;
            sem[i] = near ? 11 + k % 8 : (x / 300) % 11;
            offset[i] = (float)(cy[k] - y) + tu_rand_uniform(&rng, -1, 1);
            offset[hw + i] = (float)(cx[k] - x) + tu_rand_uniform(&rng, -1, 1);
            logits[(size_t)sem[i] * hw + i] += 3.0f;
        }
    for (int k = 0; k < 50; k++)
        for (int dy = -8; dy <= 8; dy++)
            for (int dx = -8; dx <= 8; dx++)
                center[(size_t)(cy[k] + dy) * w + cx[k] + dx] =
                    0.9f * expf(-(float)(dy * dy + dx * dx) / 18.0f);

    /* max probability, as ic_softmax_stats gives it to the pipeline */
    float *maxprob = malloc(hw * sizeof *maxprob);
    ck_assert_ptr_nonnull(maxprob);
    for (size_t i = 0; i < hw; i++) {
        float m = -INFINITY, sum = 0.0f;
        for (int c = 0; c < nc; c++)
            m = fmaxf(m, logits[c * hw + i]);
        for (int c = 0; c < nc; c++)
            sum += expf(logits[c * hw + i] - m);
        maxprob[i] = 1.0f / sum;
    }
    int things[8] = {11, 12, 13, 14, 15, 16, 17, 18};
    ic_pano_params p;
    ic_pano_params_default(&p);
    p.n_classes = nc;
    p.thing_ids = things;
    p.n_thing_ids = 8;
    ic_pano_inputs in = {.h = h, .w = w, .sem = sem, .center = center, .offset = offset,
                         .sem_scores = logits, .sem_maxprob = maxprob};
    ic_arena a;
    ic_arena_init(&a, 0, 0);
    ic_pano_result r;
    float want_score = 0.0f;
    double best = 1e9, slow = 0.0;
    for (int rep = 0; rep < 4; rep++) {
        if (rep == 3) /* the logits-only path gives the same scores, slower */
            in.sem_maxprob = NULL;
        struct timespec t0, t1;
        ic_arena_reset(&a);
        clock_gettime(CLOCK_MONOTONIC, &t0);
        ck_assert_int_eq(ic_pano_run(&r, &a, &p, &in), 0);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        double ms = (t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_nsec - t0.tv_nsec) * 1e-6;
        if (rep < 3) {
            best = ms < best ? ms : best;
            want_score = r.segments[0].score;
        } else {
            ck_assert_float_eq_tol(r.segments[0].score, want_score, 1e-5f);
            slow = ms;
        }
    }
    ck_assert_int_eq(r.n_centers, 50);
    printf("panoptic post-processing 1024x2048, %d centers, %d segments: %.1f ms (best of 3; "
           "%.1f ms from logits alone), arena peak %.1f MiB\n",
           r.n_centers, r.n_segments, best, slow, (double)a.peak / (1 << 20));

    /* COCO RLE of every segment (the `rle` response option) */
    struct timespec t0, t1;
    size_t chars = 0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int s = 0; s < r.n_segments; s++) {
        uint32_t *cnt;
        size_t n;
        ck_assert_int_eq(
            ic_rle_encode_id(&cnt, &n, &a, r.pan, h, w, r.segments[s].id, r.segments[s].bbox), 0);
        chars += ic_rle_string_len(cnt, n);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    printf("RLE of %d segments: %.1f ms, %zu chars\n", r.n_segments,
           (t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_nsec - t0.tv_nsec) * 1e-6, chars);
    ic_arena_deinit(&a);
    free(sem);
    free(center);
    free(offset);
    free(logits);
    free(maxprob);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("panoptic");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_golden_a);
    tcase_add_test(tc, test_golden_b);
    tcase_add_test(tc, test_rules);
    tcase_add_test(tc, test_timing_1024x2048);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
