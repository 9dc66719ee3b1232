/* A small deterministic random number generator (xoshiro256**, seeded by
 * splitmix64) with the distributions training needs. Every consumer passes
 * its own state, so runs are reproducible for a seed and threads never
 * share a generator. */
#ifndef IC_BASE_RNG_H
#define IC_BASE_RNG_H

#include <stdint.h>

typedef struct ic_rng {
    uint64_t s[4];
} ic_rng;

/* Seeds the generator; any seed (including 0) is fine. */
void ic_rng_seed(ic_rng *r, uint64_t seed);

uint64_t ic_rng_u64(ic_rng *r);
/* Uniform in [0, 1). */
double ic_rng_uniform(ic_rng *r);
/* Uniform integer in [lo, hi] (hi >= lo). */
int ic_rng_int(ic_rng *r, int lo, int hi);
/* Standard normal (Box-Muller). */
double ic_rng_normal(ic_rng *r);

#endif
