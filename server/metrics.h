/* The Prometheus metrics registry of instcald and its text exposition.
 *
 * Format 0.0.4 (serve with SRV_METRICS_CONTENT_TYPE): base units, counters
 * end in _total, histograms carry cumulative _bucket lines up to le="+Inf",
 * then _sum and _count. All updates are thread-safe (one mutex; updates are
 * a handful of adds, far cheaper than any request), and a scrape renders
 * from one consistent snapshot so _count always equals the +Inf bucket.
 * Label values are bounded sets (route names, status codes, calibration
 * modes), never ids or sizes, so cardinality cannot grow with traffic. */
#ifndef SRV_METRICS_H
#define SRV_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

/* Content-Type of the exposition. */
#define SRV_METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* The latency histograms (all in seconds). */
typedef enum srv_hist_id {
    SRV_H_QUEUE_WAIT = 0, /* enqueue -> a worker picks the job */
    SRV_H_DECODE,         /* image decode + normalisation */
    SRV_H_INFERENCE,      /* forward pass with calibration */
    SRV_H_POSTPROCESS,    /* panoptic grouping + encoding */
    SRV_H_REQUEST,        /* arrival of headers -> response queued */
    SRV_H_COUNT
} srv_hist_id;

/* Why a request was refused without inference (instcald_rejected_requests_total). */
typedef enum srv_reject_reason {
    SRV_REJ_QUEUE_FULL = 0,
    SRV_REJ_TOO_LARGE,
    SRV_REJ_DRAINING,
    SRV_REJ_DEADLINE,
    SRV_REJ_CLIENT_GONE,
    SRV_REJ_OUT_OF_MEMORY, /* the backend ran out of memory (503) */
    SRV_REJ_COUNT
} srv_reject_reason;

/* Why the server closed a connection itself (instcald_connections_dropped_total). */
typedef enum srv_drop_reason {
    SRV_DROP_HEADER_TIMEOUT = 0, /* request line + headers not complete within header_timeout_s */
    SRV_DROP_SLOW_BODY,          /* body slower than min_body_rate */
    SRV_DROP_PER_IP_LIMIT,       /* the address already held max_connections_per_ip */
    SRV_DROP_COUNT
} srv_drop_reason;

/* Gauges sampled by the caller at scrape time. */
typedef struct srv_gauges {
    long queue_depth;
    long queue_capacity;
    long in_flight;
    long busy_workers;
    long workers;
    long connections;
    int ready;
} srv_gauges;

/* Opaque registry. */
typedef struct srv_metrics srv_metrics;

/* Creates a registry; version and model label instcald_build_info.
 * Returns 0 or IC_ENOMEM. */
int srv_metrics_create(const char *version, const char *model, srv_metrics **out);

/* Frees the registry and sets *m to NULL. Accepts NULL. */
void srv_metrics_destroy(srv_metrics **m);

/* Counts one finished HTTP request. route and calibration are copied
 * (truncated to 31 characters); calibration may be "" for routes without
 * one. Entries beyond a fixed table size are folded into route="other". */
void srv_metrics_count_request(srv_metrics *m, const char *route, int status,
                               const char *calibration);

/* Adds one observation (seconds) to a histogram. */
void srv_metrics_observe(srv_metrics *m, srv_hist_id h, double seconds);

/* Adds one image's drift score (calib/drift.h) to instcald_drift_score for
 * its calibration mode (the score's scale depends on it, docs/drift.md).
 * Modes outside the core's table and non-finite scores are ignored. */
void srv_metrics_observe_drift(srv_metrics *m, int calibration_mode, double score);

/* Adds to instcald_http_request_bytes_total (request body bytes read). */
void srv_metrics_add_bytes(srv_metrics *m, uint64_t n);

/* Counts a request refused without inference. */
void srv_metrics_count_rejected(srv_metrics *m, srv_reject_reason r);

/* Counts a connection the server closed itself. */
void srv_metrics_count_dropped(srv_metrics *m, srv_drop_reason r);

/* Counts a model reload attempt (instcald_model_reloads_total{result}). */
void srv_metrics_count_reload(srv_metrics *m, int ok);

/* Changes the model label of instcald_build_info (after a reload). */
void srv_metrics_set_model(srv_metrics *m, const char *model);

/* Appends the whole exposition (registry, gauges g, process metrics) to
 * out. Returns 0 or IC_ENOMEM. */
int srv_metrics_render(srv_metrics *m, const srv_gauges *g, srv_buf *out);

/* Appends s escaped as a label value (\\, \", \n). Returns 0 or IC_ENOMEM. */
int srv_metrics_escape_label(srv_buf *out, const char *s);

/* Formats v as a Prometheus float: "+Inf", "-Inf", "NaN", or the shortest
 * %.{15,16,17}g text that reads back as v. out must hold 32 bytes. */
void srv_metrics_format_double(char *out, size_t n, double v);

/* Appends the standard process_* families read from /proc/self. Missing
 * files are skipped, never an error. Returns 0 or IC_ENOMEM. */
int srv_metrics_render_process(srv_buf *out);

#endif
