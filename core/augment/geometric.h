/* Geometric augmentation of an image together with its panoptic labels.
 *
 * Training samples are an 8-bit RGB ic_image plus an int32 id map of the
 * same w x h (COCO-panoptic ids, 0 = void). Every op here moves the image
 * and the labels by the same mapping so they stay aligned: the image is
 * resampled bilinearly, the labels by nearest neighbour (ids must never be
 * blended), both sampling source position (x + 0.5) * in / out - 0.5 as
 * ic_image_resize_bilinear() does. Ops replace img->data (and *labels) with
 * new ic_malloc'd buffers, freeing the old ones; on failure both are left as
 * they were. `labels` may be NULL, or point to NULL, for an image alone. */
#ifndef IC_AUGMENT_GEOMETRIC_H
#define IC_AUGMENT_GEOMETRIC_H

#include <stdint.h>

#include "augment/rng.h"
#include "image/image.h"

/* Largest side a scale may produce; protects the loader from a bad factor. */
#define IC_AUG_MAX_SIDE 16384

/* Mirrors image and labels left-right in place. Returns 0 or IC_EINVAL (not
 * an 8-bit image with 1..4 channels). */
int ic_aug_hflip(ic_image *img, int32_t *labels);

/* Resizes both by `factor` to round(w f) x round(h f) (at least 1 pixel).
 * Returns 0, IC_EINVAL (bad image, factor <= 0 or not finite), IC_ELIMIT
 * (a side above IC_AUG_MAX_SIDE), IC_ENOMEM. */
int ic_aug_scale(ic_image *img, int32_t **labels, float factor);

/* Cuts an out_w x out_h window at a uniformly random position. Along a side
 * where the image is smaller than the window it is placed at a random offset
 * inside it and the rest is filled with `fill` (RGB; NULL = the ImageNet mean
 * colour, which normalises to 0) and label 0 (void). Returns 0, IC_EINVAL,
 * IC_ENOMEM. */
int ic_aug_crop(ic_aug_rng *rng, ic_image *img, int32_t **labels, int out_w, int out_h,
                const uint8_t fill[3]);

/* Parameters of the geometric pipeline (scale, then crop, then flip). */
typedef struct ic_aug_geom_params {
    float scale_min, scale_max; /* factor ~ U(min, max); both 1 = no scale */
    int crop_w, crop_h;         /* output size; 0 = no crop */
    float p_flip;               /* probability of a horizontal flip */
    uint8_t fill[3];            /* padding colour */
} ic_aug_geom_params;

/* Defaults for 256 x 512 training: scale U(0.5, 2.0) as detectron2's
 * Cityscapes recipe (short side 512..2048 for 1024-row images), crop
 * 512 x 256, flip with p 0.5, ImageNet mean padding. */
ic_aug_geom_params ic_aug_geom_params_default(void);

/* Runs scale, crop and flip as configured. Returns the first failing op's
 * code (IC_EINVAL also for a bad parameter: scale_min > scale_max, a
 * non-positive factor, a negative crop size, p_flip outside [0, 1]); on
 * failure the image and labels are unchanged. */
int ic_aug_geometric(ic_aug_rng *rng, ic_image *img, int32_t **labels,
                     const ic_aug_geom_params *p);

#endif
