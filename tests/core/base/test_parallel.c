/* ic_parallel_for: every index is visited exactly once, whatever the
 * thread count, and small or empty ranges run inline. */
#include <check.h>
#include <pthread.h>
#include <stdlib.h>

#include "base/parallel.h"

typedef struct visit_ctx {
    int *hits;
    pthread_t *who;
} visit_ctx;

static void visit(void *ctx, int lo, int hi)
{
    visit_ctx *v = ctx;
    for (int i = lo; i < hi; i++) {
        v->hits[i]++;
        v->who[i] = pthread_self();
    }
}

START_TEST(test_covers_once)
{
    const int sizes[] = {1, 2, 3, 7, 16, 17, 1000};
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++)
        for (int threads = 0; threads <= IC_PARALLEL_MAX + 3; threads++) {
            const int n = sizes[s];
            int *hits = calloc((size_t)n, sizeof *hits);
            pthread_t *who = calloc((size_t)n, sizeof *who);
            ck_assert_ptr_nonnull(hits);
            ck_assert_ptr_nonnull(who);
            visit_ctx v = {hits, who};
            ic_parallel_for(visit, &v, n, threads);
            for (int i = 0; i < n; i++)
                ck_assert_msg(hits[i] == 1, "n %d threads %d: index %d visited %d times", n,
                              threads, i, hits[i]);
            /* the caller always takes the first range */
            ck_assert(pthread_equal(who[0], pthread_self()));
            free(hits);
            free(who);
        }
}
END_TEST

START_TEST(test_single_thread_inline)
{
    int hits[5] = {0};
    pthread_t who[5];
    visit_ctx v = {hits, who};
    ic_parallel_for(visit, &v, 5, 1);
    for (int i = 0; i < 5; i++) {
        ck_assert_int_eq(hits[i], 1);
        ck_assert(pthread_equal(who[i], pthread_self()));
    }
    ic_parallel_for(visit, &v, 0, 4); /* nothing to do: no call */
    ic_parallel_for(visit, &v, -3, 4);
    for (int i = 0; i < 5; i++)
        ck_assert_int_eq(hits[i], 1);
}
END_TEST

START_TEST(test_threads_for_work)
{
    ck_assert_int_eq(ic_parallel_threads(0, 100, 4), 1);
    ck_assert_int_eq(ic_parallel_threads(99, 100, 4), 1);
    ck_assert_int_eq(ic_parallel_threads(250, 100, 4), 2);
    ck_assert_int_eq(ic_parallel_threads(10000, 100, 4), 4);
    ck_assert_int_eq(ic_parallel_threads(10000, 0, 3), 3);
    ck_assert_int_eq(ic_parallel_threads(10000, 100, 0), 1);
}
END_TEST

static Suite *parallel_suite(void)
{
    Suite *s = suite_create("parallel");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_covers_once);
    tcase_add_test(tc, test_single_thread_inline);
    tcase_add_test(tc, test_threads_for_work);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(parallel_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
