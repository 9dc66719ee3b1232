/* The libmicrohttpd side of instcald: the access handler, upload streaming
 * into bounded buffers, the suspend/resume hand-off to the worker pool, the
 * per-request log line and request metrics.
 *
 * All of this runs on libmicrohttpd's single polling thread (epoll), so the
 * per-connection state needs no locking; only srv_job is shared with the
 * workers (see job.h for its life cycle). */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/err.h"
#include "job.h"
#include "log.h"
#include "server.h"

/* Bytes we keep reading (and discarding) after deciding to refuse an upload,
 * so that the client can read our error; past this we close instead. */
#define DISCARD_SLACK ((uint64_t)4 << 20)
#define PP_BUFFER_SIZE (64 * 1024)

typedef enum phase { PH_NEW, PH_BODY, PH_WAIT, PH_DONE } phase;

/* Per-request state, owned by the HTTP thread (MHD's *con_cls). */
typedef struct srv_req {
    srv_server *s;
    int64_t start_ns;
    char id[72];
    char method[16];
    char path[256];
    const char *route;
    char calibration[32]; /* metrics label for segment requests */
    int status;           /* 0 until a response is queued */
    uint64_t bytes_in, bytes_out;

    phase ph;
    int in_flight; /* counted in s->in_flight */
    struct MHD_PostProcessor *pp;
    srv_buf image, label, label_segments;
    char image_type[32];
    char f_calibration[32], f_m[32], f_outputs[128], f_rle[16];
    srv_err reject_err; /* refuse at end of body */
    char reject_msg[192];
    srv_job *job;
} srv_req;

static int64_t ns_since(int64_t t0)
{
    return srv_clock_ns() - t0;
}

static void set_id(srv_server *s, struct MHD_Connection *conn, srv_req *req)
{
    const char *given = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Request-Id");
    if (given) {
        size_t n = strlen(given), ok = n > 0 && n <= 64;
        for (size_t i = 0; ok && i < n; i++)
            ok = isalnum((unsigned char)given[i]) || strchr("._:-", given[i]);
        if (ok) {
            memcpy(req->id, given, n + 1);
            return;
        }
    }
    static unsigned boot_tag;
    if (!boot_tag)
        boot_tag = (unsigned)(getpid() ^ (unsigned)srv_clock_ns()) & 0xffffff;
    snprintf(req->id, sizeof req->id, "%06x-%lu", boot_tag,
             (unsigned long)atomic_fetch_add(&s->next_id, 1) + 1);
}

static srv_req *req_new(srv_server *s, struct MHD_Connection *conn, const char *method,
                        const char *url)
{
    srv_req *req = ic_calloc(1, sizeof *req);
    if (!req)
        return NULL;
    req->s = s;
    req->start_ns = srv_clock_ns();
    snprintf(req->method, sizeof req->method, "%s", method);
    snprintf(req->path, sizeof req->path, "%s", url);
    srv_buf_init(&req->image, (size_t)s->cfg.max_upload_bytes);
    srv_buf_init(&req->label, (size_t)s->cfg.max_upload_bytes);
    srv_buf_init(&req->label_segments, (size_t)s->cfg.max_upload_bytes);
    set_id(s, conn, req);
    return req;
}

static void req_free(srv_req *req)
{
    if (req->pp)
        MHD_destroy_post_processor(req->pp);
    srv_buf_free(&req->image);
    srv_buf_free(&req->label);
    srv_buf_free(&req->label_segments);
    srv_job_unref(req->job);
    ic_free(req);
}

// ---- responses ----------------------------------------------------------------

static enum MHD_Result queue_reply(struct MHD_Connection *conn, srv_req *req, srv_reply *r)
{
    struct MHD_Response *resp;
    if (r->file_fd >= 0) {
        resp = MHD_create_response_from_fd64(r->file_size, r->file_fd);
        req->bytes_out = r->file_size;
    } else if (r->body) {
        resp = MHD_create_response_from_buffer_with_free_callback(r->len, r->body, &free);
        req->bytes_out = r->len;
    } else {
        resp = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    }
    if (!resp) {
        if (r->file_fd >= 0)
            close(r->file_fd);
        free(r->body);
        return MHD_NO;
    }
    if (r->content_type)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, r->content_type);
    MHD_add_response_header(resp, "X-Request-Id", req->id);
    if (r->allow)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, r->allow);
    if (r->retry_after > 0) {
        char v[16];
        snprintf(v, sizeof v, "%d", r->retry_after);
        MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, v);
    }
    if (atomic_load(&req->s->draining))
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
    req->status = r->status;
    enum MHD_Result ret = MHD_queue_response(conn, (unsigned)r->status, resp);
    MHD_destroy_response(resp);
    req->ph = PH_DONE;
    return ret;
}

static enum MHD_Result reply_error(struct MHD_Connection *conn, srv_req *req, srv_err e,
                                   const char *message)
{
    srv_reply r = {.file_fd = -1};
    srv_reply_error(&r, e, message);
    if (r.status == 503)
        r.retry_after = req->s->cfg.retry_after_s;
    return queue_reply(conn, req, &r);
}

/* Remembers the first reason to refuse; answered once the body is read. */
static void reject(srv_req *req, srv_err e, const char *msg)
{
    if (req->reject_err)
        return;
    req->reject_err = e;
    snprintf(req->reject_msg, sizeof req->reject_msg, "%s", msg);
    srv_buf_free(&req->image);
    srv_buf_free(&req->label);
    srv_buf_free(&req->label_segments);
}

// ---- POST /v1/segment: headers ---------------------------------------------------

static enum MHD_Result post_iter(void *cls, enum MHD_ValueKind kind, const char *key,
                                 const char *filename, const char *content_type,
                                 const char *transfer_encoding, const char *data, uint64_t off,
                                 size_t size);

/* First call: decide from the headers alone whether to take the body, so
 * that an oversize or unsupported upload is refused before it is sent
 * (libmicrohttpd then skips `100 Continue` and closes after the reply). */
static enum MHD_Result segment_begin(srv_server *s, struct MHD_Connection *conn, srv_req *req)
{
    if (atomic_load(&s->draining)) {
        srv_metrics_count_rejected(s->metrics, SRV_REJ_DRAINING);
        return reply_error(conn, req, SRV_ERR_SHUTTING_DOWN, "the server is shutting down");
    }
    const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                 MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (cl) {
        char *end;
        errno = 0;
        unsigned long long n = strtoull(cl, &end, 10);
        if (errno == ERANGE || n > (unsigned long long)s->cfg.max_upload_bytes) {
            char msg[128];
            snprintf(msg, sizeof msg, "the body is larger than %lld bytes",
                     (long long)s->cfg.max_upload_bytes);
            srv_metrics_count_rejected(s->metrics, SRV_REJ_TOO_LARGE);
            return reply_error(conn, req, SRV_ERR_TOO_LARGE, msg);
        }
    }
    const char *ct = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                 MHD_HTTP_HEADER_CONTENT_TYPE);
    char mt[64] = "";
    if (ct) {
        size_t n = strcspn(ct, "; \t");
        snprintf(mt, sizeof mt, "%.*s", (int)(n < sizeof mt ? n : sizeof mt - 1), ct);
    }
    if (strcasecmp(mt, "image/jpeg") == 0 || strcasecmp(mt, "image/png") == 0) {
        snprintf(req->image_type, sizeof req->image_type, "image/%s",
                 strcasecmp(mt, "image/png") == 0 ? "png" : "jpeg");
    } else if (strcasecmp(mt, "multipart/form-data") == 0) {
        req->pp = MHD_create_post_processor(conn, PP_BUFFER_SIZE, post_iter, req);
        if (!req->pp)
            return reply_error(conn, req, SRV_ERR_BAD_MULTIPART,
                               "malformed multipart/form-data header (boundary)");
    } else {
        return reply_error(conn, req, SRV_ERR_UNSUPPORTED_MEDIA_TYPE,
                           "send image/jpeg, image/png or multipart/form-data");
    }
    if (srv_queue_size(s->queue) >= srv_queue_capacity(s->queue)) {
        srv_metrics_count_rejected(s->metrics, SRV_REJ_QUEUE_FULL);
        return reply_error(conn, req, SRV_ERR_QUEUE_FULL, "the server is busy; retry later");
    }
    req->ph = PH_BODY;
    return MHD_YES;
}

// ---- POST /v1/segment: body --------------------------------------------------------

static int append_field(srv_req *req, char *dst, size_t cap, const char *key, const char *data,
                        uint64_t off, size_t size)
{
    size_t have = strlen(dst);
    if (off != have || have + size >= cap) {
        char msg[96];
        snprintf(msg, sizeof msg, "field '%s' is too long", key);
        reject(req, SRV_ERR_BAD_FIELD, msg);
        return -1;
    }
    memcpy(dst + have, data, size);
    dst[have + size] = '\0';
    return 0;
}

static enum MHD_Result post_iter(void *cls, enum MHD_ValueKind kind, const char *key,
                                 const char *filename, const char *content_type,
                                 const char *transfer_encoding, const char *data, uint64_t off,
                                 size_t size)
{
    srv_req *req = cls;
    if (req->reject_err)
        return MHD_NO;
    if (!key) {
        /* libmicrohttpd passes key NULL for a part whose Content-Disposition
         * has no name= (found by tests/fuzz: it crashed the daemon). */
        reject(req, SRV_ERR_BAD_MULTIPART, "a form part has no name");
        return MHD_NO;
    }
    srv_buf *file = strcmp(key, "image") == 0            ? &req->image
                    : strcmp(key, "label") == 0          ? &req->label
                    : strcmp(key, "label_segments") == 0 ? &req->label_segments
                                                         : NULL;
    if (file) {
        if (off == 0 && file == &req->image && content_type &&
            (strcasecmp(content_type, "image/jpeg") == 0 ||
             strcasecmp(content_type, "image/png") == 0))
            snprintf(req->image_type, sizeof req->image_type, "%s",
                     strcasecmp(content_type, "image/png") == 0 ? "image/png" : "image/jpeg");
        if (srv_buf_append(file, data, size) != 0) {
            srv_metrics_count_rejected(req->s->metrics, SRV_REJ_TOO_LARGE);
            reject(req, SRV_ERR_TOO_LARGE, "the upload is larger than max_upload_bytes");
            return MHD_NO;
        }
        return MHD_YES;
    }
    int rc;
    if (strcmp(key, "calibration") == 0)
        rc = append_field(req, req->f_calibration, sizeof req->f_calibration, key, data, off, size);
    else if (strcmp(key, "m") == 0)
        rc = append_field(req, req->f_m, sizeof req->f_m, key, data, off, size);
    else if (strcmp(key, "outputs") == 0)
        rc = append_field(req, req->f_outputs, sizeof req->f_outputs, key, data, off, size);
    else if (strcmp(key, "rle") == 0)
        rc = append_field(req, req->f_rle, sizeof req->f_rle, key, data, off, size);
    else {
        char msg[160];
        snprintf(msg, sizeof msg, "unknown form field '%.64s' (image, label, label_segments, "
                 "calibration, m, outputs, rle)", key);
        reject(req, SRV_ERR_UNKNOWN_FIELD, msg);
        rc = -1;
    }
    return rc == 0 ? MHD_YES : MHD_NO;
}

/* Body chunk: counted as it arrives, so chunked uploads (no Content-Length)
 * hit the same cap. Always consumes everything (partial consumption
 * semantics changed after 0.9.75). Returns MHD_NO to drop the connection
 * once a refused upload keeps coming. */
static enum MHD_Result segment_body(srv_server *s, srv_req *req, const char *data, size_t n)
{
    req->bytes_in += n;
    srv_metrics_add_bytes(s->metrics, n);
    if (req->reject_err)
        return req->bytes_in > (uint64_t)s->cfg.max_upload_bytes + DISCARD_SLACK ? MHD_NO
                                                                                : MHD_YES;
    if (req->bytes_in > (uint64_t)s->cfg.max_upload_bytes) {
        srv_metrics_count_rejected(s->metrics, SRV_REJ_TOO_LARGE);
        reject(req, SRV_ERR_TOO_LARGE, "the body is larger than max_upload_bytes");
        return MHD_YES;
    }
    if (!req->pp) {
        if (srv_buf_append(&req->image, data, n) != 0)
            reject(req, SRV_ERR_OUT_OF_MEMORY, "cannot buffer the upload");
        return MHD_YES;
    }
    if (MHD_post_process(req->pp, data, n) != MHD_YES)
        reject(req, SRV_ERR_BAD_MULTIPART, "malformed multipart/form-data body");
    return MHD_YES;
}

// ---- POST /v1/segment: end of body -> queue ------------------------------------------

static const char *option(struct MHD_Connection *conn, const char *field, const char *name)
{
    if (field[0])
        return field;
    return MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, name);
}

/* Validates the options into job; returns NULL or the error message. */
static const char *parse_options(srv_server *s, struct MHD_Connection *conn, srv_req *req,
                                 srv_job *job)
{
    const char *cal = option(conn, req->f_calibration, "calibration");
    if (!cal || !cal[0])
        cal = s->cfg.calibration;
    snprintf(req->calibration, sizeof req->calibration, "%s",
             srv_calibration_valid(cal) ? cal : "invalid");
    if (!srv_calibration_valid(cal))
        return "calibration must be one of none, manual, tbn, instcal-u, instcal-c, tent";
    snprintf(job->calibration, sizeof job->calibration, "%s", cal);
    const char *m = option(conn, req->f_m, "m");
    if (m && m[0]) {
        char *end;
        double v = strtod(m, &end);
        if (*end || !isfinite(v) || v < 0 || v > 1)
            return "m must be a number in [0, 1]";
        job->m = v;
        job->has_m = 1;
    } else if (strcmp(cal, "manual") == 0) {
        return "calibration=manual needs m";
    }
    const char *outs = option(conn, req->f_outputs, "outputs");
    if (!outs || !outs[0])
        outs = "panoptic,semantic";
    job->outputs = 0;
    job->rle = 0;
    for (const char *p = outs; *p;) {
        size_t len = strcspn(p, ",");
        if (len == 8 && strncmp(p, "panoptic", 8) == 0)
            job->outputs |= SRV_OUT_PANOPTIC;
        else if (len == 8 && strncmp(p, "semantic", 8) == 0)
            job->outputs |= SRV_OUT_SEMANTIC;
        else if (len == 10 && strncmp(p, "confidence", 10) == 0)
            job->outputs |= SRV_OUT_CONFIDENCE;
        else if (len == 7 && strncmp(p, "overlay", 7) == 0)
            job->outputs |= SRV_OUT_OVERLAY;
        else if (len == 3 && strncmp(p, "rle", 3) == 0)
            job->rle = 1;
        else if (!(len == 4 && strncmp(p, "none", 4) == 0))
            return "outputs is a comma list of panoptic, semantic, confidence, overlay, rle "
                   "(or none)";
        p += len;
        if (*p == ',')
            p++;
    }
    const char *rle = option(conn, req->f_rle, "rle");
    if (!rle || !rle[0])
        ; /* keep what outputs said */
    else if (strcmp(rle, "0") == 0 || strcmp(rle, "false") == 0)
        job->rle = 0;
    else if (strcmp(rle, "1") == 0 || strcmp(rle, "true") == 0)
        job->rle = 1;
    else
        return "rle must be true, false, 1 or 0";
    return NULL;
}

static enum MHD_Result segment_end(srv_server *s, struct MHD_Connection *conn, srv_req *req)
{
    if (req->pp) {
        enum MHD_Result ok = MHD_destroy_post_processor(req->pp);
        req->pp = NULL;
        if (ok != MHD_YES)
            reject(req, SRV_ERR_BAD_MULTIPART, "truncated or malformed multipart/form-data body");
    }
    if (req->reject_err)
        return reply_error(conn, req, req->reject_err, req->reject_msg);
    if (atomic_load(&s->draining)) {
        srv_metrics_count_rejected(s->metrics, SRV_REJ_DRAINING);
        return reply_error(conn, req, SRV_ERR_SHUTTING_DOWN, "the server is shutting down");
    }
    srv_job *job = srv_job_new();
    if (!job)
        return reply_error(conn, req, SRV_ERR_OUT_OF_MEMORY, "out of memory");
    req->job = job; /* the HTTP side's reference */
    const char *bad = parse_options(s, conn, req, job);
    if (bad) {
        srv_job_unref(job); /* the queue's reference, never used */
        return reply_error(conn, req, SRV_ERR_BAD_PARAMETER, bad);
    }
    if (req->image.len == 0) {
        srv_job_unref(job);
        return reply_error(conn, req, SRV_ERR_MISSING_IMAGE,
                           "no image: send it as the body or as the form field 'image'");
    }
    if (req->label_segments.len && !req->label.len) {
        srv_job_unref(job);
        return reply_error(conn, req, SRV_ERR_BAD_PARAMETER,
                           "label_segments needs a label (the COCO-panoptic PNG it describes)");
    }
    snprintf(job->id, sizeof job->id, "%s", req->id);
    job->image = req->image;
    job->label = req->label;
    job->label_segments = req->label_segments;
    srv_buf_init(&req->image, 0);
    srv_buf_init(&req->label, 0);
    srv_buf_init(&req->label_segments, 0);
    snprintf(job->image_type, sizeof job->image_type, "%s", req->image_type);
    job->max_pixels = s->cfg.max_pixels;
    job->arrival_ns = req->start_ns;
    job->deadline_ns = req->start_ns + s->cfg.deadline_ms * 1000000;
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    job->fd = ci ? ci->connect_fd : -1;

    /* Push and suspend under job->mu: a worker that pops the job at once
     * blocks in srv_job_finish until the connection really is suspended. */
    pthread_mutex_lock(&job->mu);
    int rc = srv_queue_push(s->queue, job, job->deadline_ns);
    if (rc == 0) {
        MHD_suspend_connection(conn);
        job->conn = conn;
        job->state = SRV_JOB_QUEUED;
    }
    pthread_mutex_unlock(&job->mu);
    if (rc != 0) {
        srv_job_unref(job);
        srv_metrics_count_rejected(s->metrics,
                                   rc == IC_ELIMIT ? SRV_REJ_QUEUE_FULL : SRV_REJ_DRAINING);
        return reply_error(conn, req, rc == IC_ELIMIT ? SRV_ERR_QUEUE_FULL : SRV_ERR_SHUTTING_DOWN,
                           rc == IC_ELIMIT ? "the server is busy; retry later"
                                           : "the server is shutting down");
    }
    req->ph = PH_WAIT;
    req->in_flight = 1;
    atomic_fetch_add(&s->in_flight, 1);
    return MHD_YES;
}

/* Called by libmicrohttpd after a worker resumed the connection. */
static enum MHD_Result segment_resumed(srv_server *s, struct MHD_Connection *conn, srv_req *req)
{
    srv_job *job = req->job;
    pthread_mutex_lock(&job->mu);
    srv_result res = job->res;
    job->res.json = NULL;
    int gone = job->client_gone;
    pthread_mutex_unlock(&job->mu);
    double total = (double)ns_since(req->start_ns) * 1e-9;
    if (gone) {
        json_decref(res.json);
        req->status = 499;
        req->ph = PH_DONE;
        return MHD_NO; /* nobody to answer: close */
    }
    srv_metrics_observe(s->metrics, SRV_H_REQUEST, total);
    if (res.err != SRV_ERR_NONE || !res.json) {
        json_decref(res.json);
        return reply_error(conn, req, res.err != SRV_ERR_NONE ? res.err : SRV_ERR_INTERNAL,
                           res.message);
    }
    json_object_set_new(res.json, "request_id", json_string(req->id));
    json_object_set_new(res.json, "timings",
                        json_pack("{s:f,s:f,s:f,s:f,s:f}", "queue_s", job->queue_wait_s,
                                  "decode_s", res.decode_s, "inference_s", res.inference_s,
                                  "postprocess_s", res.postprocess_s, "total_s", total));
    srv_reply r = {.file_fd = -1};
    srv_reply_json(&r, 200, res.json);
    return queue_reply(conn, req, &r);
}

// ---- the access handler ---------------------------------------------------------------

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **con_cls)
{
    srv_server *s = cls;
    srv_req *req = *con_cls;
    if (!req) {
        req = req_new(s, conn, method, url);
        if (!req)
            return MHD_NO;
        *con_cls = req;
        if (srv_routes_is_segment(url) && strcmp(method, "POST") == 0) {
            req->route = "segment";
            return segment_begin(s, conn, req);
        }
        srv_reply r = {.file_fd = -1};
        srv_routes_handle(s, method, url, &r);
        req->route = r.route;
        return queue_reply(conn, req, &r);
    }
    if (req->ph == PH_WAIT)
        return segment_resumed(s, conn, req);
    if (req->ph != PH_BODY) {
        *upload_data_size = 0; /* a response is queued; ignore the rest */
        return MHD_YES;
    }
    if (*upload_data_size) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        return segment_body(s, req, upload_data, n);
    }
    return segment_end(s, conn, req);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    srv_server *s = cls;
    srv_req *req = *con_cls;
    if (!req)
        return;
    *con_cls = NULL;
    if (req->in_flight)
        atomic_fetch_sub(&s->in_flight, 1);
    int status = req->status ? req->status : 499; /* no response: the client went away */
    int is_seg = req->route && strcmp(req->route, "segment") == 0;
    srv_metrics_count_request(s->metrics, req->route ? req->route : "unknown", status,
                              is_seg ? req->calibration : "");
    if (srv_log_enabled(SRV_LOG_INFO)) {
        char qpath[300], stages[192] = "";
        const srv_job *job = req->job;
        int n = 0;
        if (is_seg && req->calibration[0])
            n = snprintf(stages, sizeof stages, " calibration=%s", req->calibration);
        if (job && req->in_flight) /* stage timings only for jobs that were queued */
            snprintf(stages + n, sizeof stages - (size_t)n,
                     " queue_ms=%.1f decode_ms=%.1f infer_ms=%.1f post_ms=%.1f",
                     job->queue_wait_s * 1e3, job->res.decode_s * 1e3,
                     job->res.inference_s * 1e3, job->res.postprocess_s * 1e3);
        srv_log(SRV_LOG_INFO,
                "event=request id=%s method=%s path=%s route=%s status=%d bytes_in=%llu "
                "bytes_out=%llu%s total_ms=%.1f end=%s",
                req->id, req->method, srv_log_quote(qpath, sizeof qpath, req->path),
                req->route ? req->route : "unknown", status, (unsigned long long)req->bytes_in,
                (unsigned long long)req->bytes_out, stages,
                (double)ns_since(req->start_ns) * 1e-6,
                toe == MHD_REQUEST_TERMINATED_COMPLETED_OK     ? "ok"
                : toe == MHD_REQUEST_TERMINATED_CLIENT_ABORT   ? "client_abort"
                : toe == MHD_REQUEST_TERMINATED_TIMEOUT_REACHED ? "timeout"
                : toe == MHD_REQUEST_TERMINATED_DAEMON_SHUTDOWN ? "shutdown"
                                                                : "error");
    }
    req_free(req);
}

// ---- daemon ---------------------------------------------------------------------------

static void mhd_logger(void *cls, const char *fmt, va_list ap)
{
    char msg[512], q[600];
    vsnprintf(msg, sizeof msg, fmt, ap);
    msg[strcspn(msg, "\n")] = '\0';
    srv_log(SRV_LOG_WARN, "event=mhd msg=%s", srv_log_quote(q, sizeof q, msg));
}

static void mhd_panic(void *cls, const char *file, unsigned int line, const char *reason)
{
    srv_log(SRV_LOG_ERROR, "event=mhd_panic file=%s line=%u reason=\"%s\"", file, line,
            reason ? reason : "");
    abort();
}

int srv_http_start(srv_server *s)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME |
                     MHD_USE_ERROR_LOG;
    struct sockaddr_in *v4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, s->cfg.bind, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons((uint16_t)s->cfg.port);
    } else if (inet_pton(AF_INET6, s->cfg.bind, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons((uint16_t)s->cfg.port);
        flags |= MHD_USE_IPv6;
    } else {
        return ic_error_set(IC_EINVAL, "bind = '%s' is not an IPv4 or IPv6 address",
                            s->cfg.bind);
    }
    MHD_set_panic_func(mhd_panic, NULL);
    s->daemon = MHD_start_daemon(
        flags, (uint16_t)s->cfg.port, NULL, NULL, on_request, s, MHD_OPTION_EXTERNAL_LOGGER,
        mhd_logger, s, MHD_OPTION_SOCK_ADDR, &ss,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)s->cfg.max_connections,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)s->cfg.connection_timeout_s,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)128 * 1024, MHD_OPTION_NOTIFY_COMPLETED,
        on_completed, s, MHD_OPTION_END);
    if (!s->daemon)
        return ic_error_set(IC_EIO, "cannot listen on %s port %d: %s", s->cfg.bind, s->cfg.port,
                            strerror(errno));
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_BIND_PORT);
    s->port = di ? di->port : s->cfg.port;
    return 0;
}

/* Finishes (with the error e) and releases the queue's reference of each job. */
static void fail_jobs(srv_server *s, void **jobs, int n, srv_err e, const char *msg,
                      srv_reject_reason why)
{
    for (int i = 0; i < n; i++) {
        srv_metrics_count_rejected(s->metrics, why);
        srv_job_fail(jobs[i], e, msg);
        srv_job_unref(jobs[i]);
    }
}

void srv_http_reap_expired(srv_server *s)
{
    void *jobs[64];
    int n;
    while ((n = srv_queue_take_expired(s->queue, srv_clock_ns(), jobs, 64)) > 0)
        fail_jobs(s, jobs, n, SRV_ERR_DEADLINE_EXCEEDED,
                  "the request's deadline passed while it waited in the queue",
                  SRV_REJ_DEADLINE);
}

void srv_http_fail_queued(srv_server *s)
{
    void *jobs[64];
    int n;
    while ((n = srv_queue_take_all(s->queue, jobs, 64)) > 0)
        fail_jobs(s, jobs, n, SRV_ERR_SHUTTING_DOWN, "the server shut down before this request ran",
                  SRV_REJ_DRAINING);
}

void srv_http_stop(srv_server *s)
{
    if (s->daemon)
        MHD_stop_daemon(s->daemon);
    s->daemon = NULL;
}
