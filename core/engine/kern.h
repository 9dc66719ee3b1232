/* The engine's register tile: IC_KERN_MR pixels by IC_KERN_NR = 32 output
 * channels (two channel blocks), a K loop over kernel taps and input
 * channel blocks, and the fused write-out. Shared by the direct
 * convolution (engine/conv_direct.c) and Winograd's 36 products
 * (engine/conv_wino.c).
 *
 * A operand: blocked activations, read by broadcasting one float per pixel
 * and input channel: pixel i of the tile, channel k of block cb and tap t is
 *   a[t_off[t] + cb * a_cb + i * a_px + k],
 * so with the blocked layout every broadcast is a constant displacement
 * from one pointer (a_px is 16 floats per pixel, 32 for stride 2). B
 * operand: weights packed once at load as (tap, input channel, 32 output
 * channels), one tap `b_tap` floats after the other. 28 accumulators (with
 * AVX-512) stay in registers for the whole K loop; the write-out then
 * applies, per output channel and while the tile is in registers,
 *   statistics: sum and sum of squares of (acc - shift) (calibrated BN),
 *   y = acc * scale + bias (BN folded into a scale/shift, or a conv bias),
 *   + residual, then ReLU. */
#ifndef IC_ENGINE_KERN_H
#define IC_ENGINE_KERN_H

#include <stddef.h>

#include "engine/v16.h"

#define IC_KERN_MR 14
#define IC_KERN_NR 32

/* What the write-out of one 32-channel column of tiles does. */
typedef struct ic_kern_out {
    const float *scale, *bias; /* 32 each, or NULL (1 / 0) */
    int relu;
    double *stats;             /* 64: sums [32] then sums of squares [32], or NULL */
    const float *shift;        /* 32, needed with stats */
} ic_kern_out;

typedef struct ic_kern_tile {
    ic_v16 acc[IC_KERN_MR][2];
} ic_kern_tile;

/* acc += the K loop over taps [0, ntap) and `ncb` input blocks. With
 * `prefetch` (a constant at each call), the pixels of the next tile, IC_KERN_MR
 * pixels on, are fetched into L2 as each block is read: a 1x1 conv with 256
 * to 2048 input channels reads 16 to 128 blocks, each its own stream, more
 * than the hardware prefetchers follow (R-52 at 512x1024 ran 4-6% faster;
 * docs/benchmarks.md). One prefetch per k step covers the tile's pixels. */
_Static_assert(IC_KERN_MR <= 16, "one prefetch per k step must reach every pixel of a tile");
static inline __attribute__((always_inline)) void
ic_kern_loop(ic_kern_tile *restrict t, const float *a, const long *t_off, int ntap, size_t a_cb,
             const int a_px, int ncb, const float *b, size_t b_tap, const int prefetch)
{
    for (int tap = 0; tap < ntap; tap++) {
        const float *at = a + t_off[tap];
        const float *bt = b + (size_t)tap * b_tap;
        for (int cb = 0; cb < ncb; cb++) {
            const float *ac = at + (size_t)cb * a_cb;
#pragma GCC unroll 16
            for (int k = 0; k < 16; k++) {
                const ic_v16 b0 = ic_v16_load(bt), b1 = ic_v16_load(bt + 16);
                bt += IC_KERN_NR;
                if (prefetch && k < IC_KERN_MR)
                    __builtin_prefetch(ac + (IC_KERN_MR + k) * a_px, 0, 2);
#pragma GCC unroll 14
                for (int i = 0; i < IC_KERN_MR; i++) {
                    const ic_v16 ai = ic_v16_set1(ac[i * a_px + k]);
                    t->acc[i][0] += ai * b0;
                    t->acc[i][1] += ai * b1;
                }
            }
        }
    }
}

static inline void ic_kern_zero(ic_kern_tile *t)
{
    for (int i = 0; i < IC_KERN_MR; i++)
        t->acc[i][0] = t->acc[i][1] = (ic_v16){0};
}

/* Loads the partial sums of a previous K chunk: pixel i of block h at
 * y[h] + i * 16 (y[1] NULL: one block). */
static inline void ic_kern_load(ic_kern_tile *t, int mr, float *const y[2])
{
    ic_kern_zero(t);
    for (int i = 0; i < mr; i++)
        for (int h = 0; h < 2 && y[h]; h++)
            t->acc[i][h] = ic_v16_load(y[h] + (size_t)i * 16);
}

/* Stores raw partial sums (a K chunk that is not the last). */
static inline void ic_kern_store_raw(const ic_kern_tile *t, int mr, float *const y[2])
{
    for (int i = 0; i < mr; i++)
        for (int h = 0; h < 2 && y[h]; h++)
            ic_v16_store(y[h] + (size_t)i * 16, t->acc[i][h]);
}

/* The fused write-out of the first mr pixels; res (same layout as y, may
 * be NULL) is added before the ReLU. */
static inline void ic_kern_store(const ic_kern_tile *t, int mr, float *const y[2],
                                 const float *const res[2], const ic_kern_out *o)
{
    for (int h = 0; h < 2 && y[h]; h++) {
        const ic_v16 s = o->scale ? ic_v16_load(o->scale + 16 * h) : ic_v16_set1(1.0f);
        const ic_v16 b = o->bias ? ic_v16_load(o->bias + 16 * h) : (ic_v16){0};
        if (o->stats) {
            const ic_v16 k = ic_v16_load(o->shift + 16 * h);
            ic_v16 s1 = {0}, s2 = {0};
            for (int i = 0; i < mr; i++) {
                const ic_v16 d = t->acc[i][h] - k;
                s1 += d;
                s2 += d * d;
            }
            for (int l = 0; l < 16; l++) {
                o->stats[16 * h + l] += s1[l];
                o->stats[32 + 16 * h + l] += s2[l];
            }
        }
        for (int i = 0; i < mr; i++) {
            ic_v16 v = t->acc[i][h] * s + b;
            if (res && res[h])
                v += ic_v16_load(res[h] + (size_t)i * 16);
            if (o->relu)
                v = ic_v16_relu(v);
            ic_v16_store(y[h] + (size_t)i * 16, v);
        }
    }
}

#endif
