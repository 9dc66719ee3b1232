/* Shared by the corruption files: a float image in [0, 1] and the helpers
 * several corruptions use. Not part of the public API (corrupt.h). */
#ifndef IC_CORRUPT_INTERNAL_H
#define IC_CORRUPT_INTERNAL_H

#include <stddef.h>

#include "base/rng.h"

/* (h, w, 3) interleaved floats in [0, 1] (values may leave it between
 * steps, as numpy's do; the writer clips). */
typedef struct cimg {
    int w, h;
    float *p;
} cimg;

static inline size_t cimg_n(const cimg *x)
{
    return (size_t)x->w * (size_t)x->h * 3u;
}

/* Separable Gaussian blur of `planes` interleaved channels (3 for colour, 1
 * for a mask) with mirrored edges (scipy/skimage "reflect": ...cba|abc...),
 * taps out to 4 sigma. Returns 0 or IC_ENOMEM. */
int cx_gaussian(float *p, int w, int h, int planes, float sigma);

/* 2-D correlation of every channel with a k x k kernel (k odd), edges
 * mirrored without repeating the border (OpenCV's default, ...cb|abc...). */
int cx_filter2d(cimg *x, const float *kernel, int k);

/* ImageMagick-style motion blur of `planes` interleaved channels: a
 * one-sided line of 2 ceil(radius) + 1 taps weighted exp(-i^2 / (2 sigma^2)),
 * normalised, along `angle_deg`; edges clamped. */
int cx_motion_blur(float *p, int w, int h, int planes, float radius, float sigma, float angle_deg);

/* RGB <-> HSV in place (skimage's conventions, h, s, v in [0, 1]). */
void cx_rgb_to_hsv(cimg *x);
void cx_hsv_to_rgb(cimg *x);

/* Poisson sample of mean lambda >= 0. */
int cx_poisson(ic_rng *r, double lambda);

/* The corruptions, on the float image (corrupt_*.c). */
int cx_noise(cimg *x, int kind, int sev, ic_rng *r);   /* 0 gaussian, 1 shot, 2 impulse */
int cx_defocus(cimg *x, int sev);
int cx_motion(cimg *x, int sev, ic_rng *r);
int cx_glass(cimg *x, int sev, ic_rng *r);
int cx_gauss_blur(cimg *x, int sev);
int cx_fog(cimg *x, int sev, ic_rng *r);
int cx_snow(cimg *x, int sev, ic_rng *r);
int cx_spatter(cimg *x, int sev, ic_rng *r);
int cx_brightness(cimg *x, int sev);
int cx_contrast(cimg *x, int sev);
int cx_pixelate(cimg *x, int sev);
int cx_saturate(cimg *x, int sev);

#endif
