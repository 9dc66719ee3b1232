/* The inference backend interface: what a worker calls to turn one upload
 * into a JSON result, plus model metadata and reload.
 *
 * The HTTP side never knows what model runs; the Panoptic-DeepLab engine
 * plugs in as another srv_backend_ops. Threading contract:
 * - create/destroy run on the main thread, before workers start / after
 *   they stopped.
 * - worker_init/worker_deinit run on the main thread when the pool starts
 *   and stops (so a failure is a startup error); the state they return
 *   (scratch arena sized for the largest image) is then only used by that
 *   worker's thread.
 * - process runs concurrently on all workers, each with its own wctx.
 * - reload runs on the daemon's reload thread (one at a time, never beside
 *   create/destroy) while workers keep processing and the main thread
 *   keeps answering expired jobs: the
 *   backend loads and validates the new model beside the old one, then
 *   swaps it in atomically so that jobs already running finish on the old
 *   model, and on failure keeps the old one.
 * - describe, model_name and ready may run on any HTTP thread at any time,
 *   several at once (the main listener's polling threads and the admin one). */
#ifndef SRV_BACKEND_H
#define SRV_BACKEND_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "api_error.h"
#include "buf.h"
#include "config.h"
#include "request.h"

/* What process() produces. On success set json (an object; ownership
 * passes to the server, which adds "request_id" and "timings"). On failure
 * set err and message with srv_result_error(). Stage times in seconds
 * feed the metrics histograms and the request log. */
typedef struct srv_result {
    srv_err err;         /* SRV_ERR_NONE on success (status, code: api_error.h) */
    json_t *json;        /* response object on success (a /v1/segment request) */
    srv_buf oip;         /* or the whole response body of an OIP request (oip.h) */
    size_t oip_header_len; /* its JSON header's length (== oip.len: no binary outputs) */
    char message[256];   /* human-readable error */
    double decode_s, inference_s, postprocess_s;
    int has_drift;       /* drift is this image's drift score (calib/drift.h) */
    double drift;
} srv_result;

/* Records the error e in res (its status and code from api_error.h, a
 * printf-style message). */
void srv_result_error(srv_result *res, srv_err e, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* Records the engine error rc (IC_E*, message from ic_error_message()) met
 * while handling `what` ("image" or "label") as srv_err_from_engine() maps it. */
void srv_result_engine_error(srv_result *res, int rc, const char *what);

/* A backend implementation: a table of functions (see the file comment for
 * the threading contract). Every int function returns 0 or a negative
 * IC_E* code with a message set through ic_error_set(). */
typedef struct srv_backend_ops {
    const char *name;
    /* Loads the model named by cfg->model and returns the backend state. */
    int (*create)(const srv_config *cfg, void **ctx);
    /* Frees everything create made. Accepts NULL. */
    void (*destroy)(void *ctx);
    /* Reloads cfg->model (SIGHUP); on failure the old model keeps serving. */
    int (*reload)(void *ctx, const srv_config *cfg);
    /* Per-worker state (scratch memory sized for the largest image). */
    int (*worker_init)(void *ctx, int worker, void **wctx);
    void (*worker_deinit)(void *ctx, void *wctx);
    /* Runs one request. A negative return without res->err set is
     * answered as srv_result_engine_error() maps the IC_E* code. */
    int (*process)(void *ctx, void *wctx, const srv_request *req, srv_result *res);
    /* Fills obj with model metadata for GET /v1/models: name, classes,
     * colours, thing ids. */
    int (*describe)(void *ctx, json_t *obj);
    /* Copies the served model's name into out (size n). */
    void (*model_name)(void *ctx, char *out, size_t n);
    /* 1 when a model is loaded and requests can be served. */
    int (*ready)(void *ctx);
} srv_backend_ops;

/* The test backend: reports the upload, checks the image magic bytes and
 * sleeps cfg->test_sleep_ms to simulate inference and model loads (overload
 * and reload tests). Its
 * "model" file is a text file whose first line is
 * `instcal-test-model <name>`; anything else fails to load. */
extern const srv_backend_ops srv_backend_test;

/* The Panoptic-DeepLab backend (backend_pdl.c): cfg->model is a safetensors
 * file; reload swaps models with a reference count. */
extern const srv_backend_ops srv_backend_pdl;

/* The backend called name, or NULL. */
const srv_backend_ops *srv_backend_find(const char *name);

#endif
