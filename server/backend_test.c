/* The test backend (see backend.h): everything a real backend does except
 * the model, so the HTTP side, the queue and the overload and reload paths
 * can be exercised before the Panoptic-DeepLab engine exists. */
#include "backend.h"
#include "oip.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "base/alloc.h"
#include "base/err.h"

typedef struct test_ctx {
    pthread_mutex_t mu; /* guards name (reload vs. readers) */
    char name[128];
    int sleep_ms;
} test_ctx;

#define TEST_MAGIC "instcal-test-model "

/* Reads the model name from path into out; "" path means the built-in
 * model "test". */
static int read_model(const char *path, char *out, size_t n)
{
    if (!path[0]) {
        snprintf(out, n, "test");
        return 0;
    }
    FILE *f = fopen(path, "r");
    if (!f)
        return ic_error_set(IC_EIO, "cannot open model %s: %s", path, strerror(errno));
    char line[256];
    char *ok = fgets(line, sizeof line, f);
    fclose(f);
    if (!ok || strncmp(line, TEST_MAGIC, strlen(TEST_MAGIC)) != 0)
        return ic_error_set(IC_EFORMAT, "%s is not a test model (first line must be '%s<name>')",
                            path, TEST_MAGIC);
    char *name = line + strlen(TEST_MAGIC);
    name[strcspn(name, "\r\n")] = '\0';
    size_t len = strlen(name);
    if (len == 0 || len >= n)
        return ic_error_set(IC_EFORMAT, "%s: model name empty or longer than %zu", path, n - 1);
    memcpy(out, name, len + 1);
    return 0;
}

static int test_create(const srv_config *cfg, void **ctx)
{
    test_ctx *t = ic_calloc(1, sizeof *t);
    if (!t)
        return ic_error_set(IC_ENOMEM, "out of memory");
    int rc = read_model(cfg->model, t->name, sizeof t->name);
    if (rc) {
        ic_free(t);
        return rc;
    }
    pthread_mutex_init(&t->mu, NULL);
    t->sleep_ms = cfg->test_sleep_ms;
    *ctx = t;
    return 0;
}

static void test_destroy(void *ctx)
{
    test_ctx *t = ctx;
    if (!t)
        return;
    pthread_mutex_destroy(&t->mu);
    ic_free(t);
}

/* Simulated work: inference, and a model load as slow as one request. */
static void sleep_ms(int ms)
{
    if (ms <= 0)
        return;
    struct timespec d = {ms / 1000, (long)(ms % 1000) * 1000000};
    while (nanosleep(&d, &d) != 0 && errno == EINTR) {
    }
}

static int test_reload(void *ctx, const srv_config *cfg)
{
    test_ctx *t = ctx;
    sleep_ms(t->sleep_ms);
    char name[128];
    int rc = read_model(cfg->model, name, sizeof name);
    if (rc)
        return rc;
    pthread_mutex_lock(&t->mu);
    memcpy(t->name, name, sizeof name);
    pthread_mutex_unlock(&t->mu);
    return 0;
}

static int test_worker_init(void *ctx, int worker, void **wctx)
{
    *wctx = NULL;
    return 0;
}

static void test_worker_deinit(void *ctx, void *wctx)
{
}

static void test_model_name(void *ctx, char *out, size_t n)
{
    test_ctx *t = ctx;
    pthread_mutex_lock(&t->mu);
    snprintf(out, n, "%s", t->name);
    pthread_mutex_unlock(&t->mu);
}

static const char *sniff(const unsigned char *p, size_t n)
{
    static const unsigned char png[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    if (n >= 3 && p[0] == 0xff && p[1] == 0xd8 && p[2] == 0xff)
        return "image/jpeg";
    if (n >= 8 && memcmp(p, png, 8) == 0)
        return "image/png";
    return NULL;
}

static double elapsed_s(const struct timespec *a)
{
    struct timespec b;
    clock_gettime(CLOCK_MONOTONIC, &b);
    return (double)(b.tv_sec - a->tv_sec) + (double)(b.tv_nsec - a->tv_nsec) * 1e-9;
}

static int test_process(void *ctx, void *wctx, const srv_request *req, srv_result *res)
{
    test_ctx *t = ctx;
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    const unsigned char *image = (const unsigned char *)req->image.data;
    const unsigned char *label = (const unsigned char *)req->label.data;
    const char *type = sniff(image, req->image.len);
    if (!type || (req->image_type[0] && strcmp(type, req->image_type) != 0)) {
        srv_result_error(res, SRV_ERR_BAD_IMAGE, "the upload is not a %s image",
                         req->image_type[0] ? req->image_type : "JPEG or PNG");
        return 0;
    }
    const char *label_type = req->label.len ? sniff(label, req->label.len) : NULL;
    if (req->label.len && !(label_type && strcmp(label_type, "image/png") == 0)) {
        srv_result_error(res, SRV_ERR_BAD_LABEL, "the label is not a PNG image");
        return 0;
    }
    res->decode_s = elapsed_s(&t0);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    sleep_ms(t->sleep_ms);
    res->inference_s = elapsed_s(&t0);
    clock_gettime(CLOCK_MONOTONIC, &t0);

    char name[128];
    test_model_name(ctx, name, sizeof name);
    json_t *o = json_object();
    json_t *outs = json_array();
    unsigned outputs = req->opts.outputs;
    for (int i = 0; i < IC_OUT_COUNT; i++) /* the images; rle is reported on its own */
        if ((outputs & (1u << i)) && (1u << i) != IC_OUT_RLE)
            json_array_append_new(outs, json_string(ic_segment_output_name(i)));
    json_t *cal = json_pack("{s:s}", "mode", ic_calib_mode_name(req->opts.calib.mode));
    if (req->has_m)
        json_object_set_new(cal, "m", json_real(req->opts.calib.m));
    json_object_set_new(o, "model", json_string(name));
    json_object_set_new(o, "backend", json_string("test"));
    json_object_set_new(o, "image", json_pack("{s:I,s:s}", "bytes", (json_int_t)req->image.len,
                                              "type", type));
    json_object_set_new(o, "calibration", cal);
    json_object_set_new(o, "outputs", outs);
    json_object_set_new(o, "rle", json_boolean((outputs & IC_OUT_RLE) != 0));
    json_object_set_new(o, "segments", json_array());
    if (req->label.len)
        json_object_set_new(o, "label", json_pack("{s:I}", "bytes", (json_int_t)req->label.len));
    res->postprocess_s = elapsed_s(&t0);
    if (req->oip.outputs) {
        /* An OIP request gets 1x1 tensors (label 0, class 0, confidence 1)
         * and the report above as the response's parameters. */
        static const int32_t zero = 0;
        static const float one = 1.0f;
        srv_oip_tensors tt = {.w = 1, .h = 1, .labels = &zero, .semantic = &zero,
                              .confidence = &one, .segments_info = "[]", .segments_len = 2};
        srv_buf_init(&res->oip, 0);
        int rc = srv_oip_encode(&req->oip, name, o, &tt, &res->oip, &res->oip_header_len);
        json_decref(o);
        if (rc) {
            srv_buf_free(&res->oip);
            srv_result_error(res, SRV_ERR_OUT_OF_MEMORY, "out of memory for the response");
        }
        return 0;
    }
    res->json = o;
    return 0;
}

static int test_describe(void *ctx, json_t *obj)
{
    char name[128];
    test_model_name(ctx, name, sizeof name);
    json_object_set_new(obj, "name", json_string(name));
    json_object_set_new(
        obj, "classes",
        json_pack("[{s:i,s:s,s:b,s:[i,i,i]},{s:i,s:s,s:b,s:[i,i,i]}]", "id", 0, "name", "road",
                  "isthing", 0, "color", 128, 64, 128, "id", 1, "name", "car", "isthing", 1,
                  "color", 0, 0, 142));
    json_object_set_new(obj, "thing_ids", json_pack("[i]", 1));
    return 0;
}

static int test_ready(void *ctx)
{
    return ctx != NULL;
}

const srv_backend_ops srv_backend_test = {
    .name = "test",
    .create = test_create,
    .destroy = test_destroy,
    .reload = test_reload,
    .worker_init = test_worker_init,
    .worker_deinit = test_worker_deinit,
    .process = test_process,
    .describe = test_describe,
    .model_name = test_model_name,
    .ready = test_ready,
};

const srv_backend_ops *srv_backend_find(const char *name)
{
    if (strcmp(name, srv_backend_test.name) == 0)
        return &srv_backend_test;
    if (strcmp(name, srv_backend_pdl.name) == 0)
        return &srv_backend_pdl;
    return NULL;
}
