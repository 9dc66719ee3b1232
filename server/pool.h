/* The fixed pool of inference workers.
 *
 * Each worker owns its backend worker state, pops jobs from the shared
 * queue and, before spending any compute, drops jobs whose deadline passed
 * while queued (504) or whose client hung up; everything else goes through
 * the backend's process(). The pool never talks HTTP: it finishes jobs
 * through srv_job_finish(), which resumes the suspended connection. */
#ifndef SRV_POOL_H
#define SRV_POOL_H

#include "backend.h"
#include "metrics.h"
#include "queue.h"

/* Opaque pool. */
typedef struct srv_pool srv_pool;

/* Starts n worker threads on queue q running backend (ops, ctx). metrics
 * receives stage timings and rejections. The pool does not own q, ops, ctx
 * or metrics. Returns 0, IC_EINVAL, IC_ENOMEM, or the first worker_init
 * failure (then no thread is left running). */
int srv_pool_create(int n, srv_queue *q, const srv_backend_ops *ops, void *ctx,
                    srv_metrics *metrics, srv_pool **out);

/* Closes the queue, lets the workers finish what is queued, joins them and
 * frees the pool; *p becomes NULL. Accepts NULL. */
void srv_pool_destroy(srv_pool **p);

/* Workers currently running a job (including the deadline/disconnect
 * checks). */
int srv_pool_busy(srv_pool *p);

/* Number of workers. */
int srv_pool_size(const srv_pool *p);

#endif
