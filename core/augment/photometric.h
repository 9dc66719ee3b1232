/* RandAugment-style photometric operations on 8-bit RGB images.
 *
 * Every op has the same shape, ic_aug_op_fn: it changes an 8-bit, 3-channel
 * ic_image in place by an amount set by `magnitude` in [0, 1], drawing any
 * randomness (the sign of a brightness change, the noise, the fog's horizon)
 * from the caller's RNG. Magnitude 0 leaves the image exactly as it was for
 * every op, magnitude 1 is the strongest distortion the op makes; the
 * mapping of each op is documented below and in docs/augmentation.md.
 * Labels never change: these ops move no pixel.
 *
 * Two families share the enum. The classic RandAugment/AugMix list
 * (brightness ... JPEG quality) follows PIL's ImageEnhance/ImageOps
 * definitions. The domain-shift ops (fog, night, palette, rain, texture,
 * curves) imitate the target domains the calibration must survive: a
 * learned calibration only beats per-image statistics on fog, night, rain
 * and "another city" when training shows it shifts of those kinds. They are
 * declared in domain.h.
 *
 * All ops return 0, IC_EINVAL (NULL, not 8-bit RGB, magnitude outside [0, 1]
 * or NaN) or IC_ENOMEM (scratch memory refused; the image is unchanged). */
#ifndef IC_AUGMENT_PHOTOMETRIC_H
#define IC_AUGMENT_PHOTOMETRIC_H

#include "augment/rng.h"
#include "image/image.h"

/* Every photometric op, classic then domain-shift. */
typedef enum ic_aug_op {
    IC_AUG_BRIGHTNESS = 0,
    IC_AUG_CONTRAST,
    IC_AUG_COLOR,
    IC_AUG_GAMMA,
    IC_AUG_POSTERIZE,
    IC_AUG_SOLARIZE,
    IC_AUG_EQUALIZE,
    IC_AUG_AUTOCONTRAST,
    IC_AUG_SHARPNESS,
    IC_AUG_BLUR,
    IC_AUG_NOISE,
    IC_AUG_JPEG,
    IC_AUG_FOG,
    IC_AUG_NIGHT,
    IC_AUG_PALETTE,
    IC_AUG_RAIN,
    IC_AUG_TEXTURE,
    IC_AUG_CURVES,
    IC_AUG_NUM_OPS
} ic_aug_op;

/* Signature shared by every op (see the file comment for the contract). */
typedef int (*ic_aug_op_fn)(ic_aug_rng *rng, ic_image *img, float magnitude);

/* Lower-case name of an op ("brightness", "fog", ...); "unknown" outside
 * the enum. */
const char *ic_aug_op_name(ic_aug_op op);

/* Parses an op name. Returns 0, or IC_EINVAL naming the bad name. */
int ic_aug_op_parse(const char *name, ic_aug_op *out);

/* Applies op `op` (dispatch through the table of the functions below).
 * IC_EINVAL also for an op outside the enum. */
int ic_aug_apply(ic_aug_rng *rng, ic_image *img, ic_aug_op op, float magnitude);

/* Brightness: scale by 1 +- 0.8 m (sign drawn), PIL's blend with black. */
int ic_aug_brightness(ic_aug_rng *rng, ic_image *img, float magnitude);

/* Contrast: blend with the mean grey level by 1 +- 0.8 m (sign drawn). */
int ic_aug_contrast(ic_aug_rng *rng, ic_image *img, float magnitude);

/* Colour (saturation): blend with the luma image by 1 +- 0.9 m (sign drawn;
 * 0.1 is nearly grey, 1.9 is vivid). */
int ic_aug_color(ic_aug_rng *rng, ic_image *img, float magnitude);

/* Gamma: v' = 255 (v/255)^g with g = 2.5^(+-m) (sign drawn). */
int ic_aug_gamma(ic_aug_rng *rng, ic_image *img, float magnitude);

/* Posterize: keep 8 - round(4 m) high bits of every sample (4 at m = 1). */
int ic_aug_posterize(ic_aug_rng *rng, ic_image *img, float magnitude);

/* Solarize: invert every sample >= 256 - round(256 m) (all at m = 1). */
int ic_aug_solarize(ic_aug_rng *rng, ic_image *img, float magnitude);

/* Histogram equalisation per channel (PIL ImageOps.equalize), blended with
 * the original by m so that m = 0 is the identity like every other op. */
int ic_aug_equalize(ic_aug_rng *rng, ic_image *img, float magnitude);

/* Autocontrast: stretch each channel's [min, max] to [0, 255] (PIL
 * ImageOps.autocontrast without cutoff), blended with the original by m. */
int ic_aug_autocontrast(ic_aug_rng *rng, ic_image *img, float magnitude);

/* Sharpness: blend with PIL's 3x3 smoothing (centre 5, others 1, /13) by
 * 1 +- 0.9 m (sign drawn: above 1 sharpens, below 1 softens). The one-pixel
 * border is kept, as in PIL. */
int ic_aug_sharpness(ic_aug_rng *rng, ic_image *img, float magnitude);

/* Gaussian blur, sigma = 3 m pixels at 256 rows (proportional to height),
 * separable, edges replicated. */
int ic_aug_blur(ic_aug_rng *rng, ic_image *img, float magnitude);

/* Additive Gaussian noise, per sample, sigma = 0.1 m x 255 (approximated by
 * a sum of four uniforms: fast, and tails beyond 3.5 sigma do not matter). */
int ic_aug_noise(ic_aug_rng *rng, ic_image *img, float magnitude);

/* JPEG re-encoding in memory with libjpeg at quality round(95 - 87 m)
 * (8 at m = 1: blocks and ringing); the size never changes. */
int ic_aug_jpeg(ic_aug_rng *rng, ic_image *img, float magnitude);

/* The same round trip at an explicit libjpeg quality in [1, 100] (the
 * held-out corruptions of core/corrupt use it). */
int ic_aug_jpeg_quality(ic_image *img, int quality);

#endif
