/* Bounded FIFO with deadlines: a ring buffer under one mutex (see queue.h). */
#include "queue.h"

#include <pthread.h>
#include <time.h>

#include "base/alloc.h"
#include "base/err.h"

typedef struct entry {
    void *item;
    int64_t enqueued_ns;
    int64_t deadline_ns;
} entry;

struct srv_queue {
    pthread_mutex_t mu;
    pthread_cond_t nonempty;
    entry *ring; /* capacity slots; head is the oldest */
    int capacity, head, count;
    int closed;
};

int64_t srv_clock_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int srv_queue_create(int capacity, srv_queue **out)
{
    if (capacity < 1)
        return ic_error_set(IC_EINVAL, "queue capacity %d < 1", capacity);
    srv_queue *q = ic_calloc(1, sizeof *q);
    entry *ring = ic_calloc((size_t)capacity, sizeof *ring);
    if (!q || !ring) {
        ic_free(q);
        ic_free(ring);
        return ic_error_set(IC_ENOMEM, "out of memory for a queue of %d", capacity);
    }
    pthread_mutex_init(&q->mu, NULL);
    pthread_cond_init(&q->nonempty, NULL);
    q->ring = ring;
    q->capacity = capacity;
    *out = q;
    return 0;
}

void srv_queue_destroy(srv_queue **q)
{
    if (!q || !*q)
        return;
    pthread_mutex_destroy(&(*q)->mu);
    pthread_cond_destroy(&(*q)->nonempty);
    ic_free((*q)->ring);
    ic_free(*q);
    *q = NULL;
}

int srv_queue_push(srv_queue *q, void *item, int64_t deadline_ns)
{
    pthread_mutex_lock(&q->mu);
    int rc = 0;
    if (q->closed) {
        rc = ic_error_set(IC_ESTATE, "queue closed");
    } else if (q->count == q->capacity) {
        rc = ic_error_set(IC_ELIMIT, "queue full (%d jobs)", q->capacity);
    } else {
        entry *e = &q->ring[(q->head + q->count) % q->capacity];
        e->item = item;
        e->enqueued_ns = srv_clock_ns();
        e->deadline_ns = deadline_ns;
        q->count++;
        pthread_cond_signal(&q->nonempty);
    }
    pthread_mutex_unlock(&q->mu);
    return rc;
}

int srv_queue_pop(srv_queue *q, void **item, int64_t *enqueued_ns, int64_t *deadline_ns)
{
    pthread_mutex_lock(&q->mu);
    while (q->count == 0 && !q->closed)
        pthread_cond_wait(&q->nonempty, &q->mu);
    if (q->count == 0) {
        pthread_mutex_unlock(&q->mu);
        return ic_error_set(IC_ESTATE, "queue: closed and empty");
    }
    entry e = q->ring[q->head];
    q->head = (q->head + 1) % q->capacity;
    q->count--;
    pthread_mutex_unlock(&q->mu);
    *item = e.item;
    if (enqueued_ns)
        *enqueued_ns = e.enqueued_ns;
    if (deadline_ns)
        *deadline_ns = e.deadline_ns;
    return 0;
}

/* Removes the entries that are expired (or all of them), at most max,
 * compacting the rest in their order. */
static int take_where(srv_queue *q, int64_t now_ns, int all, void **items, int max)
{
    pthread_mutex_lock(&q->mu);
    int taken = 0, kept = 0;
    for (int i = 0; i < q->count; i++) {
        entry e = q->ring[(q->head + i) % q->capacity];
        if (taken < max && (all || e.deadline_ns <= now_ns))
            items[taken++] = e.item;
        else
            q->ring[(q->head + kept++) % q->capacity] = e;
    }
    q->count = kept;
    pthread_mutex_unlock(&q->mu);
    return taken;
}

int srv_queue_take_expired(srv_queue *q, int64_t now_ns, void **items, int max)
{
    return take_where(q, now_ns, 0, items, max);
}

int srv_queue_take_all(srv_queue *q, void **items, int max)
{
    return take_where(q, 0, 1, items, max);
}

void srv_queue_close(srv_queue *q)
{
    pthread_mutex_lock(&q->mu);
    q->closed = 1;
    pthread_cond_broadcast(&q->nonempty);
    pthread_mutex_unlock(&q->mu);
}

int srv_queue_size(srv_queue *q)
{
    pthread_mutex_lock(&q->mu);
    int n = q->count;
    pthread_mutex_unlock(&q->mu);
    return n;
}

int srv_queue_capacity(const srv_queue *q)
{
    return q->capacity;
}
