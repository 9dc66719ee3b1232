/* Backward pass of Panoptic-DeepLab over the tape recorded by
 * ic_pdl_forward_train() (see pdl_train.h). Ops are visited in reverse;
 * each output's gradient buffer is created (zeroed) the first time a
 * consumer writes to it, and every op backward accumulates, so fan-out
 * (res2/res3/res5 feeding both decoders) needs nothing special. */
#include <string.h>

#include "base/alloc.h"
#include "base/err.h"
#include "model/pdl_internal.h"
#include "ops/add.h"
#include "ops/concat.h"
#include "ops/pool.h"
#include "ops/relu.h"
#include "ops/resize.h"

typedef struct bwd {
    ic_pdl *net;
    ic_pdl_tape *tape;
    ic_arena *arena;
    float **g;      /* gradient of each op's output, or NULL */
    unsigned want;  /* IC_PARAM_* kinds */
} bwd;

/* The gradient tensor of input k of op i, created zeroed; NULL for the
 * network input (nothing upstream to train). */
static int grad_of_input(bwd *b, const tape_op *op, int k, ic_tensor *dx, ic_tensor **ret)
{
    int s = op->src[k];
    if (s < 0) {
        *ret = NULL;
        return 0;
    }
    if (!b->g[s]) {
        b->g[s] = ic_arena_calloc(b->arena, ic_tensor_numel(&op->in[k]), sizeof(float));
        if (!b->g[s])
            return ic_error_prefix(IC_ENOMEM, "backward: gradient of op %d", s);
    }
    *dx = op->in[k];
    dx->data = b->g[s];
    *ret = dx;
    return 0;
}

/* dy masked by (y > 0), in a scratch copy. */
static int relu_masked(bwd *b, const ic_tensor *dy, const ic_tensor *y, ic_tensor *out)
{
    *out = *dy;
    out->data = ic_arena_calloc(b->arena, ic_tensor_numel(dy), sizeof(float));
    if (!out->data)
        return ic_error_prefix(IC_ENOMEM, "backward: ReLU mask");
    ic_relu_backward_array(out->data, dy->data, y->data, ic_tensor_numel(dy));
    return 0;
}

static int bn_calibrated_backward(bwd *b, const tape_op *op, const ic_tensor *dy, ic_tensor *dx)
{
    const layer *l = &b->net->layers[op->layer];
    layer_train *t = &b->net->train->lt[op->layer];
    const ic_calib_opts *co = &b->tape->opts.calib;
    int n = op->out.n, c = op->out.c;
    size_t nc = (size_t)n * (size_t)c;
    int want_u = (b->want & IC_PARAM_CALIB_U) && co->mode == IC_CALIB_INSTCAL_U;
    int want_c = (b->want & IC_PARAM_CALIB_C) && co->mode == IC_CALIB_INSTCAL_C;
    int want_g = (b->want & (IC_PARAM_CALIB_G | IC_PARAM_CALIB_G_GATE)) &&
                 co->mode == IC_CALIB_INSTCAL_G;
    float *dm_mu = NULL, *dm_var = NULL;
    if (want_u || want_c || want_g) {
        dm_mu = ic_arena_calloc(b->arena, nc, sizeof(float));
        dm_var = ic_arena_calloc(b->arena, nc, sizeof(float));
        if (!dm_mu || !dm_var)
            return ic_error_prefix(IC_ENOMEM, "backward: mixture gradients of %s", l->name);
    }
    int aff = (b->want & IC_PARAM_BN_AFFINE) != 0;
    ic_bn bn = l->bn;
    bn.mixture = ic_calib_uses_mixture(co);
    CHECK(ic_bn_backward_calibrated(dx, aff ? t->dgamma : NULL, aff ? t->dbeta : NULL, dm_mu, dm_var,
                                    dy, &op->out, &op->in[0], &bn, op->m_mu, op->m_var, 1,
                                    op->mean_t, op->var_t, op->relu));
    if (want_g) {
        /* the strengths' and the gate's gradients, each asked for or not */
        float *scratch = ic_arena_calloc(b->arena, 2 * (size_t)c + 2, sizeof(float));
        if (!scratch)
            return ic_error_prefix(IC_ENOMEM, "backward: InstCal-G scratch of %s", l->name);
        ic_calib_g_grads g = {{scratch, scratch + c}, scratch + 2 * c};
        for (int i = 0; i < n; i++)
            ic_calib_g_backward(&g, dm_mu + (size_t)i * c, dm_var + (size_t)i * c, &l->cal.g,
                                b->net->cshape.clamp_eps, c, op->mean_t + (size_t)i * c,
                                op->var_t + (size_t)i * c, l->bn.mean, l->bn.var);
        if (b->want & IC_PARAM_CALIB_G)
            for (int k = 0; k < 2 * c; k++)
                t->dgu[k / c][k % c] += scratch[k];
        if (b->want & IC_PARAM_CALIB_G_GATE)
            for (int k = 0; k < 2; k++)
                t->dgate[k] += scratch[2 * c + k];
    }
    if (want_u) {
        /* The [eps, 1-eps] projection is outside the graph (official code):
         * the gradient reaches the parameters unchanged. */
        for (int i = 0; i < n; i++)
            for (int k = 0; k < c; k++) {
                t->du[0][k] += dm_mu[(size_t)i * c + k];
                t->du[1][k] += dm_var[(size_t)i * c + k];
            }
    }
    if (want_c) {
        const ic_calib_c_shape *cs = &b->net->cshape;
        float *scratch = ic_arena_floats(b->arena, ic_calib_c_backward_scratch_floats(cs, c));
        if (!scratch)
            return ic_error_prefix(IC_ENOMEM, "backward: InstCal-C scratch of %s", l->name);
        for (int s = 0; s < 2; s++) {
            ic_calib_c_grads g = {t->dbasis[s], t->dfc1_w[s], t->dfc1_b[s], t->dfc2_w[s],
                                  t->dfc2_b[s]};
            const float *dm = s ? dm_var : dm_mu, *st = s ? op->var_t : op->mean_t;
            const float *ss = s ? l->bn.var : l->bn.mean;
            for (int i = 0; i < n; i++)
                ic_calib_c_backward(&g, dm + (size_t)i * c, &l->cal.cc, s, cs, c,
                                    st + (size_t)i * c, ss, scratch);
        }
    }
    return 0;
}

static int op_backward(bwd *b, int i)
{
    tape_op *op = &b->tape->ops[i];
    ic_tensor dy = op->out, dxs[5], *dx[5] = {NULL};
    dy.data = b->g[i];
    for (int k = 0; k < op->n_in; k++)
        CHECK(grad_of_input(b, op, k, &dxs[k], &dx[k]));
    const layer *l = op->layer >= 0 ? &b->net->layers[op->layer] : NULL;
    layer_train *t = op->layer >= 0 ? &b->net->train->lt[op->layer] : NULL;
    ic_tensor m;
    switch (op->kind) {
    case OP_UPSAMPLE:
        if (!dx[0])
            return 0;
        if (op->mul != 1.0f) {
            m = dy;
            if (!(m.data = ic_arena_floats(b->arena, ic_tensor_numel(&dy))))
                return ic_error_prefix(IC_ENOMEM, "backward: scaled upsample gradient");
            for (size_t k = 0; k < ic_tensor_numel(&dy); k++)
                m.data[k] = dy.data[k] * op->mul;
            return ic_resize_bilinear_scale_backward(dx[0], &m, 4.0, 4.0);
        }
        return ic_resize_bilinear_scale_backward(dx[0], &dy, 4.0, 4.0);
    case OP_RESIZE:
        return dx[0] ? ic_resize_bilinear_backward(dx[0], &dy) : 0;
    case OP_CONCAT: {
        int ch[5];
        for (int k = 0; k < op->n_in; k++)
            ch[k] = op->in[k].c;
        return ic_concat_backward(dx, &dy, ch, op->n_in);
    }
    case OP_ADD:
        return ic_add_backward(dx[0], dx[1], &dy, &op->out, op->relu);
    case OP_MAXPOOL:
        return dx[0] ? ic_pool_max_backward(dx[0], &dy, &op->in[0], &op->pool) : 0;
    case OP_AVGPOOL:
        return dx[0] ? ic_pool_avg_backward(dx[0], &dy, &op->pool) : 0;
    case OP_GAP:
        return dx[0] ? ic_pool_global_avg_backward(dx[0], &dy) : 0;
    case OP_BN:
        if (b->tape->opts.bn == IC_PDL_BN_TRAIN) {
            const ic_tensor *g = &dy;
            if (op->relu) {
                CHECK(relu_masked(b, &dy, &op->out, &m));
                g = &m;
            }
            int aff = (b->want & IC_PARAM_BN_AFFINE) != 0;
            return ic_bn_backward_train(dx[0], aff ? t->dgamma : NULL, aff ? t->dbeta : NULL, g,
                                        op->save_mean, op->save_invstd, &op->in[0], l->bn.gamma);
        }
        return bn_calibrated_backward(b, op, &dy, dx[0]);
    case OP_CONV: {
        const ic_tensor *g = &dy;
        if (op->relu) {
            CHECK(relu_masked(b, &dy, &op->out, &m));
            g = &m;
        }
        int wt = (b->want & IC_PARAM_WEIGHT) != 0;
        if (!dx[0] && !wt)
            return 0;
        size_t wsn = ic_conv2d_backward_workspace_floats(&l->p, op->in[0].h, op->in[0].w);
        float *ws = wsn ? ic_arena_floats(b->arena, wsn) : NULL;
        if (wsn && !ws)
            return ic_error_prefix(IC_ENOMEM, "backward: conv workspace of %s", l->name);
        return ic_conv2d_backward(dx[0], wt ? t->dw : NULL, wt && l->has_bias ? t->db : NULL, g,
                                  &op->in[0], l->w, &l->p, ws);
    }
    }
    return ic_error_set(IC_EINVAL, "backward: unknown op %d", (int)op->kind);
}

int ic_pdl_backward(ic_pdl *net, ic_pdl_tape *tape, const ic_tensor *dsem, const ic_tensor *dcenter,
                    const ic_tensor *doffset, ic_arena *arena)
{
    if (!net || !net->train || !tape || !arena)
        return ic_error_set(IC_EINVAL, "backward: bad arguments");
    bwd b = {.net = net, .tape = tape, .arena = arena, .want = tape->opts.grads};
    b.g = ic_arena_calloc(arena, (size_t)tape->n, sizeof *b.g);
    if (!b.g)
        return ic_error_prefix(IC_ENOMEM, "backward: gradient list of %d ops", tape->n);
    /* The last three ops are the x4 upsamplings of sem, center and offset. */
    const ic_tensor *seeds[3] = {dsem, dcenter, doffset};
    if (tape->n < 3)
        return ic_error_set(IC_EINVAL, "backward: the tape is too short");
    for (int k = 0; k < 3; k++) {
        tape_op *op = &tape->ops[tape->n - 3 + k];
        if (op->kind != OP_UPSAMPLE)
            return ic_error_set(IC_EINVAL, "backward: the tape does not end with the outputs");
        if (!seeds[k])
            continue;
        if (!ic_tensor_same_shape(seeds[k], &op->out))
            return ic_error_set(IC_ESHAPE, "backward: output gradient %d has the wrong shape", k);
        b.g[tape->n - 3 + k] = seeds[k]->data;
    }
    for (int i = tape->n - 1; i >= 0; i--) {
        if (!b.g[i])
            continue;
        CHECK(op_backward(&b, i));
    }
    return 0;
}
