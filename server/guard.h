/* The connection guard: per-connection limits that libmicrohttpd 0.9.75
 * does not have, so that slow, stalled or piled-up clients cannot hold the
 * connection table (max_connections) against everyone else.
 *
 * - max_connections_per_ip: a new connection from an address that already
 *   holds that many is answered 503 `too_many_connections` and closed.
 * - header_timeout_s: the request line and headers must be complete within
 *   this time from the connection's start (or, on a kept-alive connection,
 *   from the end of the previous response). A trickle of header bytes,
 *   which resets libmicrohttpd's idle timeout each time, does not extend it.
 * - min_body_rate: once a body is a second old, each following 2-second
 *   window must bring at least 2 x min_body_rate bytes.
 * A connection over a time limit is answered 408 `request_timeout` and
 * closed (an idle kept-alive connection is only closed); every drop is
 * counted in instcald_connections_dropped_total{reason}.
 *
 * How: libmicrohttpd tells the guard about each connection
 * (MHD_OPTION_NOTIFY_CONNECTION), the access handler tells it the request's
 * phase, and a sweeper thread checks the deadlines every 100 ms. It ends a
 * connection by writing the answer to the socket and shutting it down, so
 * that libmicrohttpd reads end-of-stream and closes it in its own thread.
 * The guard's lock is held from that check to the shutdown, and the closed
 * notification (which comes before libmicrohttpd closes the descriptor)
 * takes the same lock, so the sweeper never touches a reused descriptor.
 * After 16 MB of bodies, once no body is arriving, the sweeper also gives
 * freed heap memory back (malloc_trim), so RSS returns to its baseline. */
#ifndef SRV_GUARD_H
#define SRV_GUARD_H

#include <microhttpd.h>
#include <stdint.h>

#include "metrics.h"

/* Where a connection's current request is. */
typedef enum srv_conn_phase {
    SRV_CONN_HEADERS = 0, /* request line and headers arriving (header deadline) */
    SRV_CONN_BODY,        /* body arriving (minimum rate) */
    SRV_CONN_BUSY,        /* request complete: queued, running or being answered (no limit) */
    SRV_CONN_IDLE,        /* answered, kept alive: the next request's header deadline runs */
} srv_conn_phase;

typedef struct srv_guard_limits {
    int per_ip;              /* 0 = no cap */
    int64_t header_ns;       /* > 0 */
    int64_t min_body_rate;   /* bytes/s, 0 = none */
    int max_connections;     /* sizes the address table */
    int retry_after_s;       /* Retry-After of the 503 */
} srv_guard_limits;

typedef struct srv_guard srv_guard;
typedef struct srv_guard_conn srv_guard_conn;

/* Creates the guard and starts its sweeper. Returns 0 or IC_ENOMEM/IC_EIO. */
int srv_guard_create(const srv_guard_limits *lim, srv_metrics *metrics, srv_guard **out);

/* Stops the sweeper and frees the guard (after the daemon is stopped).
 * Accepts NULL. */
void srv_guard_destroy(srv_guard **g);

/* MHD_OPTION_NOTIFY_CONNECTION callback; cls is the guard. */
void srv_guard_notify(void *cls, struct MHD_Connection *conn, void **socket_context,
                      enum MHD_ConnectionNotificationCode code);

/* The guard's record of conn (NULL if the daemon has no guard). */
srv_guard_conn *srv_guard_of(struct MHD_Connection *conn);

/* The access handler's view: the request moved to phase p. */
void srv_guard_set_phase(srv_guard *g, srv_guard_conn *c, srv_conn_phase p);

/* n more body bytes arrived. */
void srv_guard_add_body(srv_guard *g, srv_guard_conn *c, uint64_t n);

/* The status the guard answered when it dropped c (408, 503), else 0. */
int srv_guard_dropped(srv_guard *g, const srv_guard_conn *c);

#endif
