/* Random compositions of photometric ops: RandAugment and AugMix.
 *
 * RandAugment (Cubuk et al. 2020) applies n ops drawn at random, each at one
 * shared magnitude. AugMix (Hendrycks et al. 2020) runs k independent
 * chains of 1..3 random ops on copies of the image, mixes the chains with
 * Dirichlet(alpha) weights and blends the mixture with the original by a
 * Beta(alpha, alpha) factor, which produces diverse images that keep the
 * original's structure. Both pick ops by relative weights (NULL = uniform
 * over every op), so a caller can favour the domain-shift ops or leave an
 * op out with weight 0. Image contract as photometric.h: 8-bit RGB, in
 * place, unchanged on failure. */
#ifndef IC_AUGMENT_AUGMIX_H
#define IC_AUGMENT_AUGMIX_H

#include "augment/photometric.h"
#include "augment/rng.h"
#include "image/image.h"

/* Draws one op index by the relative weights (NULL = uniform). Returns the
 * op, or -1 when the weights are invalid (negative, NaN, all zero). */
int ic_aug_pick_op(ic_aug_rng *rng, const float op_weights[IC_AUG_NUM_OPS]);

/* Applies n_ops ops (drawn with replacement by op_weights, NULL = uniform)
 * at `magnitude` in [0, 1]. Returns 0, IC_EINVAL (bad image, n_ops < 0 or
 * above 16, magnitude outside [0, 1], invalid weights), IC_ENOMEM. */
int ic_aug_randaugment(ic_aug_rng *rng, ic_image *img, int n_ops, float magnitude,
                       const float op_weights[IC_AUG_NUM_OPS]);

/* AugMix settings. */
typedef struct ic_aug_augmix_params {
    int width;            /* chains k (1..8) */
    int depth_min;        /* ops per chain drawn from [depth_min, depth_max] */
    int depth_max;        /* (1 <= depth_min <= depth_max <= 8) */
    float alpha;          /* Dirichlet and Beta concentration (> 0) */
    float magnitude;      /* each op's magnitude ~ magnitude x U(0.1, 1) */
    const float *op_weights; /* IC_AUG_NUM_OPS relative weights, NULL = uniform */
} ic_aug_augmix_params;

/* The paper's defaults: width 3, depth 1..3, alpha 1, magnitude 1
 * (AugMix's "severity 3" of 10 is mild; our magnitudes are already scaled to
 * plausible shifts at 1), uniform ops. */
ic_aug_augmix_params ic_aug_augmix_params_default(void);

/* AugMix in place. Returns 0, IC_EINVAL (bad image or parameters),
 * IC_ENOMEM (image unchanged), or the first failing op's code. */
int ic_aug_augmix(ic_aug_rng *rng, ic_image *img, const ic_aug_augmix_params *p);

#endif
