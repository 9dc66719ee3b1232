/* Tests of core/model/bufpool.c: best-fit reuse, and the planned mode
 * (record a walk, plan, replay) on random request sequences: buffers alive
 * at the same time never overlap (each is filled with its own value and
 * checked when given back), the region is no larger than the sum of the
 * requests and at least the peak of live floats, and a replay that departs
 * from the record is refused. */
#include <check.h>
#include <stdlib.h>

#include "base/arena.h"
#include "base/err.h"
#include "model/bufpool.h"

START_TEST(test_best_fit_reuses)
{
    ic_arena a;
    ic_arena_init(&a, 0, 0);
    ic_bufpool p;
    ic_bufpool_init(&p, &a);
    float *x = ic_bufpool_get(&p, 1000), *y = ic_bufpool_get(&p, 10);
    ck_assert_ptr_nonnull(x);
    ck_assert_ptr_nonnull(y);
    ic_bufpool_put(&p, x);
    ck_assert_ptr_eq(ic_bufpool_get(&p, 500), x);
    ck_assert_uint_eq(p.peak, 1010);
    ic_arena_deinit(&a);
}
END_TEST

#define NSTEP 300
#define MAXLIVE 12

/* A random walk: op k is a get (size[k] > 0) or the put of the buffer got
 * at op -size[k] - 1. Returns the number of ops. */
static int random_walk(long *op, unsigned seed)
{
    srand(seed);
    int live[MAXLIVE], nlive = 0, n = 0;
    for (int s = 0; s < NSTEP; s++) {
        if (nlive < MAXLIVE && (nlive == 0 || rand() % 2)) {
            live[nlive++] = n;
            op[n++] = 1 + rand() % (rand() % 4 ? 300 : 5000);
        } else {
            int i = rand() % nlive;
            op[n++] = -(long)live[i] - 1;
            live[i] = live[--nlive];
        }
    }
    return n; /* what is still live is held to the end */
}

/* Whether buffer k still holds its fill (ck_assert per float is slow). */
static int intact(float *const *got, const long *op, int k)
{
    for (long i = 0; i < op[k]; i++)
        if (got[k][i] != (float)k)
            return 0;
    return 1;
}

/* Runs the walk on p; with check, fills every buffer with its op index and
 * verifies it at its put and at the end. Returns the floats live at most. */
static size_t run_walk(ic_bufpool *p, const long *op, int n, float **got, int check)
{
    size_t live = 0, peak = 0;
    for (int k = 0; k < n; k++) {
        if (op[k] > 0) {
            got[k] = ic_bufpool_get(p, (size_t)op[k]);
            ck_assert_msg(got[k] != NULL, "get %d: %s", k, ic_error_message());
            if (check)
                for (long i = 0; i < op[k]; i++)
                    got[k][i] = (float)k;
            live += (size_t)op[k];
            peak = live > peak ? live : peak;
        } else {
            const int g = (int)(-op[k] - 1);
            ck_assert_msg(!check || intact(got, op, g), "buffer of get %d overwritten", g);
            ic_bufpool_put(p, got[g]);
            live -= (size_t)op[g];
            got[g] = NULL;
        }
    }
    for (int k = 0; check && k < n; k++)
        if (op[k] > 0 && got[k])
            ck_assert_msg(intact(got, op, k), "buffer of get %d overwritten", k);
    return peak;
}

START_TEST(test_plan_random)
{
    long op[NSTEP];
    float *got[NSTEP];
    for (unsigned seed = 1; seed <= 40; seed++) {
        const int n = random_walk(op, seed);
        ic_arena a;
        ic_arena_init(&a, 0, 0);
        ic_bufpool p;
        ic_bufpool_init(&p, &a);
        ck_assert_int_eq(ic_bufpool_record(&p, NSTEP), 0);
        run_walk(&p, op, n, got, 0);
        ck_assert_int_eq(ic_bufpool_plan(&p), 0);
        const size_t peak = run_walk(&p, op, n, got, 1);
        size_t sum = 0;
        for (int k = 0; k < n; k++)
            if (op[k] > 0)
                sum += ((size_t)op[k] + 15) / 16 * 16;
        ck_assert_uint_ge(p.region_floats, peak);
        ck_assert_uint_le(p.region_floats, sum);
        ic_arena_deinit(&a);
    }
}
END_TEST

START_TEST(test_plan_refuses_other_walk)
{
    ic_arena a;
    ic_arena_init(&a, 0, 0);
    ic_bufpool p;
    ic_bufpool_init(&p, &a);
    ck_assert_int_eq(ic_bufpool_record(&p, 2), 0);
    float *x = ic_bufpool_get(&p, 64);
    ck_assert_ptr_nonnull(x);
    ic_bufpool_put(&p, x);
    ck_assert_ptr_nonnull(ic_bufpool_get(&p, 32));
    ck_assert_ptr_null(ic_bufpool_get(&p, 8)); /* past the record's capacity */
    ck_assert_int_eq(ic_error_code(), IC_ENOMEM);
    ck_assert_int_eq(ic_bufpool_plan(&p), 0);
    ck_assert_uint_eq(p.region_floats, 64); /* the two never live at once */
    x = ic_bufpool_get(&p, 64);
    ck_assert_ptr_eq(x, p.region);
    ic_bufpool_put(&p, x);
    ck_assert_ptr_null(ic_bufpool_get(&p, 48)); /* larger than recorded */
    ck_assert_int_eq(ic_error_code(), IC_EINVAL);
    ic_arena_deinit(&a);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("bufpool");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_best_fit_reuses);
    tcase_add_test(tc, test_plan_random);
    tcase_add_test(tc, test_plan_refuses_other_walk);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
