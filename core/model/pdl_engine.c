/* The blocked forward of Panoptic-DeepLab (see pdl.h, ic_pdl_engine): the
 * graph of pdl_forward.c on the engine's 16-channel blocked activations
 * (core/engine), from the NCHW image (the stem's first conv reads it
 * itself when it builds im2col columns) back to NCHW at the outputs.
 *
 * Every conv layer is packed once (ic_pdl_set_engine) with its raw weights.
 * A norm layer's convolution accumulates the sums and sums of squares of
 * its raw output per image and channel in its write-out (shifted by the
 * stored mean), which gives the instance statistics of the BN input
 * without a second pass:
 *   none        the write-out applies eval-mode BN (scale/shift), ReLU and,
 *               for a bottleneck's last conv, the residual add (into the
 *               residual's own buffer when nothing reads it afterwards);
 *               the statistics feed the drift score only
 *   calibrated  the write-out stores the raw output; the statistics give
 *               the strengths (calib.h) and the per-image BN affine, which
 *               stays pending (engine/blk.h) until the consumers apply it
 *               as they read: the next conv's padded copy or Winograd input
 *               transform, a depthwise conv's ring of input rows, the
 *               residual add, concat, the output edge; a 1x1 conv applies
 *               it to its input tile in place, and before the decoder's x2
 *               upsampling (which reads each value 16 times) one pass
 *               applies it in place (bplain); a bottleneck's relu(bn3 +
 *               residual) is summed the same way, by the next block's conv1
 *               as it applies bn3 to its input tiles (res2 and res3 too: the
 *               decoders read them after the next stage's first block; res5
 *               by the first ASPP branch's), or by bplain before any other
 *               reader.
 * With one image, the parts of ASPP's and the decoder's concatenations
 * are written in place by their producers (bview) rather than copied.
 * Results agree with the NCHW forward to float rounding (Winograd: to its
 * measured error, tests/core/model/test_pdl_engine.c). */
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/err.h"
#include "calib/drift.h"
#include "engine/eops.h"
#include "model/bufpool.h"
#include "model/pdl_internal.h"

/* ---------------------------------------------------------------- engine choice */

static const char *const engine_names[] = {"nchw", "blocked", "exact"};

int ic_pdl_engine_parse(const char *name, ic_pdl_engine *ret)
{
    for (int i = 0; i < 3; i++)
        if (name && !strcmp(name, engine_names[i])) {
            *ret = (ic_pdl_engine)i;
            return 0;
        }
    return ic_error_set(IC_EINVAL, "engine '%s': expected nchw, blocked or exact",
                        name ? name : "(null)");
}

const char *ic_pdl_engine_name(ic_pdl_engine e)
{
    return (unsigned)e < 3 ? engine_names[e] : "?";
}

/* $INSTCAL_ENGINE when it names an engine (anything else is ignored), else
 * blocked: the fastest at every size measured (docs/benchmarks.md); nchw
 * stays for models the blocked engine cannot run and for training. */
ic_pdl_engine ic_pdl_engine_default(void)
{
    ic_pdl_engine e;
    const char *env = getenv("INSTCAL_ENGINE");
    if (env && *env && ic_pdl_engine_parse(env, &e) == 0)
        return e;
    ic_error_clear();
    return IC_PDL_ENGINE_BLOCKED;
}

ic_pdl_engine ic_pdl_get_engine(const ic_pdl *net)
{
    return net->engine;
}

void pdl_engine_free(ic_pdl *net)
{
    if (!net->eng)
        return;
    for (int i = 0; i < net->n_layers; i++) {
        eng_layer *e = &net->eng[i];
        ic_eng_conv_free(&e->cv);
        ic_free_aligned(e->fscale);
        ic_free_aligned(e->fbias);
        ic_free_aligned(e->shift);
        for (int s = 0; s < 2; s++) {
            ic_free(e->c_wt[s]);
            ic_free(e->c_bs[s]);
        }
    }
    ic_free(net->eng);
    net->eng = NULL;
}

static float *padded(size_t n)
{
    float *p = ic_malloc_aligned(n * sizeof *p);
    if (p)
        memset(p, 0, n * sizeof *p);
    return p;
}

/* InstCal-C's fc1 of a norm layer with the source half folded into its
 * bias (calib.h): half the weights read per image. */
static int pack_instcal_c(const layer *l, eng_layer *e, const ic_calib_c_shape *cs)
{
    const ic_calib_c_layer *cc = &l->cal.cc;
    if (!cc->basis[0] || !cc->fc1_w[0])
        return 0;
    const int c = l->p.cout;
    const float *stat_s[2] = {l->bn.mean, l->bn.var};
    for (int s = 0; s < 2; s++) {
        e->c_wt[s] = ic_malloc(ic_calib_c_packed_hidden(cs) * (size_t)c * sizeof(float));
        e->c_bs[s] = ic_malloc((size_t)cs->hidden * sizeof(float));
        if (!e->c_wt[s] || !e->c_bs[s])
            return ic_error_set(IC_ENOMEM, "engine: out of memory for %s's InstCal-C", l->name);
        ic_calib_c_pack(e->c_wt[s], e->c_bs[s], cc, s, cs, c, stat_s[s]);
    }
    return 0;
}

static int pack_layer(const layer *l, eng_layer *e, int flags, const ic_calib_c_shape *cs)
{
    CHECK(ic_eng_conv_pack(&e->cv, &l->p, l->w, l->has_norm ? NULL : l->b, flags));
    if (!l->has_norm)
        return 0;
    const size_t n = (size_t)e->cv.pairs * 32; /* the write-out reads whole pairs of blocks */
    e->fscale = padded(n);
    e->fbias = padded(n);
    e->shift = padded(n);
    if (!e->fscale || !e->fbias || !e->shift)
        return ic_error_set(IC_ENOMEM, "engine: out of memory for %s", l->name);
    CHECK(ic_bn_calibrated_affine(e->fscale, e->fbias, 1, &l->bn, NULL, NULL, 0, NULL, NULL));
    memcpy(e->shift, l->bn.mean, (size_t)l->p.cout * sizeof *e->shift);
    return pack_instcal_c(l, e, cs);
}

/* The NCHW forward's BN-folded weights: only it reads them, so the blocked
 * engines free them (on R-52-DSConv that is 235 MiB) and a switch back to
 * nchw folds them again. */
static void free_folded(ic_pdl *net)
{
    for (int i = 0; i < net->n_layers; i++) {
        ic_free_aligned(net->layers[i].wf);
        ic_free_aligned(net->layers[i].bf);
        net->layers[i].wf = net->layers[i].bf = NULL;
    }
}

static int fold_if_freed(ic_pdl *net)
{
    for (int i = 0; i < net->n_layers; i++)
        if (net->layers[i].has_norm && !net->layers[i].wf)
            return pdl_fold_all(net);
    return 0;
}

int pdl_engine_pack(ic_pdl *net)
{
    pdl_engine_free(net);
    if (net->engine == IC_PDL_ENGINE_NCHW)
        return fold_if_freed(net);
    net->eng = ic_calloc((size_t)net->n_layers, sizeof *net->eng);
    int rc = net->eng ? 0 : ic_error_set(IC_ENOMEM, "engine: out of memory");
    for (int i = 0; !rc && i < net->n_layers; i++)
        rc = pack_layer(&net->layers[i], &net->eng[i],
                        net->engine == IC_PDL_ENGINE_EXACT ? IC_ENG_EXACT : 0, &net->cshape);
    if (rc) {
        pdl_engine_free(net);
        net->engine = IC_PDL_ENGINE_NCHW;
        int frc = fold_if_freed(net);
        return frc ? frc : rc;
    }
    free_folded(net);
    return 0;
}

int ic_pdl_set_engine(ic_pdl *net, ic_pdl_engine e)
{
    if ((unsigned)e >= 3)
        return ic_error_set(IC_EINVAL, "engine %d is not one of nchw, blocked, exact", (int)e);
    net->engine = e;
    return pdl_engine_pack(net);
}

/* ---------------------------------------------------------------- forward */

/* A blocked activation and the affine its consumers still have to apply
 * (NULL: none). With res.data set, its value is relu(pend(t) +
 * res_pend(res)): a calibrated bottleneck's output, summed by its first
 * reader (blayer_res) or by bplain; res_own: res's buffer is released once
 * summed. */
typedef struct bt {
    ic_tensor t;
    const ic_blk_pend *pend;
    ic_tensor res;
    const ic_blk_pend *res_pend;
    int res_own;
} bt;

typedef struct bfwd {
    const ic_pdl *net;
    const ic_calib_opts *opts;
    ic_arena *arena;
    ic_bufpool pool;
    int threads, flags, calibrated;
    int dry;                                           /* the planning walk: no arithmetic */
    ic_tensor outs[3];                                 /* sem, center, offset (arena, NCHW) */
    double *stats;                                     /* (N, 2, max C16) */
    float *mean_t, *var_t, *m_mu, *m_var, *sc, *bi, *cscratch; /* (N, max C) */
    double m_mu_sum, m_var_sum;
    size_t m_count;
    ic_drift_acc drift;
    ic_pdl_trace_fn trace;
    void *trace_ctx;
} bfwd;

/* The planning walk (ic_bufpool_record) makes every buffer request of the
 * real one but runs no kernel: buffers are placeholders. */
#define RUN(f, call) ((f)->dry ? 0 : (call))

/* Reports layer li's output to the trace as NCHW, its pending affine
 * applied (a bottleneck's conv3 in `none` after its fused residual and
 * ReLU). */
static int btrace(bfwd *f, int li, const bt *y)
{
    if (!f->trace)
        return 0;
    const size_t nf = (size_t)y->t.n * y->t.c * y->t.h * y->t.w;
    float *d = ic_malloc_aligned(nf * sizeof *d);
    if (!d)
        return ic_error_set(IC_ENOMEM, "forward: no memory to trace %s", f->net->layers[li].name);
    ic_tensor t = ic_tensor_wrap(d, y->t.n, y->t.c, y->t.h, y->t.w);
    ic_blk_to_nchw(&t, &y->t, y->pend);
    f->trace(f->trace_ctx, f->net->layers[li].name, &t);
    ic_free_aligned(d);
    return 0;
}

static int balloc(bfwd *f, bt *b, int n, int c, int h, int w)
{
    float *d = ic_bufpool_get(&f->pool, ic_blk_floats(n, c, h, w));
    if (!d)
        return ic_error_prefix(IC_ENOMEM, "engine: activation (%d, %d, %d, %d)", n, c, h, w);
    *b = (bt){.t = ic_tensor_wrap(d, n, c, h, w)};
    return 0;
}

static void brelease(bfwd *f, bt *b)
{
    ic_bufpool_put(&f->pool, b->t.data);
    b->t.data = NULL;
}

/* Instance statistics (N, C) of a norm layer's raw output from the
 * write-out's shifted sums: mean and the unbiased variance (0 for a
 * single pixel, as ic_bn_instance_stats). */
static void stats_to_moments(bfwd *f, const layer *l, const eng_layer *e, const ic_tensor *y)
{
    const int c = y->c, c16 = ic_blk_cb(c) * 16;
    const double hw = (double)y->h * (double)y->w;
    for (int n = 0; n < y->n; n++)
        for (int k = 0; k < c; k++) {
            const double s1 = f->stats[(size_t)n * 2 * c16 + k];
            const double s2 = f->stats[(size_t)n * 2 * c16 + c16 + k];
            const double m = s1 / hw;
            double v = hw > 1 ? (s2 - s1 * m) / (hw - 1) : 0.0;
            f->mean_t[(size_t)n * c + k] = (float)(e->shift[k] + m);
            f->var_t[(size_t)n * c + k] = (float)(v > 0 ? v : 0.0);
        }
    (void)l;
}

/* Forgets x's pending residual (summed), releasing it if x owns it. */
static void bres_done(bfwd *f, bt *x)
{
    if (x->res_own)
        ic_bufpool_put(&f->pool, x->res.data);
    x->res = (ic_tensor){0};
    x->res_pend = NULL;
    x->res_own = 0;
}

/* Applies x's pending affine (and adds its pending residual) to x in place
 * (x is plain afterwards), for a consumer that cannot do it as it reads,
 * or that reads every input value many times: a x2 bilinear upsampling
 * reads each one 16 times, so applying the affine as it reads cost several
 * times the single pass. */
static int bplain(bfwd *f, bt *x)
{
    int rc = 0;
    if (x->res.data) {
        rc = RUN(f, ic_eng_add(&x->t, x->pend, &x->res, x->res_pend, 1, f->threads));
        bres_done(f, x);
    } else if (x->pend && !f->dry) {
        ic_blk_apply(&x->t, x->pend);
    }
    x->pend = NULL;
    return rc;
}

static int eng_flags(const bfwd *f)
{
    return f->net->engine == IC_PDL_ENGINE_EXACT ? IC_ENG_EXACT : 0;
}

/* How blayer_res runs: y written over res (y takes res's buffer; the
 * caller checked ic_eng_conv_res_in_place), x an NCHW image (the caller
 * checked ic_eng_conv_im2col), y a view the caller set (bview). */
enum { BL_INTO_RES = 1, BL_X_NCHW = 2, BL_Y_GIVEN = 4 };

/* Whether the parts of a concatenation of n images can be views (bview):
 * one image, and parts before the last of c channels each, so that every
 * part starts on a 16-channel block. */
static int bviews_fit(int n, int c)
{
    return n == 1 && c % IC_BLK == 0;
}

/* Channels [c0, c0 + c) of a one-image blocked tensor as a tensor of its
 * own (c0 a multiple of 16): a producer writes its part of a concatenation
 * there instead of into a buffer that concat then copies. Never released;
 * in the planning walk the whole's placeholder (model/bufpool.h). */
static bt bview(const bfwd *f, const bt *whole, int c0, int c)
{
    float *d = f->dry ? whole->t.data : ic_blk_at(&whole->t, 0, c0 / IC_BLK);
    return (bt){.t = ic_tensor_wrap(d, 1, c, whole->t.h, whole->t.w)};
}

/* y = layer(x), optionally + res then ReLU (res: plain, `none` or a layer
 * without norm only; `how` as above). x's pending affine and residual are
 * consumed; a 1x1 stride-1 conv applies them to x in place, after which x
 * is plain; the other paths apply the affine as they read (x keeps it for
 * its other readers) and need the residual summed first (bplain). */
static int blayer_res(bfwd *f, int li, bt *x, bt *y, const ic_tensor *res, int how)
{
    const layer *l = &f->net->layers[li];
    const eng_layer *e = &f->net->eng[li];
    int oh, ow;
    CHECK(ic_conv2d_out_size(&l->p, x->t.h, x->t.w, &oh, &ow));
    if (how & BL_INTO_RES) {
        y->t = *res;
        y->pend = NULL;
    } else if (!(how & BL_Y_GIVEN)) {
        CHECK(balloc(f, y, x->t.n, l->p.cout, oh, ow));
    }
    const int eflags = eng_flags(f) | (how & BL_X_NCHW ? IC_ENG_X_NCHW : 0);
    const int add_x_res = x->res.data && ic_eng_conv_applies_in_place(&e->cv);
    if (x->res.data && !add_x_res)
        CHECK(bplain(f, x));
    const size_t wsn = ic_eng_conv_ws_floats(&e->cv, x->t.n, x->t.h, x->t.w, f->threads, eflags);
    float *ws = ic_bufpool_get(&f->pool, wsn);
    if (!ws)
        return ic_error_prefix(IC_ENOMEM, "engine: conv workspace of %s", l->name);
    ic_eng_out o = {.relu = l->p.relu};
    if (l->has_norm && !f->dry) {
        memset(f->stats, 0, (size_t)x->t.n * 2 * (size_t)ic_blk_cb(l->p.cout) * 16 *
                                sizeof *f->stats);
        o.stats = f->stats;
        o.shift = e->shift;
        if (f->calibrated) {
            o.relu = 0; /* raw: BN and ReLU stay pending */
        } else {
            o.scale = e->fscale;
            o.bias = e->fbias;
        }
    }
    if (res) {
        o.res = res;
        o.relu = 1;
    }
    if (add_x_res) {
        o.x_res = &x->res;
        o.x_res_pend = x->res_pend;
    }
    int rc = RUN(f, ic_eng_conv_forward(&e->cv, &y->t, &x->t, x->pend, &o, ws, f->threads, eflags));
    ic_bufpool_put(&f->pool, ws);
    if (add_x_res)
        bres_done(f, x);
    if (rc || f->dry)
        return rc;
    if (ic_eng_conv_applies_in_place(&e->cv))
        x->pend = NULL;
    if (!l->has_norm)
        return btrace(f, li, y);
    const int c = y->t.c, n = y->t.n;
    stats_to_moments(f, l, e, &y->t);
    if (!f->calibrated) {
        /* the drift score; a channel with gamma = 0 says nothing about its
         * input and counts as unshifted, as ic_drift_unfold_stats has it */
        if (l->bn.gamma)
            for (int i = 0; i < n; i++)
                for (int k = 0; k < c; k++)
                    if (l->bn.gamma[k] == 0.0f) {
                        f->mean_t[(size_t)i * c + k] = l->bn.mean[k];
                        f->var_t[(size_t)i * c + k] = l->bn.var[k];
                    }
        ic_drift_acc_add(&f->drift, c, f->mean_t, f->var_t, l->bn.mean, l->bn.var, l->bn.eps);
        return btrace(f, li, y);
    }
    ic_calib_layer cal = l->cal; /* with InstCal-C's packed fc1 */
    for (int s = 0; s < 2; s++) {
        cal.cc.fc1_wt[s] = e->c_wt[s];
        cal.cc.fc1_bs[s] = e->c_bs[s];
    }
    CHECK(ic_calib_strengths(f->m_mu, f->m_var, f->opts, &cal, &f->net->cshape, n, f->mean_t,
                             f->var_t, l->bn.mean, l->bn.var, f->cscratch));
    const size_t nc = (size_t)n * (size_t)c;
    for (size_t i = 0; i < nc; i++) {
        f->m_mu_sum += f->m_mu[i];
        f->m_var_sum += f->m_var[i];
    }
    f->m_count += nc;
    ic_bn bn = l->bn;
    bn.mixture = ic_calib_uses_mixture(f->opts);
    CHECK(ic_bn_calibrated_affine(f->sc, f->bi, n, &bn, f->m_mu, f->m_var, 1, f->mean_t,
                                  f->var_t));
    const size_t c16 = (size_t)ic_blk_cb(c) * 16;
    float *ps = ic_arena_calloc(f->arena, (size_t)n * c16, sizeof *ps);
    float *pb = ic_arena_calloc(f->arena, (size_t)n * c16, sizeof *pb);
    ic_blk_pend *pend = ic_arena_alloc(f->arena, sizeof *pend);
    if (!ps || !pb || !pend)
        return ic_error_prefix(IC_ENOMEM, "engine: pending affine of %s", l->name);
    for (int i = 0; i < n; i++) {
        memcpy(ps + (size_t)i * c16, f->sc + (size_t)i * c, (size_t)c * sizeof *ps);
        memcpy(pb + (size_t)i * c16, f->bi + (size_t)i * c, (size_t)c * sizeof *pb);
    }
    *pend = (ic_blk_pend){ps, pb, l->p.relu};
    y->pend = pend;
    ic_drift_acc_add(&f->drift, c, f->mean_t, f->var_t, l->bn.mean, l->bn.var, l->bn.eps);
    return btrace(f, li, y);
}

static int blayer(bfwd *f, int li, bt *x, bt *y, const ic_tensor *res)
{
    return blayer_res(f, li, x, y, res, 0);
}

/* y = u(x); with consume, x is released as soon as it has been read (a
 * DSConv's depthwise half: x is not alive beside the pointwise output);
 * `how` (BL_Y_GIVEN or 0) for the unit's last layer. */
static int bunit_how(bfwd *f, unit u, bt *x, bt *y, int consume, int how)
{
    if (u.b < 0) {
        int rc = blayer_res(f, u.a, x, y, NULL, how);
        if (consume)
            brelease(f, x);
        return rc;
    }
    bt t;
    CHECK(blayer(f, u.a, x, &t, NULL));
    if (consume)
        brelease(f, x);
    int rc = blayer_res(f, u.b, &t, y, NULL, how);
    brelease(f, &t);
    return rc;
}

static int bunit_c(bfwd *f, unit u, bt *x, bt *y, int consume)
{
    return bunit_how(f, u, x, y, consume, 0);
}

static int bunit(bfwd *f, unit u, bt *x, bt *y)
{
    return bunit_c(f, u, x, y, 0);
}

/* y = block(x); with consume, x is released (or becomes y's buffer). */
static int bblock(bfwd *f, const block *b, bt *x, bt *y, int consume)
{
    bt t1, t2, sc;
    CHECK(blayer(f, b->conv1, x, &t1, NULL));
    CHECK(blayer(f, b->conv2, &t1, &t2, NULL));
    brelease(f, &t1);
    const bt *res = x;
    if (b->shortcut >= 0) {
        CHECK(blayer(f, b->shortcut, x, &sc, NULL));
        res = &sc;
    }
    const int own = b->shortcut >= 0 || consume; /* res is dead after the block */
    int rc, taken = 0; /* res's buffer became y's (y's own, or its pending residual) */
    if (!res->pend && !f->calibrated) {
        /* none: BN, the residual and ReLU in conv3's write-out, summed into
         * the residual's buffer when nothing reads it afterwards (R-52 at
         * 512x1024 one thread: docs/benchmarks.md) */
        taken = own && ic_eng_conv_res_in_place(&f->net->eng[b->conv3].cv, t2.t.h, t2.t.w,
                                                eng_flags(f));
        rc = blayer_res(f, b->conv3, &t2, y, &res->t, taken ? BL_INTO_RES : 0);
    } else {
        /* calibrated: conv3's BN waits for its statistics, and relu(bn3 +
         * res) is left to y's first reader (the next block's conv1 sums it
         * as it applies bn3, engine/conv.h's x_res), which saves the sum a
         * pass of its own; y owns res unless it is the caller's */
        rc = blayer(f, b->conv3, &t2, y, NULL);
        y->res = res->t;
        y->res_pend = res->pend;
        y->res_own = own;
        taken = own;
        if (!rc && !own)
            rc = bplain(f, y);
    }
    brelease(f, &t2);
    if (b->shortcut >= 0 && !taken)
        brelease(f, &sc);
    if (consume && (b->shortcut >= 0 || !taken))
        brelease(f, x);
    return rc;
}

/* The pooling branch; with given, y is a view the caller set. */
static int baspp_pool(bfwd *f, const aspp *a, bt *x, bt *y, int given)
{
    bt pooled, conv;
    int rc;
    if (x->res.data) /* the pools read a pending affine, not a pending sum */
        CHECK(bplain(f, x));
    if (a->pool_global) {
        CHECK(balloc(f, &pooled, x->t.n, x->t.c, 1, 1));
        rc = RUN(f, ic_eng_gap(&pooled.t, &x->t, x->pend, f->threads));
    } else {
        /* as pdl_forward.c: the kernel clamped to the map */
        ic_pool2d p = {.kh = a->pool_k[0] < x->t.h ? a->pool_k[0] : x->t.h,
                       .kw = a->pool_k[1] < x->t.w ? a->pool_k[1] : x->t.w,
                       .sh = 1,
                       .sw = 1};
        int oh, ow;
        CHECK(ic_pool_out_size(&oh, &ow, x->t.h, x->t.w, &p));
        CHECK(balloc(f, &pooled, x->t.n, x->t.c, oh, ow));
        rc = RUN(f, ic_eng_avgpool(&pooled.t, &x->t, x->pend, &p, f->threads));
    }
    if (!rc)
        rc = blayer(f, a->pool_conv, &pooled, &conv, NULL);
    brelease(f, &pooled);
    if (rc)
        return rc;
    rc = given ? 0 : balloc(f, y, x->t.n, conv.t.c, x->t.h, x->t.w);
    if (!rc)
        rc = RUN(f, ic_eng_resize(&y->t, &conv.t, conv.pend, 0, 0, f->threads));
    brelease(f, &conv);
    return rc;
}

/* Branch outputs of a whole number of 16-channel blocks, one image: each
 * writes its channels of the concatenation (bview; a pending BN applied in
 * place) instead of a buffer that a concat copies. */
static int baspp_views(bfwd *f, const aspp *a, bt *x, bt *y, int ac)
{
    bt cat;
    CHECK(balloc(f, &cat, 1, 5 * ac, x->t.h, x->t.w));
    for (int i = 0; i < 5; i++) {
        bt br = bview(f, &cat, i * ac, ac);
        if (i < 4)
            CHECK(bunit_how(f, a->branch[i], x, &br, 0, BL_Y_GIVEN));
        else
            CHECK(baspp_pool(f, a, x, &br, 1));
        CHECK(bplain(f, &br));
    }
    int rc = blayer(f, a->project, &cat, y, NULL);
    brelease(f, &cat);
    return rc;
}

static int baspp(bfwd *f, const aspp *a, bt *x, bt *y)
{
    const unit u0 = a->branch[0];
    const int ac = f->net->layers[u0.b >= 0 ? u0.b : u0.a].p.cout;
    if (bviews_fit(x->t.n, ac))
        return baspp_views(f, a, x, y, ac);
    bt br[5], cat;
    int rc = 0, made = 0;
    for (; made < 4 && !rc; made++)
        rc = bunit(f, a->branch[made], x, &br[made]);
    if (!rc && !(rc = baspp_pool(f, a, x, &br[4], 0)))
        made = 5;
    else if (!rc)
        made = 4;
    if (!rc)
        rc = balloc(f, &cat, x->t.n, 5 * br[0].t.c, x->t.h, x->t.w);
    if (!rc) {
        const ic_tensor *parts[5];
        const ic_blk_pend *pends[5];
        for (int i = 0; i < 5; i++) {
            parts[i] = &br[i].t;
            pends[i] = br[i].pend;
        }
        rc = RUN(f, ic_eng_concat(&cat.t, parts, pends, 5, f->threads));
    }
    for (int i = 0; i < made; i++)
        brelease(f, &br[i]);
    if (rc)
        return rc;
    rc = blayer(f, a->project, &cat, y, NULL);
    brelease(f, &cat);
    return rc;
}

/* cat = [proj(feat), up(*cur)] of one decoder level; *cur is released. */
static int bdecoder_cat(bfwd *f, int proj_layer, bt *feat, bt *cur, bt *cat)
{
    const ic_conv2d_params *pp = &f->net->layers[proj_layer].p;
    const int view = bviews_fit(cur->t.n, pp->cout);
    bt proj, up;
    if (view) {
        /* the projection and the upsampling write their channels of cat
         * themselves (the projection's BN, pending when calibrated, applied
         * in place) instead of buffers that a concat copies */
        int ph, pw;
        CHECK(ic_conv2d_out_size(pp, feat->t.h, feat->t.w, &ph, &pw));
        CHECK(balloc(f, cat, 1, pp->cout + cur->t.c, ph, pw));
        proj = bview(f, cat, 0, pp->cout);
        CHECK(blayer_res(f, proj_layer, feat, &proj, NULL, BL_Y_GIVEN));
        CHECK(bplain(f, &proj));
        up = bview(f, cat, pp->cout, cur->t.c);
    } else {
        CHECK(blayer(f, proj_layer, feat, &proj, NULL));
        CHECK(balloc(f, &up, cur->t.n, cur->t.c, proj.t.h, proj.t.w));
    }
    CHECK(bplain(f, cur));
    CHECK(RUN(f, ic_eng_resize(&up.t, &cur->t, NULL, 0, 0, f->threads)));
    brelease(f, cur);
    if (view)
        return 0;
    CHECK(balloc(f, cat, proj.t.n, proj.t.c + up.t.c, proj.t.h, proj.t.w));
    const ic_tensor *parts[2] = {&proj.t, &up.t};
    const ic_blk_pend *pends[2] = {proj.pend, NULL};
    CHECK(RUN(f, ic_eng_concat(&cat->t, parts, pends, 2, f->threads)));
    brelease(f, &proj);
    brelease(f, &up);
    return 0;
}

static int bdecoder(bfwd *f, const decoder *d, bt feats[3], bt *y)
{
    bt cur;
    CHECK(baspp(f, &d->top, &feats[2], &cur));
    for (int lvl = 1; lvl >= 0; lvl--) {
        bt cat, fused;
        CHECK(bdecoder_cat(f, d->proj[lvl], &feats[lvl], &cur, &cat));
        CHECK(bunit_c(f, d->fuse[lvl][0], &cat, &fused, 1));
        if (d->n_fuse == 2) {
            bt second;
            CHECK(bunit(f, d->fuse[lvl][1], &fused, &second));
            brelease(f, &fused);
            fused = second;
        }
        cur = fused;
    }
    *y = cur;
    return 0;
}

static int bhead(bfwd *f, const unit *u, int n, int pred, bt *x, bt *y)
{
    bt cur = *x, next;
    for (int i = 0; i < n; i++) {
        CHECK(bunit(f, u[i], cur.t.data == x->t.data ? x : &cur, &next));
        if (cur.t.data != x->t.data)
            brelease(f, &cur);
        cur = next;
    }
    int rc = blayer(f, pred, cur.t.data == x->t.data ? x : &cur, y, NULL);
    if (cur.t.data != x->t.data)
        brelease(f, &cur);
    return rc;
}

/* Head k's output as NCHW: raw (stride 4) or x4 upsampled, times mul and
 * cropped to (h, w). The planning walk only notes the shape (the outputs
 * are taken from the arena before the real walk, so that the arena's
 * blocks line up the same way in every forward). */
static int bout(bfwd *f, bt *x, int flags, float mul, int h, int w, int k)
{
    ic_tensor *y = &f->outs[k];
    if (f->dry) {
        const int s4 = flags & IC_PDL_STRIDE4;
        *y = ic_tensor_wrap(NULL, x->t.n, x->t.c, s4 ? x->t.h : h, s4 ? x->t.w : w);
    } else if (flags & IC_PDL_STRIDE4) {
        ic_blk_to_nchw(y, &x->t, x->pend);
    } else {
        CHECK(ic_eng_upsample_nchw(y, &x->t, x->pend, 4.0, mul, f->threads));
    }
    brelease(f, x);
    return 0;
}

static int bforward(bfwd *f, const ic_tensor *x, int flags)
{
    const ic_pdl *net = f->net;
    bt cur, next, feats[3];
    int i = 0;
    if (ic_eng_conv_im2col(&net->eng[net->stem[0]].cv)) {
        /* the first conv reads the image itself (no blocked copy) */
        bt img = {.t = *x};
        CHECK(blayer_res(f, net->stem[i++], &img, &cur, NULL, BL_X_NCHW));
    } else {
        CHECK(balloc(f, &cur, x->n, x->c, x->h, x->w));
        if (!f->dry)
            ic_blk_from_nchw(&cur.t, x);
    }
    for (; i < 3; i++) {
        CHECK(blayer(f, net->stem[i], &cur, &next, NULL));
        brelease(f, &cur);
        cur = next;
    }
    ic_pool2d mp = {.kh = 3, .kw = 3, .sh = 2, .sw = 2, .ph = 1, .pw = 1};
    int oh, ow;
    CHECK(ic_pool_out_size(&oh, &ow, cur.t.h, cur.t.w, &mp));
    CHECK(balloc(f, &next, cur.t.n, cur.t.c, oh, ow));
    CHECK(RUN(f, ic_eng_maxpool(&next.t, &cur.t, cur.pend, &mp, f->threads)));
    brelease(f, &cur);
    cur = next;
    for (int s = 0; s < 4; s++) {
        for (int b = 0; b < net->stage_len[s]; b++) {
            const int keep = b == 0 && (s == 1 || s == 2); /* cur is res2 / res3 */
            CHECK(bblock(f, &net->blocks[net->stage_first[s] + b], &cur, &next, !keep));
            if (keep) /* as the block's conv1 left it: its residual summed as it read */
                feats[s - 1] = cur;
            cur = next;
        }
    }
    feats[2] = cur; /* the first ASPP branch's 1x1 conv sums res5 as it reads */
    /* the semantic branch to its output before the instance decoder runs,
     * so that its stride-4 features are not alive beside the instance
     * decoder's (on R-52-DSConv at 1024x2048 that is 128 MiB of the peak) */
    bt sem_feat, ins_feat, sem, center, offset;
    CHECK(bdecoder(f, &net->dec[0], feats, &sem_feat));
    CHECK(bhead(f, net->sem_head, net->n_sem_head, net->sem_pred, &sem_feat, &sem));
    brelease(f, &sem_feat);
    CHECK(bout(f, &sem, flags, 1.0f, x->h, x->w, 0));
    CHECK(bdecoder(f, &net->dec[1], feats, &ins_feat));
    for (int i = 0; i < 3; i++)
        brelease(f, &feats[i]);
    CHECK(bhead(f, net->center_head, 2, net->center_pred, &ins_feat, &center));
    CHECK(bout(f, &center, flags, 1.0f, x->h, x->w, 1));
    CHECK(bhead(f, net->offset_head, net->n_offset_head, net->offset_pred, &ins_feat, &offset));
    brelease(f, &ins_feat);
    CHECK(bout(f, &offset, flags, (flags & IC_PDL_STRIDE4) ? 1.0f : 4.0f, x->h, x->w, 2));
    return 0;
}

int pdl_forward_blocked(const ic_pdl *net, const ic_tensor *x, const ic_calib_opts *opts, int flags,
                        ic_arena *arena, ic_pdl_outputs *out, ic_pdl_trace_fn trace, void *ctx)
{
    bfwd f = {.net = net, .opts = opts, .arena = arena, .flags = flags, .trace = trace,
              .trace_ctx = ctx};
    f.calibrated = opts->mode != IC_CALIB_NONE;
    f.threads = openblas_get_num_threads();
    if (f.threads < 1)
        f.threads = 1;
    ic_bufpool_init(&f.pool, arena);
    int maxc = 1;
    for (int i = 0; i < net->n_layers; i++)
        if (net->layers[i].p.cout > maxc)
            maxc = net->layers[i].p.cout;
    const size_t nc = (size_t)x->n * (size_t)maxc;
    f.stats = ic_arena_alloc(arena, (size_t)x->n * 2 * (size_t)ic_blk_cb(maxc) * 16 *
                                        sizeof *f.stats);
    f.mean_t = ic_arena_floats(arena, nc);
    f.var_t = ic_arena_floats(arena, nc);
    f.m_mu = ic_arena_floats(arena, nc);
    f.m_var = ic_arena_floats(arena, nc);
    f.sc = ic_arena_floats(arena, nc);
    f.bi = ic_arena_floats(arena, nc);
    f.cscratch = ic_arena_floats(arena, ic_calib_scratch_floats(&net->cshape, maxc));
    out->drift = ic_arena_alloc(arena, (size_t)x->n * sizeof *out->drift);
    if (!f.stats || !f.mean_t || !f.var_t || !f.m_mu || !f.m_var || !f.sc || !f.bi ||
        !f.cscratch || !out->drift)
        return ic_error_prefix(IC_ENOMEM, "engine: statistics scratch");
    ic_drift_acc_init(&f.drift, x->n, out->drift);
    /* a dry walk plans the activations' memory (model/bufpool.h), then the
     * outputs, then the real walk */
    CHECK(ic_bufpool_record(&f.pool, 8 * net->n_layers + 64));
    f.dry = 1;
    CHECK(bforward(&f, x, flags));
    f.dry = 0;
    CHECK(ic_bufpool_plan(&f.pool));
    for (int k = 0; k < 3; k++) {
        const ic_tensor *s = &f.outs[k];
        CHECK(ic_tensor_alloc(&f.outs[k], arena, s->n, s->c, s->h, s->w));
    }
    CHECK(bforward(&f, x, flags));
    out->sem = f.outs[0];
    out->center = f.outs[1];
    out->offset = f.outs[2];
    out->m_mu_mean = f.m_count ? f.m_mu_sum / (double)f.m_count : 0.0;
    out->m_var_mean = f.m_count ? f.m_var_sum / (double)f.m_count : 0.0;
    for (int n = 0; n < x->n; n++)
        out->drift[n] = ic_drift_acc_score(&f.drift, n);
    out->peak_bytes = f.pool.region_floats * sizeof(float); /* the planned region */
    return 0;
}
