/* RandAugment and AugMix over the photometric op table (see augmix.h). */
#include "augment/augmix.h"

#include <math.h>
#include <string.h>

#include "augment/aug_internal.h"
#include "base/alloc.h"
#include "base/err.h"

int ic_aug_pick_op(ic_aug_rng *rng, const float op_weights[IC_AUG_NUM_OPS])
{
    if (!op_weights)
        return ic_aug_rng_int(rng, IC_AUG_NUM_OPS);
    double total = 0.0;
    for (int i = 0; i < IC_AUG_NUM_OPS; i++) {
        if (!(op_weights[i] >= 0.0f) || !isfinite(op_weights[i]))
            return -1;
        total += op_weights[i];
    }
    if (!(total > 0.0))
        return -1;
    double u = ic_aug_rng_uniform_d(rng) * total;
    int last = 0;
    for (int i = 0; i < IC_AUG_NUM_OPS; i++) {
        if (op_weights[i] <= 0.0f)
            continue;
        last = i;
        if (u < op_weights[i])
            return i;
        u -= op_weights[i];
    }
    return last; /* rounding left u just above the last weight */
}

/* Validates the weights once so that a bad table is IC_EINVAL up front. */
static int check_weights(const float *w, const char *who)
{
    if (!w)
        return 0;
    ic_aug_rng probe;
    ic_aug_rng_seed(&probe, 0, 0);
    if (ic_aug_pick_op(&probe, w) < 0)
        return ic_error_set(IC_EINVAL, "%s: op weights must be >= 0, finite, not all 0", who);
    return 0;
}

int ic_aug_randaugment(ic_aug_rng *rng, ic_image *img, int n_ops, float magnitude,
                       const float op_weights[IC_AUG_NUM_OPS])
{
    if (!rng)
        return ic_error_set(IC_EINVAL, "randaugment: NULL rng");
    int rc = aug_check_rgb(img, magnitude, "randaugment");
    if (rc)
        return rc;
    if (n_ops < 0 || n_ops > 16)
        return ic_error_set(IC_EINVAL, "randaugment: n_ops %d outside 0..16", n_ops);
    rc = check_weights(op_weights, "randaugment");
    if (rc)
        return rc;
    for (int i = 0; i < n_ops; i++) {
        rc = ic_aug_apply(rng, img, (ic_aug_op)ic_aug_pick_op(rng, op_weights), magnitude);
        if (rc)
            return rc;
    }
    return 0;
}

ic_aug_augmix_params ic_aug_augmix_params_default(void)
{
    ic_aug_augmix_params p = {
        .width = 3,
        .depth_min = 1,
        .depth_max = 3,
        .alpha = 1.0f,
        .magnitude = 1.0f,
        .op_weights = NULL,
    };
    return p;
}

int ic_aug_augmix(ic_aug_rng *rng, ic_image *img, const ic_aug_augmix_params *p)
{
    if (!rng || !p)
        return ic_error_set(IC_EINVAL, "augmix: NULL argument");
    int rc = aug_check_rgb(img, p->magnitude, "augmix");
    if (rc)
        return rc;
    if (p->width < 1 || p->width > 8 || p->depth_min < 1 || p->depth_max < p->depth_min ||
        p->depth_max > 8)
        return ic_error_set(IC_EINVAL, "augmix: width %d / depth %d..%d out of range", p->width,
                            p->depth_min, p->depth_max);
    if (!(p->alpha > 0.0f) || !isfinite(p->alpha))
        return ic_error_set(IC_EINVAL, "augmix: alpha %g must be positive", (double)p->alpha);
    rc = check_weights(p->op_weights, "augmix");
    if (rc)
        return rc;
    const size_t n = aug_nsamples(img);
    float *acc = ic_malloc(n * sizeof *acc);
    uint8_t *chain = ic_malloc(n);
    if (!acc || !chain) {
        ic_free(acc);
        ic_free(chain);
        return ic_error_set(IC_ENOMEM, "augmix: out of memory for %dx%d", img->w, img->h);
    }
    float ws[8];
    ic_aug_rng_dirichlet(rng, p->alpha, p->width, ws);
    const float b = (float)ic_aug_rng_beta(rng, p->alpha, p->alpha);
    memset(acc, 0, n * sizeof *acc);
    ic_image ci = *img;
    ci.data = chain;
    for (int k = 0; k < p->width; k++) {
        memcpy(chain, img->data, n);
        int depth = p->depth_min + ic_aug_rng_int(rng, p->depth_max - p->depth_min + 1);
        for (int d = 0; d < depth; d++) {
            int op = ic_aug_pick_op(rng, p->op_weights);
            float m = p->magnitude * ic_aug_rng_range(rng, 0.1f, 1.0f);
            rc = ic_aug_apply(rng, &ci, (ic_aug_op)op, m);
            if (rc)
                goto done;
        }
        const float wk = ws[k];
        for (size_t i = 0; i < n; i++)
            acc[i] += wk * (float)chain[i];
    }
    {
        uint8_t *o = img->data;
        for (size_t i = 0; i < n; i++)
            o[i] = aug_u8((1.0f - b) * (float)o[i] + b * acc[i]);
    }
done:
    ic_free(acc);
    ic_free(chain);
    return rc;
}
