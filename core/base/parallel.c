/* Fork-join over an index range; see parallel.h. Threads are started per
 * call: the callers are copies of a few MiB, where a thread start (tens of
 * microseconds) is small next to the work, and per-call threads keep no
 * state between requests or workers. */
#include "base/parallel.h"

#include <cblas.h>
#include <pthread.h>

typedef struct range_job {
    ic_range_fn fn;
    void *ctx;
    int lo, hi;
} range_job;

static void *range_thread(void *arg)
{
    const range_job *j = arg;
    j->fn(j->ctx, j->lo, j->hi);
    return NULL;
}

void ic_parallel_for(ic_range_fn fn, void *ctx, int n, int threads)
{
    if (n <= 0)
        return;
    if (threads > IC_PARALLEL_MAX)
        threads = IC_PARALLEL_MAX;
    if (threads > n)
        threads = n;
    if (threads <= 1) {
        fn(ctx, 0, n);
        return;
    }
    range_job jobs[IC_PARALLEL_MAX];
    pthread_t tid[IC_PARALLEL_MAX];
    int started[IC_PARALLEL_MAX] = {0};
    for (int t = 0; t < threads; t++) {
        jobs[t].fn = fn;
        jobs[t].ctx = ctx;
        jobs[t].lo = (int)((long long)n * t / threads);
        jobs[t].hi = (int)((long long)n * (t + 1) / threads);
    }
    for (int t = 1; t < threads; t++)
        started[t] = pthread_create(&tid[t], NULL, range_thread, &jobs[t]) == 0;
    fn(ctx, jobs[0].lo, jobs[0].hi);
    for (int t = 1; t < threads; t++) {
        if (started[t])
            pthread_join(tid[t], NULL);
        else
            fn(ctx, jobs[t].lo, jobs[t].hi);
    }
}

int ic_parallel_threads(size_t work, size_t min_work, int threads)
{
    if (min_work == 0)
        min_work = 1;
    const size_t most = work / min_work;
    if (threads < 1 || most < 1)
        return 1;
    if ((size_t)threads > most)
        threads = (int)most;
    return threads;
}

int ic_parallel_threads_for(size_t floats)
{
    return ic_parallel_threads(floats, IC_PARALLEL_MIN_STREAM, openblas_get_num_threads());
}
