/* The strong augmentation policy used to learn the calibration strengths.
 *
 * InstCal learns its calibration on source images augmented strongly enough
 * to look like the shifted domains it will meet (fog, night, rain, another
 * city). ic_aug_strong() is the one call the training loader makes per
 * sample: geometric ops on image + labels, then optionally the DeepAugment-
 * like net, then either AugMix or RandAugment, with every probability and
 * range in one parameter struct. docs/augmentation.md explains the
 * defaults. */
#ifndef IC_AUGMENT_POLICY_H
#define IC_AUGMENT_POLICY_H

#include <stdint.h>

#include "augment/augmix.h"
#include "augment/deepaug.h"
#include "augment/geometric.h"
#include "augment/photometric.h"
#include "augment/rng.h"

/* Everything ic_aug_strong() does, with its probabilities. */
typedef struct ic_aug_strong_params {
    int geometric;           /* nonzero: run ic_aug_geometric(geom) first */
    ic_aug_geom_params geom;
    float p_identity;        /* no photometric change at all (keeps clean
                                source images in the mix) */
    float p_deepaug;         /* DeepAugment-like net before the rest */
    float p_augmix;          /* AugMix; otherwise RandAugment */
    int ra_n;                /* RandAugment ops per image */
    float m_min, m_max;      /* magnitude ~ U(m_min, m_max) for RandAugment
                                and the DeepAugment net */
    ic_aug_augmix_params augmix; /* its op_weights are replaced by op_weights */
    int deepaug_downscale;   /* 1 or 2, see deepaug.h */
    float op_weights[IC_AUG_NUM_OPS]; /* relative op probabilities */
} ic_aug_strong_params;

/* Defaults: geometric on (ic_aug_geom_params_default), p_identity 0.1,
 * p_deepaug 0.25, p_augmix 0.5, RandAugment n 2 with m ~ U(0.3, 1), AugMix
 * defaults, downscale 2, op weights 1 for the classic ops and 2 for the six
 * domain-shift ops (so about half of all picks imitate fog, night, rain or
 * another city). */
ic_aug_strong_params ic_aug_strong_params_default(void);

/* Augments one training sample in place: `img` (8-bit RGB) and, when
 * `labels` and *labels are not NULL, its w x h id map (replaced by the
 * geometric ops, see geometric.h). Returns 0, IC_EINVAL (bad image or
 * parameters: probabilities outside [0, 1], m_min > m_max, ra_n outside
 * 0..16, invalid op weights or AugMix settings), IC_ELIMIT, IC_ENOMEM. On
 * failure the sample is valid and aligned but may be partly augmented. */
int ic_aug_strong(ic_aug_rng *rng, ic_image *img, int32_t **labels,
                  const ic_aug_strong_params *p);

#endif
