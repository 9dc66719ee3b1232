/* Helpers shared by the augmentation files; not part of the public API.
 *
 * They work on raw 8-bit interleaved RGB buffers so that each op can be a
 * few lines of arithmetic around them. Functions that need scratch memory
 * take it from ic_malloc and return IC_ENOMEM, leaving the pixels as they
 * were, so that every public op keeps the "unchanged on failure" promise. */
#ifndef IC_AUGMENT_AUG_INTERNAL_H
#define IC_AUGMENT_AUG_INTERNAL_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>

#include "augment/rng.h"
#include "image/image.h"

/* Checks the common preconditions of a photometric op. Returns 0 or
 * IC_EINVAL with a message that starts with `who`. */
int aug_check_rgb(const ic_image *img, float magnitude, const char *who);

/* Round to nearest and clamp to 0..255. */
static inline uint8_t aug_u8(float v)
{
    v = v < 0.0f ? 0.0f : v > 255.0f ? 255.0f : v;
    return (uint8_t)(v + 0.5f);
}

/* Number of samples (w * h * 3) of an image that passed aug_check_rgb. */
static inline size_t aug_nsamples(const ic_image *img)
{
    return (size_t)img->w * (size_t)img->h * 3u;
}

/* Maps every sample through one table per channel. */
void aug_apply_lut3(ic_image *img, uint8_t lut[3][256]);

/* Gaussian blur of an interleaved RGB buffer in place (separable, edges
 * replicated). sigma <= 0.2 does nothing. Returns 0 or IC_ENOMEM. */
int aug_blur_rgb(uint8_t *rgb, int w, int h, float sigma);

/* Adds zero-mean noise of standard deviation `sigma` (0..255 units) to n
 * samples, clamping. The noise is a scaled sum of four uniform bytes: the
 * ops need speed and a bell shape, not exact Gaussian tails. */
void aug_add_noise(ic_aug_rng *rng, uint8_t *data, size_t n, float sigma);

/* Fills out (h x w x ch floats, interleaved) with a smooth random field:
 * values scale * N(0, 1) on a (gy + 1) x (gx + 1) grid spanning the image,
 * exponentiated when `exp_grid` (a log-normal gain field: exponentiating
 * the grid instead of every pixel saves an expf per sample), interpolated
 * with smoothstep weights (no visible creases). Returns 0 or IC_ENOMEM. */
int aug_smooth_field(ic_aug_rng *rng, float *out, int w, int h, int ch, int gx, int gy,
                     float scale, int exp_grid);

#endif
