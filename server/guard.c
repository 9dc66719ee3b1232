/* The connection guard (see guard.h). */
#include "guard.h"

#include <linux/tcp.h>
#include <malloc.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "addr_count.h"
#include "base/alloc.h"
#include "base/err.h"
#include "log.h"
#include "rawhttp.h"
#include "server.h"

#define SWEEP_NS 100000000LL
#define SECOND_NS 1000000000LL
#define WINDOW_NS (2 * SECOND_NS)
#define TRIM_BYTES ((uint64_t)16 << 20)

struct srv_guard_conn {
    srv_guard_conn *prev, *next;
    int fd;
    srv_addr addr;
    int counted;            /* holds one of its address's slots */
    srv_conn_phase phase;
    int64_t phase_ns;       /* when the phase began */
    uint64_t rx_at_phase;   /* bytes the kernel had received then (IDLE) */
    uint64_t body;          /* body bytes of the current request */
    int64_t win_ns;         /* body-rate window start, 0 = not yet */
    uint64_t win_body;
    int dropped;            /* the status we answered when we dropped it, or -1 silently */
};

struct srv_guard {
    srv_guard_limits lim;
    srv_metrics *metrics;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t thread;
    int stop;
    srv_guard_conn *head;
    srv_addr_count *addrs;
    uint64_t pending[SRV_DROP_COUNT]; /* drops not yet logged */
    uint64_t body_since_trim;         /* body bytes buffered since the last malloc_trim */
};

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * SECOND_NS + ts.tv_nsec;
}

static uint64_t bytes_received(int fd)
{
    struct tcp_info ti;
    socklen_t n = sizeof ti;
    memset(&ti, 0, sizeof ti);
    if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &n) != 0 ||
        n < offsetof(struct tcp_info, tcpi_bytes_received) + sizeof ti.tcpi_bytes_received)
        return 0;
    return ti.tcpi_bytes_received;
}

/* Ends c (lock held): answers e unless e is SRV_ERR_NONE, then shuts the
 * socket down so that libmicrohttpd reads end-of-stream and closes it. */
static void drop(srv_guard *g, srv_guard_conn *c, srv_err e, const char *msg, int retry,
                 int reason)
{
    if (e != SRV_ERR_NONE)
        srv_raw_send_error(c->fd, e, msg, "", retry);
    shutdown(c->fd, SHUT_RDWR);
    c->dropped = e != SRV_ERR_NONE ? srv_err_status(e) : -1;
    c->phase = SRV_CONN_BUSY; /* nothing more to check */
    if (reason >= 0) {
        srv_metrics_count_dropped(g->metrics, (srv_drop_reason)reason);
        g->pending[reason]++;
    }
}

static void check(srv_guard *g, srv_guard_conn *c, int64_t now)
{
    if (c->dropped)
        return;
    int64_t age = now - c->phase_ns;
    switch (c->phase) {
    case SRV_CONN_HEADERS:
        if (age > g->lim.header_ns)
            /* A client that sent nothing at all (a preconnect) is only closed. */
            drop(g, c, bytes_received(c->fd) ? SRV_ERR_REQUEST_TIMEOUT : SRV_ERR_NONE,
                 "the request line and headers did not arrive within header_timeout_s", 0,
                 SRV_DROP_HEADER_TIMEOUT);
        break;
    case SRV_CONN_IDLE:
        if (age > g->lim.header_ns) {
            if (bytes_received(c->fd) == c->rx_at_phase)
                drop(g, c, SRV_ERR_NONE, NULL, 0, -1); /* a quiet kept-alive connection */
            else
                drop(g, c, SRV_ERR_REQUEST_TIMEOUT,
                     "the request line and headers did not arrive within header_timeout_s", 0,
                     SRV_DROP_HEADER_TIMEOUT);
        }
        break;
    case SRV_CONN_BODY:
        if (g->lim.min_body_rate <= 0 || age < SECOND_NS)
            break;
        if (!c->win_ns) {
            c->win_ns = now;
            c->win_body = c->body;
        } else if (now - c->win_ns >= WINDOW_NS) {
            double need = (double)g->lim.min_body_rate * (double)(now - c->win_ns) / SECOND_NS;
            if ((double)(c->body - c->win_body) < need)
                drop(g, c, SRV_ERR_REQUEST_TIMEOUT,
                     "the request body arrived slower than min_body_rate bytes per second", 0,
                     SRV_DROP_SLOW_BODY);
            c->win_ns = now;
            c->win_body = c->body;
        }
        break;
    case SRV_CONN_BUSY:
        break;
    }
}

static void *sweeper(void *arg)
{
    srv_guard *g = arg;
    static const char *const names[SRV_DROP_COUNT] = {"header_timeout", "slow_body",
                                                      "per_ip_limit"};
    int64_t last_log = 0;
    pthread_mutex_lock(&g->mu);
    while (!g->stop) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += SWEEP_NS;
        if (ts.tv_nsec >= SECOND_NS) {
            ts.tv_sec++;
            ts.tv_nsec -= SECOND_NS;
        }
        pthread_cond_timedwait(&g->cv, &g->mu, &ts);
        int64_t now = now_ns();
        int bodies = 0;
        for (srv_guard_conn *c = g->head; c; c = c->next) {
            check(g, c, now);
            bodies += c->phase == SRV_CONN_BODY && !c->dropped;
        }
        if (g->body_since_trim >= TRIM_BYTES && !bodies) {
            /* Freed upload buffers stay resident in glibc's heap (its mmap
             * threshold rises with the first large free): hand them back
             * once a burst of uploads is over. */
            g->body_since_trim = 0;
            pthread_mutex_unlock(&g->mu);
            malloc_trim(0);
            pthread_mutex_lock(&g->mu);
        }
        /* One summary line a second at most, however large the flood. */
        uint64_t total = 0;
        for (int r = 0; r < SRV_DROP_COUNT; r++)
            total += g->pending[r];
        if (total && now - last_log >= SECOND_NS) {
            srv_log(SRV_LOG_INFO, "event=connections_dropped %s=%llu %s=%llu %s=%llu", names[0],
                    (unsigned long long)g->pending[0], names[1],
                    (unsigned long long)g->pending[1], names[2],
                    (unsigned long long)g->pending[2]);
            memset(g->pending, 0, sizeof g->pending);
            last_log = now;
        }
    }
    pthread_mutex_unlock(&g->mu);
    return NULL;
}

int srv_guard_create(const srv_guard_limits *lim, srv_metrics *metrics, srv_guard **out)
{
    srv_guard *g = ic_calloc(1, sizeof *g);
    if (!g)
        return ic_error_set(IC_ENOMEM, "out of memory for the connection guard");
    g->lim = *lim;
    g->metrics = metrics;
    /* Each connection holds at most one address; a few spare for the
     * moment between a close and its notification. */
    g->addrs = srv_addr_count_create((size_t)lim->max_connections + 64);
    pthread_mutex_init(&g->mu, NULL);
    pthread_cond_init(&g->cv, NULL);
    if (!g->addrs || pthread_create(&g->thread, NULL, sweeper, g) != 0) {
        pthread_cond_destroy(&g->cv);
        pthread_mutex_destroy(&g->mu);
        srv_addr_count_destroy(g->addrs);
        ic_free(g);
        return ic_error_set(IC_EIO, "cannot start the connection guard");
    }
    *out = g;
    return 0;
}

void srv_guard_destroy(srv_guard **gp)
{
    srv_guard *g = gp ? *gp : NULL;
    if (!g)
        return;
    pthread_mutex_lock(&g->mu);
    g->stop = 1;
    pthread_cond_signal(&g->cv);
    pthread_mutex_unlock(&g->mu);
    pthread_join(g->thread, NULL);
    while (g->head) { /* the daemon is stopped: only leftovers of a failed start */
        srv_guard_conn *c = g->head;
        g->head = c->next;
        ic_free(c);
    }
    pthread_cond_destroy(&g->cv);
    pthread_mutex_destroy(&g->mu);
    srv_addr_count_destroy(g->addrs);
    ic_free(g);
    *gp = NULL;
}

void srv_guard_notify(void *cls, struct MHD_Connection *conn, void **socket_context,
                      enum MHD_ConnectionNotificationCode code)
{
    srv_guard *g = cls;
    if (code == MHD_CONNECTION_NOTIFY_CLOSED) {
        srv_guard_conn *c = *socket_context;
        if (!c)
            return;
        pthread_mutex_lock(&g->mu);
        if (c->prev)
            c->prev->next = c->next;
        else
            g->head = c->next;
        if (c->next)
            c->next->prev = c->prev;
        if (c->counted)
            srv_addr_count_give(g->addrs, &c->addr);
        pthread_mutex_unlock(&g->mu);
        ic_free(c);
        *socket_context = NULL;
        return;
    }
    srv_guard_conn *c = ic_calloc(1, sizeof *c);
    const union MHD_ConnectionInfo *fdi =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    const union MHD_ConnectionInfo *ai =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    *socket_context = c;
    if (!c || !fdi) { /* unguarded; libmicrohttpd's own limits still apply */
        ic_free(c);
        *socket_context = NULL;
        return;
    }
    c->fd = fdi->connect_fd;
    c->addr = srv_addr_of(ai ? ai->client_addr : NULL);
    c->phase = SRV_CONN_HEADERS;
    c->phase_ns = now_ns();
    pthread_mutex_lock(&g->mu);
    c->next = g->head;
    if (g->head)
        g->head->prev = c;
    g->head = c;
    c->counted = srv_addr_count_take(g->addrs, &c->addr, g->lim.per_ip);
    if (!c->counted)
        drop(g, c, SRV_ERR_TOO_MANY_CONNECTIONS,
             "this address holds max_connections_per_ip connections already; retry later",
             g->lim.retry_after_s, SRV_DROP_PER_IP_LIMIT);
    pthread_mutex_unlock(&g->mu);
}

srv_guard_conn *srv_guard_of(struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ci ? ci->socket_context : NULL;
}

void srv_guard_set_phase(srv_guard *g, srv_guard_conn *c, srv_conn_phase p)
{
    if (!g || !c)
        return;
    uint64_t rx = p == SRV_CONN_IDLE ? bytes_received(c->fd) : 0;
    pthread_mutex_lock(&g->mu);
    if (!c->dropped) {
        c->phase = p;
        c->phase_ns = now_ns();
        c->rx_at_phase = rx;
        c->body = 0;
        c->win_ns = 0;
    }
    pthread_mutex_unlock(&g->mu);
}

void srv_guard_add_body(srv_guard *g, srv_guard_conn *c, uint64_t n)
{
    if (!g || !c)
        return;
    pthread_mutex_lock(&g->mu);
    c->body += n;
    g->body_since_trim += n;
    pthread_mutex_unlock(&g->mu);
}

int srv_guard_dropped(srv_guard *g, const srv_guard_conn *c)
{
    if (!g || !c)
        return 0;
    pthread_mutex_lock(&g->mu);
    int d = c->dropped;
    pthread_mutex_unlock(&g->mu);
    return d;
}
