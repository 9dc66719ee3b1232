/* 16-lane float vectors for the engine's kernels (GCC/Clang vector
 * extensions). One vector is one channel block of a blocked activation
 * (engine/blk.h): 16 channels of one pixel. With AVX-512 it is one
 * register; other targets compile it to two or four narrower registers,
 * which is correct but slow (the blocked engine is only the default where
 * AVX-512 is, see ic_pdl_engine_default in model/pdl_engine.c). The
 * engine's files are compiled with -ffp-contract=fast, so `acc += a * b`
 * becomes one fused multiply-add. */
#ifndef IC_ENGINE_V16_H
#define IC_ENGINE_V16_H

#include <string.h>

typedef float ic_v16 __attribute__((vector_size(64)));
typedef int ic_v16i __attribute__((vector_size(64)));

static inline ic_v16 ic_v16_load(const float *p)
{
    ic_v16 v;
    memcpy(&v, p, sizeof v);
    return v;
}

static inline void ic_v16_store(float *p, ic_v16 v)
{
    memcpy(p, &v, sizeof v);
}

static inline ic_v16 ic_v16_set1(float x)
{
    return (ic_v16){x, x, x, x, x, x, x, x, x, x, x, x, x, x, x, x};
}

/* max(v, 0) lane-wise (NaN lanes become 0, as the NCHW epilogue's v > 0 test) */
static inline ic_v16 ic_v16_relu(ic_v16 v)
{
    const ic_v16 zero = {0};
    return (ic_v16)((ic_v16i)v & (ic_v16i)(v > zero));
}

/* lane-wise a > b ? a : b */
static inline ic_v16 ic_v16_max(ic_v16 a, ic_v16 b)
{
    const ic_v16i m = a > b;
    return (ic_v16)(((ic_v16i)a & m) | ((ic_v16i)b & ~m));
}

#endif
