/* Fork-join over an index range; see parallel.h.
 *
 * Each calling thread (a daemon worker, the CLI's main thread) owns a small
 * pool of helper threads, started on its first parallel call and kept until
 * it exits: a forward makes a few hundred parallel calls, and starting
 * threads per call (35-60 us each here) cost the shipped model at 256x512
 * about a fifth of its 2-thread forward. Pools are never shared, so workers
 * do not wait on each other and no lock is held across requests.
 *
 * A job is published by bumping `gen` under the mutex; every helper answers
 * every job (those past the job's range count do nothing), so the caller's
 * wait for `pending == 0` also guarantees that no helper still reads the
 * job's fields when the next job overwrites them. Helpers spin briefly
 * before sleeping on the condition variable: the calls of one forward come
 * back to back, and a futex wake costs as much as a small pass. */
#include "base/parallel.h"

#include <cblas.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

/* How long a helper or the caller spins before sleeping, nanoseconds. */
#define SPIN_NS 50000L

typedef struct pool pool;

typedef struct helper {
    pool *p;
    int index;          /* the range it takes: 1 .. IC_PARALLEL_MAX - 1 */
    unsigned long seen; /* the last job generation it answered */
    pthread_t tid;
} helper;

struct pool {
    pthread_mutex_t mu;
    pthread_cond_t go;   /* helpers: a new job or quit */
    pthread_cond_t done; /* caller: pending reached 0 */
    atomic_ulong gen;
    atomic_int pending;
    int quit;
    int busy; /* the owner is inside a job: nested calls run inline */
    int n_helpers;
    helper helpers[IC_PARALLEL_MAX];
    /* the current job, written before gen is bumped */
    ic_range_fn fn;
    void *ctx;
    int n, threads;
};

static _Thread_local pool *my_pool;
static _Thread_local int in_helper;
static pthread_key_t pool_key;
static pthread_once_t key_once = PTHREAD_ONCE_INIT;

static long now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000000000L + ts.tv_nsec;
}

static void range_of(int n, int threads, int t, int *lo, int *hi)
{
    *lo = (int)((long long)n * t / threads);
    *hi = (int)((long long)n * (t + 1) / threads);
}

static void *helper_main(void *arg)
{
    helper *h = arg;
    pool *p = h->p;
    in_helper = 1;
    for (;;) {
        unsigned long g = atomic_load_explicit(&p->gen, memory_order_acquire);
        if (g == h->seen) {
            const long until = now_ns() + SPIN_NS;
            while ((g = atomic_load_explicit(&p->gen, memory_order_acquire)) == h->seen &&
                   now_ns() < until)
                ;
        }
        if (g == h->seen) {
            pthread_mutex_lock(&p->mu);
            while ((g = atomic_load_explicit(&p->gen, memory_order_acquire)) == h->seen &&
                   !p->quit)
                pthread_cond_wait(&p->go, &p->mu);
            const int quit = p->quit && g == h->seen;
            pthread_mutex_unlock(&p->mu);
            if (quit)
                return NULL;
        }
        h->seen = g;
        if (h->index < p->threads) {
            int lo, hi;
            range_of(p->n, p->threads, h->index, &lo, &hi);
            p->fn(p->ctx, lo, hi);
        }
        if (atomic_fetch_sub_explicit(&p->pending, 1, memory_order_acq_rel) == 1) {
            pthread_mutex_lock(&p->mu);
            pthread_cond_signal(&p->done);
            pthread_mutex_unlock(&p->mu);
        }
    }
}

/* Stops and joins the helpers of a pool whose owner is exiting. */
static void pool_destroy(void *arg)
{
    pool *p = arg;
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    p->quit = 1;
    pthread_cond_broadcast(&p->go);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < p->n_helpers; i++)
        pthread_join(p->helpers[i].tid, NULL);
    pthread_cond_destroy(&p->go);
    pthread_cond_destroy(&p->done);
    pthread_mutex_destroy(&p->mu);
    free(p);
    if (my_pool == p)
        my_pool = NULL;
}

/* In a forked child only the forking thread exists: its pool's helpers are
 * gone (and its mutex may be held by one of them), so the child forgets the
 * pool and starts a new one on its next call. The old one's memory stays. */
static void forget_pool_in_child(void)
{
    my_pool = NULL;
    pthread_setspecific(pool_key, NULL);
}

static void make_key(void)
{
    pthread_key_create(&pool_key, pool_destroy);
    pthread_atfork(NULL, NULL, forget_pool_in_child);
}

/* The calling thread's pool, created on first use; NULL if out of memory. */
static pool *get_pool(void)
{
    if (my_pool)
        return my_pool;
    pthread_once(&key_once, make_key);
    pool *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->go, NULL);
    pthread_cond_init(&p->done, NULL);
    atomic_init(&p->gen, 0);
    atomic_init(&p->pending, 0);
    if (pthread_setspecific(pool_key, p) != 0) {
        pool_destroy(p);
        return NULL;
    }
    my_pool = p;
    return p;
}

/* Starts helpers until the pool has `want` (or a start fails). Called by the
 * owner between jobs, when no helper reads the pool's job fields. */
static void grow(pool *p, int want)
{
    while (p->n_helpers < want) {
        helper *h = &p->helpers[p->n_helpers];
        h->p = p;
        h->index = p->n_helpers + 1;
        h->seen = atomic_load_explicit(&p->gen, memory_order_relaxed);
        if (pthread_create(&h->tid, NULL, helper_main, h) != 0)
            return;
        p->n_helpers++;
    }
}

void ic_parallel_for(ic_range_fn fn, void *ctx, int n, int threads)
{
    if (n <= 0)
        return;
    if (threads > IC_PARALLEL_MAX)
        threads = IC_PARALLEL_MAX;
    if (threads > n)
        threads = n;
    pool *p = threads > 1 && !in_helper ? get_pool() : NULL;
    if (!p || p->busy) {
        fn(ctx, 0, n);
        return;
    }
    grow(p, threads - 1);
    p->busy = 1;
    const int helpers = p->n_helpers;
    if (helpers > 0) {
        pthread_mutex_lock(&p->mu);
        p->fn = fn;
        p->ctx = ctx;
        p->n = n;
        p->threads = threads;
        atomic_store_explicit(&p->pending, helpers, memory_order_relaxed);
        atomic_fetch_add_explicit(&p->gen, 1, memory_order_release);
        pthread_cond_broadcast(&p->go);
        pthread_mutex_unlock(&p->mu);
    }
    /* the caller takes range 0 and every range no helper could be started for */
    int lo, hi;
    range_of(n, threads, 0, &lo, &hi);
    fn(ctx, lo, hi);
    for (int t = helpers + 1; t < threads; t++) {
        range_of(n, threads, t, &lo, &hi);
        fn(ctx, lo, hi);
    }
    if (helpers > 0) {
        const long until = now_ns() + SPIN_NS;
        while (atomic_load_explicit(&p->pending, memory_order_acquire) > 0 && now_ns() < until)
            ;
        if (atomic_load_explicit(&p->pending, memory_order_acquire) > 0) {
            pthread_mutex_lock(&p->mu);
            while (atomic_load_explicit(&p->pending, memory_order_acquire) > 0)
                pthread_cond_wait(&p->done, &p->mu);
            pthread_mutex_unlock(&p->mu);
        }
    }
    p->busy = 0;
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
