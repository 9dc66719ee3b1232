/* `instcal bench ops`: times ic_conv2d_forward() on every distinct
 * convolution of detectron2's Panoptic-DeepLab R-52 at a 512x1024 input and
 * sets each against a plain cblas_sgemm of the same M, N, K measured in the
 * same run, so the ratio shows what im2col, tiling and the bias/ReLU
 * epilogue cost on top of the BLAS. Absolute numbers on a shared machine are
 * noisy; the ratio is the figure to compare: the conv and its sgemm are
 * timed in alternation and the ratio is the median of per-rep ratios, so a
 * load change hits both sides of a ratio alike. Depthwise convolutions have no
 * sensible sgemm twin (K = kh*kw), so they report memory throughput.
 * Each rep also runs the same convolution on the engine (core/engine/conv.h:
 * blocked activations, packed weights, Winograd where it applies unless
 * --exact), and `eng x` is the median of per-rep (NCHW conv ms / engine ms).
 * --cpu-time times with the process's CPU clock instead of the wall clock:
 * on an overloaded machine it still shows what a kernel costs (with one
 * thread; with more it is the sum over threads). */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/alloc.h"
#include "base/err.h"
#include "cli/commands.h"
#include "engine/conv.h"
#include "ops/conv2d.h"

typedef struct bench_conv {
    const char *name;
    int cin, cout, k, stride, dil;
    int depthwise;
    int h, w; /* input size */
} bench_conv;

/* Detectron2 Panoptic-DeepLab R-52 (docs/network.md
 * §Backbone to §Decoders and heads) at 512x1024; padding is dil*(k-1)/2 throughout. Repeated shapes
 * are listed where they occur and skipped when met again. */
static const bench_conv convs[] = {
    {"stem.conv1", 3, 64, 3, 2, 1, 0, 512, 1024},
    {"stem.conv2", 64, 64, 3, 1, 1, 0, 256, 512},
    {"stem.conv3", 64, 128, 3, 1, 1, 0, 256, 512},
    {"res2.b0.conv1", 128, 64, 1, 1, 1, 0, 128, 256},
    {"res2.conv2", 64, 64, 3, 1, 1, 0, 128, 256},
    {"res2.conv3", 64, 256, 1, 1, 1, 0, 128, 256},
    {"res2.b0.shortcut", 128, 256, 1, 1, 1, 0, 128, 256},
    {"res2.b1.conv1", 256, 64, 1, 1, 1, 0, 128, 256},
    {"res3.b0.conv1", 256, 128, 1, 1, 1, 0, 128, 256},
    {"res3.b0.conv2", 128, 128, 3, 2, 1, 0, 128, 256},
    {"res3.b0.shortcut", 256, 512, 1, 2, 1, 0, 128, 256},
    {"res3.conv3", 128, 512, 1, 1, 1, 0, 64, 128},
    {"res3.b1.conv1", 512, 128, 1, 1, 1, 0, 64, 128},
    {"res3.b1.conv2", 128, 128, 3, 1, 1, 0, 64, 128},
    {"res4.b0.conv1", 512, 256, 1, 1, 1, 0, 64, 128},
    {"res4.b0.conv2", 256, 256, 3, 2, 1, 0, 64, 128},
    {"res4.b0.shortcut", 512, 1024, 1, 2, 1, 0, 64, 128},
    {"res4.conv3", 256, 1024, 1, 1, 1, 0, 32, 64},
    {"res4.b1.conv1", 1024, 256, 1, 1, 1, 0, 32, 64},
    {"res4.b1.conv2", 256, 256, 3, 1, 1, 0, 32, 64},
    {"res5.b0.conv1", 1024, 512, 1, 1, 1, 0, 32, 64},
    {"res5.b0.conv2.d2", 512, 512, 3, 1, 2, 0, 32, 64},
    {"res5.b0.shortcut", 1024, 2048, 1, 1, 1, 0, 32, 64},
    {"res5.conv3", 512, 2048, 1, 1, 1, 0, 32, 64},
    {"res5.b1.conv1", 2048, 512, 1, 1, 1, 0, 32, 64},
    {"res5.b1.conv2.d4", 512, 512, 3, 1, 4, 0, 32, 64},
    {"res5.b2.conv2.d8", 512, 512, 3, 1, 8, 0, 32, 64},
    {"aspp.conv1x1", 2048, 256, 1, 1, 1, 0, 32, 64},
    {"aspp.conv.d6", 2048, 256, 3, 1, 6, 0, 32, 64},
    {"aspp.conv.d12", 2048, 256, 3, 1, 12, 0, 32, 64},
    {"aspp.conv.d18", 2048, 256, 3, 1, 18, 0, 32, 64},
    /* AvgPool(32x64, stride 1) on the 32x64 res5 map leaves 1x1 */
    {"aspp.pool.conv", 2048, 256, 1, 1, 1, 0, 1, 1},
    {"aspp.project", 1280, 256, 1, 1, 1, 0, 32, 64},
    {"dec.res3.project", 512, 64, 1, 1, 1, 0, 64, 128},
    {"dec.res2.project", 256, 32, 1, 1, 1, 0, 128, 256},
    {"sem.res3.fuse0", 320, 256, 3, 1, 1, 0, 64, 128},
    {"sem.res3.fuse1", 256, 256, 3, 1, 1, 0, 64, 128},
    {"sem.res2.fuse0", 288, 256, 3, 1, 1, 0, 128, 256},
    {"sem.res2.fuse1", 256, 256, 3, 1, 1, 0, 128, 256},
    {"sem.head", 256, 256, 3, 1, 1, 0, 128, 256},
    {"sem.predictor", 256, 19, 1, 1, 1, 0, 128, 256},
    {"ins.res3.fuse0", 320, 128, 3, 1, 1, 0, 64, 128},
    {"ins.res3.fuse1", 128, 128, 3, 1, 1, 0, 64, 128},
    {"ins.res2.fuse0", 160, 128, 3, 1, 1, 0, 128, 256},
    {"ins.res2.fuse1", 128, 128, 3, 1, 1, 0, 128, 256},
    {"ins.head0", 128, 128, 3, 1, 1, 0, 128, 256},
    {"ins.head1", 128, 32, 3, 1, 1, 0, 128, 256},
    {"center.predictor", 32, 1, 1, 1, 1, 0, 128, 256},
    {"offset.predictor", 32, 2, 1, 1, 1, 0, 128, 256},
    /* depthwise halves of the DSConv variant */
    {"ds.aspp.dw.d6", 2048, 2048, 3, 1, 6, 1, 32, 64},
    {"ds.aspp.dw.d12", 2048, 2048, 3, 1, 12, 1, 32, 64},
    {"ds.aspp.dw.d18", 2048, 2048, 3, 1, 18, 1, 32, 64},
    {"ds.res3.fuse.dw5", 320, 320, 5, 1, 1, 1, 64, 128},
    {"ds.sem.res2.fuse.dw5", 288, 288, 5, 1, 1, 1, 128, 256},
    {"ds.ins.res2.fuse.dw5", 160, 160, 5, 1, 1, 1, 128, 256},
    {"ds.sem.head.dw5", 256, 256, 5, 1, 1, 1, 128, 256},
    {"ds.offset.head.dw5", 128, 128, 5, 1, 1, 1, 128, 256},
};

enum { N_CONVS = sizeof convs / sizeof convs[0] };

static int same_shape(const bench_conv *a, const bench_conv *b)
{
    return a->cin == b->cin && a->cout == b->cout && a->k == b->k && a->stride == b->stride &&
           a->dil == b->dil && a->depthwise == b->depthwise && a->h == b->h && a->w == b->w;
}

/* Parameters of a table entry: "same" padding, bias and ReLU fused (as
 * after BN folding). */
static ic_conv2d_params conv_params(const bench_conv *c)
{
    ic_conv2d_params p = {.cin = c->cin, .cout = c->cout, .kh = c->k, .kw = c->k,
                          .stride_h = c->stride, .stride_w = c->stride,
                          .pad_h = c->dil * (c->k - 1) / 2, .pad_w = c->dil * (c->k - 1) / 2,
                          .dil_h = c->dil, .dil_w = c->dil,
                          .groups = c->depthwise ? c->cin : 1, .relu = 1};
    return p;
}

static clockid_t bench_clock = CLOCK_MONOTONIC;
static int eng_flags;

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(bench_clock, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* Aligned buffer of n floats filled with small pseudo-random values (the
 * values do not matter for timing; denormals and NaNs would). */
static float *bench_buffer(size_t n, unsigned *seed)
{
    float *p = ic_malloc_aligned((n ? n : 1) * sizeof(float));
    if (!p)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        *seed = *seed * 1664525u + 1013904223u;
        p[i] = (float)((*seed >> 9) & 0xffff) / 65536.0f - 0.5f;
    }
    return p;
}

typedef struct bench_result {
    double conv_ms, sgemm_ms, eng_ms;
    double ratio;     /* median over reps of sgemm_ms / conv_ms of the same rep */
    double eng_ratio; /* median over reps of conv_ms / eng_ms */
    const char *eng_path;
    double flops, bytes;
} bench_result;

/* Times one convolution (bias and ReLU fused, as after BN folding) and,
 * unless depthwise, the sgemm with its M, N, K; reps alternate between
 * the two so that load changes hit both alike. */
static int bench_one(const bench_conv *c, int reps, bench_result *r)
{
    ic_conv2d_params p = conv_params(c);
    int oh, ow, rc = ic_conv2d_out_size(&p, c->h, c->w, &oh, &ow);
    if (rc)
        return rc;
    const int gin = p.cin / p.groups;
    const size_t m = (size_t)p.cout, k = (size_t)gin * p.kh * p.kw, n = (size_t)oh * ow;
    const size_t nx = (size_t)p.cin * c->h * c->w, ny = m * n, nw = m * k;
    const size_t nws = ic_conv2d_workspace_floats(&p, c->h, c->w);
    unsigned seed = 12345;
    float *x = bench_buffer(nx, &seed), *y = bench_buffer(ny, &seed);
    float *w = bench_buffer(nw, &seed), *b = bench_buffer(m, &seed);
    float *ws = bench_buffer(nws, &seed);
    float *bm = c->depthwise ? NULL : bench_buffer(k * n, &seed);
    double *tc = ic_calloc((size_t)reps, sizeof *tc), *ts = ic_calloc((size_t)reps, sizeof *ts);
    double *tr = ic_calloc((size_t)reps, sizeof *tr), *te = ic_calloc((size_t)reps, sizeof *te);
    double *tq = ic_calloc((size_t)reps, sizeof *tq);
    ic_eng_conv ec;
    memset(&ec, 0, sizeof ec);
    float *ex = NULL, *ey = NULL, *ews = NULL;
    rc = IC_ENOMEM;
    if (!x || !y || !w || !b || !ws || (!c->depthwise && !bm) || !tc || !ts || !tr || !te || !tq)
        goto out;
    const int threads = openblas_get_num_threads();
    if ((rc = ic_eng_conv_pack(&ec, &p, w, b, eng_flags)) != 0)
        goto out;
    const size_t news = ic_eng_conv_ws_floats(&ec, 1, c->h, c->w, threads, eng_flags);
    ex = bench_buffer(ic_blk_floats(1, p.cin, c->h, c->w), &seed);
    ey = bench_buffer(ic_blk_floats(1, p.cout, oh, ow), &seed);
    ews = bench_buffer(news, &seed);
    rc = IC_ENOMEM;
    if (!ex || !ey || !ews)
        goto out;
    ic_tensor bx = ic_tensor_wrap(ex, 1, p.cin, c->h, c->w), by = ic_tensor_wrap(ey, 1, p.cout, oh, ow);
    const ic_eng_out eo = {.relu = 1};
    ic_tensor tx = ic_tensor_wrap(x, 1, p.cin, c->h, c->w), ty = ic_tensor_wrap(y, 1, p.cout, oh, ow);
    for (int i = -1; i < reps; i++) { /* i = -1 warms caches and BLAS threads up */
        double t0 = now_ms();
        rc = ic_conv2d_forward(&ty, &tx, w, b, &p, nws ? ws : NULL);
        if (rc)
            goto out;
        double t1 = now_ms();
        if (bm)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)m, (int)n, (int)k, 1.0f,
                        w, (int)k, bm, (int)n, 0.0f, y, (int)n);
        double t2 = now_ms();
        rc = ic_eng_conv_forward(&ec, &by, &bx, NULL, &eo, ews, threads, eng_flags);
        if (rc)
            goto out;
        double t3 = now_ms();
        if (i >= 0) {
            tc[i] = t1 - t0;
            ts[i] = t2 - t1;
            tr[i] = (t2 - t1) / (t1 - t0);
            te[i] = t3 - t2;
            tq[i] = (t1 - t0) / (t3 - t2);
        }
    }
    r->eng_ms = median(te, reps);
    r->eng_ratio = median(tq, reps);
    r->eng_path = ic_eng_conv_path_name(&ec, c->h, c->w, eng_flags);
    r->ratio = median(tr, reps);
    r->conv_ms = median(tc, reps);
    r->sgemm_ms = bm ? median(ts, reps) : 0.0;
    r->flops = 2.0 * (double)m * (double)k * (double)n;
    r->bytes = (double)(nx + ny + nw + m) * sizeof(float);
    rc = 0;
out:
    ic_free_aligned(x);
    ic_free_aligned(y);
    ic_free_aligned(w);
    ic_free_aligned(b);
    ic_free_aligned(ws);
    ic_free_aligned(bm);
    ic_free(tc);
    ic_free(ts);
    ic_free(tr);
    ic_free(te);
    ic_free(tq);
    ic_free_aligned(ex);
    ic_free_aligned(ey);
    ic_free_aligned(ews);
    ic_eng_conv_free(&ec);
    return rc;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: instcal bench ops [--reps N] [--threads T] [--filter TEXT] [--exact]\n"
               "                        [--cpu-time]\n"
               "       instcal bench model --help   (whole network, see cmd_bench_model.c)\n\n"
               "Times every distinct convolution of Panoptic-DeepLab R-52 at 512x1024\n"
               "against cblas_sgemm of the same M, N, K (median of N reps, default 5).\n"
               "--threads sets the OpenBLAS thread count (default: OpenBLAS's own);\n"
               "--filter keeps the convolutions whose name contains TEXT.\n"
               "Each rep also runs the engine's convolution (eng ms, eng x = NCHW ms / engine\n"
               "ms); --exact keeps the engine off Winograd; --cpu-time uses process CPU time.\n");
}

static int bench_ops(int reps, int threads, const char *filter)
{
    if (threads > 0)
        openblas_set_num_threads(threads);
    const char *core = getenv("OPENBLAS_CORETYPE");
    printf("OpenBLAS: %s\n", openblas_get_config());
    printf("core: %s, threads: %d, OPENBLAS_CORETYPE=%s, reps: %d (median)\n",
           openblas_get_corename(), openblas_get_num_threads(), core ? core : "(unset)", reps);
    printf("bias + ReLU fused; sgemm = cblas_sgemm of the same M, N, K; conv and sgemm\n"
           "alternate, ratio = median over reps of sgemm_ms / conv_ms of the same rep\n\n");
    printf("%-22s %-26s %-9s %9s %8s %8s %6s %-9s %9s %8s %6s\n", "conv", "cin>cout k/s/d @HxW",
           "path", "ms", "GFLOPS", "sgemm", "ratio", "eng path", "eng ms", "GFLOPS", "eng x");
    double total_ms = 0.0, total_eng = 0.0, worst = 1e9;
    const char *worst_name = "";
    for (int i = 0; i < N_CONVS; i++) {
        const bench_conv *c = &convs[i];
        int dup = 0;
        for (int j = 0; j < i && !dup; j++)
            dup = same_shape(c, &convs[j]);
        if (dup || (filter && !strstr(c->name, filter)))
            continue;
        bench_result r = {0};
        int rc = bench_one(c, reps, &r);
        if (rc) {
            fprintf(stderr, "instcal bench: %s: %s\n", c->name, ic_error_message());
            return 1;
        }
        char shape[64];
        snprintf(shape, sizeof shape, "%d>%d %s%d/%d/%d @%dx%d", c->cin, c->cout,
                 c->depthwise ? "dw" : "k", c->k, c->stride, c->dil, c->h, c->w);
        double gf = r.flops / (r.conv_ms * 1e6);
        ic_conv2d_params p = conv_params(c);
        const char *path = ic_conv2d_path_name(&p, c->h, c->w);
        total_ms += r.conv_ms;
        total_eng += r.eng_ms;
        const double egf = r.flops / (r.eng_ms * 1e6);
        if (c->depthwise) {
            printf("%-22s %-26s %-9s %9.3f %8.2f %8s %6s %-9s %9.3f %8.2f %6.2f  %.1f GB/s\n",
                   c->name, shape, path, r.conv_ms, gf, "-", "-", r.eng_path, r.eng_ms, egf,
                   r.eng_ratio, r.bytes / (r.conv_ms * 1e6));
        } else {
            double sg = r.flops / (r.sgemm_ms * 1e6), ratio = r.ratio;
            printf("%-22s %-26s %-9s %9.3f %8.2f %8.2f %6.2f %-9s %9.3f %8.2f %6.2f\n", c->name,
                   shape, path, r.conv_ms, gf, sg, ratio, r.eng_path, r.eng_ms, egf, r.eng_ratio);
            /* the 0.70 goal is about real layers; 1x1-spatial and tiny-M
             * predictors are dominated by call overhead either way */
            if (ratio < worst && r.flops > 1e8) {
                worst = ratio;
                worst_name = c->name;
            }
        }
        fflush(stdout);
    }
    printf("\nsum of distinct convs: %.1f ms; lowest ratio (layers > 0.1 GFLOP): %.2f (%s)\n",
           total_ms, worst, worst_name);
    printf("engine: sum %.1f ms (%.2fx)\n", total_eng, total_ms / total_eng);
    return 0;
}

int cmd_bench(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "model"))
        return cmd_bench_model(argc - 1, argv + 1);
    if (strcmp(argv[1], "ops")) {
        fprintf(stderr, "instcal bench: unknown benchmark '%s'\n", argv[1]);
        usage(stderr);
        return 2;
    }
    int reps = 5, threads = 0;
    const char *filter = NULL;
    for (int i = 2; i < argc; i++) {
        char *end = NULL;
        long v = 0;
        if ((!strcmp(argv[i], "--reps") || !strcmp(argv[i], "--threads")) && i + 1 < argc)
            v = strtol(argv[i + 1], &end, 10);
        if (!strcmp(argv[i], "--reps") && end && !*end && v >= 1 && v <= 1000) {
            reps = (int)v;
        } else if (!strcmp(argv[i], "--threads") && end && !*end && v >= 1 && v <= 256) {
            threads = (int)v;
        } else if (!strcmp(argv[i], "--filter") && i + 1 < argc) {
            filter = argv[i + 1];
        } else if (!strcmp(argv[i], "--exact")) {
            eng_flags |= IC_ENG_EXACT;
            continue;
        } else if (!strcmp(argv[i], "--cpu-time")) {
            bench_clock = CLOCK_PROCESS_CPUTIME_ID;
            continue;
        } else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return 0;
        } else {
            fprintf(stderr, "instcal bench: bad argument '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        }
        i++;
    }
    return bench_ops(reps, threads, filter);
}
