/* Photometric ops that imitate the target domains of the benchmark.
 *
 * The classic RandAugment list (photometric.h) barely covers the shifts the
 * learned calibration is judged on: a trial of the method lost to plain
 * instance statistics on night and "another city" style when trained with
 * photometric augmentation alone. These ops model those shifts directly:
 * haze with a depth proxy, low light with a colour cast and sensor noise,
 * another camera's colour response and palette, rain streaks, and smooth
 * colour textures. Same contract as every ic_aug_op_fn (see photometric.h):
 * in place on 8-bit RGB, magnitude in [0, 1], 0 = identity, randomness from
 * the caller's RNG. */
#ifndef IC_AUGMENT_DOMAIN_H
#define IC_AUGMENT_DOMAIN_H

#include "augment/rng.h"
#include "image/image.h"

/* Haze/fog: I = J t + A (1 - t) with t = exp(-beta d). The depth proxy d
 * grows smoothly towards a random horizon row (a ground plane seen from a
 * car) and stays at its maximum above it, modulated by a smooth random field
 * so that the fog is patchy; A is a light grey with a slight random tint;
 * the optical depth at the horizon is m x U(1.2, 3). */
int ic_aug_fog(ic_aug_rng *rng, ic_image *img, float magnitude);

/* Night: gamma 1 + 1.2 m, gain 1 - 0.8 m, a blue (moonlight) or orange
 * (sodium lamps) cast of strength m, then sensor noise whose sigma grows
 * with m (visible in the dark parts, as on a real sensor at high ISO). */
int ic_aug_night(ic_aug_rng *rng, ic_image *img, float magnitude);

/* Palette shift ("another camera"): a hue rotation by up to +-120 m degrees
 * in YIQ space followed by a random channel-mixing matrix whose
 * off-diagonal weights grow with m, with rows normalised to keep grey grey
 * on average. */
int ic_aug_palette(ic_aug_rng *rng, ic_image *img, float magnitude);

/* Rain: overall dimming and desaturation (overcast), a slight blur, and
 * thin bright slanted streaks (count and opacity grow with m; one wind
 * angle per image with small jitter). */
int ic_aug_rain(ic_aug_rng *rng, ic_image *img, float magnitude);

/* Low-frequency colour texture: the image is multiplied by smooth random
 * log-normal gain fields (a coarse per-channel tint, log sigma 0.12 m; a
 * finer shared shading, 0.12 m; finer per-channel blotches, 0.05 m), the
 * kind of large-scale tint and shading change another city's facades, roads
 * and lighting bring. */
int ic_aug_texture(ic_aug_rng *rng, ic_image *img, float magnitude);

/* Camera response: a random smooth monotone tone curve per channel (a
 * blend of power and S-curves), strength m. */
int ic_aug_curves(ic_aug_rng *rng, ic_image *img, float magnitude);

#endif
