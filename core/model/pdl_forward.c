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
#include "model/bufpool.h"
#include "model/pdl_internal.h"
#include "ops/add.h"
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
    ic_pdl_trace_fn trace;
    void *trace_ctx;
} fwd;

/* y = layer(x): conv, then BN (folded for `none`, calibrated otherwise), then ReLU. */
static int run_layer(fwd *f, int li, const ic_tensor *x, ic_tensor *y)
{
    const layer *l = &f->net->layers[li];
    int oh, ow;
    CHECK(ic_conv2d_out_size(&l->p, x->h, x->w, &oh, &ow));
    CHECK(ic_bufpool_tensor(&f->pool, y, x->n, l->p.cout, oh, ow));
    size_t wsn = ic_conv2d_workspace_floats(&l->p, x->h, x->w);
    float *ws = NULL;
    if (wsn && !(ws = ic_bufpool_get(&f->pool, wsn)))
        return IC_ENOMEM;
    int rc;
    int calibrated = l->has_norm && f->opts->mode != IC_CALIB_NONE;
    if (!l->has_norm) {
        rc = ic_conv2d_forward(y, x, l->w, l->b, &l->p, ws);
    } else if (!calibrated) {
        rc = ic_conv2d_forward(y, x, l->wf, l->bf, &l->p, ws);
    } else {
        ic_conv2d_params p = l->p;
        p.relu = 0;
        rc = ic_conv2d_forward(y, x, l->w, NULL, &p, ws);
    }
    ic_bufpool_put(&f->pool, ws);
    if (rc)
        return rc;
    if (!calibrated) {
        if (f->trace)
            f->trace(f->trace_ctx, l->name, y);
        return 0;
    }
    ic_bn_instance_stats(f->mean_t, f->var_t, y);
    CHECK(ic_calib_strengths(f->m_mu, f->m_var, f->opts, &l->cal, &f->net->cshape, y->n, f->mean_t,
                             f->var_t, l->bn.mean, l->bn.var, f->cscratch));
    size_t nc = (size_t)y->n * (size_t)y->c;
    for (size_t i = 0; i < nc; i++) {
        f->m_mu_sum += f->m_mu[i];
        f->m_var_sum += f->m_var[i];
    }
    f->m_count += nc;
    CHECK(ic_bn_forward_calibrated(y, y, &l->bn, f->m_mu, f->m_var, 1, f->mean_t, f->var_t,
                                   l->p.relu));
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
    ic_bufpool_put(&f->pool, t.data);
    return rc;
}

static void release(fwd *f, ic_tensor *t)
{
    ic_bufpool_put(&f->pool, t->data);
    t->data = NULL;
}

static int run_block(fwd *f, const block *b, const ic_tensor *x, ic_tensor *y)
{
    ic_tensor t1, t2, sc;
    CHECK(run_layer(f, b->conv1, x, &t1));
    CHECK(run_layer(f, b->conv2, &t1, &t2));
    release(f, &t1);
    CHECK(run_layer(f, b->conv3, &t2, y));
    release(f, &t2);
    if (b->shortcut >= 0) {
        CHECK(run_layer(f, b->shortcut, x, &sc));
        int rc = ic_add_forward(y, y, &sc, 1);
        release(f, &sc);
        return rc;
    }
    return ic_add_forward(y, y, x, 1);
}

/* The ASPP pooling branch: pool, 1x1 conv with bias and ReLU, resize back. */
static int run_aspp_pool(fwd *f, const aspp *a, const ic_tensor *x, ic_tensor *y)
{
    ic_tensor pooled, conv;
    int rc;
    if (a->pool_global) {
        CHECK(ic_bufpool_tensor(&f->pool, &pooled, x->n, x->c, 1, 1));
        rc = ic_pool_global_avg_forward(&pooled, x);
    } else {
        /* detectron2 requires the map to be a multiple of the kernel; we accept
         * any size and clamp the kernel, so a small map pools globally. */
        ic_pool2d p = {.kh = a->pool_k[0] < x->h ? a->pool_k[0] : x->h,
                       .kw = a->pool_k[1] < x->w ? a->pool_k[1] : x->w,
                       .sh = 1,
                       .sw = 1};
        int oh, ow;
        CHECK(ic_pool_out_size(&oh, &ow, x->h, x->w, &p));
        CHECK(ic_bufpool_tensor(&f->pool, &pooled, x->n, x->c, oh, ow));
        rc = ic_pool_avg_forward(&pooled, x, &p);
    }
    if (!rc)
        rc = run_layer(f, a->pool_conv, &pooled, &conv);
    release(f, &pooled);
    if (rc)
        return rc;
    rc = ic_bufpool_tensor(&f->pool, y, x->n, conv.c, x->h, x->w);
    if (!rc)
        rc = ic_resize_bilinear_forward(y, &conv);
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
        rc = ic_bufpool_tensor(&f->pool, &cat, x->n, 5 * br[0].c, x->h, x->w);
    if (!rc) {
        const ic_tensor *parts[5] = {&br[0], &br[1], &br[2], &br[3], &br[4]};
        rc = ic_concat_forward(&cat, parts, 5);
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
        CHECK(ic_bufpool_tensor(&f->pool, &up, cur.n, cur.c, proj.h, proj.w));
        CHECK(ic_resize_bilinear_forward(&up, &cur));
        release(f, &cur);
        CHECK(ic_bufpool_tensor(&f->pool, &cat, proj.n, proj.c + up.c, proj.h, proj.w));
        const ic_tensor *parts[2] = {&proj, &up};
        CHECK(ic_concat_forward(&cat, parts, 2));
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
    CHECK(ic_bufpool_tensor(&f->pool, &full, x->n, x->c, 4 * x->h, 4 * x->w));
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
    CHECK(ic_bufpool_tensor(&f->pool, &next, cur.n, cur.c, oh, ow));
    CHECK(ic_pool_max_forward(&next, &cur, &mp));
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

int ic_pdl_forward_trace(const ic_pdl *net, const ic_tensor *x, const ic_calib_opts *opts, int flags,
                         ic_arena *arena, ic_pdl_outputs *out, ic_pdl_trace_fn trace, void *ctx)
{
    if (!net || !x || !x->data || !opts || !arena || !out)
        return ic_error_set(IC_EINVAL, "forward: NULL argument");
    if (x->c != 3 || x->n < 1 || x->h < 1 || x->w < 1)
        return ic_error_set(IC_EINVAL, "forward: input must be (N, 3, H, W), got (%d, %d, %d, %d)",
                            x->n, x->c, x->h, x->w);
    if (!ic_pdl_supports(net, opts->mode))
        return ic_error_set(IC_EINVAL, "calibration mode '%s' is not available for model '%s'%s",
                            ic_calib_mode_name(opts->mode), net->cfg.name,
                            opts->mode == IC_CALIB_INSTCAL_U || opts->mode == IC_CALIB_INSTCAL_C
                                ? " (it carries no learned calibration tensors)"
                                : "");
    if (opts->mode == IC_CALIB_MANUAL && !(opts->m >= 0.0f && opts->m <= 1.0f))
        return ic_error_set(IC_EINVAL, "calibration strength m=%g is outside [0, 1]", (double)opts->m);
    fwd f = {.net = net, .opts = opts, .trace = trace, .trace_ctx = ctx};
    ic_bufpool_init(&f.pool, arena);
    size_t nc = (size_t)x->n * (size_t)max_bn_channels(net);
    size_t cs = ic_calib_scratch_floats(&net->cshape, max_bn_channels(net));
    f.mean_t = ic_arena_floats(arena, nc);
    f.var_t = ic_arena_floats(arena, nc);
    f.m_mu = ic_arena_floats(arena, nc);
    f.m_var = ic_arena_floats(arena, nc);
    f.cscratch = ic_arena_floats(arena, cs);
    if (!f.mean_t || !f.var_t || !f.m_mu || !f.m_var || !f.cscratch)
        return IC_ENOMEM;
    int rc = forward(&f, x, arena, flags, out);
    if (rc)
        return rc;
    out->m_mu_mean = f.m_count ? f.m_mu_sum / (double)f.m_count : 0.0;
    out->m_var_mean = f.m_count ? f.m_var_sum / (double)f.m_count : 0.0;
    out->peak_bytes = f.pool.peak * sizeof(float);
    return 0;
}
