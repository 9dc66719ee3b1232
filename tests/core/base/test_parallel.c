/* ic_parallel_for: every index is visited exactly once, whatever the
 * thread count, and small or empty ranges run inline; the helper threads
 * are kept across calls, one set per calling thread, joined when the
 * caller exits, and a forked child still runs parallel calls. */
#include <check.h>
#include <dirent.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

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

/* Threads of this process, from /proc/self/task. */
static int task_count(void)
{
    DIR *d = opendir("/proc/self/task");
    if (!d)
        return -1;
    int n = 0;
    for (struct dirent *e; (e = readdir(d));)
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n;
}

/* Records, per range start, the thread that ran it. */
typedef struct who_ctx {
    pthread_t who[4];
} who_ctx;

static void record_who(void *ctx, int lo, int hi)
{
    who_ctx *w = ctx;
    for (int i = lo; i < hi; i++)
        w->who[i] = pthread_self();
}

static void *kept_body(void *arg)
{
    int *ok = arg;
    const int before = task_count();
    who_ctx a = {0}, b = {0};
    ic_parallel_for(record_who, &a, 4, 4);
    const int during = task_count();
    for (int call = 0; call < 200; call++)
        ic_parallel_for(record_who, &b, 4, 4);
    const int after = task_count();
    /* three helpers started once, the same three answer every later call */
    ok[0] = during == before + 3 && after == during;
    ok[1] = 1;
    for (int i = 1; i < 4; i++)
        ok[1] &= pthread_equal(a.who[i], b.who[i]) && !pthread_equal(a.who[i], pthread_self());
    return NULL;
}

START_TEST(test_helpers_are_kept)
{
    /* on a fresh thread, so no earlier test's pool is counted */
    pthread_t t;
    int ok[2] = {0, 0};
    ck_assert_int_eq(pthread_create(&t, NULL, kept_body, ok), 0);
    pthread_join(t, NULL);
    ck_assert_msg(ok[0], "helpers were started more than once");
    ck_assert_msg(ok[1], "a later call ran on other threads than the first");
}
END_TEST

typedef struct sum_ctx {
    atomic_long total;
} sum_ctx;

static void add_indices(void *ctx, int lo, int hi)
{
    sum_ctx *s = ctx;
    long part = 0;
    for (int i = lo; i < hi; i++)
        part += i;
    atomic_fetch_add(&s->total, part);
}

static void *caller_body(void *arg)
{
    int *ok = arg;
    *ok = 1;
    for (int call = 0; call < 300; call++) {
        sum_ctx s;
        atomic_init(&s.total, 0);
        const int n = 1 + call % 97;
        ic_parallel_for(add_indices, &s, n, 1 + call % 5);
        if (atomic_load(&s.total) != (long)n * (n - 1) / 2)
            *ok = 0;
    }
    return NULL;
}

START_TEST(test_concurrent_callers)
{
    /* workers of the daemon call at the same time, each with its own pool */
    enum { CALLERS = 4 };
    pthread_t t[CALLERS];
    int ok[CALLERS];
    for (int i = 0; i < CALLERS; i++)
        ck_assert_int_eq(pthread_create(&t[i], NULL, caller_body, &ok[i]), 0);
    for (int i = 0; i < CALLERS; i++) {
        pthread_join(t[i], NULL);
        ck_assert_msg(ok[i], "caller %d got a wrong sum", i);
    }
}
END_TEST

START_TEST(test_callers_exit_cleanly)
{
    /* a caller's helpers leave with it: no threads pile up */
    const int before = task_count();
    for (int round = 0; round < 20; round++) {
        pthread_t t;
        int ok = 0;
        ck_assert_int_eq(pthread_create(&t, NULL, caller_body, &ok), 0);
        pthread_join(t, NULL);
        ck_assert(ok);
    }
    /* joined helpers are gone from /proc at once */
    ck_assert_int_eq(task_count(), before);
}
END_TEST

static void nested(void *ctx, int lo, int hi)
{
    sum_ctx *s = ctx;
    for (int i = lo; i < hi; i++) {
        sum_ctx inner;
        atomic_init(&inner.total, 0);
        ic_parallel_for(add_indices, &inner, 10, 4);
        atomic_fetch_add(&s->total, atomic_load(&inner.total));
    }
}

START_TEST(test_nested_calls_run_inline)
{
    sum_ctx s;
    atomic_init(&s.total, 0);
    ic_parallel_for(nested, &s, 8, 4);
    ck_assert_int_eq(atomic_load(&s.total), 8 * 45);
}
END_TEST

START_TEST(test_fork_child_runs)
{
    sum_ctx s;
    atomic_init(&s.total, 0);
    ic_parallel_for(add_indices, &s, 100, 4); /* the parent's pool exists */
    const pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        alarm(5); /* a child waiting on the parent's helpers would hang */
        sum_ctx c;
        atomic_init(&c.total, 0);
        ic_parallel_for(add_indices, &c, 100, 4);
        _exit(atomic_load(&c.total) == 4950 ? 0 : 1);
    }
    int status = 0;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                  "the forked child failed or hung (status %d)", status);
}
END_TEST

static Suite *parallel_suite(void)
{
    Suite *s = suite_create("parallel");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_covers_once);
    tcase_add_test(tc, test_single_thread_inline);
    tcase_add_test(tc, test_threads_for_work);
    tcase_add_test(tc, test_helpers_are_kept);
    tcase_add_test(tc, test_concurrent_callers);
    tcase_add_test(tc, test_callers_exit_cleanly);
    tcase_add_test(tc, test_nested_calls_run_inline);
    tcase_add_test(tc, test_fork_child_runs);
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
