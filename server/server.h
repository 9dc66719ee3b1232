/* The instcald server object: configuration, backend, queue, workers,
 * metrics and the libmicrohttpd daemon, plus the route layer's reply type.
 *
 * One srv_server lives in main(); nothing here is global, so tests could
 * run several. The HTTP thread (libmicrohttpd's polling thread) parses and
 * routes; it never runs inference. */
#ifndef SRV_SERVER_H
#define SRV_SERVER_H

#include <limits.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "backend.h"
#include "config.h"
#include "metrics.h"
#include "oip.h"
#include "pool.h"
#include "queue.h"

struct MHD_Connection;
struct MHD_Daemon;
struct srv_guard;
struct srv_late;

/* The service version reported by /v2, build_info and logs. */
#ifndef SRV_VERSION
#define SRV_VERSION "0.0.0"
#endif

/* Everything the running daemon needs. Fields are set by main() before
 * srv_http_start() and not changed afterwards, except the atomics. */
typedef struct srv_server {
    srv_config cfg;
    const srv_backend_ops *ops;
    void *backend;
    srv_metrics *metrics;
    srv_queue *queue;
    srv_pool *pool;
    struct MHD_Daemon *daemon;
    struct MHD_Daemon *admin;   /* the admin listener (admin.c), NULL if none */
    struct srv_guard *guard;    /* per-connection limits of the main listener (guard.h) */
    struct srv_late *late;      /* answers to half-closed clients (late.h) */
    char static_root[PATH_MAX]; /* realpath of cfg.static_dir, "" if none */
    int port;                   /* the port actually bound */
    int admin_port;             /* the admin port bound, -1 if none */
    atomic_int draining;        /* set on SIGTERM: refuse new work */
    atomic_long in_flight;      /* segment requests accepted, response not yet sent */
    atomic_ulong next_id;       /* request id counter */
} srv_server;

/* A reply built by a route, before it becomes an MHD response. */
typedef struct srv_reply {
    int status;
    char *body;               /* malloc-compatible (freed with free()), may be NULL */
    size_t len;
    const char *content_type; /* static string */
    const char *allow;        /* Allow header for 405, else NULL */
    int retry_after;          /* seconds, 0 = no Retry-After */
    int file_fd;              /* >= 0: send this file (file_size bytes) instead of body */
    uint64_t file_size;
    const char *route;        /* metrics label */
    size_t infer_header_len;  /* > 0: Inference-Header-Content-Length (oip.h) */
} srv_reply;

/* Fills r with the JSON error {"error": {"code", "message"}} of e, with e's status. */
void srv_reply_error(srv_reply *r, srv_err e, const char *message);

/* Fills r with obj serialised (takes the reference to obj). */
void srv_reply_json(srv_reply *r, int status, json_t *obj);

/* Answers every route except POST /v1/segment: method is the HTTP method,
 * path the decoded URL path. Always fills r (404/405 included). */
void srv_routes_handle(srv_server *s, const char *method, const char *path, srv_reply *r);

/* Whether path is the segmentation route (POST only). */
int srv_routes_is_segment(const char *path);

/* Whether path is /v2/models/{name}[/versions/{v}]/infer. */
int srv_routes_is_infer(const char *path);

/* SRV_ERR_NONE when the infer path names the served model (and version
 * 1 or none), else the error (message in ic_error_message()). */
srv_err srv_routes_check_infer_model(srv_server *s, const char *path);

/* The readiness rule shared by /readyz, /v2/health/ready and the ready
 * gauge: model loaded, not draining, queue not full. */
int srv_ready(srv_server *s);

/* Fills g with the current gauge values. */
void srv_sample_gauges(srv_server *s, srv_gauges *g);

/* Starts libmicrohttpd on cfg.bind:cfg.port and stores the bound port in
 * s->port. Returns 0 or IC_EIO with a message. */
int srv_http_start(srv_server *s);

/* Queues r on conn (taking r's body or file), with X-Request-Id: id when
 * id is non-empty and `Connection: close` when close is non-zero. Returns
 * libmicrohttpd's answer. Shared by both listeners. */
int srv_http_queue(struct MHD_Connection *conn, srv_reply *r, const char *id, int close);

/* libmicrohttpd's log messages as logfmt lines (MHD_OPTION_EXTERNAL_LOGGER). */
void srv_http_mhd_log(void *cls, const char *fmt, va_list ap);

/* Starts the admin listener on cfg.bind:cfg.admin_port unless admin_port
 * is -1, and stores the bound port in s->admin_port (-1 if none). Returns 0
 * or IC_EIO with a message. */
int srv_admin_start(srv_server *s);

/* Stops the admin listener (if any). */
void srv_admin_stop(srv_server *s);

/* Answers with 504 every queued job whose deadline has passed (called
 * periodically by main, since suspended connections never time out). */
void srv_http_reap_expired(srv_server *s);

/* Answers every job still queued with 503 (shutdown). */
void srv_http_fail_queued(srv_server *s);

/* Stops the daemon (all connections must have been resumed). */
void srv_http_stop(srv_server *s);

#endif
