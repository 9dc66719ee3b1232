/* Every route except POST /v1/segment: health, readiness, model metadata,
 * the Open Inference Protocol (KServe v2) health and metadata routes,
 * /metrics and static files. All of them answer on the HTTP thread without
 * touching the queue, so probes stay fast under load. */
#include <errno.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/err.h"
#include "buf.h"
#include "server.h"
#include "static_files.h"

#define JSON_TYPE "application/json"
#define GET_METHODS "GET, HEAD"

void srv_reply_json(srv_reply *r, int status, json_t *obj)
{
    r->status = status;
    r->content_type = JSON_TYPE;
    r->body = obj ? json_dumps(obj, JSON_COMPACT | JSON_REAL_PRECISION(6)) : NULL;
    r->len = r->body ? strlen(r->body) : 0;
    json_decref(obj);
    if (!r->body && status < 500) {
        /* Serialisation can only fail for lack of memory. */
        r->status = 503;
        r->retry_after = 1;
    }
}

void srv_reply_error(srv_reply *r, srv_err e, const char *message)
{
    srv_reply_json(r, srv_err_status(e),
                   json_pack("{s:{s:s,s:s}}", "error", "code", srv_err_code(e), "message",
                             message));
}

int srv_ready(srv_server *s)
{
    return s->ops->ready(s->backend) && !atomic_load(&s->draining) &&
           srv_queue_size(s->queue) < srv_queue_capacity(s->queue);
}

void srv_sample_gauges(srv_server *s, srv_gauges *g)
{
    memset(g, 0, sizeof *g);
    g->queue_depth = srv_queue_size(s->queue);
    g->queue_capacity = srv_queue_capacity(s->queue);
    g->in_flight = atomic_load(&s->in_flight);
    g->busy_workers = s->pool ? srv_pool_busy(s->pool) : 0;
    g->workers = s->pool ? srv_pool_size(s->pool) : 0;
    const union MHD_DaemonInfo *di =
        s->daemon ? MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_CURRENT_CONNECTIONS) : NULL;
    g->connections = di ? (long)di->num_connections : 0;
    g->ready = srv_ready(s);
}

int srv_routes_is_segment(const char *path)
{
    return strcmp(path, "/v1/segment") == 0;
}

static void reply_ready(srv_server *s, srv_reply *r, int v2)
{
    if (srv_ready(s)) {
        srv_reply_json(r, 200, v2 ? json_pack("{s:b}", "ready", 1)
                                  : json_pack("{s:s}", "status", "ready"));
        return;
    }
    const char *why = !s->ops->ready(s->backend) ? "the model is not loaded or the workers are warming up"
                      : atomic_load(&s->draining) ? "the server is shutting down"
                                                  : "the queue is full";
    srv_reply_error(r, SRV_ERR_NOT_READY, why);
    r->retry_after = s->cfg.retry_after_s;
}

static void reply_models(srv_server *s, srv_reply *r)
{
    json_t *model = json_object();
    s->ops->describe(s->backend, model);
    if (!json_object_get(model, "calibration_modes")) { /* the backend knows better */
        json_t *modes = json_array();
        for (int i = 0; i < IC_CALIB_COUNT; i++)
            json_array_append_new(modes, json_string(ic_calib_mode_name((ic_calib_mode)i)));
        json_object_set_new(model, "calibration_modes", modes);
    }
    json_object_set_new(model, "default_calibration", json_string(s->cfg.calibration));
    json_object_set_new(model, "limits",
                        json_pack("{s:I,s:I,s:I,s:i,s:i}", "max_upload_bytes",
                                  (json_int_t)s->cfg.max_upload_bytes, "max_pixels",
                                  (json_int_t)s->cfg.max_pixels, "deadline_ms",
                                  (json_int_t)s->cfg.deadline_ms, "min_request_size",
                                  s->cfg.min_request_size, "max_request_size",
                                  s->cfg.max_request_size));
    json_t *outputs = json_array();
    for (int i = 0; i < IC_OUT_COUNT; i++)
        json_array_append_new(outputs, json_string(ic_segment_output_name(i)));
    json_object_set_new(model, "outputs", outputs);
    srv_reply_json(r, 200, json_pack("{s:[o]}", "models", model));
}

/* OIP model metadata: exactly what POST /v2/models/{name}/infer accepts
 * and returns (oip.h). The protocol's keys (name, versions, platform,
 * inputs, outputs) and ours under "parameters": the request parameters,
 * the default outputs and the image formats. */
static void reply_v2_model(srv_server *s, srv_reply *r, const char *name)
{
    json_t *outs = json_array(), *defaults = json_array();
    for (int i = 0; i < SRV_OIP_N_OUTPUTS; i++) {
        int hw = i != SRV_OIP_SEGMENTS_INFO;
        json_array_append_new(outs, json_pack("{s:s,s:s,s:o}", "name", srv_oip_output_name(i),
                                              "datatype", srv_oip_output_datatype(i), "shape",
                                              hw ? json_pack("[i,i]", -1, -1) : json_pack("[i]", 1)));
        if (srv_oip_output_default(i))
            json_array_append_new(defaults, json_string(srv_oip_output_name(i)));
    }
    json_t *model = json_object();
    s->ops->describe(s->backend, model);
    json_t *modes = json_object_get(model, "calibration_modes");
    json_t *net = json_object_get(json_object_get(model, "network_input"), "min_size_test");
    json_t *params = json_pack(
        "{s:{s:s,s:O*,s:s},s:{s:s,s:s},s:{s:s,s:[i,i],s:O*},s:{s:s,s:b},s:o,s:[s,s],s:I}",
        "calibration", "datatype", "string", "values", modes, "default", s->cfg.calibration, "m",
        "datatype", "number", "range", "[0, 1], for calibration=manual", "size", "datatype",
        "int", "range", s->cfg.min_request_size, s->cfg.max_request_size, "default", net,
        "binary_data_output", "datatype", "bool", "default", 0, "default_outputs", defaults,
        "image_formats", "image/jpeg", "image/png", "max_pixels", (json_int_t)s->cfg.max_pixels);
    json_decref(model);
    srv_reply_json(r, 200,
                   json_pack("{s:s,s:[s],s:s,s:[{s:s,s:s,s:[i]}],s:o,s:o*}", "name", name,
                             "versions", "1", "platform", "instcal", "inputs", "name", "image",
                             "datatype", "BYTES", "shape", 1, "outputs", outs, "parameters",
                             params));
}

static void reply_metrics(srv_server *s, srv_reply *r)
{
    srv_gauges g;
    srv_sample_gauges(s, &g);
    srv_buf b;
    srv_buf_init(&b, 0);
    if (srv_metrics_render(s->metrics, &g, &b) != 0) {
        srv_buf_free(&b);
        srv_reply_error(r, SRV_ERR_OUT_OF_MEMORY, "cannot render metrics");
        return;
    }
    r->status = 200;
    r->content_type = SRV_METRICS_CONTENT_TYPE;
    r->body = srv_buf_steal(&b, &r->len);
}

static void reply_static(srv_server *s, srv_reply *r, const char *path)
{
    char file[PATH_MAX];
    int rc = s->static_root[0] ? srv_static_resolve(s->static_root, path, file, sizeof file)
                               : IC_ENOTFOUND;
    if (rc == IC_EINVAL) {
        srv_reply_error(r, SRV_ERR_FORBIDDEN, "this path is not allowed");
        return;
    }
    if (rc != 0) {
        srv_reply_error(r, SRV_ERR_NOT_FOUND, "no such route or file");
        return;
    }
    int fd = open(file, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        if (fd >= 0)
            close(fd);
        srv_reply_error(r, SRV_ERR_NOT_FOUND, "no such file");
        return;
    }
    r->status = 200;
    r->file_fd = fd;
    r->file_size = (uint64_t)st.st_size;
    r->content_type = srv_static_content_type(file);
}

/* GET-only routes with exact paths. */
static const struct {
    const char *path, *route;
} get_routes[] = {
    {"/healthz", "healthz"},       {"/readyz", "readyz"},         {"/v1/models", "models"},
    {"/metrics", "metrics"},       {"/v2/health/live", "v2_live"}, {"/v2/health/ready", "v2_ready"},
    {"/v2", "v2_server"},
};

/* Splits /v2/models/{name}[/versions/{v}][/ready|/infer]; returns 1
 * (metadata), 2 (ready), 3 (infer) or 0; version receives v ("" if none). */
static int match_v2_model(const char *path, char *name, size_t n, char *version, size_t vn)
{
    version[0] = '\0';
    const char *pre = "/v2/models/";
    if (strncmp(path, pre, strlen(pre)) != 0)
        return 0;
    const char *p = path + strlen(pre);
    size_t len = strcspn(p, "/");
    if (len == 0 || len >= n)
        return 0;
    memcpy(name, p, len);
    name[len] = '\0';
    p += len;
    if (strncmp(p, "/versions/", 10) == 0) {
        p += 10;
        size_t vl = strcspn(p, "/");
        if (vl == 0 || vl >= vn)
            return 0;
        memcpy(version, p, vl);
        version[vl] = '\0';
        p += vl;
    }
    if (p[0] == '\0')
        return 1;
    if (strcmp(p, "/ready") == 0)
        return 2;
    if (strcmp(p, "/infer") == 0)
        return 3;
    return 0;
}

int srv_routes_is_infer(const char *path)
{
    char name[256], version[64];
    return match_v2_model(path, name, sizeof name, version, sizeof version) == 3;
}

/* The model (and version) a /v2/models/ path names must be the served one. */
static srv_err check_model(srv_server *s, const char *name, const char *version)
{
    char model[256];
    s->ops->model_name(s->backend, model, sizeof model);
    if (strcmp(name, model) != 0) {
        ic_error_set(IC_ENOTFOUND, "no model of that name is served");
        return SRV_ERR_MODEL_NOT_FOUND;
    }
    if (version[0] && strcmp(version, "1") != 0) {
        ic_error_set(IC_ENOTFOUND, "model '%s' has one version, 1", model);
        return SRV_ERR_MODEL_NOT_FOUND;
    }
    return SRV_ERR_NONE;
}

srv_err srv_routes_check_infer_model(srv_server *s, const char *path)
{
    char name[256], version[64];
    if (match_v2_model(path, name, sizeof name, version, sizeof version) != 3) {
        ic_error_set(IC_ENOTFOUND, "no such route");
        return SRV_ERR_NOT_FOUND;
    }
    return check_model(s, name, version);
}

void srv_routes_handle(srv_server *s, const char *method, const char *path, srv_reply *r)
{
    int is_get = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
    r->file_fd = -1;
    if (srv_routes_is_segment(path)) {
        r->route = "segment";
        srv_reply_error(r, SRV_ERR_METHOD_NOT_ALLOWED, "use POST");
        r->allow = "POST";
        return;
    }
    int which = -1;
    for (size_t i = 0; i < sizeof get_routes / sizeof get_routes[0]; i++)
        if (strcmp(path, get_routes[i].path) == 0)
            which = (int)i;
    char name[256], version[64];
    int v2m = which < 0 ? match_v2_model(path, name, sizeof name, version, sizeof version) : 0;
    int api = which >= 0 || v2m || strncmp(path, "/v1/", 4) == 0 || strncmp(path, "/v2/", 4) == 0;
    r->route = which >= 0 ? get_routes[which].route
               : v2m == 1 ? "v2_model"
               : v2m == 2 ? "v2_model_ready"
               : v2m == 3 ? "v2_infer"
               : api      ? "not_found"
                          : "static";
    if (api && which < 0 && !v2m) {
        srv_reply_error(r, SRV_ERR_NOT_FOUND, "no such route");
        return;
    }
    if (v2m == 3) {
        srv_reply_error(r, SRV_ERR_METHOD_NOT_ALLOWED, "use POST");
        r->allow = "POST";
        return;
    }
    if (!is_get) {
        srv_reply_error(r, SRV_ERR_METHOD_NOT_ALLOWED, "use GET or HEAD");
        r->allow = GET_METHODS;
        return;
    }
    if (v2m) {
        char model[256];
        s->ops->model_name(s->backend, model, sizeof model);
        srv_err me = check_model(s, name, version);
        if (me != SRV_ERR_NONE) {
            srv_reply_error(r, me, ic_error_message());
        } else if (v2m == 1) {
            reply_v2_model(s, r, model);
        } else if (s->ops->ready(s->backend)) {
            srv_reply_json(r, 200, json_pack("{s:s,s:b}", "name", model, "ready", 1));
        } else {
            srv_reply_error(r, SRV_ERR_NOT_READY, "the model is not loaded or the workers are warming up");
        }
        return;
    }
    const char *route = r->route;
    if (strcmp(route, "healthz") == 0)
        srv_reply_json(r, 200, json_pack("{s:s}", "status", "alive"));
    else if (strcmp(route, "v2_live") == 0)
        srv_reply_json(r, 200, json_pack("{s:b}", "live", 1));
    else if (strcmp(route, "readyz") == 0)
        reply_ready(s, r, 0);
    else if (strcmp(route, "v2_ready") == 0)
        reply_ready(s, r, 1);
    else if (strcmp(route, "models") == 0)
        reply_models(s, r);
    else if (strcmp(route, "metrics") == 0)
        reply_metrics(s, r);
    else if (strcmp(route, "v2_server") == 0)
        srv_reply_json(r, 200, json_pack("{s:s,s:s,s:[s]}", "name", "instcald", "version",
                                         SRV_VERSION, "extensions", SRV_OIP_EXTENSIONS));
    else
        reply_static(s, r, path);
}
