/* Panoptic-DeepLab forward pass (see pdl.h): stem, bottleneck stages, two
 * ASPP + DeepLabV3+ decoders, the heads and the x4 upsampling, with every
 * BN folded (none) or calibrated per image. Activations come from a
 * best-fit buffer pool and are released as soon as their last reader ran. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/err.h"
#include "calib/drift.h"
#include "model/bufpool.h"
#include "model/pdl_internal.h"
#include "ops/add.h"
#include "ops/relu.h"
#include "ops/concat.h"
#include "ops/pool.h"
#include "ops/resize.h"

/* ---------------------------------------------------------------- forward */

typedef struct fwd {
    const ic_pdl *net;
    const ic_calib_opts *opts;
    ic_bufpool pool;
    float *mean_t, *var_t, *m_mu, *m_var, *cscratch; /* (N, max C) each; calib scratch */
    double m_mu_sum, m_var_sum;
    size_t m_count;
    ic_drift_acc drift;             /* per-image drift score (calib/drift.h) */
    ic_pdl_trace_fn trace;
    void *trace_ctx;
    ic_arena *arena;
    ic_pdl_tape *tape;              /* training: record every op, keep every tensor */
    const ic_pdl_train_opts *train;
} fwd;

/* Activation memory: a reusable pool at inference; plain arena memory when
 * training, since the backward needs every tensor. */
static int talloc(fwd *f, ic_tensor *t, int n, int c, int h, int w)
{
    return f->tape ? ic_tensor_alloc(t, f->arena, n, c, h, w) : ic_bufpool_tensor(&f->pool, t, n, c, h, w);
}

static float *falloc(fwd *f, size_t n)
{
    return f->tape ? ic_arena_floats(f->arena, n) : ic_bufpool_get(&f->pool, n);
}

static void fput(fwd *f, const float *p)
{
    if (!f->tape)
        ic_bufpool_put(&f->pool, p);
}

/* Appends an op to the tape (training only). */
static tape_op *record(fwd *f, op_kind kind, int layer, const ic_tensor *out, int n_in,
                       const ic_tensor *const *in)
{
    ic_pdl_tape *t = f->tape;
    if (t->n == t->cap) {
        ic_error_set(IC_ENOMEM, "tape: more than %d ops", t->cap);
        return NULL;
    }
    tape_op *op = &t->ops[t->n++];
    memset(op, 0, sizeof *op);
    op->kind = kind;
    op->layer = layer;
    op->out = *out;
    op->n_in = n_in;
    for (int i = 0; i < n_in; i++) {
        op->in[i] = *in[i];
        op->src[i] = -1;
        for (int k = t->n - 2; k >= 0; k--)
            if (t->ops[k].out.data == in[i]->data) {
                op->src[i] = k;
                break;
            }
    }
    return op;
}

#define RECORD(f, op, kind, layer, out, n_in, ...)                                   \
    do {                                                                             \
        const ic_tensor *in_[] = {__VA_ARGS__};                                      \
        if (!((op) = record((f), (kind), (layer), (out), (n_in), in_)))              \
            return ic_error_prefix(IC_ENOMEM, "forward_train");                      \
    } while (0)

/* Training-mode layer: conv (mutable weights), then BN with batch
 * statistics (base training) or calibrated (learning calibration, TENT),
 * then ReLU; every step recorded. */
static int run_layer_train(fwd *f, int li, const ic_tensor *x, ic_tensor *y)
{
    const layer *l = &f->net->layers[li];
    const layer_train *lt = &f->net->train->lt[li];
    int oh, ow;
    CHECK(ic_conv2d_out_size(&l->p, x->h, x->w, &oh, &ow));
    ic_tensor c;
    CHECK(talloc(f, &c, x->n, l->p.cout, oh, ow));
    size_t wsn = ic_conv2d_workspace_floats(&l->p, x->h, x->w);
    float *ws = wsn ? ic_arena_floats(f->arena, wsn) : NULL;
    if (wsn && !ws)
        return ic_error_prefix(IC_ENOMEM, "forward_train: conv workspace of %s", l->name);
    ic_conv2d_params p = l->p;
    p.relu = l->has_norm ? 0 : l->p.relu;
    CHECK(ic_conv2d_forward(&c, x, l->w, l->b, &p, ws));
    tape_op *op;
    RECORD(f, op, OP_CONV, li, &c, 1, x);
    op->relu = p.relu;
    if (!l->has_norm) {
        *y = c;
        return 0;
    }
    CHECK(talloc(f, y, c.n, c.c, c.h, c.w));
    size_t C = (size_t)c.c, nc = (size_t)c.n * C;
    if (f->train->bn == IC_PDL_BN_TRAIN) {
        float *sm = ic_arena_floats(f->arena, C), *si = ic_arena_floats(f->arena, C);
        if (!sm || !si)
            return ic_error_prefix(IC_ENOMEM, "forward_train: BN statistics of %s", l->name);
        CHECK(ic_bn_forward_train(y, sm, si, lt->mean, lt->var, &c, l->bn.gamma, l->bn.beta,
                                  l->bn.eps, f->train->momentum));
        if (l->p.relu)
            ic_relu_array(y->data, y->data, ic_tensor_numel(y));
        RECORD(f, op, OP_BN, li, y, 1, &c);
        op->save_mean = sm;
        op->save_invstd = si;
    } else {
        float *mt = ic_arena_floats(f->arena, nc), *vt = ic_arena_floats(f->arena, nc),
              *mm = ic_arena_floats(f->arena, nc), *mv = ic_arena_floats(f->arena, nc);
        if (!mt || !vt || !mm || !mv)
            return ic_error_prefix(IC_ENOMEM, "forward_train: calibrated BN of %s", l->name);
        const ic_pdl_tape *rp = f->train->replay;
        if (rp) {
            const tape_op *ro = f->tape->n < rp->n ? &rp->ops[f->tape->n] : NULL;
            if (!ro || ro->kind != OP_BN || ro->layer != li || !ro->mean_t || ro->out.n != c.n)
                return ic_error_set(IC_EINVAL, "forward_train: replay tape does not match this graph");
            memcpy(mt, ro->mean_t, nc * sizeof *mt);
            memcpy(vt, ro->var_t, nc * sizeof *vt);
        } else {
            ic_bn_instance_stats(mt, vt, &c);
        }
        CHECK(ic_calib_strengths(mm, mv, f->opts, &l->cal, &f->net->cshape, c.n, mt, vt, l->bn.mean,
                                 l->bn.var, f->cscratch));
        ic_bn bn = l->bn;
        bn.mixture = ic_calib_uses_mixture(f->opts);
        CHECK(ic_bn_forward_calibrated(y, &c, &bn, mm, mv, 1, mt, vt, l->p.relu));
        RECORD(f, op, OP_BN, li, y, 1, &c);
        op->mean_t = mt;
        op->var_t = vt;
        op->m_mu = mm;
        op->m_var = mv;
    }
    op->relu = l->p.relu;
    return 0;
}

/* y = layer(x): conv, then BN (folded for `none`, calibrated otherwise), then ReLU. */
static int run_layer(fwd *f, int li, const ic_tensor *x, ic_tensor *y)
{
    if (f->tape)
        return run_layer_train(f, li, x, y);
    const layer *l = &f->net->layers[li];
    int oh, ow;
    CHECK(ic_conv2d_out_size(&l->p, x->h, x->w, &oh, &ow));
    CHECK(talloc(f, y, x->n, l->p.cout, oh, ow));
    size_t wsn = ic_conv2d_workspace_floats(&l->p, x->h, x->w);
    float *ws = NULL;
    if (wsn && !(ws = falloc(f, wsn)))
        return ic_error_prefix(IC_ENOMEM, "forward: conv workspace of %s", l->name);
    int rc;
    int calibrated = l->has_norm && f->opts->mode != IC_CALIB_NONE;
    if (!l->has_norm) {
        rc = ic_conv2d_forward(y, x, l->w, l->b, &l->p, ws);
    } else if (!calibrated) {
        /* folded BN; the ReLU waits until the drift score has measured the
         * pre-activation statistics */
        ic_conv2d_params p = l->p;
        p.relu = 0;
        rc = ic_conv2d_forward(y, x, l->wf, l->bf, &p, ws);
    } else {
        ic_conv2d_params p = l->p;
        p.relu = 0;
        rc = ic_conv2d_forward(y, x, l->w, NULL, &p, ws);
    }
    fput(f, ws);
    if (rc)
        return rc;
    if (l->has_norm && !calibrated) {
        ic_bn_instance_stats(f->mean_t, f->var_t, y);
        for (int n = 0; n < y->n; n++)
            ic_drift_unfold_stats(y->c, f->mean_t + (size_t)n * y->c, f->var_t + (size_t)n * y->c,
                                  l->bn.gamma, l->bn.beta, l->bn.mean, l->bn.var, l->bn.eps);
        ic_drift_acc_add(&f->drift, y->c, f->mean_t, f->var_t, l->bn.mean, l->bn.var, l->bn.eps);
        if (l->p.relu)
            ic_relu_array(y->data, y->data, ic_tensor_numel(y));
    }
    if (!calibrated) {
        if (f->trace)
            f->trace(f->trace_ctx, l->name, y);
        return 0;
    }
    /* strengths that ignore the statistics come first, so that each plane
     * is measured and normalised in one pass (ic_bn_forward_instance) */
    const int stats_first = ic_calib_uses_stats(f->opts);
    if (stats_first)
        ic_bn_instance_stats(f->mean_t, f->var_t, y);
    CHECK(ic_calib_strengths(f->m_mu, f->m_var, f->opts, &l->cal, &f->net->cshape, y->n, f->mean_t,
                             f->var_t, l->bn.mean, l->bn.var, f->cscratch));
    size_t nc = (size_t)y->n * (size_t)y->c;
    for (size_t i = 0; i < nc; i++) {
        f->m_mu_sum += f->m_mu[i];
        f->m_var_sum += f->m_var[i];
    }
    f->m_count += nc;
    ic_bn bn = l->bn;
    bn.mixture = ic_calib_uses_mixture(f->opts);
    if (stats_first)
        CHECK(ic_bn_forward_calibrated(y, y, &bn, f->m_mu, f->m_var, 1, f->mean_t, f->var_t,
                                       l->p.relu));
    else
        CHECK(ic_bn_forward_instance(y, y, &l->bn, f->m_mu, f->m_var, f->mean_t, f->var_t,
                                     l->p.relu));
    ic_drift_acc_add(&f->drift, y->c, f->mean_t, f->var_t, l->bn.mean, l->bn.var, l->bn.eps);
    if (f->trace)
        f->trace(f->trace_ctx, l->name, y);
    return 0;
}

static int run_unit(fwd *f, unit u, const ic_tensor *x, ic_tensor *y)
{
    if (u.b < 0)
        return run_layer(f, u.a, x, y);
    ic_tensor t;
    CHECK(run_layer(f, u.a, x, &t));
    int rc = run_layer(f, u.b, &t, y);
    fput(f, t.data);
    return rc;
}

static void release(fwd *f, ic_tensor *t)
{
    fput(f, t->data);
    t->data = NULL;
}

/* y = relu(a + b): in place over a at inference, a new tensor when training. */
static int run_add(fwd *f, const ic_tensor *a, const ic_tensor *b, ic_tensor *y)
{
    if (!f->tape) {
        *y = *a;
        return ic_add_forward(y, a, b, 1);
    }
    CHECK(talloc(f, y, a->n, a->c, a->h, a->w));
    CHECK(ic_add_forward(y, a, b, 1));
    tape_op *op;
    RECORD(f, op, OP_ADD, -1, y, 2, a, b);
    op->relu = 1;
    return 0;
}

static int run_concat(fwd *f, ic_tensor *y, const ic_tensor *const *parts, int k)
{
    CHECK(ic_concat_forward(y, parts, k));
    if (f->tape && !record(f, OP_CONCAT, -1, y, k, parts))
        return ic_error_prefix(IC_ENOMEM, "forward_train");
    return 0;
}

static int run_resize(fwd *f, ic_tensor *y, const ic_tensor *x)
{
    CHECK(ic_resize_bilinear_forward(y, x));
    if (f->tape) {
        tape_op *op;
        RECORD(f, op, OP_RESIZE, -1, y, 1, x);
    }
    return 0;
}

static int run_pool(fwd *f, op_kind kind, ic_tensor *y, const ic_tensor *x, const ic_pool2d *p)
{
    int rc = kind == OP_MAXPOOL ? ic_pool_max_forward(y, x, p)
             : kind == OP_AVGPOOL ? ic_pool_avg_forward(y, x, p)
                                  : ic_pool_global_avg_forward(y, x);
    if (rc || !f->tape)
        return rc;
    tape_op *op;
    RECORD(f, op, kind, -1, y, 1, x);
    if (p)
        op->pool = *p;
    return 0;
}

static int run_block(fwd *f, const block *b, const ic_tensor *x, ic_tensor *y)
{
    ic_tensor t1, t2, sc;
    CHECK(run_layer(f, b->conv1, x, &t1));
    CHECK(run_layer(f, b->conv2, &t1, &t2));
    release(f, &t1);
    CHECK(run_layer(f, b->conv3, &t2, y));
    release(f, &t2);
    ic_tensor z = *y;
    if (b->shortcut >= 0) {
        CHECK(run_layer(f, b->shortcut, x, &sc));
        int rc = run_add(f, &z, &sc, y);
        release(f, &sc);
        return rc;
    }
    return run_add(f, &z, x, y);
}

/* The ASPP pooling branch: pool, 1x1 conv with bias and ReLU, resize back. */
static int run_aspp_pool(fwd *f, const aspp *a, const ic_tensor *x, ic_tensor *y)
{
    ic_tensor pooled, conv;
    int rc;
    if (a->pool_global) {
        CHECK(talloc(f, &pooled, x->n, x->c, 1, 1));
        rc = run_pool(f, OP_GAP, &pooled, x, NULL);
    } else {
        /* detectron2 requires the map to be a multiple of the kernel; we accept
         * any size and clamp the kernel, so a small map pools globally. */
        ic_pool2d p = {.kh = a->pool_k[0] < x->h ? a->pool_k[0] : x->h,
                       .kw = a->pool_k[1] < x->w ? a->pool_k[1] : x->w,
                       .sh = 1,
                       .sw = 1};
        int oh, ow;
        CHECK(ic_pool_out_size(&oh, &ow, x->h, x->w, &p));
        CHECK(talloc(f, &pooled, x->n, x->c, oh, ow));
        rc = run_pool(f, OP_AVGPOOL, &pooled, x, &p);
    }
    if (!rc)
        rc = run_layer(f, a->pool_conv, &pooled, &conv);
    release(f, &pooled);
    if (rc)
        return rc;
    rc = talloc(f, y, x->n, conv.c, x->h, x->w);
    if (!rc)
        rc = run_resize(f, y, &conv);
    release(f, &conv);
    return rc;
}

static int run_aspp(fwd *f, const aspp *a, const ic_tensor *x, ic_tensor *y)
{
    ic_tensor br[5], cat;
    int rc = 0, made = 0;
    for (; made < 4 && !rc; made++)
        rc = run_unit(f, a->branch[made], x, &br[made]);
    if (!rc && !(rc = run_aspp_pool(f, a, x, &br[4])))
        made = 5;
    else if (!rc)
        made = 4;
    if (!rc)
        rc = talloc(f, &cat, x->n, 5 * br[0].c, x->h, x->w);
    if (!rc) {
        const ic_tensor *parts[5] = {&br[0], &br[1], &br[2], &br[3], &br[4]};
        rc = run_concat(f, &cat, parts, 5);
    }
    for (int i = 0; i < made; i++)
        release(f, &br[i]);
    if (rc)
        return rc;
    rc = run_layer(f, a->project, &cat, y);
    release(f, &cat);
    return rc;
}

/* DeepLabV3+ decoder: ASPP on res5, then res3 and res2 each projected,
 * concatenated [projection, upsampled] and fused. */
static int run_decoder(fwd *f, const decoder *d, const ic_tensor feats[3], ic_tensor *y)
{
    ic_tensor cur;
    CHECK(run_aspp(f, &d->top, &feats[2], &cur));
    for (int lvl = 1; lvl >= 0; lvl--) {
        ic_tensor proj, up, cat, fused;
        CHECK(run_layer(f, d->proj[lvl], &feats[lvl], &proj));
        CHECK(talloc(f, &up, cur.n, cur.c, proj.h, proj.w));
        CHECK(run_resize(f, &up, &cur));
        release(f, &cur);
        CHECK(talloc(f, &cat, proj.n, proj.c + up.c, proj.h, proj.w));
        const ic_tensor *parts[2] = {&proj, &up};
        CHECK(run_concat(f, &cat, parts, 2));
        release(f, &proj);
        release(f, &up);
        CHECK(run_unit(f, d->fuse[lvl][0], &cat, &fused));
        release(f, &cat);
        if (d->n_fuse == 2) {
            ic_tensor second;
            CHECK(run_unit(f, d->fuse[lvl][1], &fused, &second));
            release(f, &fused);
            fused = second;
        }
        cur = fused;
    }
    *y = cur;
    return 0;
}

static int run_head(fwd *f, const unit *u, int n, int pred, const ic_tensor *x, ic_tensor *y)
{
    ic_tensor cur = *x, next;
    for (int i = 0; i < n; i++) {
        CHECK(run_unit(f, u[i], &cur, &next));
        if (cur.data != x->data)
            release(f, &cur);
        cur = next;
    }
    int rc = run_layer(f, pred, &cur, y);
    if (cur.data != x->data)
        release(f, &cur);
    return rc;
}

/* x4 bilinear upsampling (scale factor, as detectron2), times `mul`, cropped
 * to (h, w); the result is allocated in the arena, not the pool. */
static int upsample_out(fwd *f, ic_arena *arena, const ic_tensor *x, float mul, int h, int w,
                        ic_tensor *y)
{
    ic_tensor full;
    if (f->tape) {
        /* Training crops are multiples of 16: no crop, and the op is recorded. */
        if (h != 4 * x->h || w != 4 * x->w)
            return ic_error_set(IC_EINVAL, "training input must be a multiple of 16 in size");
        CHECK(ic_tensor_alloc(y, arena, x->n, x->c, h, w));
        CHECK(ic_resize_bilinear_scale_forward(y, x, 4.0, 4.0));
        if (mul != 1.0f)
            for (size_t i = 0; i < ic_tensor_numel(y); i++)
                y->data[i] *= mul;
        tape_op *op;
        RECORD(f, op, OP_UPSAMPLE, -1, y, 1, x);
        op->mul = mul;
        return 0;
    }
    CHECK(talloc(f, &full, x->n, x->c, 4 * x->h, 4 * x->w));
    CHECK(ic_resize_bilinear_scale_forward(&full, x, 4.0, 4.0));
    CHECK(ic_tensor_alloc(y, arena, x->n, x->c, h, w));
    for (int n = 0; n < x->n; n++)
        for (int c = 0; c < x->c; c++) {
            const float *src = ic_tensor_at(&full, n, c);
            float *dst = ic_tensor_at(y, n, c);
            for (int r = 0; r < h; r++)
                for (int col = 0; col < w; col++)
                    dst[(size_t)r * w + col] = src[(size_t)r * full.w + col] * mul;
        }
    release(f, &full);
    return 0;
}

static int max_bn_channels(const ic_pdl *net)
{
    int m = 1;
    for (int i = 0; i < net->n_layers; i++)
        if (net->layers[i].p.cout > m)
            m = net->layers[i].p.cout;
    return m;
}

static int forward(fwd *f, const ic_tensor *x, ic_arena *arena, int flags, ic_pdl_outputs *out)
{
    const ic_pdl *net = f->net;
    ic_tensor cur = *x, next, feats[3];
    for (int i = 0; i < 3; i++) {
        CHECK(run_layer(f, net->stem[i], &cur, &next));
        if (cur.data != x->data)
            release(f, &cur);
        cur = next;
    }
    ic_pool2d mp = {.kh = 3, .kw = 3, .sh = 2, .sw = 2, .ph = 1, .pw = 1};
    int oh, ow;
    CHECK(ic_pool_out_size(&oh, &ow, cur.h, cur.w, &mp));
    CHECK(talloc(f, &next, cur.n, cur.c, oh, ow));
    CHECK(run_pool(f, OP_MAXPOOL, &next, &cur, &mp));
    release(f, &cur);
    cur = next;
    for (int s = 0; s < 4; s++) {
        for (int b = 0; b < net->stage_len[s]; b++) {
            CHECK(run_block(f, &net->blocks[net->stage_first[s] + b], &cur, &next));
            int keep = b == 0 && (s == 1 || s == 2) ? 1 : 0; /* cur is res2 / res3 */
            if (!keep)
                release(f, &cur);
            cur = next;
        }
        if (s == 0)
            feats[0] = cur;
        else if (s == 1)
            feats[1] = cur;
    }
    feats[2] = cur;
    ic_tensor sem_feat, ins_feat, sem, center, offset;
    CHECK(run_decoder(f, &net->dec[0], feats, &sem_feat));
    CHECK(run_decoder(f, &net->dec[1], feats, &ins_feat));
    for (int i = 0; i < 3; i++)
        release(f, &feats[i]);
    CHECK(run_head(f, net->sem_head, net->n_sem_head, net->sem_pred, &sem_feat, &sem));
    release(f, &sem_feat);
    CHECK(run_head(f, net->center_head, 2, net->center_pred, &ins_feat, &center));
    CHECK(run_head(f, net->offset_head, net->n_offset_head, net->offset_pred, &ins_feat, &offset));
    release(f, &ins_feat);
    if (flags & IC_PDL_STRIDE4) {
        /* Debug/test view: the heads' raw stride-4 maps, moved out of the pool. */
        ic_tensor *src[3] = {&sem, &center, &offset}, *dst[3] = {&out->sem, &out->center, &out->offset};
        for (int i = 0; i < 3; i++) {
            CHECK(ic_tensor_alloc(dst[i], arena, src[i]->n, src[i]->c, src[i]->h, src[i]->w));
            memcpy(dst[i]->data, src[i]->data, ic_tensor_numel(src[i]) * sizeof(float));
            release(f, src[i]);
        }
        return 0;
    }
    CHECK(upsample_out(f, arena, &sem, 1.0f, x->h, x->w, &out->sem));
    release(f, &sem);
    CHECK(upsample_out(f, arena, &center, 1.0f, x->h, x->w, &out->center));
    release(f, &center);
    CHECK(upsample_out(f, arena, &offset, 4.0f, x->h, x->w, &out->offset));
    release(f, &offset);
    return 0;
}

int ic_pdl_forward(const ic_pdl *net, const ic_tensor *x, const ic_calib_opts *opts, int flags,
                   ic_arena *arena, ic_pdl_outputs *out)
{
    return ic_pdl_forward_trace(net, x, opts, flags, arena, out, NULL, NULL);
}

static int check_input(const ic_pdl *net, const ic_tensor *x, const ic_calib_opts *opts)
{
    if (!net || !x || !x->data || !opts)
        return ic_error_set(IC_EINVAL, "forward: NULL argument");
    if (x->c != 3 || x->n < 1 || x->h < 1 || x->w < 1)
        return ic_error_set(IC_EINVAL, "forward: input must be (N, 3, H, W), got (%d, %d, %d, %d)",
                            x->n, x->c, x->h, x->w);
    if (opts->mode == IC_CALIB_INSTCAL_E)
        return ic_error_set(IC_EINVAL, "forward: calibration mode 'instcal-e' is two forwards "
                                       "(instcal-g and the mirrored tbn) averaged; run it "
                                       "through "
                                       "ic_adapt_forward()");
    if (!ic_pdl_supports(net, opts->mode))
        return ic_error_set(IC_EINVAL, "calibration mode '%s' is not available for model '%s'%s",
                            ic_calib_mode_name(opts->mode), net->cfg.name,
                            opts->mode == IC_CALIB_INSTCAL_U || opts->mode == IC_CALIB_INSTCAL_C
                                ? " (it carries no learned calibration tensors)"
                                : "");
    if (opts->mode == IC_CALIB_MANUAL && !(opts->m >= 0.0f && opts->m <= 1.0f))
        return ic_error_set(IC_EINVAL, "calibration strength m=%g is outside [0, 1]", (double)opts->m);
    return 0;
}

/* Shared set-up and run of inference and training forwards. */
static int run(fwd *f, const ic_tensor *x, ic_arena *arena, int flags, ic_pdl_outputs *out)
{
    const ic_pdl *net = f->net;
    f->arena = arena;
    ic_bufpool_init(&f->pool, arena);
    size_t nc = (size_t)x->n * (size_t)max_bn_channels(net);
    size_t cs = ic_calib_scratch_floats(&net->cshape, max_bn_channels(net));
    f->mean_t = ic_arena_floats(arena, nc);
    f->var_t = ic_arena_floats(arena, nc);
    f->m_mu = ic_arena_floats(arena, nc);
    f->m_var = ic_arena_floats(arena, nc);
    f->cscratch = ic_arena_floats(arena, cs);
    out->drift = ic_arena_alloc(arena, (size_t)x->n * sizeof *out->drift);
    if (!f->mean_t || !f->var_t || !f->m_mu || !f->m_var || !f->cscratch || !out->drift)
        return ic_error_prefix(IC_ENOMEM, "forward: statistics scratch");
    ic_drift_acc_init(&f->drift, x->n, out->drift);
    int rc = forward(f, x, arena, flags, out);
    if (rc)
        return rc;
    out->m_mu_mean = f->m_count ? f->m_mu_sum / (double)f->m_count : 0.0;
    out->m_var_mean = f->m_count ? f->m_var_sum / (double)f->m_count : 0.0;
    for (int n = 0; n < x->n; n++)
        out->drift[n] = ic_drift_acc_score(&f->drift, n);
    out->peak_bytes = (f->tape ? ic_arena_used(arena) / sizeof(float) : f->pool.peak) * sizeof(float);
    return 0;
}

int ic_pdl_forward_trace(const ic_pdl *net, const ic_tensor *x, const ic_calib_opts *opts, int flags,
                         ic_arena *arena, ic_pdl_outputs *out, ic_pdl_trace_fn trace, void *ctx)
{
    CHECK(check_input(net, x, opts));
    if (!arena || !out)
        return ic_error_set(IC_EINVAL, "forward: NULL argument");
    if (net->engine != IC_PDL_ENGINE_NCHW && net->eng)
        return pdl_forward_blocked(net, x, opts, flags, arena, out, trace, ctx);
    fwd f = {.net = net, .opts = opts, .trace = trace, .trace_ctx = ctx};
    return run(&f, x, arena, flags, out);
}

int ic_pdl_forward_train(ic_pdl *net, const ic_tensor *x, const ic_pdl_train_opts *opts,
                         ic_arena *arena, ic_pdl_tape **ret_tape, ic_pdl_outputs *out)
{
    if (!net || !net->train)
        return ic_error_set(IC_EINVAL, "forward_train: the model is not trainable");
    const ic_calib_opts none = {.mode = IC_CALIB_NONE};
    const ic_calib_opts *copts = opts->bn == IC_PDL_BN_CALIBRATED ? &opts->calib : &none;
    CHECK(check_input(net, x, copts));
    if (x->h % 16 || x->w % 16)
        return ic_error_set(IC_EINVAL, "forward_train: input %dx%d is not a multiple of 16", x->h,
                            x->w);
    ic_pdl_tape *tape = ic_arena_calloc(arena, 1, sizeof *tape);
    if (!tape)
        return ic_error_prefix(IC_ENOMEM, "forward_train: tape");
    tape->cap = 4 * net->n_layers + 64;
    tape->ops = ic_arena_calloc(arena, (size_t)tape->cap, sizeof *tape->ops);
    if (!tape->ops)
        return ic_error_prefix(IC_ENOMEM, "forward_train: tape of %d ops", tape->cap);
    tape->opts = *opts;
    fwd f = {.net = net, .opts = copts, .tape = tape, .train = opts};
    CHECK(run(&f, x, arena, 0, out));
    *ret_tape = tape;
    return 0;
}
