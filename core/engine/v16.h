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

/* A shuffle's 16 lane indices as one macro argument. */
#define IC_V16_ARGS(...) __VA_ARGS__

/* One stage of ic_v16_transpose: rows i and i + h (i & h == 0) swap bit h
 * of the row number with bit h of the lane number. */
#define IC_V16_TSTAGE(v, h, LO, HI)                                                   \
    for (int i_ = 0; i_ < 16; i_++)                                                \
        if (!(i_ & (h))) {                                                         \
            const ic_v16 a_ = (v)[i_], b_ = (v)[i_ + (h)];                         \
            (v)[i_] = __builtin_shufflevector(a_, b_, LO);                         \
            (v)[i_ + (h)] = __builtin_shufflevector(a_, b_, HI);                   \
        }

/* In-place transpose of the 16x16 matrix whose rows are v[0..15]: afterwards
 * lane j of v[i] is what lane i of v[j] was (4 stages of 16 shuffles). */
static inline void ic_v16_transpose(ic_v16 v[16])
{
    IC_V16_TSTAGE(v, 8, IC_V16_ARGS(0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23),
                  IC_V16_ARGS(8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31));
    IC_V16_TSTAGE(v, 4, IC_V16_ARGS(0, 1, 2, 3, 16, 17, 18, 19, 8, 9, 10, 11, 24, 25, 26, 27),
                  IC_V16_ARGS(4, 5, 6, 7, 20, 21, 22, 23, 12, 13, 14, 15, 28, 29, 30, 31));
    IC_V16_TSTAGE(v, 2, IC_V16_ARGS(0, 1, 16, 17, 4, 5, 20, 21, 8, 9, 24, 25, 12, 13, 28, 29),
                  IC_V16_ARGS(2, 3, 18, 19, 6, 7, 22, 23, 10, 11, 26, 27, 14, 15, 30, 31));
    IC_V16_TSTAGE(v, 1, IC_V16_ARGS(0, 16, 2, 18, 4, 20, 6, 22, 8, 24, 10, 26, 12, 28, 14, 30),
                  IC_V16_ARGS(1, 17, 3, 19, 5, 21, 7, 23, 9, 25, 11, 27, 13, 29, 15, 31));
}

#endif
