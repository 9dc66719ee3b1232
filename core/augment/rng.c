/* Seeding and distributions of the augmentation RNG (see rng.h). */
#include "augment/rng.h"

#include <math.h>
#include <stddef.h>

#include "base/err.h"

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

void ic_aug_rng_seed(ic_aug_rng *r, uint64_t seed, uint64_t stream)
{
    /* Mix the stream through one splitmix step of its own so that
     * (seed, stream) and (seed + 1, stream - 1) do not share a state. */
    uint64_t st = stream;
    uint64_t x = seed ^ splitmix64(&st);
    for (int i = 0; i < 4; i++)
        r->s[i] = splitmix64(&x);
    if (!(r->s[0] | r->s[1] | r->s[2] | r->s[3]))
        r->s[0] = 1; /* the all-zero state is a fixed point */
}

float ic_aug_rng_range(ic_aug_rng *r, float lo, float hi)
{
    return lo + (hi - lo) * ic_aug_rng_uniform(r);
}

int ic_aug_rng_int(ic_aug_rng *r, int n)
{
    if (n <= 1)
        return 0;
    /* Lemire's multiply-shift; the bias (n / 2^32) is irrelevant here. */
    return (int)(((ic_aug_rng_next(r) >> 32) * (uint64_t)n) >> 32);
}

int ic_aug_rng_chance(ic_aug_rng *r, float p)
{
    if (p <= 0.0f)
        return 0;
    if (p >= 1.0f)
        return 1;
    return ic_aug_rng_uniform(r) < p;
}

float ic_aug_rng_sign(ic_aug_rng *r)
{
    return (ic_aug_rng_next(r) >> 63) ? 1.0f : -1.0f;
}

double ic_aug_rng_normal(ic_aug_rng *r)
{
    double u1 = 1.0 - ic_aug_rng_uniform_d(r); /* (0, 1]: log is finite */
    double u2 = ic_aug_rng_uniform_d(r);
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

double ic_aug_rng_gamma(ic_aug_rng *r, double alpha)
{
    if (!(alpha > 0.0) || !isfinite(alpha))
        return 0.0;
    if (alpha < 1.0) {
        /* Gamma(a) = Gamma(a + 1) * U^(1/a) (Marsaglia-Tsang's boost). */
        double g = ic_aug_rng_gamma(r, alpha + 1.0);
        double u = 1.0 - ic_aug_rng_uniform_d(r);
        return g * pow(u, 1.0 / alpha);
    }
    const double d = alpha - 1.0 / 3.0;
    const double c = 1.0 / sqrt(9.0 * d);
    for (;;) {
        double x, v;
        do {
            x = ic_aug_rng_normal(r);
            v = 1.0 + c * x;
        } while (v <= 0.0);
        v = v * v * v;
        double u = 1.0 - ic_aug_rng_uniform_d(r);
        if (u < 1.0 - 0.0331 * x * x * x * x)
            return d * v;
        if (log(u) < 0.5 * x * x + d * (1.0 - v + log(v)))
            return d * v;
    }
}

double ic_aug_rng_beta(ic_aug_rng *r, double a, double b)
{
    double x = ic_aug_rng_gamma(r, a);
    double y = ic_aug_rng_gamma(r, b);
    if (x + y <= 0.0)
        return 0.5;
    return x / (x + y);
}

int ic_aug_rng_dirichlet(ic_aug_rng *r, double alpha, int k, float *w)
{
    if (!w || k < 1 || !(alpha > 0.0) || !isfinite(alpha))
        return ic_error_set(IC_EINVAL, "dirichlet: need k >= 1 and alpha > 0 (k %d, alpha %g)",
                            k, alpha);
    double sum = 0.0;
    double g[64];
    /* Large k is not an AugMix setting; draw in chunks through the stack
     * buffer anyway so no allocation is needed. */
    double *tmp = k <= 64 ? g : NULL;
    for (int i = 0; i < k; i++) {
        double v = ic_aug_rng_gamma(r, alpha);
        if (tmp)
            tmp[i] = v;
        else
            w[i] = (float)v;
        sum += v;
    }
    if (sum <= 0.0) {
        /* Every gamma underflowed (alpha far below 1): one corner wins. */
        int pick = ic_aug_rng_int(r, k);
        for (int i = 0; i < k; i++)
            w[i] = i == pick ? 1.0f : 0.0f;
        return 0;
    }
    for (int i = 0; i < k; i++)
        w[i] = (float)((tmp ? tmp[i] : (double)w[i]) / sum);
    return 0;
}
