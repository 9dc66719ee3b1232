/* Tests of core/metrics/pq: panopticapi's rules on 8x8 hand-built images
 * (perfect match, shifted mask, missing and extra segments, VOID, crowd). */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "base/arena.h"
#include "base/err.h"
#include "metrics/pq.h"

enum { H = 8, W = 8, N = H * W, ROAD = 1, SKY = 2, CAR = 10, PERSON = 11 };

static const ic_pq_category cats[4] = {{ROAD, 0}, {SKY, 0}, {CAR, 1}, {PERSON, 1}};

static void rect(int32_t *m, int y0, int x0, int y1, int x1, int32_t id)
{
    for (int y = y0; y <= y1; y++)
        for (int x = x0; x <= x1; x++)
            m[y * W + x] = id;
}

static int cat_index(int id)
{
    for (int i = 0; i < 4; i++)
        if (cats[i].id == id)
            return i;
    return -1;
}

/* sky on rows 0-3, road on rows 4-7, a car and a person */
static void scene(int32_t *m, int32_t sky, int32_t road, int32_t car, int32_t person)
{
    rect(m, 0, 0, 3, 7, sky);
    rect(m, 4, 0, 7, 7, road);
    rect(m, 4, 0, 6, 3, car);
    rect(m, 0, 5, 2, 7, person);
}

static const ic_pq_segment gt_segs[4] = {{1, SKY, 0}, {2, ROAD, 0}, {3, CAR, 0}, {4, PERSON, 0}};

START_TEST(test_perfect)
{
    int32_t gt[N], pr[N];
    scene(gt, 1, 2, 3, 4);
    scene(pr, 2000, 1000, 10001, 11001); /* different ids, same segments */
    ic_pq_segment ps[4] = {{2000, SKY, 0}, {1000, ROAD, 0}, {10001, CAR, 0}, {11001, PERSON, 0}};
    ic_pq pq;
    ic_arena a;
    ic_arena_init(&a, 4096, 0);
    ck_assert_int_eq(ic_pq_init(&pq, cats, 4), 0);
    ck_assert_int_eq(ic_pq_add(&pq, &a, gt, gt_segs, 4, pr, ps, 4, N), 0);
    ck_assert_uint_eq(ic_arena_used(&a), 0); /* scratch rewound */
    ic_pq_result all = ic_pq_average(&pq, IC_PQ_ALL);
    ck_assert_double_eq(all.pq, 1.0);
    ck_assert_double_eq(all.sq, 1.0);
    ck_assert_double_eq(all.rq, 1.0);
    ck_assert_int_eq(all.n, 4);
    ck_assert_int_eq(ic_pq_average(&pq, IC_PQ_THINGS).n, 2);
    ck_assert_int_eq(ic_pq_average(&pq, IC_PQ_STUFF).n, 2);
    ic_pq_deinit(&pq);
    ic_arena_deinit(&a);
}
END_TEST

/* Car shifted right by one column: 12 px each, intersection 9, union 15. */
START_TEST(test_shifted)
{
    int32_t gt[N], pr[N];
    scene(gt, 1, 2, 3, 4);
    scene(pr, 1, 2, 99, 4);
    rect(pr, 4, 0, 6, 0, 2);
    rect(pr, 4, 1, 6, 4, 3);
    ic_pq pq;
    ic_arena a;
    ic_arena_init(&a, 4096, 0);
    ck_assert_int_eq(ic_pq_init(&pq, cats, 4), 0);
    ck_assert_int_eq(ic_pq_add(&pq, &a, gt, gt_segs, 4, pr, gt_segs, 4, N), 0);
    ic_pq_result car = ic_pq_category_result(&pq, cat_index(CAR));
    ck_assert_double_eq_tol(car.pq, 0.6, 1e-12);
    ck_assert_double_eq_tol(car.sq, 0.6, 1e-12);
    ck_assert_double_eq(car.rq, 1.0);
    /* road: 20 px each side, 17 in common -> 17 / 23 */
    ck_assert_double_eq_tol(ic_pq_category_result(&pq, cat_index(ROAD)).sq, 17.0 / 23.0, 1e-12);

    /* shifted by two: 6 / 18 is not a match -> one FP and one FN */
    scene(pr, 1, 2, 99, 4);
    rect(pr, 4, 0, 6, 1, 2);
    rect(pr, 4, 2, 6, 5, 3);
    ic_pq pq2;
    ck_assert_int_eq(ic_pq_init(&pq2, cats, 4), 0);
    ck_assert_int_eq(ic_pq_add(&pq2, &a, gt, gt_segs, 4, pr, gt_segs, 4, N), 0);
    const ic_pq_stat *s = &pq2.cat[cat_index(CAR)];
    ck_assert_uint_eq(s->tp, 0);
    ck_assert_uint_eq(s->fp, 1);
    ck_assert_uint_eq(s->fn, 1);
    ck_assert_double_eq(ic_pq_category_result(&pq2, cat_index(CAR)).pq, 0.0);
    ck_assert_int_eq(ic_pq_category_result(&pq2, cat_index(CAR)).n, 1);

    /* accumulation over images: car tp 1 fp 1 fn 1, iou 0.6 -> PQ 0.6/2 */
    ck_assert_int_eq(ic_pq_merge(&pq, &pq2), 0);
    ck_assert_double_eq_tol(ic_pq_category_result(&pq, cat_index(CAR)).pq, 0.3, 1e-12);
    ck_assert_double_eq_tol(ic_pq_category_result(&pq, cat_index(CAR)).sq, 0.6, 1e-12);
    ic_pq_deinit(&pq);
    ic_pq_deinit(&pq2);
    ic_arena_deinit(&a);
}
END_TEST

/* A second person missing from the prediction, an extra car on the road. */
START_TEST(test_missing_extra)
{
    int32_t gt[N], pr[N];
    scene(gt, 1, 2, 3, 4);
    rect(gt, 0, 0, 1, 1, 5);
    ic_pq_segment gs[5] = {{1, SKY, 0}, {2, ROAD, 0}, {3, CAR, 0}, {4, PERSON, 0}, {5, PERSON, 0}};
    scene(pr, 1, 2, 3, 4);
    rect(pr, 7, 6, 7, 7, 6);
    ic_pq_segment ps[5] = {{1, SKY, 0}, {2, ROAD, 0}, {3, CAR, 0}, {4, PERSON, 0}, {6, CAR, 0}};
    ic_pq pq;
    ic_arena a;
    ic_arena_init(&a, 4096, 0);
    ck_assert_int_eq(ic_pq_init(&pq, cats, 4), 0);
    ck_assert_int_eq(ic_pq_add(&pq, &a, gt, gs, 5, pr, ps, 5, N), 0);
    const ic_pq_stat *person = &pq.cat[cat_index(PERSON)], *car = &pq.cat[cat_index(CAR)];
    ck_assert_uint_eq(person->tp, 1);
    ck_assert_uint_eq(person->fn, 1);
    ck_assert_uint_eq(person->fp, 0);
    ck_assert_uint_eq(car->tp, 1);
    ck_assert_uint_eq(car->fp, 1);
    ck_assert_uint_eq(car->fn, 0);
    ic_pq_result r = ic_pq_category_result(&pq, cat_index(PERSON));
    ck_assert_double_eq_tol(r.rq, 2.0 / 3.0, 1e-12);
    ck_assert_double_eq_tol(r.sq, 1.0, 1e-12);
    ic_pq_result th = ic_pq_average(&pq, IC_PQ_THINGS);
    ck_assert_double_eq_tol(th.pq, 2.0 / 3.0, 1e-12);
    ic_pq_deinit(&pq);
    ic_arena_deinit(&a);
}
END_TEST

/* VOID leaves the union; predictions mostly on VOID are not FPs. */
START_TEST(test_void)
{
    int32_t gt[N], pr[N];
    scene(gt, 1, 2, 3, 4);
    rect(gt, 0, 0, 1, 3, 0);  /* void (id 0 is unlisted) */
    rect(gt, 0, 4, 1, 4, -1); /* any unlisted id is void */
    scene(pr, 1, 2, 3, 4);
    rect(pr, 0, 4, 1, 4, 4); /* person grows over 2 void px: IoU stays 1 */
    rect(pr, 0, 0, 1, 2, 7); /* car on void: 6 of 6 px -> ignored */
    rect(pr, 2, 0, 3, 1, 8); /* car on sky: FP */
    ic_pq_segment ps[6] = {{1, SKY, 0},    {2, ROAD, 0}, {3, CAR, 0},
                           {4, PERSON, 0}, {7, CAR, 0},  {8, CAR, 0}};
    ic_pq pq;
    ic_arena a;
    ic_arena_init(&a, 4096, 0);
    ck_assert_int_eq(ic_pq_init(&pq, cats, 4), 0);
    ck_assert_int_eq(ic_pq_add(&pq, &a, gt, gt_segs, 4, pr, ps, 6, N), 0);
    ck_assert_double_eq(ic_pq_category_result(&pq, cat_index(PERSON)).sq, 1.0);
    ck_assert_uint_eq(pq.cat[cat_index(CAR)].fp, 1);
    /* sky: gt 13 px (rows 2-3 minus person), pred 11 px (2 of them on
     * void at (0..1, 3)), 9 in common: IoU = 9 / (11 + 13 - 9 - 2) */
    const ic_pq_stat *sky = &pq.cat[cat_index(SKY)];
    ck_assert_double_eq_tol(sky->iou, 9.0 / 13.0, 1e-12);
    ck_assert_uint_eq(sky->tp, 1);
    ic_pq_deinit(&pq);
    ic_arena_deinit(&a);
}
END_TEST

/* Crowd: never matched nor FN; same-category predictions on it are not FP. */
START_TEST(test_crowd)
{
    int32_t gt[N], pr[N];
    scene(gt, 1, 2, 3, 4);
    rect(gt, 4, 4, 7, 7, 9); /* crowd of cars on the road */
    ic_pq_segment gs[5] = {{1, SKY, 0}, {2, ROAD, 0}, {3, CAR, 0}, {4, PERSON, 0}, {9, CAR, 1}};
    scene(pr, 1, 2, 3, 4);
    rect(pr, 4, 4, 7, 7, 9);   /* identical to the crowd: still no TP */
    rect(pr, 0, 0, 0, 0, 0);   /* unrelated */
    ic_pq_segment ps[4] = {{1, SKY, 0}, {2, ROAD, 0}, {3, CAR, 0}, {4, PERSON, 0}};
    ic_pq_segment ps_car[5] = {{1, SKY, 0}, {2, ROAD, 0}, {3, CAR, 0}, {4, PERSON, 0}, {9, CAR, 0}};
    ic_pq_segment ps_person[5] = {{1, SKY, 0},    {2, ROAD, 0}, {3, CAR, 0},
                                  {4, PERSON, 0}, {9, PERSON, 0}};
    ic_pq pq;
    ic_arena a;
    ic_arena_init(&a, 4096, 0);
    ck_assert_int_eq(ic_pq_init(&pq, cats, 4), 0);
    /* region 9 unlisted in the prediction: void there, crowd not an FN */
    ck_assert_int_eq(ic_pq_add(&pq, &a, gt, gs, 5, pr, ps, 4, N), 0);
    ck_assert_uint_eq(pq.cat[cat_index(CAR)].tp, 1);
    ck_assert_uint_eq(pq.cat[cat_index(CAR)].fn, 0);
    ck_assert_uint_eq(pq.cat[cat_index(CAR)].fp, 0);
    /* a car prediction on the crowd: ignored */
    ck_assert_int_eq(ic_pq_add(&pq, &a, gt, gs, 5, pr, ps_car, 5, N), 0);
    ck_assert_uint_eq(pq.cat[cat_index(CAR)].tp, 2);
    ck_assert_uint_eq(pq.cat[cat_index(CAR)].fp, 0);
    /* a person prediction on the car crowd: FP */
    ck_assert_int_eq(ic_pq_add(&pq, &a, gt, gs, 5, pr, ps_person, 5, N), 0);
    ck_assert_uint_eq(pq.cat[cat_index(PERSON)].fp, 1);
    ck_assert_uint_eq(pq.cat[cat_index(PERSON)].tp, 3);
    ic_pq_deinit(&pq);
    ic_arena_deinit(&a);
}
END_TEST

START_TEST(test_errors)
{
    int32_t gt[N], pr[N];
    scene(gt, 1, 2, 3, 4);
    memcpy(pr, gt, sizeof pr);
    ic_pq pq;
    ic_arena a;
    ic_arena_init(&a, 4096, 0);
    ck_assert_int_eq(ic_pq_init(&pq, cats, 4), 0);
    ic_pq_segment dup[2] = {{1, SKY, 0}, {1, ROAD, 0}};
    ck_assert_int_eq(ic_pq_add(&pq, &a, gt, gt_segs, 4, pr, dup, 2, N), IC_EINVAL);
    ic_pq_segment unk[1] = {{1, 77, 0}};
    ck_assert_int_eq(ic_pq_add(&pq, &a, gt, gt_segs, 4, pr, unk, 1, N), IC_EINVAL);
    ck_assert_uint_eq(pq.cat[0].tp + pq.cat[1].tp + pq.cat[2].tp + pq.cat[3].tp, 0);
    ck_assert_uint_eq(ic_arena_used(&a), 0);
    ic_pq_category twice[2] = {{1, 0}, {1, 1}};
    ic_pq bad;
    ck_assert_int_eq(ic_pq_init(&bad, twice, 2), IC_EINVAL);
    ic_pq_result r = ic_pq_average(&pq, IC_PQ_ALL);
    ck_assert_int_eq(r.n, 0);
    ck_assert_double_eq(r.pq, 0.0);
    ic_pq_deinit(&pq);
    ic_arena_deinit(&a);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("pq");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_perfect);
    tcase_add_test(tc, test_shifted);
    tcase_add_test(tc, test_missing_extra);
    tcase_add_test(tc, test_void);
    tcase_add_test(tc, test_crowd);
    tcase_add_test(tc, test_errors);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
