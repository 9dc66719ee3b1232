/* The Panoptic-DeepLab backend without HTTP, on the tiny model:
 * - TENT through ic_segment_run: refused without a per-worker context (as a
 *   strategy choice and as a plain forward asked for tent), and with one it
 *   runs TENT (tbn strengths, outputs differ from plain tbn),
 *   is repeatable (the context restores gamma/beta) and agrees with the
 *   backend's own tent requests;
 * - process(): every calibration mode, error mapping to statuses;
 * - reload: a corrupt file keeps the old model; a good one swaps in while
 *   other threads keep processing (ASan would catch a model freed under a
 *   running request). */
#include <check.h>
#include <math.h>
#include <unistd.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "base/alloc.h"
#include "base/err.h"
#include "adapt/adapt.h"
#include "config.h"
#include "image/png.h"
#include "infer/segment.h"
#include "testutil.h"

#define MODEL "golden/fixtures/model_tiny_weights.safetensors"

/* A 96x64 RGB picture: sky over ground with two blobs. */
static unsigned char *make_png(size_t *len, int shift)
{
    ic_image img;
    ck_assert_int_eq(ic_image_alloc(&img, 96, 64, 3, 8), 0);
    uint8_t *p = img.data;
    for (int y = 0; y < 64; y++)
        for (int x = 0; x < 96; x++) {
            uint8_t *q = p + ((size_t)y * 96 + x) * 3;
            int blob = (x - 30 - shift) * (x - 30 - shift) + (y - 45) * (y - 45) < 60 ||
                       (x - 70) * (x - 70) + (y - 40) * (y - 40) < 90;
            q[0] = (uint8_t)(y < 28 ? 90 + y : blob ? 220 : 60);
            q[1] = (uint8_t)(y < 28 ? 140 + y : blob ? 30 : 60 + x / 4);
            q[2] = (uint8_t)(y < 28 ? 200 : blob ? 40 : 70);
        }
    unsigned char *out;
    ck_assert_int_eq(ic_image_encode_png(&img, NULL, &out, len), 0);
    ic_image_free(&img);
    return out;
}

START_TEST(test_tent_through_segment_run)
{
    const char *path = tu_path(MODEL);
    ic_pdl *net = NULL;
    ck_assert_int_eq(ic_pdl_load(&net, path, NULL), 0);
    ic_tent *tent = NULL;
    ck_assert_int_eq(ic_tent_create(&tent, path, NULL), 0);
    size_t len;
    unsigned char *png = make_png(&len, 0);
    ic_arena a;
    ic_arena_init(&a, 0, 0);

    ic_segment_opts so = {.calib = {.mode = IC_CALIB_TENT}, .outputs = IC_OUT_PANOPTIC_PNG};
    ic_segment_result r1, r2, rt;
    /* no context: a named error, not a crash or a silent tbn */
    ic_forward fw;
    ck_assert_int_eq(ic_adapt_forward(&fw, net, NULL, IC_CALIB_TENT), IC_EINVAL);
    ck_assert_ptr_nonnull(strstr(ic_error_message(), "tent"));
    ic_forward plain = ic_forward_plain(net);
    ck_assert_int_eq(ic_segment_run(&r1, &plain, &a, png, len, &so, NULL), IC_EINVAL);
    ck_assert_ptr_nonnull(strstr(ic_error_message(), "tent"));

    ck_assert_int_eq(ic_adapt_forward(&fw, net, tent, IC_CALIB_TENT), 0);
    ck_assert_int_eq(ic_segment_run(&r1, &fw, &a, png, len, &so, NULL), 0);
    ck_assert(r1.m_mu_mean == 1.0 && r1.m_var_mean == 1.0); /* TENT normalises with tbn */
    size_t n = (size_t)r1.width * r1.height * 4;
    float *sem1 = malloc(n * sizeof(float));
    memcpy(sem1, r1.raw.sem.data, n * sizeof(float));

    ic_arena_reset(&a);
    ck_assert_int_eq(ic_segment_run(&r2, &fw, &a, png, len, &so, NULL), 0);
    /* episodic: the second request starts from the same weights */
    ck_assert_mem_eq(r2.raw.sem.data, sem1, n * sizeof(float));
    ck_assert_uint_eq(r1.panoptic_png_len, r2.panoptic_png_len);
    ck_assert_mem_eq(r1.panoptic_png, r2.panoptic_png, r1.panoptic_png_len);

    /* and the adaptation step did something: logits differ from plain tbn */
    ic_arena_reset(&a);
    ic_segment_opts tbn = {.calib = {.mode = IC_CALIB_TBN}, .outputs = IC_OUT_PANOPTIC_PNG};
    ck_assert_int_eq(ic_segment_run(&rt, &plain, &a, png, len, &tbn, NULL), 0);
    double diff = 0;
    for (size_t i = 0; i < n; i++)
        diff += fabsf(rt.raw.sem.data[i] - sem1[i]);
    ck_assert_msg(diff > 1e-6, "tent gave exactly the tbn logits");

    ic_segment_result_deinit(&r1);
    ic_segment_result_deinit(&r2);
    ic_segment_result_deinit(&rt);
    free(sem1);
    ic_free(png);
    ic_arena_deinit(&a);
    ic_tent_free(&tent);
    ic_pdl_free(&net);
}
END_TEST

/* ---- the backend ---------------------------------------------------------------- */

static srv_config cfg;
static void *ctx;

static void setup(void)
{
    srv_config_defaults(&cfg);
    snprintf(cfg.model, sizeof cfg.model, "%s", tu_path(MODEL));
    cfg.workers = 2;
    ck_assert_msg(srv_backend_pdl.create(&cfg, &ctx) == 0, "%s", ic_error_message());
}

static void teardown(void)
{
    srv_backend_pdl.destroy(ctx);
    ctx = NULL;
}

/* A parsed request for img (a copy; srv_request_free() it) in mode. */
static srv_request make_req(const unsigned char *img, size_t len, const char *mode)
{
    srv_request r;
    srv_request_init(&r, 0);
    snprintf(r.id, sizeof r.id, "t");
    ck_assert_int_eq(srv_buf_append(&r.image, img, len), 0);
    snprintf(r.image_type, sizeof r.image_type, "image/png");
    ck_assert_int_eq(ic_calib_mode_parse(mode, &r.opts.calib.mode), 0);
    r.opts.outputs = IC_OUT_PANOPTIC_PNG;
    r.opts.limits.max_pixels = 16000000;
    return r;
}

START_TEST(test_process_modes_and_errors)
{
    void *w;
    ck_assert_int_eq(srv_backend_pdl.worker_init(ctx, 1, &w), 0);
    size_t len;
    unsigned char *png = make_png(&len, 0);
    const char *modes[] = {"none", "manual", "tbn", "instcal-u", "instcal-c", "tent"};
    for (int i = 0; i < 6; i++) {
        srv_request rq = make_req(png, len, modes[i]);
        rq.opts.calib.m = 0.3f;
        rq.has_m = 1;
        srv_result res;
        memset(&res, 0, sizeof res);
        ck_assert_int_eq(srv_backend_pdl.process(ctx, w, &rq, &res), 0);
        ck_assert_msg(srv_err_status(res.err) == 200, "%s: %d %s", modes[i],
                      srv_err_status(res.err), res.message);
        ck_assert_str_eq(json_string_value(json_object_get(json_object_get(res.json, "calibration"),
                                                           "mode")),
                         modes[i]);
        ck_assert(json_is_string(json_object_get(json_object_get(res.json, "masks"),
                                                 "panoptic_png")));
        ck_assert(res.inference_s > 0 && res.decode_s > 0 && res.postprocess_s > 0);
        json_decref(res.json);
        srv_request_free(&rq);
    }
    struct {
        const unsigned char *data;
        size_t len;
        const char *type;
        int64_t max_pixels;
        int status;
        const char *code;
    } bad[] = {
        {(const unsigned char *)"\xff\xd8\xff\xe0 garbage", 12, "image/jpeg", 16000000, 400,
         "bad_image"},
        {png, len / 2, "image/png", 16000000, 400, "bad_image"}, /* truncated PNG */
        {png, len, "image/jpeg", 16000000, 400, "bad_image"},    /* PNG sent as JPEG */
        {png, len, "image/png", 1000, 413, "too_large"},         /* 96x64 > 1000 pixels */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        srv_request rq = make_req(bad[i].data, bad[i].len, "none");
        snprintf(rq.image_type, sizeof rq.image_type, "%s", bad[i].type);
        rq.opts.limits.max_pixels = bad[i].max_pixels;
        srv_result res;
        memset(&res, 0, sizeof res);
        srv_backend_pdl.process(ctx, w, &rq, &res);
        ck_assert_msg(srv_err_status(res.err) == bad[i].status &&
                          strcmp(srv_err_code(res.err), bad[i].code) == 0,
                      "case %zu: %d %s %s", i, srv_err_status(res.err), srv_err_code(res.err),
                      res.message);
        ck_assert_ptr_null(res.json);
        srv_request_free(&rq);
    }
    /* a label of the wrong size */
    size_t llen;
    ic_image lab;
    ck_assert_int_eq(ic_image_alloc(&lab, 10, 10, 1, 8), 0);
    memset(lab.data, 1, 100);
    unsigned char *lpng;
    ck_assert_int_eq(ic_image_encode_png(&lab, NULL, &lpng, &llen), 0);
    ic_image_free(&lab);
    srv_request rq = make_req(png, len, "none");
    ck_assert_int_eq(srv_buf_append(&rq.label, lpng, llen), 0);
    srv_result res;
    memset(&res, 0, sizeof res);
    srv_backend_pdl.process(ctx, w, &rq, &res);
    ck_assert_msg(srv_err_status(res.err) == 400 && !strcmp(srv_err_code(res.err), "bad_label"),
                  "%d %s", srv_err_status(res.err), srv_err_code(res.err));
    srv_request_free(&rq);
    ic_free(lpng);
    ic_free(png);
    srv_backend_pdl.worker_deinit(ctx, w);
}
END_TEST

START_TEST(test_tent_off_and_describe)
{
    srv_config c2 = cfg;
    c2.tent = 0;
    c2.workers = 1;
    void *x, *w;
    ck_assert_int_eq(srv_backend_pdl.create(&c2, &x), 0);
    ck_assert_int_eq(srv_backend_pdl.worker_init(x, 0, &w), 0);
    json_t *d = json_object();
    ck_assert_int_eq(srv_backend_pdl.describe(x, d), 0);
    json_t *modes = json_object_get(d, "calibration_modes");
    ck_assert_int_eq(json_array_size(modes), 5); /* no tent */
    ck_assert_int_eq(json_array_size(json_object_get(d, "classes")), 4);
    ck_assert_str_eq(json_string_value(json_object_get(d, "name")), "tiny-test");
    json_decref(d);
    size_t len;
    unsigned char *png = make_png(&len, 0);
    srv_request rq = make_req(png, len, "tent");
    srv_result res;
    memset(&res, 0, sizeof res);
    srv_backend_pdl.process(x, w, &rq, &res);
    ck_assert_int_eq(srv_err_status(res.err), 400);
    ck_assert_str_eq(srv_err_code(res.err), "bad_parameter");
    srv_request_free(&rq);
    ic_free(png);
    srv_backend_pdl.worker_deinit(x, w);
    srv_backend_pdl.destroy(x);
}
END_TEST

/* ---- reload while requests run ----------------------------------------------------- */

typedef struct runner {
    void *w;
    int index;
    atomic_int *stop;
    int ok, failed;
} runner;

static void *run_requests(void *arg)
{
    runner *r = arg;
    size_t len;
    unsigned char *png = make_png(&len, r->index);
    while (!atomic_load(r->stop)) {
        srv_request rq = make_req(png, len, r->index ? "tent" : "instcal-c");
        srv_result res;
        memset(&res, 0, sizeof res);
        srv_backend_pdl.process(ctx, r->w, &rq, &res);
        if (srv_err_status(res.err) == 200)
            r->ok++;
        else
            r->failed++;
        json_decref(res.json);
        srv_request_free(&rq);
    }
    ic_free(png);
    return NULL;
}

/* ready() only after every worker has run its start-up request; the first
 * request of a worker waits for that warm-up instead of racing it. */
START_TEST(test_warmup_before_ready)
{
    ck_assert(srv_backend_pdl.ready(ctx)); /* no worker yet: nothing to warm */
    void *w[2];
    for (int i = 0; i < 2; i++)
        ck_assert_int_eq(srv_backend_pdl.worker_init(ctx, i, &w[i]), 0);
    /* a whole request (PNG encode, decode, forward, post) takes far longer
     * than getting here */
    ck_assert(!srv_backend_pdl.ready(ctx));
    size_t len;
    unsigned char *png = make_png(&len, 0);
    srv_request rq = make_req(png, len, "none");
    srv_result res;
    memset(&res, 0, sizeof res);
    ck_assert_int_eq(srv_backend_pdl.process(ctx, w[0], &rq, &res), 0);
    ck_assert_msg(res.err == SRV_ERR_NONE, "%s", res.message);
    json_decref(res.json);
    srv_request_free(&rq);
    int ready = 0;
    for (int k = 0; k < 6000 && !ready; k++) {
        ready = srv_backend_pdl.ready(ctx);
        if (!ready)
            usleep(10000);
    }
    ck_assert(ready);
    for (int i = 0; i < 2; i++)
        srv_backend_pdl.worker_deinit(ctx, w[i]);
    ic_free(png);
}
END_TEST

START_TEST(test_reload_under_load)
{
    char bad[] = "/tmp/instcal-bad-model-XXXXXX";
    int fd = mkstemp(bad);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, "not a safetensors file", 22), 22);
    close(fd);

    atomic_int stop = 0;
    runner rs[2];
    pthread_t th[2];
    for (int i = 0; i < 2; i++) {
        rs[i] = (runner){.index = i, .stop = &stop};
        ck_assert_int_eq(srv_backend_pdl.worker_init(ctx, i, &rs[i].w), 0);
        pthread_create(&th[i], NULL, run_requests, &rs[i]);
    }
    while (!srv_backend_pdl.ready(ctx)) /* the workers' start-up warm-up */
        usleep(10000);
    srv_config c2 = cfg;
    for (int k = 0; k < 6; k++) {
        snprintf(c2.model, sizeof c2.model, "%s", k % 2 ? bad : tu_path(MODEL));
        int rc = srv_backend_pdl.reload(ctx, &c2);
        if (k % 2) {
            ck_assert_int_ne(rc, 0);
            /* Composed once ("cannot load model X: cannot load model X:
             * nsors: ..." when it was built from itself). */
            const char *msg = ic_error_message(), *at = strstr(msg, bad);
            ck_assert_msg(strncmp(msg, "cannot load model: ", 19) == 0 && at &&
                              !strstr(at + 1, bad) && strstr(msg, "safetensors"),
                          "%s", msg);
        } else
            ck_assert_msg(rc == 0, "%s", ic_error_message());
        ck_assert(srv_backend_pdl.ready(ctx));
        char name[64];
        srv_backend_pdl.model_name(ctx, name, sizeof name);
        ck_assert_str_eq(name, "tiny-test");
    }
    atomic_store(&stop, 1);
    for (int i = 0; i < 2; i++) {
        pthread_join(th[i], NULL);
        ck_assert_int_gt(rs[i].ok, 0);
        ck_assert_int_eq(rs[i].failed, 0);
        srv_backend_pdl.worker_deinit(ctx, rs[i].w);
    }
    unlink(bad);
    /* a missing file at startup is an error that names it */
    srv_config c3 = cfg;
    snprintf(c3.model, sizeof c3.model, "/nonexistent/model.safetensors");
    void *x = NULL;
    ck_assert_int_ne(srv_backend_pdl.create(&c3, &x), 0);
    ck_assert_ptr_nonnull(strstr(ic_error_message(), "/nonexistent/model.safetensors"));
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("backend_pdl");
    TCase *tc = tcase_create("tent");
    tcase_add_test(tc, test_tent_through_segment_run);
    suite_add_tcase(s, tc);
    tc = tcase_create("backend");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_process_modes_and_errors);
    tcase_add_test(tc, test_tent_off_and_describe);
    tcase_add_test(tc, test_warmup_before_ready);
    tcase_add_test(tc, test_reload_under_load);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
