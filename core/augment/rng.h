/* Explicit-state random numbers for data augmentation.
 *
 * Augmentation runs in the training data loop on several threads, and a run
 * must be repeatable from its seed, so no function here touches global
 * state: every draw goes through an ic_aug_rng the caller owns (one per
 * worker, or one per image seeded from (seed, image index)). The generator
 * is xoshiro256** seeded through splitmix64; on top of it sit the
 * distributions AugMix needs (Gamma by Marsaglia-Tsang, Beta and Dirichlet
 * from Gammas) and the normals used by the noise ops. */
#ifndef IC_AUGMENT_RNG_H
#define IC_AUGMENT_RNG_H

#include <stdint.h>

/* xoshiro256** state. Copying the struct forks an identical stream. */
typedef struct ic_aug_rng {
    uint64_t s[4];
} ic_aug_rng;

/* Seeds `r` from (seed, stream): different streams of one seed are
 * independent for practical purposes, so a loader can use stream = image
 * index and get the same augmentation for an image whatever the thread. */
void ic_aug_rng_seed(ic_aug_rng *r, uint64_t seed, uint64_t stream);

/* Next 64 random bits. */
static inline uint64_t ic_aug_rng_next(ic_aug_rng *r)
{
    uint64_t *s = r->s;
    uint64_t x = s[1] * 5u;
    uint64_t result = ((x << 7) | (x >> 57)) * 9u;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = (s[3] << 45) | (s[3] >> 19);
    return result;
}

/* Uniform float in [0, 1) with 24 random bits. */
static inline float ic_aug_rng_uniform(ic_aug_rng *r)
{
    return (float)(ic_aug_rng_next(r) >> 40) * (1.0f / 16777216.0f);
}

/* Uniform double in [0, 1) with 53 random bits. */
static inline double ic_aug_rng_uniform_d(ic_aug_rng *r)
{
    return (double)(ic_aug_rng_next(r) >> 11) * (1.0 / 9007199254740992.0);
}

/* Uniform float in [lo, hi). */
float ic_aug_rng_range(ic_aug_rng *r, float lo, float hi);

/* Uniform integer in [0, n); 0 when n <= 1. */
int ic_aug_rng_int(ic_aug_rng *r, int n);

/* 1 with probability p (p <= 0 never, p >= 1 always). */
int ic_aug_rng_chance(ic_aug_rng *r, float p);

/* -1 or +1 with equal probability. */
float ic_aug_rng_sign(ic_aug_rng *r);

/* Standard normal sample (Box-Muller in double precision). */
double ic_aug_rng_normal(ic_aug_rng *r);

/* Gamma(alpha, 1) sample by Marsaglia and Tsang (2000); for alpha < 1 the
 * alpha + 1 sample is scaled by U^(1/alpha). Returns 0 for alpha <= 0 or
 * non-finite alpha (callers validate their parameters first). */
double ic_aug_rng_gamma(ic_aug_rng *r, double alpha);

/* Beta(a, b) sample as X / (X + Y) of two Gammas; 0.5 if both are 0
 * (possible only for tiny shapes, where the result is a coin flip anyway). */
double ic_aug_rng_beta(ic_aug_rng *r, double a, double b);

/* Writes a Dirichlet(alpha, ..., alpha) sample of k weights to w (they sum
 * to 1 up to rounding). Returns 0, or IC_EINVAL for k < 1, alpha <= 0 or
 * NULL w. */
int ic_aug_rng_dirichlet(ic_aug_rng *r, double alpha, int k, float *w);

#endif
