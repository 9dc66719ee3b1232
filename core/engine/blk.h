/* Blocked activations: the engine's layout, converted from and to NCHW only
 * at the network's edges.
 *
 * A blocked tensor is an ic_tensor whose shape fields keep the logical
 * (N, C, H, W) while its data is laid out (N, CB, H, W, 16) with
 * CB = ceil(C / 16) (planes one pixel apart, see ic_blk_pstride): the 16
 * channels of a block are one vector per pixel,
 * so per-channel work (bias, BN scale/shift, statistics) is lane-wise and a
 * kernel reads a pixel's block with one load. Channels past C in the last
 * block are kept at zero. Every blocked buffer is followed by
 * IC_BLK_SLACK floats that kernels may read (never use): a register tile of
 * pixels may run past the end of a plane.
 *
 * A pending affine is a per-(image, channel) y = x * scale + bias, then an
 * optional ReLU, that the producer could not apply yet (calibrated BN needs
 * the statistics of its whole output first); the consumers apply it as they
 * read (engine/eops.h, engine/conv.h). */
#ifndef IC_ENGINE_BLK_H
#define IC_ENGINE_BLK_H

#include <stddef.h>

#include "base/tensor.h"

#define IC_BLK 16
/* floats a kernel may read past a blocked buffer's last pixel */
#define IC_BLK_SLACK ((size_t)(16 * 2 * 16 + 64))

static inline int ic_blk_cb(int c)
{
    return (c + IC_BLK - 1) / IC_BLK;
}

/* Floats from one (image, channel block) plane to the next: H * W * 16
 * plus one pixel of skew. Without it, planes of a power-of-two size all
 * start on the same cache sets, and a register tile that writes 16 output
 * blocks at once thrashed L1 (res2's 64 -> 256 1x1 ran at 88 GFLOPS). */
static inline size_t ic_blk_pstride_hw(int h, int w)
{
    return (size_t)h * (size_t)w * IC_BLK + IC_BLK;
}

static inline size_t ic_blk_pstride(const ic_tensor *t)
{
    return ic_blk_pstride_hw(t->h, t->w);
}

/* The plane of channel block cb of image n. */
static inline float *ic_blk_at(const ic_tensor *t, int n, int cb)
{
    return t->data + ((size_t)n * (size_t)ic_blk_cb(t->c) + (size_t)cb) * ic_blk_pstride(t);
}

/* Floats a blocked (n, c, h, w) tensor needs, slack included. */
static inline size_t ic_blk_floats(int n, int c, int h, int w)
{
    return (size_t)n * (size_t)ic_blk_cb(c) * ic_blk_pstride_hw(h, w) + IC_BLK_SLACK;
}

/* y = relu?(x * scale + bias) per (image, channel), applied by consumers. */
typedef struct ic_blk_pend {
    const float *scale, *bias; /* (N, CB * 16); lanes past C are 0 */
    int relu;
} ic_blk_pend;

/* NCHW src -> blocked dst (same logical shape; dst has ic_blk_floats()). */
void ic_blk_from_nchw(ic_tensor *dst, const ic_tensor *src);

/* blocked src (its pending affine applied when pend is not NULL) -> NCHW dst. */
void ic_blk_to_nchw(ic_tensor *dst, const ic_tensor *src, const ic_blk_pend *pend);

/* Applies pend to t in place (every pixel, every block, split over threads). */
void ic_blk_apply(ic_tensor *t, const ic_blk_pend *pend);

/* Applies pend to `npix` pixels of one block plane starting at p (image n,
 * block cb), in place. */
void ic_blk_apply_pixels(float *p, size_t npix, const ic_blk_pend *pend, const ic_tensor *t, int n,
                         int cb);

/* p = relu?(pend(p) + rpend(r)) over `npix` pixels of one block plane
 * (image n, block cb of t, r at the same place of a tensor of t's shape),
 * in place; either affine may be NULL. */
void ic_blk_apply_add_pixels(float *p, const float *r, size_t npix, const ic_blk_pend *pend,
                             const ic_blk_pend *rpend, const ic_tensor *t, int n, int cb,
                             int relu);

#endif
