/* oneDNN against the blocked engine, convolution by convolution (issue 12,
 * docs/benchmarks.md "oneDNN side by side").
 *
 *   onednn-conv-bench --model R52.weights.safetensors [--size 512x1024]
 *                     [--reps 5] [--threads 2,1] [--filter TEXT] [--no-winograd]
 *
 * The shapes are the network's own: the model is loaded, one traced forward
 * at --size gives every convolution's output size, and each distinct
 * convolution (parameters, input size, fused epilogue) is timed once per
 * repetition, with its count in the network, on both sides:
 *   engine  ic_eng_conv_forward() (core/engine/conv.h): blocked activations,
 *           weights packed once, its own path choice (Winograd where it pays);
 *   oneDNN  a convolution primitive with format_tag any for the activations
 *           and weights (it picks its layout), weights and input reordered
 *           into that layout once outside the timing; "direct" and, for 3x3
 *           stride-1 convolutions, also "winograd" when oneDNN implements it.
 * Both fuse what the engine fuses in the network: bias, the residual add of
 * a bottleneck's conv3 (oneDNN's sum post-op) and ReLU (eltwise post-op).
 * Each repetition runs every shape on every thread count, the two sides
 * back to back in alternating order, so a load change hits both alike; the
 * ratio is the median over repetitions of engine ms / oneDNN ms of the same
 * repetition. The weights are the model's (raw, unfolded: the timing does not
 * depend on the values), the inputs random. Each shape's outputs are checked
 * once: oneDNN's against the engine's over the whole output, and each side
 * against a double-precision reference at 512 sampled outputs (max |a - b| /
 * max |b|).
 *
 * Reaches into model/pdl_internal.h for the layer list (parameters and
 * weights), which the public API does not expose. */
#include <math.h>
#include <omp.h>
#include <oneapi/dnnl/dnnl.h>
#include <oneapi/dnnl/dnnl_debug.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/alloc.h"
#include "base/arena.h"
#include "base/err.h"
#include "engine/blk.h"
#include "engine/conv.h"
#include "model/pdl.h"
#include "model/pdl_internal.h"

#define MAX_REPS 64
#define MAX_THREADS 4
#define MAX_SHAPES 256

enum { IMPL_ENG, IMPL_DIRECT, IMPL_WINO, N_IMPL };

typedef struct shape {
    const char *name; /* first layer of this shape */
    int li, count;
    ic_conv2d_params p;
    int h, w, oh, ow;
    int res, relu;
    double flops; /* per call */
    const char *kind;
} shape;

typedef struct dnnl_side {
    dnnl_primitive_t prim;
    dnnl_memory_t src, wei, bias, dst;
    const char *impl;
    char layout[16];
} dnnl_side;

/* one shape on one thread count */
typedef struct run {
    ic_eng_conv cv;
    float *bx, *by, *bres, *ws;
    ic_tensor tx, ty, tres;
    dnnl_side d[N_IMPL];
    int have[N_IMPL];
    double t[N_IMPL][MAX_REPS];
    double err[N_IMPL]; /* oneDNN against the engine */
    double ref[N_IMPL]; /* each against the double reference */
} run;

static dnnl_engine_t g_eng;
static dnnl_stream_t g_stream;

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(const double *v, int n)
{
    double s[MAX_REPS];
    memcpy(s, v, (size_t)n * sizeof *s);
    qsort(s, (size_t)n, sizeof *s, cmp_double);
    return n % 2 ? s[n / 2] : 0.5 * (s[n / 2 - 1] + s[n / 2]);
}

static void fill(float *p, size_t n, unsigned *seed)
{
    for (size_t i = 0; i < n; i++) {
        *seed = *seed * 1664525u + 1013904223u;
        p[i] = (float)((*seed >> 9) & 0xffff) / 65536.0f - 0.5f;
    }
}

#define DN(call)                                                                                  \
    do {                                                                                          \
        dnnl_status_t st_ = (call);                                                               \
        if (st_ != dnnl_success) {                                                                \
            fprintf(stderr, "oneDNN: %s failed: %s\n", #call, dnnl_status2str(st_));            \
            return -1;                                                                            \
        }                                                                                         \
    } while (0)

/* ------------------------------------------------------------ the shapes */

typedef struct trace_ctx {
    const ic_pdl *net;
    int *oh, *ow; /* per layer, -1 until traced */
} trace_ctx;

static void on_layer(void *ctx, const char *name, const ic_tensor *y)
{
    trace_ctx *t = ctx;
    for (int i = 0; i < t->net->n_layers; i++)
        if (!strcmp(t->net->layers[i].name, name)) {
            t->oh[i] = y->h;
            t->ow[i] = y->w;
            return;
        }
}

static const char *kind_of(const ic_conv2d_params *p)
{
    if (p->groups > 1)
        return "depthwise";
    if (p->cin < 16)
        return "stem (3 in)";
    if (p->kh == 1)
        return p->stride_h == 1 ? "1x1" : "1x1 strided";
    if (p->stride_h > 1)
        return "3x3 strided";
    return p->dil_h > 1 ? "3x3 dilated" : "3x3";
}

static int is_conv3(const ic_pdl *net, int li)
{
    for (int b = 0; b < net->n_blocks; b++)
        if (net->blocks[b].conv3 == li)
            return 1;
    return 0;
}

static int same(const shape *a, const ic_conv2d_params *p, int h, int w, int res, int relu)
{
    return !memcmp(&a->p, p, sizeof *p) && a->h == h && a->w == w && a->res == res &&
           a->relu == relu;
}

/* One traced forward at h x w; every conv layer's input size from its output size. */
static int collect(const ic_pdl *net, int h, int w, shape *sh, int *n_sh)
{
    int *oh = ic_calloc((size_t)net->n_layers * 2, sizeof *oh);
    if (!oh)
        return IC_ENOMEM;
    int *ow = oh + net->n_layers;
    for (int i = 0; i < 2 * net->n_layers; i++)
        oh[i] = -1;
    trace_ctx tc = {net, oh, ow};
    ic_arena arena;
    ic_arena_init(&arena, 0, 0);
    ic_tensor x;
    int rc = ic_tensor_alloc(&x, &arena, 1, 3, h, w);
    if (!rc) {
        unsigned seed = 7;
        fill(x.data, ic_tensor_numel(&x), &seed);
        ic_calib_opts co = {.mode = IC_CALIB_NONE};
        ic_pdl_outputs out;
        rc = ic_pdl_forward_trace(net, &x, &co, 0, &arena, &out, on_layer, &tc);
    }
    ic_arena_deinit(&arena);
    *n_sh = 0;
    for (int li = 0; li < net->n_layers && !rc; li++) {
        const layer *l = &net->layers[li];
        if (oh[li] < 0) {
            fprintf(stderr, "layer %s was not traced; skipped\n", l->name);
            continue;
        }
        ic_conv2d_params p = l->p;
        const int res = is_conv3(net, li), relu = res || p.relu;
        p.relu = relu;
        /* "same" padding: input = output x stride (checked) */
        int ih = oh[li] * p.stride_h, iw = ow[li] * p.stride_w, ch, cw;
        if (ih == 1 && p.kh == 1)
            ih = iw = 1;
        if (ic_conv2d_out_size(&p, ih, iw, &ch, &cw) || ch != oh[li] || cw != ow[li]) {
            fprintf(stderr, "layer %s: no input size gives %dx%d; skipped\n", l->name, oh[li],
                    ow[li]);
            continue;
        }
        int k = 0;
        while (k < *n_sh && !same(&sh[k], &p, ih, iw, res, relu))
            k++;
        if (k == *n_sh) {
            if (k == MAX_SHAPES) {
                rc = ic_error_set(IC_EINVAL, "more than %d distinct convolutions", MAX_SHAPES);
                break;
            }
            shape *s = &sh[(*n_sh)++];
            *s = (shape){.name = l->name, .li = li, .p = p, .h = ih, .w = iw, .oh = oh[li],
                         .ow = ow[li], .res = res, .relu = relu, .kind = kind_of(&p)};
            s->flops = 2.0 * p.cout * (p.cin / p.groups) * p.kh * p.kw * (double)oh[li] * ow[li];
        }
        sh[k].count++;
    }
    ic_free(oh);
    return rc;
}

/* --------------------------------------------------------------- oneDNN */

static int tag_is(const dnnl_memory_desc_t *md, int nd, const dnnl_dims_t dims, dnnl_format_tag_t t)
{
    dnnl_memory_desc_t ref;
    return dnnl_memory_desc_init_by_tag(&ref, nd, dims, dnnl_f32, t) == dnnl_success &&
           dnnl_memory_desc_equal(md, &ref);
}

static void layout_name(char *buf, size_t n, const dnnl_memory_desc_t *md, const dnnl_dims_t dims)
{
    static const dnnl_format_tag_t tags[] = {dnnl_nchw, dnnl_nhwc, dnnl_nChw16c, dnnl_nChw8c};
    for (size_t i = 0; i < sizeof tags / sizeof tags[0]; i++)
        if (tag_is(md, 4, dims, tags[i])) {
            snprintf(buf, n, "%s", dnnl_fmt_tag2str(tags[i]));
            return;
        }
    snprintf(buf, n, "other");
}

/* Memory in `want`'s layout holding `user` (plain, tag `tag`) reordered. */
static int mem_from(dnnl_memory_t *ret, const dnnl_memory_desc_t *want, int nd,
                    const dnnl_dims_t dims, dnnl_format_tag_t tag, const float *user)
{
    dnnl_memory_desc_t umd;
    dnnl_memory_t um;
    DN(dnnl_memory_desc_init_by_tag(&umd, nd, dims, dnnl_f32, tag));
    DN(dnnl_memory_create(&um, &umd, g_eng, (void *)user)); /* only read */
    DN(dnnl_memory_create(ret, want, g_eng, DNNL_MEMORY_ALLOCATE));
    dnnl_primitive_desc_t rpd;
    dnnl_primitive_t r;
    DN(dnnl_reorder_primitive_desc_create(&rpd, &umd, g_eng, want, g_eng, NULL));
    DN(dnnl_primitive_create(&r, rpd));
    dnnl_exec_arg_t a[2] = {{DNNL_ARG_FROM, um}, {DNNL_ARG_TO, *ret}};
    DN(dnnl_primitive_execute(r, g_stream, 2, a));
    DN(dnnl_stream_wait(g_stream));
    dnnl_primitive_destroy(r);
    dnnl_primitive_desc_destroy(rpd);
    dnnl_memory_destroy(um);
    return 0;
}

/* m (any layout) into plain NCHW out. */
static int mem_to_nchw(float *out, dnnl_memory_t m, const dnnl_dims_t dims)
{
    const dnnl_memory_desc_t *md;
    DN(dnnl_memory_get_memory_desc(m, &md));
    dnnl_memory_desc_t umd;
    dnnl_memory_t um;
    DN(dnnl_memory_desc_init_by_tag(&umd, 4, dims, dnnl_f32, dnnl_nchw));
    DN(dnnl_memory_create(&um, &umd, g_eng, out));
    dnnl_primitive_desc_t rpd;
    dnnl_primitive_t r;
    DN(dnnl_reorder_primitive_desc_create(&rpd, md, g_eng, &umd, g_eng, NULL));
    DN(dnnl_primitive_create(&r, rpd));
    dnnl_exec_arg_t a[2] = {{DNNL_ARG_FROM, m}, {DNNL_ARG_TO, um}};
    DN(dnnl_primitive_execute(r, g_stream, 2, a));
    DN(dnnl_stream_wait(g_stream));
    dnnl_primitive_destroy(r);
    dnnl_primitive_desc_destroy(rpd);
    dnnl_memory_destroy(um);
    return 0;
}

/* Builds one oneDNN convolution for shape s (alg direct or winograd) under
 * the current OpenMP thread count. Returns 0, 1 (not implemented) or -1. */
static int dnnl_build(dnnl_side *d, const shape *s, dnnl_alg_kind_t alg, const float *w, float *bias,
                      float *x)
{
    const ic_conv2d_params *p = &s->p;
    const int dw = p->groups > 1;
    dnnl_dims_t sd = {1, p->cin, s->h, s->w}, dd = {1, p->cout, s->oh, s->ow}, bd = {p->cout};
    dnnl_dims_t wd = {p->cout, p->cin, p->kh, p->kw}, gwd = {p->groups, 1, 1, p->kh, p->kw};
    dnnl_dims_t strides = {p->stride_h, p->stride_w}, dil = {p->dil_h - 1, p->dil_w - 1};
    dnnl_dims_t pad = {p->pad_h, p->pad_w};
    dnnl_dims_t padr;
    for (int i = 0; i < 2; i++) {
        const int in = i ? s->w : s->h, out = i ? s->ow : s->oh, k = i ? p->kw : p->kh;
        const int st = i ? p->stride_w : p->stride_h, dl = i ? p->dil_w : p->dil_h;
        padr[i] = (out - 1) * st + (k - 1) * dl + 1 - in - pad[i];
    }
    dnnl_memory_desc_t smd, wmd, bmd, dmd;
    DN(dnnl_memory_desc_init_by_tag(&smd, 4, sd, dnnl_f32, dnnl_format_tag_any));
    DN(dnnl_memory_desc_init_by_tag(&dmd, 4, dd, dnnl_f32, dnnl_format_tag_any));
    DN(dnnl_memory_desc_init_by_tag(&wmd, dw ? 5 : 4, dw ? gwd : wd, dnnl_f32, dnnl_format_tag_any));
    DN(dnnl_memory_desc_init_by_tag(&bmd, 1, bd, dnnl_f32, dnnl_x));
    dnnl_convolution_desc_t cd;
    if (dnnl_dilated_convolution_forward_desc_init(&cd, dnnl_forward_inference, alg, &smd, &wmd,
                                                   &bmd, &dmd, strides, dil, pad, padr) !=
        dnnl_success)
        return 1;
    dnnl_post_ops_t po;
    dnnl_primitive_attr_t attr;
    DN(dnnl_post_ops_create(&po));
    if (s->res)
        DN(dnnl_post_ops_append_sum(po, 1.0f));
    if (s->relu)
        DN(dnnl_post_ops_append_eltwise(po, 1.0f, dnnl_eltwise_relu, 0.0f, 0.0f));
    DN(dnnl_primitive_attr_create(&attr));
    DN(dnnl_primitive_attr_set_post_ops(attr, po));
    dnnl_primitive_desc_t pd;
    dnnl_status_t st = dnnl_primitive_desc_create(&pd, &cd, attr, g_eng, NULL);
    dnnl_primitive_attr_destroy(attr);
    dnnl_post_ops_destroy(po);
    if (st != dnnl_success)
        return 1;
    DN(dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &d->impl));
    const dnnl_memory_desc_t *csrc = dnnl_primitive_desc_query_md(pd, dnnl_query_src_md, 0);
    const dnnl_memory_desc_t *cwei = dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
    const dnnl_memory_desc_t *cdst = dnnl_primitive_desc_query_md(pd, dnnl_query_dst_md, 0);
    layout_name(d->layout, sizeof d->layout, csrc, sd);
    if (mem_from(&d->src, csrc, 4, sd, dnnl_nchw, x) ||
        mem_from(&d->wei, cwei, dw ? 5 : 4, dw ? gwd : wd, dw ? dnnl_goihw : dnnl_oihw, w) ||
        mem_from(&d->bias, &bmd, 1, bd, dnnl_x, bias))
        return -1;
    DN(dnnl_memory_create(&d->dst, cdst, g_eng, DNNL_MEMORY_ALLOCATE));
    DN(dnnl_primitive_create(&d->prim, pd));
    /* pd stays alive for the whole run: impl points into it */
    return 0;
}

static int dnnl_run(const dnnl_side *d)
{
    dnnl_exec_arg_t a[4] = {{DNNL_ARG_SRC, d->src}, {DNNL_ARG_WEIGHTS, d->wei},
                            {DNNL_ARG_BIAS, d->bias}, {DNNL_ARG_DST, d->dst}};
    DN(dnnl_primitive_execute(d->prim, g_stream, 4, a));
    DN(dnnl_stream_wait(g_stream));
    return 0;
}

/* ------------------------------------------------------------ the bench */

static double rel_err(const float *a, const float *b, size_t n)
{
    double dmax = 0.0, bmax = 0.0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (!(d <= dmax))
            dmax = d;
        if (fabs((double)b[i]) > bmax)
            bmax = fabs((double)b[i]);
    }
    return bmax > 0.0 ? dmax / bmax : dmax;
}

/* An independent check of both sides: the convolution in double at
 * N_REF pseudo-random output points; returns max |y - ref| / max |ref| over
 * them. */
#define N_REF 512
static double ref_err(const shape *s, const float *x, const float *w, const float *bias,
                      const float *res, const float *y)
{
    const ic_conv2d_params *p = &s->p;
    const int gin = p->cin / p->groups, gout = p->cout / p->groups;
    unsigned seed = 99u;
    double dmax = 0.0, rmax = 0.0;
    for (int i = 0; i < N_REF; i++) {
        seed = seed * 1664525u + 1013904223u;
        const int co = (int)((seed >> 8) % (unsigned)p->cout);
        seed = seed * 1664525u + 1013904223u;
        const int oy = (int)((seed >> 8) % (unsigned)s->oh);
        seed = seed * 1664525u + 1013904223u;
        const int ox = (int)((seed >> 8) % (unsigned)s->ow);
        const int g = co / gout;
        double acc = bias[co];
        for (int ci = 0; ci < gin; ci++)
            for (int ky = 0; ky < p->kh; ky++)
                for (int kx = 0; kx < p->kw; kx++) {
                    const int iy = oy * p->stride_h - p->pad_h + ky * p->dil_h;
                    const int ix = ox * p->stride_w - p->pad_w + kx * p->dil_w;
                    if (iy < 0 || iy >= s->h || ix < 0 || ix >= s->w)
                        continue;
                    acc += (double)w[(((size_t)co * gin + ci) * p->kh + ky) * p->kw + kx] *
                           x[((size_t)(g * gin + ci) * s->h + iy) * s->w + ix];
                }
        const size_t o = ((size_t)co * s->oh + oy) * s->ow + ox;
        if (s->res)
            acc += res[o];
        if (s->relu && acc < 0.0)
            acc = 0.0;
        if (fabs(y[o] - acc) > dmax)
            dmax = fabs(y[o] - acc);
        if (fabs(acc) > rmax)
            rmax = fabs(acc);
    }
    return rmax > 0.0 ? dmax / rmax : dmax;
}

/* Builds both sides of shape s for `threads` threads and checks that they agree. */
static int setup(run *r, const ic_pdl *net, const shape *s, int threads, int wino)
{
    const layer *l = &net->layers[s->li];
    const ic_conv2d_params *p = &s->p;
    const size_t nx = (size_t)p->cin * s->h * s->w, ny = (size_t)p->cout * s->oh * s->ow;
    unsigned seed = 1234u + (unsigned)s->li;
    float *x = ic_malloc_aligned(nx * sizeof *x), *res = ic_malloc_aligned(ny * sizeof *res);
    float *bias = ic_malloc_aligned((size_t)p->cout * sizeof *bias);
    float *ye = ic_malloc_aligned(ny * sizeof *ye), *yd = ic_malloc_aligned(ny * sizeof *yd);
    int rc = -1;
    if (!x || !res || !bias || !ye || !yd)
        goto out;
    fill(x, nx, &seed);
    fill(res, ny, &seed);
    fill(bias, (size_t)p->cout, &seed);
    /* the engine: blocked input (and residual), packed weights */
    if (ic_eng_conv_pack(&r->cv, p, l->w, bias, 0))
        goto out;
    r->bx = ic_malloc_aligned(ic_blk_floats(1, p->cin, s->h, s->w) * sizeof(float));
    r->by = ic_malloc_aligned(ic_blk_floats(1, p->cout, s->oh, s->ow) * sizeof(float));
    r->bres = s->res ? ic_malloc_aligned(ic_blk_floats(1, p->cout, s->oh, s->ow) * sizeof(float))
                     : NULL;
    r->ws = ic_malloc_aligned((ic_eng_conv_ws_floats(&r->cv, 1, s->h, s->w, threads, 0) + 1) *
                              sizeof(float));
    if (!r->bx || !r->by || (s->res && !r->bres) || !r->ws)
        goto out;
    memset(r->bx, 0, ic_blk_floats(1, p->cin, s->h, s->w) * sizeof(float));
    memset(r->by, 0, ic_blk_floats(1, p->cout, s->oh, s->ow) * sizeof(float));
    ic_tensor ux = ic_tensor_wrap(x, 1, p->cin, s->h, s->w);
    ic_tensor ures = ic_tensor_wrap(res, 1, p->cout, s->oh, s->ow);
    r->tx = ic_tensor_wrap(r->bx, 1, p->cin, s->h, s->w);
    r->ty = ic_tensor_wrap(r->by, 1, p->cout, s->oh, s->ow);
    ic_blk_from_nchw(&r->tx, &ux);
    if (s->res) {
        memset(r->bres, 0, ic_blk_floats(1, p->cout, s->oh, s->ow) * sizeof(float));
        r->tres = ic_tensor_wrap(r->bres, 1, p->cout, s->oh, s->ow);
        ic_blk_from_nchw(&r->tres, &ures);
    }
    r->have[IMPL_ENG] = 1;
    ic_eng_out o = {.relu = s->relu, .res = s->res ? &r->tres : NULL};
    if (ic_eng_conv_forward(&r->cv, &r->ty, &r->tx, NULL, &o, r->ws, threads, 0))
        goto out;
    ic_blk_to_nchw(&(ic_tensor){.data = ye, .n = 1, .c = p->cout, .h = s->oh, .w = s->ow}, &r->ty,
                   NULL);
    r->ref[IMPL_ENG] = ref_err(s, x, l->w, bias, res, ye);
    /* oneDNN, built for this thread count */
    omp_set_num_threads(threads);
    const int try_wino = wino && p->groups == 1 && p->kh == 3 && p->stride_h == 1;
    for (int im = IMPL_DIRECT; im < N_IMPL; im++) {
        if (im == IMPL_WINO && !try_wino)
            continue;
        int b = dnnl_build(&r->d[im], s, im == IMPL_WINO ? dnnl_convolution_winograd
                                                         : dnnl_convolution_direct,
                           l->w, bias, x);
        if (b < 0)
            goto out;
        if (b > 0)
            continue;
        r->have[im] = 1;
        dnnl_dims_t dd = {1, p->cout, s->oh, s->ow};
        if (s->res) { /* sum post-op: dst holds the residual before the call */
            const_dnnl_primitive_desc_t cpd;
            if (dnnl_primitive_get_primitive_desc(r->d[im].prim, &cpd))
                goto out;
            dnnl_memory_destroy(r->d[im].dst);
            if (mem_from(&r->d[im].dst, dnnl_primitive_desc_query_md(cpd, dnnl_query_dst_md, 0),
                         4, dd, dnnl_nchw, res))
                goto out;
        }
        if (dnnl_run(&r->d[im]) || mem_to_nchw(yd, r->d[im].dst, dd))
            goto out;
        r->err[im] = rel_err(yd, ye, ny);
        r->ref[im] = ref_err(s, x, l->w, bias, res, yd);
    }
    if (!r->have[IMPL_DIRECT]) {
        fprintf(stderr, "%s: oneDNN has no direct convolution for this shape\n", s->name);
        goto out;
    }
    rc = 0;
out:
    ic_free_aligned(x);
    ic_free_aligned(res);
    ic_free_aligned(bias);
    ic_free_aligned(ye);
    ic_free_aligned(yd);
    return rc;
}

static int time_one(run *r, const shape *s, int im, int threads, double *ms)
{
    double t0 = now_ms();
    if (im == IMPL_ENG) {
        ic_eng_out o = {.relu = s->relu, .res = s->res ? &r->tres : NULL};
        if (ic_eng_conv_forward(&r->cv, &r->ty, &r->tx, NULL, &o, r->ws, threads, 0))
            return -1;
    } else {
        omp_set_num_threads(threads);
        if (dnnl_run(&r->d[im]))
            return -1;
    }
    *ms = now_ms() - t0;
    return 0;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: onednn-conv-bench --model W.safetensors [--size HxW] [--reps N]\n"
               "                         [--threads 2,1] [--filter TEXT] [--no-winograd]\n"
               "Times every distinct convolution of the model at HxW (default 512x1024) on the\n"
               "blocked engine and on oneDNN, interleaved, and prints one table per thread count.\n");
}

typedef struct kind_sum {
    const char *kind;
    double flops, eng, best, wratio;
} kind_sum;

static void report(const shape *sh, int n_sh, run *runs, int ti, int threads, int reps)
{
    printf("\n## %d thread%s (medians of %d reps; eng/dnnl = median of per-rep ratios)\n\n", threads,
           threads > 1 ? "s" : "", reps);
    printf("| conv (first of its shape) | n | cin>cout k/s/d @HxW | kind | GFLOP | engine path | "
           "engine ms | oneDNN direct ms | oneDNN wino ms | oneDNN impl (src layout) | "
           "engine/oneDNN best | rel err: oneDNN vs engine; engine / oneDNN vs double |\n");
    printf("|---|---:|---|---|---:|---|---:|---:|---:|---|---:|---|\n");
    kind_sum ks[16];
    int nk = 0;
    double tot_f = 0, tot_e = 0, tot_b = 0, tot_w = 0, tot_dir = 0, tot_min = 0;
    for (int i = 0; i < n_sh; i++) {
        const shape *s = &sh[i];
        run *r = &runs[(size_t)i * MAX_THREADS + (size_t)ti];
        const double e = median(r->t[IMPL_ENG], reps), dd = median(r->t[IMPL_DIRECT], reps);
        const double dwn = r->have[IMPL_WINO] ? median(r->t[IMPL_WINO], reps) : 0.0;
        const int best = r->have[IMPL_WINO] && dwn < dd ? IMPL_WINO : IMPL_DIRECT;
        double q[MAX_REPS];
        for (int k = 0; k < reps; k++)
            q[k] = r->t[IMPL_ENG][k] / r->t[best][k];
        const double ratio = median(q, reps), b = best == IMPL_WINO ? dwn : dd;
        char shp[64], wn[16] = "-", errs[96];
        snprintf(shp, sizeof shp, "%d>%d %s%d/%d/%d @%dx%d", s->p.cin, s->p.cout,
                 s->p.groups > 1 ? "dw" : "k", s->p.kh, s->p.stride_h, s->p.dil_h, s->h, s->w);
        if (r->have[IMPL_WINO])
            snprintf(wn, sizeof wn, "%.3f", dwn);
        snprintf(errs, sizeof errs, "%.1e; %.1e / %.1e", r->err[best], r->ref[IMPL_ENG],
                 r->ref[best]);
        printf("| %s%s%s | %d | %s | %s | %.2f | %s | %.3f | %.3f | %s | %s (%s) | %.2f | %s |\n",
               s->name, s->res ? " +res" : "", s->relu ? "" : " (no relu)", s->count, shp,
               s->kind, s->flops * 1e-9, ic_eng_conv_path_name(&r->cv, s->h, s->w, 0), e, dd, wn,
               r->d[best].impl, r->d[best].layout, ratio, errs);
        const double f = s->flops * s->count;
        tot_f += f;
        tot_e += e * s->count;
        tot_b += b * s->count;
        tot_dir += dd * s->count;
        tot_min += (e < b ? e : b) * s->count;
        tot_w += f * ratio;
        int k = 0;
        while (k < nk && strcmp(ks[k].kind, s->kind))
            k++;
        if (k == nk)
            ks[nk++] = (kind_sum){.kind = s->kind};
        ks[k].flops += f;
        ks[k].eng += e * s->count;
        ks[k].best += b * s->count;
        ks[k].wratio += f * ratio;
    }
    printf("\nPer kind, every convolution of one forward (n x median ms):\n\n");
    printf("| kind | GFLOP | share | engine ms | oneDNN best ms | engine/oneDNN (sums) | "
           "engine/oneDNN (FLOP-weighted) |\n|---|---:|---:|---:|---:|---:|---:|\n");
    for (int k = 0; k < nk; k++)
        printf("| %s | %.1f | %.1f%% | %.1f | %.1f | %.2f | %.2f |\n", ks[k].kind,
               ks[k].flops * 1e-9, 100.0 * ks[k].flops / tot_f, ks[k].eng, ks[k].best,
               ks[k].eng / ks[k].best, ks[k].wratio / ks[k].flops);
    printf("| **all** | %.1f | 100%% | %.1f | %.1f | %.2f | %.2f |\n", tot_f * 1e-9, tot_e, tot_b,
           tot_e / tot_b, tot_w / tot_f);
    printf("\n%d threads: convolutions of one forward: engine %.1f ms, oneDNN direct only %.1f ms "
           "(engine/oneDNN %.2f), oneDNN best of direct/winograd %.1f ms (%.2f); FLOP-weighted "
           "engine/oneDNN best %.2f\n",
           threads, tot_e, tot_dir, tot_e / tot_dir, tot_b, tot_e / tot_b, tot_w / tot_f);
    printf("%d threads: the faster of the two per shape (a hybrid, before any layout conversion "
           "between them): %.1f ms, %.2f of the engine's\n",
           threads, tot_min, tot_min / tot_e);
}

int main(int argc, char **argv)
{
    const char *model = NULL, *filter = NULL, *size = "512x1024", *threads_s = "2,1";
    int reps = 5, wino = 1;
    for (int i = 1; i < argc; i++) {
        const int more = i + 1 < argc;
        if (!strcmp(argv[i], "--model") && more)
            model = argv[++i];
        else if (!strcmp(argv[i], "--size") && more)
            size = argv[++i];
        else if (!strcmp(argv[i], "--reps") && more)
            reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--threads") && more)
            threads_s = argv[++i];
        else if (!strcmp(argv[i], "--filter") && more)
            filter = argv[++i];
        else if (!strcmp(argv[i], "--no-winograd"))
            wino = 0;
        else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return 0;
        } else {
            usage(stderr);
            return 2;
        }
    }
    int h, w, threads[MAX_THREADS], n_thr = 0;
    if (!model || sscanf(size, "%dx%d", &h, &w) != 2 || h < 16 || w < 16 || reps < 1 ||
        reps > MAX_REPS) {
        usage(stderr);
        return 2;
    }
    for (const char *c = threads_s; *c && n_thr < MAX_THREADS;) {
        char *end;
        long v = strtol(c, &end, 10);
        if (end == c || v < 1 || v > 64) {
            usage(stderr);
            return 2;
        }
        threads[n_thr++] = (int)v;
        c = *end == ',' ? end + 1 : end;
    }
    ic_pdl *net = NULL;
    if (ic_pdl_load(&net, model, NULL) || ic_pdl_set_engine(net, IC_PDL_ENGINE_NCHW)) {
        fprintf(stderr, "cannot load %s: %s\n", model, ic_error_message());
        return 1;
    }
    static shape sh[MAX_SHAPES];
    int n_sh = 0;
    if (collect(net, h, w, sh, &n_sh)) {
        fprintf(stderr, "trace: %s\n", ic_error_message());
        return 1;
    }
    if (filter) {
        int k = 0;
        for (int i = 0; i < n_sh; i++)
            if (strstr(sh[i].name, filter) || strstr(sh[i].kind, filter))
                sh[k++] = sh[i];
        n_sh = k;
    }
    if (dnnl_engine_create(&g_eng, dnnl_cpu, 0) ||
        dnnl_stream_create(&g_stream, g_eng, dnnl_stream_default_flags)) {
        fprintf(stderr, "oneDNN: no CPU engine\n");
        return 1;
    }
    const dnnl_version_t *v = dnnl_version();
    const char *core = getenv("OPENBLAS_CORETYPE");
    double load[3] = {0};
    FILE *la = fopen("/proc/loadavg", "r");
    if (la) {
        if (fscanf(la, "%lf %lf %lf", &load[0], &load[1], &load[2]) != 3)
            load[0] = -1;
        fclose(la);
    }
    printf("# onednn-conv-bench: %s (%s) at %dx%d, %d distinct convolutions, %d reps\n", model,
           ic_pdl_get_config(net)->name, h, w, n_sh, reps);
    printf("# oneDNN %d.%d.%d (cpu runtime %s, isa %d), OPENBLAS_CORETYPE=%s, load average %.2f "
           "%.2f %.2f\n",
           v->major, v->minor, v->patch, v->cpu_runtime == DNNL_RUNTIME_OMP ? "OpenMP" : "other",
           (int)dnnl_get_effective_cpu_isa(), core ? core : "(unset)", load[0], load[1], load[2]);
    run *runs = ic_calloc((size_t)n_sh * MAX_THREADS, sizeof *runs);
    if (!runs)
        return 1;
    for (int i = 0; i < n_sh; i++)
        for (int t = 0; t < n_thr; t++)
            if (setup(&runs[(size_t)i * MAX_THREADS + (size_t)t], net, &sh[i], threads[t], wino)) {
                fprintf(stderr, "%s: setup failed: %s\n", sh[i].name, ic_error_message());
                return 1;
            }
    /* rep -1 warms up; then every rep runs every shape on every thread count,
     * the engine and oneDNN back to back, order flipping */
    for (int rep = -1; rep < reps; rep++)
        for (int i = 0; i < n_sh; i++)
            for (int t = 0; t < n_thr; t++) {
                run *r = &runs[(size_t)i * MAX_THREADS + (size_t)t];
                const int flip = (rep + i + t) & 1;
                for (int k = 0; k < N_IMPL; k++) {
                    const int im = flip ? N_IMPL - 1 - k : k;
                    double ms;
                    if (!r->have[im])
                        continue;
                    if (time_one(r, &sh[i], im, threads[t], &ms)) {
                        fprintf(stderr, "%s: run failed: %s\n", sh[i].name, ic_error_message());
                        return 1;
                    }
                    if (rep >= 0)
                        r->t[im][rep] = ms;
                }
            }
    for (int t = 0; t < n_thr; t++)
        report(sh, n_sh, runs, t, threads[t], reps);
    la = fopen("/proc/loadavg", "r");
    if (la) {
        if (fscanf(la, "%lf %lf %lf", &load[0], &load[1], &load[2]) == 3)
            printf("\n# load average at the end %.2f %.2f %.2f\n", load[0], load[1], load[2]);
        fclose(la);
    }
    ic_pdl_free(&net);
    return 0;
}
