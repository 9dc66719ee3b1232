/* A bounded FIFO of jobs between the HTTP thread and the workers.
 *
 * Bounded so that overload turns into an immediate 503 instead of unbounded
 * latency and memory; every entry carries its deadline so that expired jobs
 * can be taken out (and answered 504) without ever reaching a worker. */
#ifndef SRV_QUEUE_H
#define SRV_QUEUE_H

#include <stdint.h>

/* Monotonic clock in nanoseconds (CLOCK_MONOTONIC). */
int64_t srv_clock_ns(void);

/* Opaque queue; all functions are thread-safe. */
typedef struct srv_queue srv_queue;

/* Creates a queue holding at most capacity (>= 1) items.
 * Returns 0, IC_EINVAL or IC_ENOMEM. */
int srv_queue_create(int capacity, srv_queue **out);

/* Frees the queue (items still inside are not touched) and NULLs *q. */
void srv_queue_destroy(srv_queue **q);

/* Appends item with an absolute deadline (srv_clock_ns() time base).
 * Never blocks. Returns 0, IC_ELIMIT when full, IC_ESTATE after close. */
int srv_queue_push(srv_queue *q, void *item, int64_t deadline_ns);

/* Takes the oldest item, waiting while the queue is empty and open.
 * *enqueued_ns and *deadline_ns (either may be NULL) receive its times.
 * Returns 0, or IC_ESTATE once the queue is closed and empty. */
int srv_queue_pop(srv_queue *q, void **item, int64_t *enqueued_ns, int64_t *deadline_ns);

/* Removes every item whose deadline is <= now_ns, oldest first, storing at
 * most max of them in items. Returns how many were removed. */
int srv_queue_take_expired(srv_queue *q, int64_t now_ns, void **items, int max);

/* Removes up to max items regardless of deadline (shutdown leftovers).
 * Returns how many were removed. */
int srv_queue_take_all(srv_queue *q, void **items, int max);

/* Refuses further pushes and wakes every waiting pop; items already queued
 * are still handed out. */
void srv_queue_close(srv_queue *q);

/* Items currently queued. */
int srv_queue_size(srv_queue *q);

/* The capacity given at creation. */
int srv_queue_capacity(const srv_queue *q);

#endif
