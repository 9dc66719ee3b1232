/* Worker threads: pop, check deadline and client, process, finish (see pool.h). */
#include "pool.h"

#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#include "base/alloc.h"
#include "base/err.h"
#include "job.h"
#include "log.h"

typedef struct worker {
    struct srv_pool *pool;
    int index;
    pthread_t thread;
    void *wctx;
} worker;

struct srv_pool {
    srv_queue *queue;
    const srv_backend_ops *ops;
    void *ctx;
    srv_metrics *metrics;
    worker *workers;
    int n;
    atomic_int busy;
};

static void run_job(worker *w, srv_job *job, int64_t enqueued_ns)
{
    srv_pool *p = w->pool;
    int64_t now = srv_clock_ns();
    job->queue_wait_s = (double)(now - enqueued_ns) * 1e-9;
    srv_metrics_observe(p->metrics, SRV_H_QUEUE_WAIT, job->queue_wait_s);
    if (now >= job->req.deadline_ns) {
        srv_metrics_count_rejected(p->metrics, SRV_REJ_DEADLINE);
        srv_job_fail(job, SRV_ERR_DEADLINE_EXCEEDED,
                     "the request's deadline passed while it waited in the queue");
        return;
    }
    if (srv_job_client_gone(job)) {
        job->client_gone = 1;
        srv_metrics_count_rejected(p->metrics, SRV_REJ_CLIENT_GONE);
        srv_job_fail(job, SRV_ERR_CLIENT_GONE, "the client closed the connection");
        return;
    }
    srv_result res;
    memset(&res, 0, sizeof res);
    ic_error_clear();
    int rc = p->ops->process(p->ctx, w->wctx, &job->req, &res);
    if (rc < 0 && res.err == SRV_ERR_NONE)
        srv_result_engine_error(&res, rc, "image");
    if (res.err == SRV_ERR_NONE && !res.json && !res.oip.len)
        srv_result_error(&res, SRV_ERR_INTERNAL, "the backend returned no result");
    if (res.err == SRV_ERR_OUT_OF_MEMORY)
        srv_metrics_count_rejected(p->metrics, SRV_REJ_OUT_OF_MEMORY);
    if (res.err == SRV_ERR_NONE) {
        srv_metrics_observe(p->metrics, SRV_H_DECODE, res.decode_s);
        srv_metrics_observe(p->metrics, SRV_H_INFERENCE, res.inference_s);
        srv_metrics_observe(p->metrics, SRV_H_POSTPROCESS, res.postprocess_s);
        if (res.has_drift)
            srv_metrics_observe_drift(p->metrics, job->req.opts.calib.mode, res.drift);
    }
    srv_job_finish(job, &res);
}

static void *worker_main(void *arg)
{
    worker *w = arg;
    srv_pool *p = w->pool;
    for (;;) {
        void *item;
        int64_t enqueued_ns;
        if (srv_queue_pop(p->queue, &item, &enqueued_ns, NULL) != 0)
            break;
        srv_job *job = item;
        atomic_fetch_add(&p->busy, 1);
        run_job(w, job, enqueued_ns);
        atomic_fetch_sub(&p->busy, 1);
        srv_job_unref(job);
    }
    return NULL;
}

/* Stops and joins the first `started` workers, then frees the pool. */
static void teardown(srv_pool *p, int started)
{
    srv_queue_close(p->queue);
    for (int i = 0; i < started; i++)
        pthread_join(p->workers[i].thread, NULL);
    for (int i = 0; i < p->n; i++)
        if (p->workers[i].wctx)
            p->ops->worker_deinit(p->ctx, p->workers[i].wctx);
    ic_free(p->workers);
    ic_free(p);
}

int srv_pool_create(int n, srv_queue *q, const srv_backend_ops *ops, void *ctx,
                    srv_metrics *metrics, srv_pool **out)
{
    if (n < 1)
        return ic_error_set(IC_EINVAL, "a pool needs at least one worker");
    srv_pool *p = ic_calloc(1, sizeof *p);
    worker *ws = ic_calloc((size_t)n, sizeof *ws);
    if (!p || !ws) {
        ic_free(p);
        ic_free(ws);
        return ic_error_set(IC_ENOMEM, "out of memory for %d workers", n);
    }
    p->queue = q;
    p->ops = ops;
    p->ctx = ctx;
    p->metrics = metrics;
    p->workers = ws;
    p->n = n;
    /* Worker state is made here, on the main thread, so a failure (say, no
     * memory for the scratch arena) is a startup error, not a dead worker. */
    for (int i = 0; i < n; i++) {
        ws[i].pool = p;
        ws[i].index = i;
        int rc = ops->worker_init(ctx, i, &ws[i].wctx);
        if (rc) {
            teardown(p, 0);
            return rc;
        }
    }
    for (int i = 0; i < n; i++) {
        if (pthread_create(&ws[i].thread, NULL, worker_main, &ws[i]) != 0) {
            teardown(p, i);
            return ic_error_set(IC_ENOMEM, "cannot start worker thread %d", i);
        }
    }
    *out = p;
    return 0;
}

void srv_pool_destroy(srv_pool **pp)
{
    if (!pp || !*pp)
        return;
    srv_pool *p = *pp;
    teardown(p, p->n);
    *pp = NULL;
}

int srv_pool_busy(srv_pool *p)
{
    return atomic_load(&p->busy);
}

int srv_pool_size(const srv_pool *p)
{
    return p->n;
}
