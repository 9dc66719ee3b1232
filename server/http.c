/* The libmicrohttpd side of instcald: the access handler, upload streaming
 * into bounded buffers, the suspend/resume hand-off to the worker pool, the
 * per-request log line and request metrics.
 *
 * A segmentation request, top to bottom: segment_begin() decides from the
 * headers whether to take the body; segment_body() streams the uploads into
 * the request object (request.h) and keeps the form's option fields;
 * segment_end() has srv_request_parse() turn options and headers into the
 * engine's options, moves the request into a job and queues it; a worker
 * hands job->req to the backend (pool.c); segment_resumed() answers.
 *
 * A connection belongs to one of libmicrohttpd's polling threads
 * (HTTP_THREADS), so the per-connection state needs no locking; what
 * connections share is locked or atomic: srv_job with the workers (see
 * job.h for its life cycle), the metrics, the connection guard (guard.h)
 * and the late sender (late.h).
 *
 * Around libmicrohttpd 0.9.75's limits: every request's framing is checked
 * first (framing.h); the query string in the URI callback, before
 * libmicrohttpd parses it; GET routes answer on the handler's last call so
 * the connection stays alive; a chunked body that passes max_upload_bytes
 * gets its 413 at once, written to the socket (rawhttp.h); and a client
 * that half-closed gets its answer through late.h. */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/err.h"
#include "framing.h"
#include "guard.h"
#include "job.h"
#include "late.h"
#include "log.h"
#include "multipart_end.h"
#include "rawhttp.h"
#include "request.h"
#include "server.h"

/* Bytes we keep reading (and discarding) after deciding to refuse an upload,
 * so that the client can read our error; past this we close instead. */
#define DISCARD_SLACK ((uint64_t)4 << 20)
#define PP_BUFFER_SIZE (64 * 1024)
/* Polling threads of the main listener, each taking connections from the
 * shared accept queue: libmicrohttpd takes one per turn of a thread's loop,
 * so after a burst of dead uploads an honest connection waited behind them
 * for 0.7-1.2 s with one thread and 0.3-0.5 s with four (tests/hostile/
 * floods.py, half_upload_burst_260, on a loaded 2-core machine). */
#define HTTP_THREADS 4

typedef enum phase { PH_NEW, PH_ROUTE, PH_BODY, PH_WAIT, PH_DONE } phase;

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
    int started;      /* the access handler saw this request */
    int uri_too_long; /* the URI callback cut the query string */
    int answered_raw; /* the answer went straight to the socket (rawhttp.h) */
    int http11;       /* the request said HTTP/1.1 */
    uint64_t content_length; /* of the body, 0 if none or chunked */
    int in_flight;    /* counted in s->in_flight */
    int infer;        /* POST /v2/models/{name}/infer: the body is an OIP request (oip.h) */
    struct MHD_PostProcessor *pp;
    srv_mp_end mp_end; /* where the multipart body ends (epilogue ignored) */
    srv_request r;                                    /* uploads stream into it */
    char form[SRV_OPT_COUNT][SRV_OPT_VALUE_MAX + 1]; /* option fields of a form */
    char image_part_type[32];                         /* Content-Type of the image part */
    srv_err reject_err; /* refuse at end of body */
    char reject_msg[192];
    srv_job *job;
} srv_req;

static int64_t ns_since(int64_t t0)
{
    return srv_clock_ns() - t0;
}

/* Set once by srv_http_start, before any polling thread runs. */
static unsigned boot_tag;

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
    snprintf(req->id, sizeof req->id, "%06x-%lu", boot_tag,
             (unsigned long)atomic_fetch_add(&s->next_id, 1) + 1);
}

static srv_req *req_new(srv_server *s, const char *url)
{
    srv_req *req = ic_calloc(1, sizeof *req);
    if (!req)
        return NULL;
    req->s = s;
    req->start_ns = srv_clock_ns();
    snprintf(req->path, sizeof req->path, "%s", url);
    req->path[strcspn(req->path, "?")] = '\0';
    srv_request_init(&req->r, (size_t)s->cfg.max_upload_bytes);
    return req;
}

static void req_free(srv_req *req)
{
    if (req->pp)
        MHD_destroy_post_processor(req->pp);
    srv_request_free(&req->r);
    srv_job_unref(req->job);
    ic_free(req);
}

// ---- responses ----------------------------------------------------------------

int srv_http_queue(struct MHD_Connection *conn, srv_reply *r, const char *id, int close_after)
{
    struct MHD_Response *resp;
    if (r->file_fd >= 0)
        resp = MHD_create_response_from_fd64(r->file_size, r->file_fd);
    else if (r->body)
        resp = MHD_create_response_from_buffer_with_free_callback(r->len, r->body, &free);
    else
        resp = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    if (!resp) {
        if (r->file_fd >= 0)
            close(r->file_fd);
        free(r->body);
        return MHD_NO;
    }
    if (r->content_type)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, r->content_type);
    if (id && id[0])
        MHD_add_response_header(resp, "X-Request-Id", id);
    if (r->allow)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, r->allow);
    if (r->retry_after > 0) {
        char v[16];
        snprintf(v, sizeof v, "%d", r->retry_after);
        MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, v);
    }
    if (r->infer_header_len) {
        char v[24];
        snprintf(v, sizeof v, "%zu", r->infer_header_len);
        MHD_add_response_header(resp, SRV_OIP_HEADER_LENGTH, v);
    }
    if (close_after)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
    enum MHD_Result ret = MHD_queue_response(conn, (unsigned)r->status, resp);
    MHD_destroy_response(resp);
    return ret;
}

static enum MHD_Result queue_reply(struct MHD_Connection *conn, srv_req *req, srv_reply *r)
{
    req->bytes_out = r->file_fd >= 0 ? r->file_size : r->len;
    req->status = r->status;
    req->ph = PH_DONE;
    srv_guard_set_phase(req->s->guard, srv_guard_of(conn), SRV_CONN_BUSY);
    return (enum MHD_Result)srv_http_queue(conn, r, req->id, atomic_load(&req->s->draining));
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
    srv_request_free(&req->r);
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
        req->content_length = n;
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
    srv_body_kind kind = srv_request_body_kind(ct);
    if (req->infer) {
        /* any Content-Type: the body is JSON, or JSON and binary data */
    } else if (kind == SRV_BODY_MULTIPART) {
        srv_mp_end_init(&req->mp_end, ct); /* no boundary: the post-processor refuses */
        req->pp = MHD_create_post_processor(conn, PP_BUFFER_SIZE, post_iter, req);
        if (!req->pp)
            return reply_error(conn, req, SRV_ERR_BAD_MULTIPART,
                               "malformed multipart/form-data header (boundary)");
    } else if (kind != SRV_BODY_IMAGE) {
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
    srv_buf *file = srv_request_upload(&req->r, key);
    if (file) {
        if (off == 0 && file == &req->r.image && content_type)
            snprintf(req->image_part_type, sizeof req->image_part_type, "%s", content_type);
        if (srv_buf_append(file, data, size) != 0) {
            srv_metrics_count_rejected(req->s->metrics, SRV_REJ_TOO_LARGE);
            reject(req, SRV_ERR_TOO_LARGE, "the upload is larger than max_upload_bytes");
            return MHD_NO;
        }
        return MHD_YES;
    }
    srv_option o = srv_option_find(key);
    int rc;
    if (o != SRV_OPT_COUNT) {
        rc = append_field(req, req->form[o], srv_option_max_len(o) + 1, key, data, off, size);
    } else {
        char msg[160];
        snprintf(msg, sizeof msg, "unknown form field '%.64s' (%s)", key,
                 srv_request_field_names());
        reject(req, SRV_ERR_UNKNOWN_FIELD, msg);
        rc = -1;
    }
    return rc == 0 ? MHD_YES : MHD_NO;
}

/* Answers the refusal at once, straight on the socket, while the body is
 * still coming (libmicrohttpd queues no response mid-body): a chunked
 * upload over the limit may never end. The reading side stays open so the
 * client can read the answer; segment_body closes after DISCARD_SLACK. */
static void answer_now(struct MHD_Connection *conn, srv_req *req)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (!ci)
        return;
    int retry = srv_err_status(req->reject_err) == 503 ? req->s->cfg.retry_after_s : 0;
    srv_raw_send_error(ci->connect_fd, req->reject_err, req->reject_msg, req->id, retry);
    shutdown(ci->connect_fd, SHUT_WR);
    req->answered_raw = 1;
    req->status = srv_err_status(req->reject_err);
}

/* Whether the client has closed and what it sent can no longer make up the
 * Content-Length: then the rest in the socket is worth nothing, and reading
 * it (a burst of dead uploads leaves hundreds of MB behind) would only
 * delay everyone else. libmicrohttpd hands over all it buffered on each
 * call, so what is left is in the socket. Chunked bodies cannot tell. */
static int body_cannot_complete(struct MHD_Connection *conn, srv_req *req)
{
    if (!req->content_length)
        return 0;
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    struct pollfd p = {.fd = ci ? ci->connect_fd : -1, .events = POLLRDHUP};
    if (!ci || poll(&p, 1, 0) <= 0 || !(p.revents & (POLLRDHUP | POLLHUP | POLLERR)))
        return 0;
    int queued = 0;
    if (!(p.revents & (POLLHUP | POLLERR)) && ioctl(p.fd, FIONREAD, &queued) != 0)
        return 0;
    return req->bytes_in + (uint64_t)(queued > 0 ? queued : 0) < req->content_length;
}

/* Body chunk: counted as it arrives, so chunked uploads (no Content-Length)
 * hit the same cap. Always consumes everything (partial consumption
 * semantics changed after 0.9.75). Returns MHD_NO to drop the connection
 * once a refused upload keeps coming. */
static enum MHD_Result segment_body(srv_server *s, struct MHD_Connection *conn, srv_req *req,
                                    const char *data, size_t n)
{
    req->bytes_in += n;
    srv_metrics_add_bytes(s->metrics, n);
    srv_guard_add_body(s->guard, srv_guard_of(conn), n);
    if (body_cannot_complete(conn, req))
        return MHD_NO;
    if (req->reject_err)
        return req->bytes_in > (uint64_t)s->cfg.max_upload_bytes + DISCARD_SLACK ? MHD_NO
                                                                                : MHD_YES;
    if (req->bytes_in > (uint64_t)s->cfg.max_upload_bytes) {
        srv_metrics_count_rejected(s->metrics, SRV_REJ_TOO_LARGE);
        reject(req, SRV_ERR_TOO_LARGE, "the body is larger than max_upload_bytes");
        answer_now(conn, req);
        return MHD_YES;
    }
    if (!req->pp) {
        if (srv_buf_append(&req->r.image, data, n) != 0)
            reject(req, SRV_ERR_OUT_OF_MEMORY, "cannot buffer the upload");
        return MHD_YES;
    }
    size_t keep = srv_mp_end_feed(&req->mp_end, data, n); /* an epilogue is ignored */
    if (keep && MHD_post_process(req->pp, data, keep) != MHD_YES)
        reject(req, SRV_ERR_BAD_MULTIPART, "malformed multipart/form-data body");
    return MHD_YES;
}

// ---- POST /v1/segment: end of body -> queue ------------------------------------------

/* Parses the request's options (form fields, else query arguments) and
 * headers into req->r; answers the error, if any. Returns 0 when parsed. */
static int parse_request(srv_server *s, struct MHD_Connection *conn, srv_req *req,
                         enum MHD_Result *answer)
{
    srv_kv form[SRV_OPT_COUNT], query[SRV_OPT_COUNT];
    size_t nf = 0, nq = 0;
    for (int o = 0; o < SRV_OPT_COUNT; o++) {
        const char *name = srv_option_name((srv_option)o);
        if (req->form[o][0])
            form[nf++] = (srv_kv){name, req->form[o]};
        const char *q = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, name);
        if (q)
            query[nq++] = (srv_kv){name, q};
    }
    srv_request_args a = {
        .form = form,
        .n_form = nf,
        .query = query,
        .n_query = nq,
        .content_type =
            MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE),
        .image_part_type = req->image_part_type[0] ? req->image_part_type : NULL,
    };
    srv_err e = srv_request_parse(&req->r, &a, &s->cfg);
    ic_calib_mode mode = req->r.opts.calib.mode;
    snprintf(req->calibration, sizeof req->calibration, "%s",
             mode < IC_CALIB_COUNT ? ic_calib_mode_name(mode) : "invalid");
    if (e == SRV_ERR_NONE)
        return 0;
    *answer = reply_error(conn, req, e, ic_error_message());
    return -1;
}

/* The same for an OIP inference request: the body (streamed into the
 * image buffer) is parsed by srv_oip_parse() into a fresh request. */
static int parse_infer(srv_server *s, struct MHD_Connection *conn, srv_req *req,
                       enum MHD_Result *answer)
{
    srv_buf body = req->r.image;
    srv_buf_init(&req->r.image, body.limit);
    srv_err e = srv_oip_parse(&req->r, body.data ? body.data : "", body.len,
                              MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                          SRV_OIP_HEADER_LENGTH),
                              &s->cfg);
    srv_buf_free(&body);
    ic_calib_mode mode = req->r.opts.calib.mode;
    snprintf(req->calibration, sizeof req->calibration, "%s",
             e == SRV_ERR_NONE || mode < IC_CALIB_COUNT ? ic_calib_mode_name(mode) : "invalid");
    if (e == SRV_ERR_NONE)
        return 0;
    *answer = reply_error(conn, req, e, ic_error_message());
    return -1;
}

static enum MHD_Result segment_end(srv_server *s, struct MHD_Connection *conn, srv_req *req)
{
    if (req->pp) {
        enum MHD_Result ok = MHD_destroy_post_processor(req->pp);
        req->pp = NULL;
        if (ok != MHD_YES)
            reject(req, SRV_ERR_BAD_MULTIPART, "truncated or malformed multipart/form-data body");
    }
    srv_guard_set_phase(s->guard, srv_guard_of(conn), SRV_CONN_BUSY);
    if (req->answered_raw)
        return MHD_NO; /* the refusal went out mid-body (answer_now): close */
    if (req->reject_err)
        return reply_error(conn, req, req->reject_err, req->reject_msg);
    if (atomic_load(&s->draining)) {
        srv_metrics_count_rejected(s->metrics, SRV_REJ_DRAINING);
        return reply_error(conn, req, SRV_ERR_SHUTTING_DOWN, "the server is shutting down");
    }
    enum MHD_Result answer;
    if ((req->infer ? parse_infer(s, conn, req, &answer) : parse_request(s, conn, req, &answer)) != 0)
        return answer;
    srv_job *job = srv_job_new();
    if (!job)
        return reply_error(conn, req, SRV_ERR_OUT_OF_MEMORY, "out of memory");
    req->job = job; /* the HTTP side's reference */
    snprintf(req->r.id, sizeof req->r.id, "%s", req->id);
    req->r.deadline_ns = req->start_ns + s->cfg.deadline_ms * 1000000;
    srv_request_move(&job->req, &req->r);
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    job->fd = ci ? ci->connect_fd : -1;
    job->http11 = req->http11;

    /* Push and suspend under job->mu: a worker that pops the job at once
     * blocks in srv_job_finish until the connection really is suspended. */
    pthread_mutex_lock(&job->mu);
    int rc = srv_queue_push(s->queue, job, job->req.deadline_ns);
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

/* The answer to a finished job, into r. Returns 0 when the client is gone
 * (nobody to answer). Takes the job's result. */
static int segment_reply(srv_server *s, srv_req *req, srv_reply *r)
{
    srv_job *job = req->job;
    pthread_mutex_lock(&job->mu);
    srv_result res = job->res;
    job->res.json = NULL;
    srv_buf_init(&job->res.oip, 0);
    int gone = job->client_gone;
    pthread_mutex_unlock(&job->mu);
    double total = (double)ns_since(req->start_ns) * 1e-9;
    if (gone) {
        json_decref(res.json);
        srv_buf_free(&res.oip);
        return 0;
    }
    srv_metrics_observe(s->metrics, SRV_H_REQUEST, total);
    if (res.err == SRV_ERR_NONE && res.oip.len) {
        json_decref(res.json);
        r->status = 200;
        r->infer_header_len = res.oip_header_len < res.oip.len ? res.oip_header_len : 0;
        r->content_type = r->infer_header_len ? "application/octet-stream" : "application/json";
        r->body = srv_buf_steal(&res.oip, &r->len);
        return 1;
    }
    if (res.err != SRV_ERR_NONE || !res.json) {
        json_decref(res.json);
        srv_buf_free(&res.oip);
        srv_reply_error(r, res.err != SRV_ERR_NONE ? res.err : SRV_ERR_INTERNAL, res.message);
        if (r->status == 503)
            r->retry_after = s->cfg.retry_after_s;
        return 1;
    }
    json_object_set_new(res.json, "request_id", json_string(req->id));
    json_object_set_new(res.json, "timings",
                        json_pack("{s:f,s:f,s:f,s:f,s:f}", "queue_s", job->queue_wait_s,
                                  "decode_s", res.decode_s, "inference_s", res.inference_s,
                                  "postprocess_s", res.postprocess_s, "total_s", total));
    srv_reply_json(r, 200, res.json);
    return 1;
}

/* Called by libmicrohttpd after a worker resumed the connection. */
static enum MHD_Result segment_resumed(srv_server *s, struct MHD_Connection *conn, srv_req *req)
{
    srv_reply r = {.file_fd = -1};
    if (!segment_reply(s, req, &r)) {
        req->status = 499;
        req->ph = PH_DONE;
        return MHD_NO; /* nobody to answer: close */
    }
    return queue_reply(conn, req, &r);
}

/* libmicrohttpd closes a resumed connection without calling the handler
 * when it reads the client's end of stream first: the client half-closed
 * after a complete request (allowed by HTTP). The socket is still open
 * here (MHD_USE_TURBO skips its shutdown), so the answer goes out raw. */
static void segment_late(srv_server *s, struct MHD_Connection *conn, srv_req *req)
{
    if (!req->job)
        return;
    pthread_mutex_lock(&req->job->mu);
    int finished = req->job->state == SRV_JOB_FINISHED;
    pthread_mutex_unlock(&req->job->mu);
    if (!finished)
        return;
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    srv_reply r = {.file_fd = -1};
    if (!ci || !segment_reply(s, req, &r))
        return;
    srv_buf msg;
    srv_buf_init(&msg, 0);
    int rc = srv_raw_format(&msg, &r, req->id);
    free(r.body);
    if (rc == 0 && (rc = srv_late_send(s->late, ci->connect_fd, &msg)) >= 0) {
        req->status = r.status;
        req->bytes_out = r.len;
        req->answered_raw = 1;
    } else if (rc < 0) {
        char q[256];
        srv_log(SRV_LOG_WARN, "event=late_send request=%s error=%s", req->id,
                srv_log_quote(q, sizeof q, ic_error_message()));
    }
    srv_buf_free(&msg);
}

// ---- the access handler ---------------------------------------------------------------

/* Collects the framing headers (Content-Length, Transfer-Encoding) only, so
 * that however many other headers come, none of these is missed. */
typedef struct framing_headers {
    srv_header h[32];
    size_t n;
    int overflow;
} framing_headers;

static enum MHD_Result collect_framing(void *cls, enum MHD_ValueKind kind, const char *key,
                                       const char *value)
{
    framing_headers *f = cls;
    if (strcasecmp(key, MHD_HTTP_HEADER_CONTENT_LENGTH) != 0 &&
        strcasecmp(key, MHD_HTTP_HEADER_TRANSFER_ENCODING) != 0)
        return MHD_YES;
    if (f->n == sizeof f->h / sizeof f->h[0]) {
        f->overflow = 1;
        return MHD_NO;
    }
    f->h[f->n++] = (srv_header){key, value ? value : ""};
    return MHD_YES;
}

/* The first call for a request: its headers are complete, no body has
 * been read. Refusals here are early responses, after which libmicrohttpd
 * reads no body and closes. Routes other than the upload answer on the
 * last call, which keeps the connection alive for the next request. */
static enum MHD_Result request_begin(srv_server *s, struct MHD_Connection *conn, srv_req *req,
                                     const char *url, const char *method, const char *version)
{
    req->started = 1;
    snprintf(req->method, sizeof req->method, "%s", method);
    snprintf(req->path, sizeof req->path, "%s", url); /* decoded now */
    req->http11 = strcmp(version, MHD_HTTP_VERSION_1_1) == 0;
    set_id(s, conn, req);
    srv_guard_set_phase(s->guard, srv_guard_of(conn), SRV_CONN_BODY);
    int post = strcmp(method, "POST") == 0;
    int segment = srv_routes_is_segment(url) && post;
    req->infer = post && srv_routes_is_infer(url);
    if (segment)
        req->route = "segment";
    if (req->infer)
        req->route = "v2_infer";
    if (req->uri_too_long)
        return reply_error(conn, req, SRV_ERR_URI_TOO_LONG,
                           "the query string is longer than 8 KiB or has more than 256 "
                           "parameters");
    framing_headers f = {.n = 0};
    MHD_get_connection_values(conn, MHD_HEADER_KIND, collect_framing, &f);
    const char *why = "too many Content-Length or Transfer-Encoding headers";
    srv_err e = f.overflow ? SRV_ERR_BAD_FRAMING : srv_framing_check(f.h, f.n, &why);
    if (e != SRV_ERR_NONE)
        return reply_error(conn, req, e, why);
    if (req->infer) {
        srv_err me = srv_routes_check_infer_model(s, url);
        if (me != SRV_ERR_NONE)
            return reply_error(conn, req, me, ic_error_message());
    }
    if (segment || req->infer)
        return segment_begin(s, conn, req);
    req->ph = PH_ROUTE;
    return MHD_YES;
}

/* The last call of a route request (its body, if any, was discarded). */
static enum MHD_Result route_reply(srv_server *s, struct MHD_Connection *conn, srv_req *req,
                                   const char *url)
{
    srv_reply r = {.file_fd = -1};
    srv_routes_handle(s, req->method, url, &r);
    req->route = r.route;
    return queue_reply(conn, req, &r);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **con_cls)
{
    srv_server *s = cls;
    srv_req *req = *con_cls;
    if (!req) { /* the URI callback could not allocate */
        req = req_new(s, url);
        if (!req)
            return MHD_NO;
        *con_cls = req;
    }
    if (!req->started)
        return request_begin(s, conn, req, url, method, version);
    if (req->ph == PH_WAIT)
        return segment_resumed(s, conn, req);
    if (req->ph == PH_ROUTE) {
        if (*upload_data_size) { /* a body on a GET: read and dropped, up to the cap */
            req->bytes_in += *upload_data_size;
            *upload_data_size = 0;
            return req->bytes_in > (uint64_t)s->cfg.max_upload_bytes ? MHD_NO : MHD_YES;
        }
        return route_reply(s, conn, req, url);
    }
    if (req->ph != PH_BODY) {
        *upload_data_size = 0; /* a response is queued; ignore the rest */
        return MHD_YES;
    }
    if (*upload_data_size) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        return segment_body(s, conn, req, upload_data, n);
    }
    return segment_end(s, conn, req);
}

/* MHD_OPTION_URI_LOG_CALLBACK: the request line is in, nothing else is
 * parsed yet. The request's state starts here, and an oversized query
 * string is refused (on the handler's first call) before libmicrohttpd
 * parses it into its per-connection memory, which it would exhaust. */
static void *on_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
    srv_req *req = req_new(cls, uri);
    if (srv_query_too_big(uri)) {
        /* libmicrohttpd located the '?' before this call and parses what
         * follows it right after: leave it an empty query. */
        char *q = strchr((char *)uri, '?');
        q[1] = '\0';
        if (req)
            req->uri_too_long = 1;
    }
    return req;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    srv_server *s = cls;
    srv_req *req = *con_cls;
    if (!req)
        return;
    *con_cls = NULL;
    srv_guard_conn *gc = srv_guard_of(conn);
    int late = req->ph == PH_WAIT && !req->status && toe != MHD_REQUEST_TERMINATED_DAEMON_SHUTDOWN;
    if (late)
        segment_late(s, conn, req);
    if (req->in_flight)
        atomic_fetch_sub(&s->in_flight, 1);
    int status = req->status;
    if (!status) /* answered by the guard, or refused by libmicrohttpd's own parser */
        status = srv_guard_dropped(s->guard, gc);
    if (status <= 0 && !req->started) {
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_HTTP_STATUS);
        status = ci ? (int)ci->http_status : 0;
    }
    if (status <= 0)
        status = 499; /* no response: the client went away */
    int is_seg = req->route && (strcmp(req->route, "segment") == 0 || strcmp(req->route, "v2_infer") == 0);
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
                late && req->answered_raw                      ? "half_closed"
                : toe == MHD_REQUEST_TERMINATED_COMPLETED_OK     ? "ok"
                : toe == MHD_REQUEST_TERMINATED_CLIENT_ABORT   ? "client_abort"
                : toe == MHD_REQUEST_TERMINATED_TIMEOUT_REACHED ? "timeout"
                : toe == MHD_REQUEST_TERMINATED_DAEMON_SHUTDOWN ? "shutdown"
                                                                : "error");
    }
    req_free(req);
    srv_guard_set_phase(s->guard, gc, SRV_CONN_IDLE); /* if kept alive: the next request's */
}

// ---- daemon ---------------------------------------------------------------------------

void srv_http_mhd_log(void *cls, const char *fmt, va_list ap)
{
    char msg[512], q[600];
    vsnprintf(msg, sizeof msg, fmt, ap);
    msg[strcspn(msg, "\n")] = '\0';
    /* Every abandoned upload says this; the request line says it too. */
    int routine = strstr(msg, "closed by remote side") != NULL;
    srv_log(routine ? SRV_LOG_DEBUG : SRV_LOG_WARN, "event=mhd msg=%s",
            srv_log_quote(q, sizeof q, msg));
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
    /* poll, not epoll: with edge-triggered epoll libmicrohttpd 0.9.75 takes
     * a short read for "drained", so when a client's last bytes and its FIN
     * arrive together the FIN is never read, and the dead connection holds
     * its slot until connection_timeout_s (a burst of 260 half-uploads that
     * closed at once kept 256 slots for 30 s). Level-triggered poll sees
     * the end of stream on the next turn. TURBO: no shutdown() before the
     * completion callback, so a half-closed client can still get its
     * answer (late.h). */
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL | MHD_USE_TURBO |
                     MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
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
    if (!boot_tag)
        boot_tag = ((unsigned)getpid() ^ (unsigned)srv_clock_ns()) & 0xffffff;
    srv_guard_limits lim = {
        .per_ip = s->cfg.max_connections_per_ip,
        .header_ns = (int64_t)s->cfg.header_timeout_s * 1000000000,
        .min_body_rate = s->cfg.min_body_rate,
        .max_connections = s->cfg.max_connections,
        .retry_after_s = s->cfg.retry_after_s,
    };
    int rc = srv_guard_create(&lim, s->metrics, &s->guard);
    if (rc == 0)
        rc = srv_late_create((int64_t)s->cfg.connection_timeout_s * 1000000000, &s->late);
    if (rc != 0)
        return rc;
    s->daemon = MHD_start_daemon(
        flags, (uint16_t)s->cfg.port, NULL, NULL, on_request, s, MHD_OPTION_EXTERNAL_LOGGER,
        srv_http_mhd_log, s, MHD_OPTION_SOCK_ADDR, &ss,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)s->cfg.max_connections,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)s->cfg.connection_timeout_s,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)128 * 1024, MHD_OPTION_NOTIFY_COMPLETED,
        on_completed, s, MHD_OPTION_NOTIFY_CONNECTION, srv_guard_notify, s->guard,
        MHD_OPTION_URI_LOG_CALLBACK, on_uri, s, MHD_OPTION_THREAD_POOL_SIZE,
        (unsigned)HTTP_THREADS, MHD_OPTION_END);
    if (!s->daemon) {
        srv_late_destroy(&s->late);
        srv_guard_destroy(&s->guard);
        return ic_error_set(IC_EIO, "cannot listen on %s port %d: %s", s->cfg.bind, s->cfg.port,
                            strerror(errno));
    }
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
    srv_late_destroy(&s->late);
    srv_guard_destroy(&s->guard);
}
