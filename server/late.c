/* Background sender of late answers (see late.h). */
#include "late.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/err.h"
#include "rawhttp.h"

#define MAX_PENDING 64

typedef struct item {
    int fd;
    srv_buf msg;
    size_t off;
    int64_t deadline_ns;
} item;

struct srv_late {
    pthread_mutex_t mu;
    pthread_t thread;
    int wake[2];
    int stop;
    int64_t timeout_ns;
    item items[MAX_PENDING];
    int n;
};

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void finish(srv_late *l, int i)
{
    close(l->items[i].fd);
    srv_buf_free(&l->items[i].msg);
    l->items[i] = l->items[--l->n];
}

static void *run(void *arg)
{
    srv_late *l = arg;
    for (;;) {
        struct pollfd p[MAX_PENDING + 1];
        int64_t now = now_ns(), next = now + 1000000000;
        pthread_mutex_lock(&l->mu);
        if (l->stop) {
            while (l->n)
                finish(l, 0);
            pthread_mutex_unlock(&l->mu);
            return NULL;
        }
        for (int i = l->n - 1; i >= 0; i--)
            if (now >= l->items[i].deadline_ns)
                finish(l, i); /* the client does not read: give up */
        int n = l->n;
        for (int i = 0; i < n; i++) {
            p[i] = (struct pollfd){.fd = l->items[i].fd, .events = POLLOUT};
            if (l->items[i].deadline_ns < next)
                next = l->items[i].deadline_ns;
        }
        pthread_mutex_unlock(&l->mu);
        p[n] = (struct pollfd){.fd = l->wake[0], .events = POLLIN};
        int ms = (int)((next - now) / 1000000) + 1;
        if (poll(p, (nfds_t)n + 1, ms) < 0 && errno != EINTR)
            continue;
        if (p[n].revents & POLLIN) {
            char b[64];
            while (read(l->wake[0], b, sizeof b) > 0) {
            }
        }
        pthread_mutex_lock(&l->mu);
        /* Only the first n items were polled; new ones wait for the next turn. */
        for (int i = n - 1; i >= 0; i--) {
            if (!p[i].revents)
                continue;
            item *it = &l->items[i];
            if (p[i].revents & (POLLERR | POLLHUP)) {
                finish(l, i);
                continue;
            }
            it->off += srv_raw_send(it->fd, it->msg.data + it->off, it->msg.len - it->off);
            if (it->off == it->msg.len)
                finish(l, i);
        }
        pthread_mutex_unlock(&l->mu);
    }
}

int srv_late_create(int64_t timeout_ns, srv_late **out)
{
    srv_late *l = ic_calloc(1, sizeof *l);
    if (!l)
        return ic_error_set(IC_ENOMEM, "out of memory for the late sender");
    l->timeout_ns = timeout_ns;
    pthread_mutex_init(&l->mu, NULL);
    if (pipe2(l->wake, O_CLOEXEC | O_NONBLOCK) != 0) {
        pthread_mutex_destroy(&l->mu);
        ic_free(l);
        return ic_error_set(IC_EIO, "cannot create the late sender's pipe");
    }
    if (pthread_create(&l->thread, NULL, run, l) != 0) {
        close(l->wake[0]);
        close(l->wake[1]);
        pthread_mutex_destroy(&l->mu);
        ic_free(l);
        return ic_error_set(IC_EIO, "cannot start the late sender");
    }
    *out = l;
    return 0;
}

void srv_late_destroy(srv_late **lp)
{
    srv_late *l = lp ? *lp : NULL;
    if (!l)
        return;
    pthread_mutex_lock(&l->mu);
    l->stop = 1;
    pthread_mutex_unlock(&l->mu);
    if (write(l->wake[1], "x", 1) < 0) {
        /* the pipe is full: the thread is awake anyway */
    }
    pthread_join(l->thread, NULL);
    close(l->wake[0]);
    close(l->wake[1]);
    pthread_mutex_destroy(&l->mu);
    ic_free(l);
    *lp = NULL;
}

int srv_late_send(srv_late *l, int fd, srv_buf *msg)
{
    size_t sent = srv_raw_send(fd, msg->data, msg->len);
    if (sent == msg->len) {
        srv_buf_free(msg);
        return 1;
    }
    int rc = 0;
    pthread_mutex_lock(&l->mu);
    if (l->stop) {
        rc = ic_error_set(IC_ELIMIT, "late sender: stopping");
    } else if (l->n >= MAX_PENDING) {
        rc = ic_error_set(IC_ELIMIT, "late sender: %d responses already pending", MAX_PENDING);
    } else {
        int dup_fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
        if (dup_fd >= 0) {
            item *it = &l->items[l->n++];
            it->fd = dup_fd;
            it->msg = *msg;
            it->off = sent;
            it->deadline_ns = now_ns() + l->timeout_ns;
            srv_buf_init(msg, 0);
        } else {
            rc = ic_error_set(IC_EIO, "late sender: dup: %s", strerror(errno));
        }
    }
    pthread_mutex_unlock(&l->mu);
    srv_buf_free(msg);
    if (rc == 0 && write(l->wake[1], "x", 1) < 0) {
        /* the pipe is full: the thread is awake anyway */
    }
    return rc;
}

int srv_late_pending(srv_late *l)
{
    pthread_mutex_lock(&l->mu);
    int n = l->n;
    pthread_mutex_unlock(&l->mu);
    return n;
}
