/* Convolutions on blocked activations with weights packed once at load.
 *
 * ic_eng_conv_pack() takes a layer's NCHW weights (cout, cin/groups, kh,
 * kw) and packs them for the path the engine runs it on:
 *   gemm      groups 1: the register tile of engine/kern.h straight on the
 *             input (1x1) or on a zero-padded copy (k x k, any stride and
 *             dilation); weights as (output pair, tap, input channel, 32).
 *             With fewer than 16 input channels (the stem's 3) the taps go
 *             into K instead: im2col columns of cin*kh*kw channels, one tap
 *   winograd  instead, for 3x3 stride 1 (any dilation, via the dilation
 *             phases): F(4x4, 3x3), weights transformed once (36 per
 *             input/output channel pair); engine/conv_wino.c. Packed
 *             without IC_ENG_EXACT, such a layer keeps only these (4x its
 *             raw weights; the gemm copy would add 1x more: 41 MiB on
 *             R-52-DSConv), so it runs on Winograd at every size
 *   depthwise groups == cin == cout: a direct loop, 16 channels per vector
 * Other grouped convolutions are not supported (ic_eng_conv_pack returns
 * IC_EUNSUPPORTED and the model runs on the NCHW path).
 *
 * ic_eng_conv_forward() computes y = write-out(conv(pend(x))) where the
 * write-out (ic_eng_out) fuses the per-channel statistics of the raw
 * result, y = acc * scale + bias, a residual add and ReLU. Weights are the
 * layer's raw ones: folding BN is the write-out's scale/shift, so one
 * packed copy serves every calibration mode. */
#ifndef IC_ENGINE_CONV_H
#define IC_ENGINE_CONV_H

#include <stddef.h>

#include "base/tensor.h"
#include "engine/blk.h"
#include "ops/conv2d.h"

typedef enum ic_eng_path { IC_ENG_GEMM, IC_ENG_WINOGRAD, IC_ENG_DEPTHWISE } ic_eng_path;

typedef struct ic_eng_conv {
    ic_conv2d_params p;
    int cinb, coutb, pairs;  /* input / output channel blocks, output pairs */
    int im2col;              /* gemm on im2col columns (few input channels: the stem) */
    int ktaps, kb;           /* taps and input blocks of the packed gemm weights */
    float *w;                /* gemm: (pair, tap, cinb*16, 32); depthwise: (cb, tap, 16) */
    float *u;                /* winograd: (36, pair, cinb*16, 32), or NULL */
    float *bias;             /* (pairs * 32) the conv's bias, zeros without one */
} ic_eng_conv;

/* Packs one layer for the paths `flags` allows (IC_ENG_EXACT: gemm only;
 * IC_ENG_PACK_BOTH: gemm and Winograd, the forward's flags choose).
 * weight (cout, cin/groups, kh, kw), bias (cout) or NULL. Returns 0,
 * IC_EUNSUPPORTED (grouped, not depthwise) or IC_ENOMEM. */
int ic_eng_conv_pack(ic_eng_conv *cv, const ic_conv2d_params *p, const float *weight,
                     const float *bias, int flags);
void ic_eng_conv_free(ic_eng_conv *cv);

/* How the output is written (see the file comment). */
typedef struct ic_eng_out {
    const float *scale;   /* (pairs * 32), NULL: 1 */
    const float *bias;    /* (pairs * 32), NULL: the conv's own bias */
    int relu;
    const ic_tensor *res; /* blocked, y's shape, or NULL */
    double *stats;        /* (N, 2, coutb * 16): sums, then sums of squares, of acc - shift over
                           * the pixels; added to (zero it first), or NULL */
    const float *shift;   /* (pairs * 32), with stats */
    /* The input side (1x1 stride-1 convs only, see ic_eng_conv_applies_in_place):
     * x_res, blocked and of x's shape, makes the conv read
     * relu(pend(x) + x_res_pend(x_res)) (ic_eng_add with ReLU), written into
     * x in place tile by tile as the pending affine alone would be. A
     * bottleneck's output in a calibrated forward is that sum: its BN waits
     * for conv3's statistics, and the next block's first conv is the first
     * reader, so the sum costs no pass of its own. */
    const ic_tensor *x_res;
    const ic_blk_pend *x_res_pend;
} ic_eng_out;

/* Path flags. */
enum {
    IC_ENG_EXACT = 1,     /* no Winograd: direct products only */
    IC_ENG_PACK_BOTH = 2, /* pack only: keep the gemm weights next to Winograd's */
    IC_ENG_X_NCHW = 4     /* forward: x is NCHW, not blocked (im2col convs only) */
};

/* Whether the conv builds im2col columns (fewer than 16 input channels):
 * it can then read an NCHW input (IC_ENG_X_NCHW). */
int ic_eng_conv_im2col(const ic_eng_conv *cv);

/* The path ic_eng_conv_forward() takes. */
ic_eng_path ic_eng_conv_path(const ic_eng_conv *cv, int flags);
const char *ic_eng_conv_path_name(const ic_eng_conv *cv, int h, int w, int flags);

/* Whether ic_eng_conv_forward() applies a pending affine to x in place
 * (1x1, stride 1, no padding, groups 1): x is plain afterwards. */
int ic_eng_conv_applies_in_place(const ic_eng_conv *cv);

/* Whether o->res may be y itself for an (h, w) input: the gemm path with
 * one K chunk reads each residual value just before it writes the output
 * there (a conv with more chunks keeps partial sums in y, a depthwise one
 * its raw row). Summing into the residual's buffer saves a tensor's worth
 * of memory traffic: y's lines no longer have to be read in before they
 * are written. */
int ic_eng_conv_res_in_place(const ic_eng_conv *cv, int h, int w, int flags);

/* Scratch floats for an (n, h, w) input with `threads` threads. */
size_t ic_eng_conv_ws_floats(const ic_eng_conv *cv, int n, int h, int w, int threads, int flags);

/* y (blocked, (N, cout, OH, OW)) = write-out(conv(pend(x))). x is blocked;
 * with a pending affine (pend not NULL) a 1x1 stride-1 conv applies it to x
 * IN PLACE (x is then plain: the caller must forget pend), the other paths
 * apply it as they read. ws: ic_eng_conv_ws_floats() floats. threads: from
 * 1. o->res may share y's data when ic_eng_conv_res_in_place(). Returns 0,
 * IC_ESHAPE, or IC_EINVAL (IC_ENG_EXACT on a layer packed for Winograd
 * only, a residual in y's place that the path cannot read there,
 * IC_ENG_X_NCHW on a conv without im2col columns, o->x_res on a conv that
 * does not apply its input in place). */
int ic_eng_conv_forward(const ic_eng_conv *cv, ic_tensor *y, ic_tensor *x, const ic_blk_pend *pend,
                        const ic_eng_out *o, float *ws, int threads, int flags);

#endif
