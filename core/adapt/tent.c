/* Episodic TENT on a worker's private model copy (see tent.h). */
#include "adapt/tent.h"

#include <math.h>
#include <string.h>

#include "base/alloc.h"
#include "base/err.h"
#include "model/pdl_train.h"
#include "train/adam.h"

struct ic_tent {
    ic_pdl *net;
    ic_adam adam;        /* over the BN affine parameters only */
    float *backup;       /* gamma/beta as loaded, in adam's parameter order */
};

int ic_tent_create(ic_tent **ret, const char *weights_path, const char *config_path)
{
    *ret = NULL;
    ic_tent *t = ic_calloc(1, sizeof *t);
    if (!t)
        return ic_error_set(IC_ENOMEM, "tent: no memory");
    ic_param *params;
    int n, rc = ic_pdl_load(&t->net, weights_path, config_path);
    if (!rc)
        rc = ic_pdl_make_trainable(t->net);
    if (!rc)
        rc = ic_pdl_params(t->net, &params, &n);
    if (!rc)
        rc = ic_adam_init(&t->adam, params, n, IC_PARAM_BN_AFFINE, NULL);
    if (!rc && !(t->backup = ic_malloc(t->adam.total * sizeof(float))))
        rc = ic_error_set(IC_ENOMEM, "tent: no memory for the backup of %zu parameters",
                          t->adam.total);
    if (rc) {
        ic_tent_free(&t);
        return rc;
    }
    size_t off = 0;
    for (int i = 0; i < t->adam.n; i++) {
        memcpy(t->backup + off, t->adam.p[i]->data, t->adam.p[i]->n * sizeof(float));
        off += t->adam.p[i]->n;
    }
    *ret = t;
    return 0;
}

void ic_tent_free(ic_tent **pt)
{
    ic_tent *t = pt ? *pt : NULL;
    if (!t)
        return;
    ic_adam_deinit(&t->adam);
    ic_free(t->backup);
    ic_pdl_free(&t->net);
    ic_free(t);
    *pt = NULL;
}

const ic_pdl *ic_tent_model(const ic_tent *t)
{
    return t->net;
}

static void restore(ic_tent *t)
{
    size_t off = 0;
    for (int i = 0; i < t->adam.n; i++) {
        memcpy(t->adam.p[i]->data, t->backup + off, t->adam.p[i]->n * sizeof(float));
        off += t->adam.p[i]->n;
    }
}

double ic_tent_entropy(const ic_tensor *logits, int h, int w, ic_tensor *dlogits)
{
    const int C = logits->c;
    const size_t plane = ic_tensor_plane(logits), W = (size_t)logits->w;
    const double count = (double)logits->n * h * w;
    const float inv = (float)(1.0 / count);
    double total = 0;
    for (int n = 0; n < logits->n; n++) {
        const float *z = ic_tensor_at(logits, n, 0);
        float *dz = dlogits ? ic_tensor_at(dlogits, n, 0) : NULL;
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++) {
                size_t i = (size_t)y * W + (size_t)x;
                float mx = z[i];
                for (int c = 1; c < C; c++)
                    mx = fmaxf(mx, z[c * plane + i]);
                double s = 0;
                for (int c = 0; c < C; c++)
                    s += exp((double)z[c * plane + i] - mx);
                double ls = log(s), ent = 0;
                /* H = -sum p log p with log p = z - max - log s */
                for (int c = 0; c < C; c++) {
                    double lp = (double)z[c * plane + i] - mx - ls;
                    ent -= exp(lp) * lp;
                }
                total += ent;
                if (!dz)
                    continue;
                /* dH/dz_c = -p_c (log p_c + H) */
                for (int c = 0; c < C; c++) {
                    double lp = (double)z[c * plane + i] - mx - ls;
                    dz[c * plane + i] += inv * (float)(-exp(lp) * (lp + ent));
                }
            }
    }
    return count > 0 ? total / count : 0;
}

/* x padded with zeros (the mean colour) to multiples of 16. */
static int pad16(const ic_tensor *x, ic_arena *a, ic_tensor *out)
{
    int h = (x->h + 15) / 16 * 16, w = (x->w + 15) / 16 * 16;
    if (h == x->h && w == x->w) {
        *out = *x;
        return 0;
    }
    if (ic_tensor_alloc(out, a, x->n, x->c, h, w))
        return ic_error_prefix(IC_ENOMEM, "tent: padded input");
    memset(out->data, 0, ic_tensor_numel(out) * sizeof(float));
    for (int n = 0; n < x->n; n++)
        for (int c = 0; c < x->c; c++)
            for (int y = 0; y < x->h; y++)
                memcpy(ic_tensor_at(out, n, c) + (size_t)y * w,
                       ic_tensor_at(x, n, c) + (size_t)y * x->w, (size_t)x->w * sizeof(float));
    return 0;
}

static int adapt(ic_tent *t, const ic_tensor *x, int steps, float lr, ic_arena *arena,
                 double *ret_entropy)
{
    ic_pdl_train_opts to = {.bn = IC_PDL_BN_CALIBRATED,
                            .calib = {.mode = IC_CALIB_TBN},
                            .momentum = 0.1f,
                            .grads = IC_PARAM_BN_AFFINE};
    ic_tensor xp;
    int rc = pad16(x, arena, &xp);
    if (rc)
        return rc;
    ic_adam_reset(&t->adam);
    for (int s = 0; s < steps; s++) {
        ic_arena_mark m = ic_arena_get_mark(arena);
        ic_pdl_tape *tape = NULL;
        ic_pdl_outputs o;
        ic_pdl_zero_grad(t->net);
        rc = ic_pdl_forward_train(t->net, &xp, &to, arena, &tape, &o);
        ic_tensor dsem;
        if (!rc && ic_tensor_alloc(&dsem, arena, o.sem.n, o.sem.c, o.sem.h, o.sem.w))
            rc = ic_error_prefix(IC_ENOMEM, "tent: entropy gradient");
        if (!rc) {
            memset(dsem.data, 0, ic_tensor_numel(&dsem) * sizeof(float));
            double e = ic_tent_entropy(&o.sem, x->h, x->w, &dsem);
            if (s == 0 && ret_entropy)
                *ret_entropy = e;
            rc = ic_pdl_backward(t->net, tape, &dsem, NULL, NULL, arena);
        }
        if (!rc)
            ic_adam_step(&t->adam, lr, NULL);
        ic_arena_rewind(arena, m);
        if (rc)
            return rc;
    }
    return 0;
}

int ic_tent_forward(ic_tent *t, const ic_tensor *x, const ic_calib_opts *opts, int flags,
                    ic_arena *arena, ic_pdl_outputs *out, double *ret_entropy)
{
    int steps = opts && opts->tent_steps > 0 ? opts->tent_steps : IC_TENT_DEFAULT_STEPS;
    float lr = opts && opts->tent_lr > 0 ? opts->tent_lr : IC_TENT_DEFAULT_LR;
    if (steps > IC_TENT_MAX_STEPS)
        return ic_error_set(IC_EINVAL, "tent: %d steps, at most %d", steps, IC_TENT_MAX_STEPS);
    if (!x || x->n < 1 || x->c != 3 || x->h < 1 || x->w < 1)
        return ic_error_set(IC_EINVAL, "tent: input must be (N, 3, H, W)");
    ic_arena_mark m = ic_arena_get_mark(arena);
    int rc = adapt(t, x, steps, lr, arena, ret_entropy);
    ic_arena_rewind(arena, m);
    if (!rc) {
        ic_calib_opts tbn = {.mode = IC_CALIB_TBN};
        rc = ic_pdl_forward(t->net, x, &tbn, flags, arena, out);
    }
    restore(t);
    return rc;
}
