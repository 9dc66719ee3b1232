/* ic_aug_strong: the training-time augmentation policy (see policy.h). */
#include "augment/policy.h"

#include <math.h>

#include "base/err.h"

ic_aug_strong_params ic_aug_strong_params_default(void)
{
    ic_aug_strong_params p = {
        .geometric = 1,
        .geom = ic_aug_geom_params_default(),
        .p_identity = 0.1f,
        .p_deepaug = 0.25f,
        .p_augmix = 0.5f,
        .ra_n = 2,
        .m_min = 0.3f,
        .m_max = 1.0f,
        .augmix = ic_aug_augmix_params_default(),
        .deepaug_downscale = 2,
    };
    for (int i = 0; i < IC_AUG_NUM_OPS; i++)
        p.op_weights[i] = i >= IC_AUG_FOG ? 2.0f : 1.0f;
    return p;
}

static int prob_ok(float v)
{
    return v >= 0.0f && v <= 1.0f;
}

int ic_aug_strong(ic_aug_rng *rng, ic_image *img, int32_t **labels,
                  const ic_aug_strong_params *p)
{
    if (!rng || !img || !p)
        return ic_error_set(IC_EINVAL, "ic_aug_strong: NULL argument");
    if (!prob_ok(p->p_identity) || !prob_ok(p->p_deepaug) || !prob_ok(p->p_augmix))
        return ic_error_set(IC_EINVAL, "ic_aug_strong: probabilities must be in [0, 1]");
    if (!(p->m_min >= 0.0f && p->m_min <= p->m_max && p->m_max <= 1.0f))
        return ic_error_set(IC_EINVAL, "ic_aug_strong: magnitude range [%g, %g] not in [0, 1]",
                            (double)p->m_min, (double)p->m_max);
    if (ic_aug_pick_op(rng, p->op_weights) < 0)
        return ic_error_set(IC_EINVAL, "ic_aug_strong: invalid op weights");
    int rc;
    if (p->geometric) {
        rc = ic_aug_geometric(rng, img, labels, &p->geom);
        if (rc)
            return rc;
    }
    if (ic_aug_rng_chance(rng, p->p_identity))
        return 0;
    if (ic_aug_rng_chance(rng, p->p_deepaug)) {
        ic_aug_deepaug_params dp = {
            .magnitude = ic_aug_rng_range(rng, p->m_min, p->m_max),
            .downscale = p->deepaug_downscale,
        };
        rc = ic_aug_deepaug(rng, img, &dp);
        if (rc)
            return rc;
    }
    if (ic_aug_rng_chance(rng, p->p_augmix)) {
        ic_aug_augmix_params ap = p->augmix;
        ap.op_weights = p->op_weights;
        return ic_aug_augmix(rng, img, &ap);
    }
    return ic_aug_randaugment(rng, img, p->ra_n, ic_aug_rng_range(rng, p->m_min, p->m_max),
                              p->op_weights);
}
