/* Held-out image corruptions: the families of the public robustness
 * benchmarks (ImageNet-C, and Cityscapes-C which applies them to street
 * scenes), for measuring calibration on shifts nobody trained for.
 *
 * NOTHING IN TRAINING MAY USE THIS MODULE: it exists for `instcal eval
 * --suite robust` (docs/results.md) and `instcal corrupt`. Training-time
 * augmentation lives in core/augment.
 *
 * Four families of corruptions, each at severities 1..5 with the parameter
 * tables of Hendrycks & Dietterich's ImageNet-C (made for 224-pixel images,
 * used unchanged at SynthCity's 256 rows):
 *   noise:   gaussian_noise, shot_noise, impulse_noise
 *   blur:    defocus_blur, motion_blur, glass_blur, gaussian_blur
 *   weather: fog (plasma fractal), snow, spatter, brightness
 *   digital: contrast, jpeg, pixelate, saturate
 * Frost (needs photographs of frost) and elastic / zoom blur (move pixels,
 * so the labels would need warping) are left out; spatter's water drops are
 * a simplified version (smoothed blobs of tinted light, no edge shading).
 * Each op works on 8-bit RGB in place and draws from its own generator, so
 * a corrupted image is a pure function of (image, corruption, severity,
 * seed). */
#ifndef IC_CORRUPT_CORRUPT_H
#define IC_CORRUPT_CORRUPT_H

#include <stdint.h>

#include "image/image.h"

typedef enum ic_corruption {
    IC_CORRUPT_GAUSSIAN_NOISE,
    IC_CORRUPT_SHOT_NOISE,
    IC_CORRUPT_IMPULSE_NOISE,
    IC_CORRUPT_DEFOCUS_BLUR,
    IC_CORRUPT_MOTION_BLUR,
    IC_CORRUPT_GLASS_BLUR,
    IC_CORRUPT_GAUSSIAN_BLUR,
    IC_CORRUPT_FOG,
    IC_CORRUPT_SNOW,
    IC_CORRUPT_SPATTER,
    IC_CORRUPT_BRIGHTNESS,
    IC_CORRUPT_CONTRAST,
    IC_CORRUPT_JPEG,
    IC_CORRUPT_PIXELATE,
    IC_CORRUPT_SATURATE,
    IC_CORRUPT_COUNT
} ic_corruption;

#define IC_CORRUPT_FAMILIES 4

/* "gaussian_noise", ..., "saturate". */
const char *ic_corruption_name(ic_corruption c);
/* Family index 0..3 of a corruption, and the family names "noise", "blur",
 * "weather", "digital". */
int ic_corruption_family(ic_corruption c);
const char *ic_corruption_family_name(int family);
/* Parses a corruption or family name: *family = -1 for a corruption, else
 * the family (and *c undefined). Returns 0 or IC_EINVAL listing the names. */
int ic_corruption_parse(const char *name, ic_corruption *c, int *family);
/* The k-th corruption of a family (k modulo its size) and the family size. */
ic_corruption ic_corruption_of_family(int family, int k);
int ic_corruption_family_size(int family);

/* Applies corruption c at severity 1..5 to an 8-bit RGB image in place.
 * Returns 0, IC_EINVAL (bad image, corruption or severity), IC_ENOMEM (the
 * image is then unchanged). */
int ic_corrupt(ic_image *img, ic_corruption c, int severity, uint64_t seed);

#endif
