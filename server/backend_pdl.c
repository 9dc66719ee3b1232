/* The Panoptic-DeepLab backend (see backend.h): runs the engine's shared
 * inference path (core/infer/segment.h) on a worker.
 *
 * Models and reload. A loaded model lives in a pdl_model with a reference
 * count: the backend holds one reference to the current model, and every
 * request takes one for its whole run. SIGHUP loads the new file beside the
 * old one, validates it (shapes when loading, then a smoke forward whose
 * outputs must be finite), and swaps the current pointer under a mutex;
 * requests already running keep their reference and finish on the old
 * model, which is freed when the last of them drops it. A file that fails
 * to load or validate never becomes current.
 *
 * TENT needs a trainable copy per worker (adapt/tent.h). The copies belong
 * to the model they were made from (one per worker index, made at load
 * time), so a reload swaps them together with the network and a worker can
 * never run TENT on weights that differ from the ones it serves.
 *
 * No cold start: each worker's first request used to pay for growing its
 * scratch arena, first-touch page faults and the library's lazy set-up
 * (300-400 ms against about 90 ms after, on the shipped model). So
 * worker_init starts a warm-up thread per worker that runs one whole
 * request (a synthetic PNG at the model's test size, every output, the
 * default calibration) on the worker's own arena; ready() stays false until
 * every worker has warmed up, and a worker joins its warm-up thread before
 * its first real request (which therefore never races it, only waits).
 *
 * BLAS threads: openblas_set_num_threads() is process-wide, so create()
 * sets it once to cfg->blas_threads; every worker's GEMMs (and conv2d's
 * im2col split) then use that many threads. Keep workers x blas_threads at
 * or below the core count (docs/serving-bench.md measures the splits). */
#include "backend.h"
#include "oip.h"

#include <cblas.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "base/alloc.h"
#include "base/arena.h"
#include "base/err.h"
#include "adapt/adapt.h"
#include "image/image.h"
#include "image/png.h"
#include "infer/result_json.h"
#include "infer/segment.h"
#include "log.h"
#include "model/pdl.h"

/* One loaded model and what belongs to it. */
typedef struct pdl_model {
    atomic_int refs;
    ic_pdl *net;
    ic_tent **tents; /* [n_tents], one per worker index; NULL when tent is off */
    int n_tents;
    char name[128];
    char path[4096];
} pdl_model;

typedef struct pdl_ctx {
    pthread_mutex_t mu; /* guards cur */
    pdl_model *cur;
    int workers;
    int tent;
    size_t worker_memory;
    char calibration[16]; /* the default mode: what the warm-up runs */
    atomic_int cold;      /* workers whose warm-up has not finished */
    size_t worker_keep;   /* arena bytes kept between requests */
} pdl_ctx;

/* Per-worker state: the scratch arena, reset per request and shrunk to
 * worker_memory_keep after it, and the warm-up thread that runs before the
 * first request. The arena's peak grows with the image (full-size logits
 * and maps: about 105 bytes per pixel with the shipped model, 1.7 GB for
 * 4000x4000), and without the shrink one large image pinned that for the
 * life of the process. */
typedef struct pdl_worker {
    int index;
    ic_arena arena;
    pdl_ctx *ctx;
    pthread_t warm;
    int warm_pending; /* warm is running or not yet joined */
} pdl_worker;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void model_free(pdl_model *m)
{
    if (!m)
        return;
    for (int i = 0; i < m->n_tents; i++)
        ic_tent_free(&m->tents[i]);
    ic_free(m->tents);
    ic_pdl_free(&m->net);
    ic_free(m);
}

static void model_release(pdl_model *m)
{
    if (m && atomic_fetch_sub(&m->refs, 1) == 1)
        model_free(m);
}

/* The current model with one reference for the caller, or NULL. */
static pdl_model *model_acquire(pdl_ctx *c)
{
    pthread_mutex_lock(&c->mu);
    pdl_model *m = c->cur;
    if (m)
        atomic_fetch_add(&m->refs, 1);
    pthread_mutex_unlock(&c->mu);
    return m;
}

/* A forward pass on a small grey image: catches weights that load but
 * compute garbage (NaN/Inf) before the model takes traffic. */
static int smoke_test(const ic_pdl *net)
{
    const ic_pdl_config *cfg = ic_pdl_get_config(net);
    ic_arena a;
    ic_arena_init(&a, 0, 0);
    ic_tensor x;
    int rc = ic_tensor_alloc(&x, &a, 1, 3, 64, 64);
    if (!rc) {
        for (int ch = 0; ch < 3; ch++) {
            float v = (128.0f - cfg->pixel_mean[ch]) / cfg->pixel_std[ch];
            float *p = ic_tensor_at(&x, 0, ch);
            for (size_t i = 0; i < ic_tensor_plane(&x); i++)
                p[i] = v;
        }
        ic_calib_opts none = {.mode = IC_CALIB_NONE};
        ic_pdl_outputs out;
        rc = ic_pdl_forward(net, &x, &none, IC_PDL_STRIDE4, &a, &out);
        if (!rc) {
            const ic_tensor *t[3] = {&out.sem, &out.center, &out.offset};
            for (int k = 0; k < 3 && !rc; k++)
                for (size_t i = 0; i < ic_tensor_numel(t[k]); i++)
                    if (!isfinite(t[k]->data[i])) {
                        rc = ic_error_set(IC_EFORMAT, "model '%s' gives non-finite outputs on "
                                                      "a grey test image", cfg->name);
                        break;
                    }
        } else {
            rc = ic_error_prefix(rc, "model '%s' fails a test forward", cfg->name);
        }
    }
    ic_arena_deinit(&a);
    return rc;
}

static int model_load(const char *path, int workers, int tent, pdl_model **out)
{
    if (!path[0])
        return ic_error_set(IC_EINVAL, "no model: set `model` to a safetensors file "
                                       "(e.g. models/default.safetensors)");
    pdl_model *m = ic_calloc(1, sizeof *m);
    if (!m)
        return ic_error_set(IC_ENOMEM, "out of memory");
    atomic_init(&m->refs, 1);
    snprintf(m->path, sizeof m->path, "%s", path);
    int rc = ic_pdl_load(&m->net, path, NULL);
    if (rc) {
        rc = ic_error_prefix(rc, "cannot load model");
        goto fail;
    }
    if ((rc = smoke_test(m->net)) != 0)
        goto fail;
    snprintf(m->name, sizeof m->name, "%s", ic_pdl_get_config(m->net)->name);
    if (tent) {
        m->tents = ic_calloc((size_t)workers, sizeof *m->tents);
        if (!m->tents) {
            rc = ic_error_set(IC_ENOMEM, "out of memory");
            goto fail;
        }
        m->n_tents = workers;
        for (int i = 0; i < workers; i++) {
            if ((rc = ic_tent_create(&m->tents[i], path, NULL)) != 0) {
                rc = ic_error_prefix(rc, "cannot make the TENT copy for worker %d", i);
                goto fail;
            }
            const ic_pdl_config *tc = ic_pdl_get_config(ic_tent_model(m->tents[i]));
            if (strcmp(tc->name, m->name) != 0) {
                rc = ic_error_set(IC_EFORMAT, "%s changed while loading (model '%s', then '%s')",
                                  path, m->name, tc->name);
                goto fail;
            }
        }
    }
    *out = m;
    return 0;
fail:
    model_free(m);
    return rc;
}

static int pdl_create(const srv_config *cfg, void **ctx)
{
    /* Process-wide: every worker's BLAS calls use this many threads. */
    openblas_set_num_threads(cfg->blas_threads);
    pdl_ctx *c = ic_calloc(1, sizeof *c);
    if (!c)
        return ic_error_set(IC_ENOMEM, "out of memory");
    c->workers = cfg->workers > 0 ? cfg->workers : 1;
    c->tent = cfg->tent;
    c->worker_memory = (size_t)cfg->worker_memory;
    snprintf(c->calibration, sizeof c->calibration, "%s", cfg->calibration);
    atomic_init(&c->cold, 0);
    c->worker_keep = (size_t)cfg->worker_memory_keep;
    int rc = model_load(cfg->model, c->workers, c->tent, &c->cur);
    if (rc) {
        ic_free(c);
        return rc;
    }
    pthread_mutex_init(&c->mu, NULL);
    *ctx = c;
    return 0;
}

static void pdl_destroy(void *ctx)
{
    pdl_ctx *c = ctx;
    if (!c)
        return;
    model_release(c->cur);
    pthread_mutex_destroy(&c->mu);
    ic_free(c);
}

static int pdl_reload(void *ctx, const srv_config *cfg)
{
    pdl_ctx *c = ctx;
    pdl_model *m = NULL;
    int rc = model_load(cfg->model, c->workers, c->tent, &m);
    if (rc)
        return rc; /* the old model keeps serving */
    pthread_mutex_lock(&c->mu);
    pdl_model *old = c->cur;
    c->cur = m;
    pthread_mutex_unlock(&c->mu);
    model_release(old); /* freed now, or by the last request still using it */
    return 0;
}

/* Whether a served model can run mode (tent needs the per-worker copies). */
static int mode_available(const pdl_model *m, ic_calib_mode mode)
{
    if (mode == IC_CALIB_TENT)
        return m->tents != NULL;
    return ic_pdl_supports(m->net, mode);
}

/* A PNG of w x h smooth colour gradients (decodes like a photo, not a
 * constant image that post-processing would reduce to nothing). */
static int warm_image(int w, int h, unsigned char **png, size_t *len)
{
    ic_image img;
    int rc = ic_image_alloc(&img, w, h, 3, 8);
    if (rc)
        return rc;
    unsigned char *p = img.data;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++, p += 3) {
            p[0] = (unsigned char)(255 * x / w);
            p[1] = (unsigned char)(255 * y / h);
            p[2] = (unsigned char)((x ^ y) & 255);
        }
    rc = ic_image_encode_png(&img, NULL, png, len);
    ic_image_free(&img);
    return rc;
}

/* The warm-up thread of one worker: one whole request on its arena. */
static void *warm_main(void *arg)
{
    pdl_worker *w = arg;
    pdl_ctx *c = w->ctx;
    double t0 = now_s();
    pdl_model *m = model_acquire(c);
    int rc = m ? 0 : ic_error_set(IC_EINVAL, "no model is loaded");
    if (m) {
        const ic_pdl_config *cfg = ic_pdl_get_config(m->net);
        const int h = cfg->min_size_test > 0 ? cfg->min_size_test : 256;
        const int wd = cfg->max_size_test > 0 ? cfg->max_size_test : 2 * h;
        ic_segment_opts so;
        memset(&so, 0, sizeof so);
        if (ic_calib_mode_parse(c->calibration, &so.calib.mode) ||
            so.calib.mode == IC_CALIB_TENT || !mode_available(m, so.calib.mode))
            so.calib.mode = IC_CALIB_NONE;
        so.outputs = IC_OUT_PANOPTIC_PNG | IC_OUT_SEMANTIC_PNG | IC_OUT_CONFIDENCE_PNG |
                     IC_OUT_OVERLAY_PNG;
        unsigned char *png = NULL;
        size_t len = 0;
        rc = warm_image(wd, h, &png, &len);
        if (!rc) {
            ic_segment_result sr;
            memset(&sr, 0, sizeof sr);
            ic_forward fw = ic_forward_plain(m->net);
            rc = ic_segment_run(&sr, &fw, &w->arena, png, len, &so, NULL);
            ic_segment_result_deinit(&sr);
        }
        ic_free(png);
        ic_arena_reset(&w->arena);
        model_release(m);
    }
    char q[256];
    if (rc)
        srv_log(SRV_LOG_WARN, "event=warmup worker=%d result=failure error=%s", w->index,
                srv_log_quote(q, sizeof q, ic_error_message()));
    else
        srv_log(SRV_LOG_INFO, "event=warmup worker=%d result=success seconds=%.3f", w->index,
                now_s() - t0);
    /* a failed warm-up only costs the first request its speed: ready anyway */
    atomic_fetch_sub(&c->cold, 1);
    return NULL;
}

/* Waits for this worker's warm-up (once). */
static void warm_join(pdl_worker *w)
{
    if (w->warm_pending) {
        pthread_join(w->warm, NULL);
        w->warm_pending = 0;
    }
}

static int pdl_worker_init(void *ctx, int worker, void **wctx)
{
    pdl_ctx *c = ctx;
    if (worker >= c->workers)
        return ic_error_set(IC_EINVAL, "worker %d but the backend was made for %d", worker,
                            c->workers);
    pdl_worker *w = ic_calloc(1, sizeof *w);
    if (!w)
        return ic_error_set(IC_ENOMEM, "out of memory");
    w->index = worker;
    w->ctx = c;
    ic_arena_init(&w->arena, (size_t)8 << 20, c->worker_memory);
    atomic_fetch_add(&c->cold, 1);
    if (pthread_create(&w->warm, NULL, warm_main, w) == 0)
        w->warm_pending = 1;
    else
        atomic_fetch_sub(&c->cold, 1); /* no thread: the first request warms it */
    *wctx = w;
    return 0;
}

static void pdl_worker_deinit(void *ctx, void *wctx)
{
    pdl_worker *w = wctx;
    if (!w)
        return;
    warm_join(w);
    ic_arena_deinit(&w->arena);
    ic_free(w);
}

static void pdl_model_name(void *ctx, char *out, size_t n)
{
    pdl_ctx *c = ctx;
    pthread_mutex_lock(&c->mu);
    snprintf(out, n, "%s", c->cur ? c->cur->name : "");
    pthread_mutex_unlock(&c->mu);
}

static int pdl_ready(void *ctx)
{
    pdl_ctx *c = ctx;
    if (!c)
        return 0;
    pthread_mutex_lock(&c->mu);
    int ok = c->cur != NULL;
    pthread_mutex_unlock(&c->mu);
    return ok && atomic_load(&c->cold) == 0;
}

static int pdl_describe(void *ctx, json_t *obj)
{
    pdl_model *m = model_acquire(ctx);
    if (!m)
        return ic_error_set(IC_EINVAL, "no model loaded");
    const ic_pdl_config *cfg = ic_pdl_get_config(m->net);
    json_t *classes = json_array(), *things = json_array(), *modes = json_array();
    for (int k = 0; k < cfg->num_classes; k++) {
        const uint8_t *col = cfg->class_colors[k];
        json_array_append_new(classes, json_pack("{s:i,s:s,s:b,s:[i,i,i]}", "id", k, "name",
                                                 cfg->class_names[k], "isthing", cfg->is_thing[k],
                                                 "color", col[0], col[1], col[2]));
        if (cfg->is_thing[k])
            json_array_append_new(things, json_integer(k));
    }
    for (int k = 0; k < IC_CALIB_COUNT; k++)
        if (mode_available(m, (ic_calib_mode)k))
            json_array_append_new(modes, json_string(ic_calib_mode_name((ic_calib_mode)k)));
    json_object_set_new(obj, "name", json_string(m->name));
    json_object_set_new(obj, "backend", json_string("pdl"));
    json_object_set_new(obj, "classes", classes);
    json_object_set_new(obj, "thing_ids", things);
    json_object_set_new(obj, "ignore_value", json_integer(cfg->ignore_value));
    json_object_set_new(obj, "calibration_modes", modes);
    json_object_set_new(obj, "network_input",
                        json_pack("{s:i,s:i,s:i}", "min_size_test", cfg->min_size_test,
                                  "max_size_test", cfg->max_size_test, "size_divisibility",
                                  cfg->size_divisibility));
    model_release(m);
    return 0;
}

/* The answer to an OIP request (oip.h): the tensors, with the response's
 * parameters taken from the /v1 result object o (calibration, m,
 * drift_score, confidence, image size). Returns 0 or an IC_E* code. */
static int oip_answer(const srv_request *req, const char *model, const ic_segment_result *sr,
                      json_t *o, ic_arena *arena, srv_result *res)
{
    size_t n = (size_t)sr->width * (size_t)sr->height;
    int32_t *labels = ic_arena_alloc(arena, n * sizeof *labels);
    if (!labels)
        return ic_error_prefix(IC_ENOMEM, "oip: label tensor");
    ic_segment_panoptic_ids(sr, labels);
    char *segs = json_dumps(json_object_get(o, "segments"), JSON_COMPACT | JSON_REAL_PRECISION(6));
    json_t *params = json_object();
    const char *keys[] = {"calibration", "drift_score", "confidence", "image", "network_input"};
    for (size_t i = 0; params && i < sizeof keys / sizeof keys[0]; i++) {
        json_t *v = json_object_get(o, keys[i]);
        if (v)
            json_object_set(params, keys[i], v);
    }
    json_object_set_new(params, "request_id", json_string(req->id));
    int rc = segs && params ? 0 : ic_error_set(IC_ENOMEM, "oip: no memory for the answer");
    srv_oip_tensors t = {.w = sr->width, .h = sr->height, .labels = labels, .semantic = sr->sem,
                         .confidence = sr->maxprob, .segments_info = segs,
                         .segments_len = segs ? strlen(segs) : 0};
    srv_buf_init(&res->oip, 0);
    if (rc == 0)
        rc = srv_oip_encode(&req->oip, model, params, &t, &res->oip, &res->oip_header_len);
    if (rc)
        srv_buf_free(&res->oip);
    json_decref(params);
    free(segs);
    return rc;
}

static int pdl_process(void *ctx, void *wctx, const srv_request *req, srv_result *res)
{
    pdl_ctx *c = ctx;
    pdl_worker *w = wctx;
    warm_join(w);
    pdl_model *m = model_acquire(c);
    if (!m) {
        srv_result_error(res, SRV_ERR_NOT_READY, "no model loaded");
        return 0;
    }
    const ic_pdl_config *cfg = ic_pdl_get_config(m->net);
    ic_arena_reset(&w->arena);

    ic_segment_opts so = req->opts;
    ic_segment_result sr;
    memset(&sr, 0, sizeof sr);
    json_t *o = NULL;
    if (!mode_available(m, so.calib.mode)) {
        if (so.calib.mode == IC_CALIB_TENT)
            srv_result_error(res, SRV_ERR_BAD_PARAMETER,
                             "calibration=tent is turned off on this server (tent = off)");
        else
            srv_result_error(res, SRV_ERR_BAD_PARAMETER,
                             "calibration mode '%s' is not available for model '%s' (see "
                             "GET /v1/models)",
                             ic_calib_mode_name(so.calib.mode), m->name);
        goto done;
    }
    ic_forward fw; /* the network, or this worker's TENT copy */
    if (ic_adapt_forward(&fw, m->net, m->tents ? m->tents[w->index] : NULL, so.calib.mode)) {
        srv_result_error(res, SRV_ERR_BAD_PARAMETER, "%s", ic_error_message());
        goto done;
    }
    const unsigned char *image = (const unsigned char *)req->image.data;
    size_t image_len = req->image.len;

    ic_image_format fmt = ic_image_sniff(image, image_len);
    const char *type = fmt == IC_IMAGE_FORMAT_JPEG  ? "image/jpeg"
                       : fmt == IC_IMAGE_FORMAT_PNG ? "image/png"
                                                    : NULL;
    if (!type && fmt != IC_IMAGE_FORMAT_UNKNOWN) {
        srv_result_error(res, SRV_ERR_UNSUPPORTED_IMAGE,
                         "%s images are not supported; send JPEG or PNG",
                         ic_image_format_name(fmt));
        goto done;
    }
    if (!type) {
        srv_result_error(res, SRV_ERR_BAD_IMAGE, "the upload is neither a JPEG nor a PNG image");
        goto done;
    }
    if (req->image_type[0] && strcmp(type, req->image_type) != 0) {
        srv_result_error(res, SRV_ERR_BAD_IMAGE, "the upload is a %s image, not %s", type,
                         req->image_type);
        goto done;
    }

    double t0 = now_s();
    ic_segment_gt gt, *gtp = NULL;
    if (req->label.len) {
        int rc = ic_segment_gt_load(&gt, &w->arena, cfg, req->label.data, req->label.len,
                                    req->label_segments.len ? req->label_segments.data : NULL,
                                    req->label_segments.len,
                                    &so.limits);
        if (rc) {
            srv_result_engine_error(res, rc, "label");
            goto done;
        }
        gtp = &gt;
    }
    double t_label = now_s() - t0;
    int rc = ic_segment_run(&sr, &fw, &w->arena, image, image_len, &so, gtp);
    if (rc) {
        srv_result_engine_error(res, rc, rc == IC_ESHAPE ? "label" : "image");
        goto done;
    }
    double t1 = now_s();
    o = ic_segment_result_json(&sr, cfg, &so.calib);
    if (!o) {
        srv_result_error(res, SRV_ERR_OUT_OF_MEMORY, "out of memory for the response");
        goto done;
    }
    json_t *img = json_object_get(o, "image");
    json_object_set_new(img, "bytes", json_integer((json_int_t)image_len));
    json_object_set_new(img, "type", json_string(type));
    json_object_set_new(o, "backend", json_string("pdl"));
    res->decode_s = sr.t.decode + sr.t.preprocess + t_label;
    res->inference_s = sr.t.forward;
    res->has_drift = 1;
    res->drift = sr.drift;
    if (req->oip.outputs) {
        rc = oip_answer(req, m->name, &sr, o, &w->arena, res);
        if (rc) {
            srv_result_error(res, SRV_ERR_OUT_OF_MEMORY, "out of memory for the response");
            goto done;
        }
    } else {
        res->json = o;
        o = NULL;
    }
    res->postprocess_s = sr.t.post + sr.t.metrics + sr.t.encode + (now_s() - t1);
done:
    json_decref(o);
    ic_segment_result_deinit(&sr);
    model_release(m);
    ic_arena_shrink(&w->arena, c->worker_keep); /* nothing points into it now */
    return 0;
}

const srv_backend_ops srv_backend_pdl = {
    .name = "pdl",
    .create = pdl_create,
    .destroy = pdl_destroy,
    .reload = pdl_reload,
    .worker_init = pdl_worker_init,
    .worker_deinit = pdl_worker_deinit,
    .process = pdl_process,
    .describe = pdl_describe,
    .model_name = pdl_model_name,
    .ready = pdl_ready,
};
