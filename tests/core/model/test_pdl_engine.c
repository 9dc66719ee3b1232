/* The blocked engine's whole-network forward (core/model/pdl_engine.c)
 * against the NCHW forward, layer by layer, on the tiny golden model
 * (tests/golden/fixtures/model_tiny_*) in every calibration mode, for
 * `exact` (direct products: float rounding) and `blocked` (Winograd
 * F(4x4, 3x3): its measured error). The outputs against PyTorch for every
 * engine are in test_pdl.c. A layer whose output differs is named, which is
 * what makes a wrong pending affine or write-out findable. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "model/pdl.h"
#include "testutil.h"

#define MAX_TRACED 256

typedef struct traced {
    char name[96];
    ic_tensor t;
} traced;

typedef struct trace_log {
    traced l[MAX_TRACED];
    int n;
} trace_log;

static void record(void *ctx, const char *layer, const ic_tensor *y)
{
    trace_log *log = ctx;
    ck_assert_int_lt(log->n, MAX_TRACED);
    traced *t = &log->l[log->n++];
    snprintf(t->name, sizeof t->name, "%s", layer);
    const size_t n = ic_tensor_numel(y);
    t->t = ic_tensor_wrap(malloc(n * sizeof(float)), y->n, y->c, y->h, y->w);
    ck_assert_ptr_nonnull(t->t.data);
    memcpy(t->t.data, y->data, n * sizeof(float));
}

static void log_free(trace_log *log)
{
    for (int i = 0; i < log->n; i++)
        free(log->l[i].t.data);
    log->n = 0;
}

static void run(ic_pdl *net, ic_pdl_engine e, const ic_calib_opts *opts, const ic_tensor *x,
                ic_arena *a, trace_log *log, ic_pdl_outputs *out)
{
    ck_assert_int_eq(ic_pdl_set_engine(net, e), 0);
    ck_assert_int_eq(ic_pdl_get_engine(net), e);
    log->n = 0;
    int rc = ic_pdl_forward_trace(net, x, opts, IC_PDL_STRIDE4, a, out, record, log);
    ck_assert_msg(rc == 0, "%s: %s", ic_pdl_engine_name(e), ic_error_message());
}

/* Largest layer error of got against want; names the worst layer. A
 * bottleneck's conv3 is compared only when both traced the same thing: in
 * `none` the blocked write-out has already added the residual. */
static double compare_layers(const trace_log *want, const trace_log *got, int skip_conv3,
                             char *worst, size_t worst_len)
{
    ck_assert_int_eq(got->n, want->n);
    double max = 0;
    for (int i = 0; i < want->n; i++) {
        int j = 0; /* the same layer in got (a shortcut may run before conv3) */
        while (j < got->n && strcmp(got->l[j].name, want->l[i].name))
            j++;
        ck_assert_msg(j < got->n, "%s: not traced", want->l[i].name);
        const ic_tensor *w = &want->l[i].t, *g = &got->l[j].t;
        ck_assert(w->n == g->n && w->c == g->c && w->h == g->h && w->w == g->w);
        if (skip_conv3 && strstr(want->l[i].name, ".conv3"))
            continue;
        double e = tu_max_rel_error(g->data, w->data, ic_tensor_numel(w), 1.0, want->l[i].name);
        if (getenv("IC_TEST_VERBOSE"))
            fprintf(stderr, "  %-40s %dx%dx%d %.2e\n", want->l[i].name, w->c, w->h, w->w, e);
        if (!(e <= max)) {
            max = e;
            snprintf(worst, worst_len, "%s", want->l[i].name);
        }
    }
    return max;
}

START_TEST(test_layers_match_nchw)
{
    ic_pdl *net = NULL;
    int rc = ic_pdl_load(&net, tu_path("golden/fixtures/model_tiny_weights.safetensors"), NULL);
    ck_assert_msg(rc == 0, "load: %s", ic_error_message());
    ic_safetensors *io = tu_fixture("model_tiny_io");
    const float m = (float)atof(ic_st_metadata(io, "manual_m"));
    static const ic_calib_mode modes[] = {IC_CALIB_NONE, IC_CALIB_TBN, IC_CALIB_MANUAL,
                                          IC_CALIB_INSTCAL_U, IC_CALIB_INSTCAL_C};
    /* exact: float sums in another order (measured up to 3.0e-5 on a
     * layer); blocked: Winograd F(4x4, 3x3) too (up to 5.8e-5). The tiny
     * model's small sums amplify relative error after dozens of layers;
     * docs/benchmarks.md has the error on R-52. */
    static const struct {
        ic_pdl_engine e;
        double tol;
    } engines[] = {{IC_PDL_ENGINE_EXACT, 6e-5}, {IC_PDL_ENGINE_BLOCKED, 1.2e-4}};
    ic_arena a;
    ic_arena_init(&a, 0, 0);
    static trace_log ref, got;
    int failed = 0;
    for (size_t mi = 0; mi < sizeof modes / sizeof *modes; mi++) {
        ic_arena_reset(&a);
        const ic_pdl_config *cfg = ic_pdl_get_config(net);
        ic_tensor x = tu_fixture_image(io, cfg->pixel_mean, cfg->pixel_std, &a);
        ic_calib_opts opts = {.mode = modes[mi], .m = m};
        ic_pdl_outputs ro, go;
        run(net, IC_PDL_ENGINE_NCHW, &opts, &x, &a, &ref, &ro);
        for (size_t ei = 0; ei < sizeof engines / sizeof *engines; ei++) {
            run(net, engines[ei].e, &opts, &x, &a, &got, &go);
            char worst[96] = "";
            double e = compare_layers(&ref, &got, modes[mi] == IC_CALIB_NONE, worst, sizeof worst);
            const ic_tensor *pr[3] = {&ro.sem, &ro.center, &ro.offset};
            const ic_tensor *pg[3] = {&go.sem, &go.center, &go.offset};
            double eo = 0;
            for (int k = 0; k < 3; k++) {
                double ek = tu_max_rel_error(pg[k]->data, pr[k]->data, ic_tensor_numel(pr[k]), 1.0,
                                             "output");
                eo = ek > eo ? ek : eo;
            }
            double dd = 0;
            for (int n = 0; n < x.n; n++) {
                double d = go.drift[n] - ro.drift[n];
                d = d < 0 ? -d : d;
                dd = d > dd ? d : dd;
            }
            fprintf(stderr, "%-10s %-8s worst layer %.2e (%s), outputs %.2e, drift %.2e\n",
                    ic_calib_mode_name(modes[mi]), ic_pdl_engine_name(engines[ei].e), e, worst, eo,
                    dd);
            if (!(e <= engines[ei].tol && eo <= engines[ei].tol))
                failed++;
            ck_assert(go.m_mu_mean - ro.m_mu_mean < 1e-4 && ro.m_mu_mean - go.m_mu_mean < 1e-4);
            log_free(&got);
        }
        log_free(&ref);
    }
    ic_arena_deinit(&a);
    ic_st_close(&io);
    ic_pdl_free(&net);
    ck_assert_msg(failed == 0, "%d mode/engine pairs differ from the NCHW forward", failed);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("pdl_engine");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_layers_match_nchw);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
