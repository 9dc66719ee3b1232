/* 2-D convolution over NCHW float32 tensors, forward and backward.
 *
 * One entry point, ic_conv2d_forward(), picks the fastest of five paths:
 * a 1x1 / stride 1 / no padding convolution is one sgemm per image and group
 * on the input as it is; a depthwise convolution (groups == cin == cout) runs
 * a direct loop with no im2col; other convolutions with a modest padding
 * and at least 8 input channels per group run one sgemm per kernel tap
 * straight on a zero-padded copy of the input, split into stride phases
 * ("shifted"); a thin K = cin/groups*kh*kw <= 32 (the stem) runs im2col and
 * a fused product + bias + ReLU of our own ("thin"); everything else lowers
 * each group to im2col plus sgemm,
 * tiled over output rows and input channels so the scratch memory stays
 * bounded however large the image. ic_conv2d_forward_ref() is the plain
 * seven-loop definition that the tests hold the fast paths against.
 *
 * Semantics follow torch.nn.functional.conv2d (cross-correlation, zero
 * padding, weight layout (cout, cin/groups, kh, kw)), optionally followed by
 * a fused ReLU. */
#ifndef IC_OPS_CONV2D_H
#define IC_OPS_CONV2D_H

#include <stddef.h>

#include "base/tensor.h"

/* Hyper-parameters of one convolution. Set every field; designated
 * initialisers keep call sites readable. */
typedef struct ic_conv2d_params {
    int cin, cout;         /* input / output channels */
    int kh, kw;            /* kernel height / width */
    int stride_h, stride_w;
    int pad_h, pad_w;      /* zero padding on each side */
    int dil_h, dil_w;      /* dilation (1 = dense) */
    int groups;            /* cin and cout must both be multiples */
    int relu;              /* nonzero: y = max(y, 0) after the bias */
} ic_conv2d_params;

/* Validates `p` for an (h, w) input and writes the output size to *oh, *ow
 * (only on success). Returns 0, or IC_EINVAL (a non-positive size, stride,
 * dilation or group count, negative padding, channels not divisible by
 * groups) or IC_ESHAPE (the kernel does not fit the padded input, or the
 * output would be too large); the message names the field. */
int ic_conv2d_out_size(const ic_conv2d_params *p, int h, int w, int *oh, int *ow);

/* Number of floats of scratch that ic_conv2d_forward() needs for an (h, w)
 * input (independent of the batch size). 0 means the chosen path needs none
 * (1x1 direct, depthwise) and `ws` may be NULL; 0 is also returned for
 * invalid parameters, which ic_conv2d_forward() then rejects. The im2col
 * path stays near IC_CONV2D_WS_BUDGET floats; the shifted path needs one
 * group's padded input plus about that budget; the thin path a column tile
 * of about K * 2048 floats per thread (at most 4). SIZE_MAX means the size does
 * not fit a size_t. */
size_t ic_conv2d_workspace_floats(const ic_conv2d_params *p, int h, int w);

/* Scratch budget of the im2col path, in floats (8 MiB). */
#define IC_CONV2D_WS_BUDGET ((size_t)2 << 20)
/* Narrowest column tile the im2col path makes before it splits channels. */
#define IC_CONV2D_MIN_COLS ((size_t)1024)

/* Name of the path ic_conv2d_forward() takes for these parameters and an
 * (h, w) input: "1x1", "depthwise", "shifted", "thin", "im2col", or
 * "invalid".
 * A static string; for benchmarks and tests. */
const char *ic_conv2d_path_name(const ic_conv2d_params *p, int h, int w);

/* y = conv2d(x, weight) + bias, then ReLU if p->relu.
 *   x:      (N, cin, H, W)
 *   weight: (cout, cin/groups, kh, kw)
 *   bias:   (cout), or NULL for none
 *   y:      (N, cout, OH, OW), caller-allocated, must not overlap x; it is
 *           overwritten.
 *   ws:     ic_conv2d_workspace_floats(p, H, W) floats, or NULL when that
 *           is 0. Contents on return are unspecified.
 * Nothing is allocated and nothing is kept. Returns 0, IC_EINVAL (bad
 * parameters, NULL pointers, missing workspace) or IC_ESHAPE (x or y does not
 * match p); y is untouched on error. */
int ic_conv2d_forward(ic_tensor *y, const ic_tensor *x, const float *weight, const float *bias,
                      const ic_conv2d_params *p, float *ws);

/* The same result by the textbook seven nested loops, accumulating in
 * double. Slow; meant as the reference for tests. Same arguments, checks
 * and return codes as ic_conv2d_forward(), without the workspace. */
int ic_conv2d_forward_ref(ic_tensor *y, const ic_tensor *x, const float *weight, const float *bias,
                          const ic_conv2d_params *p);

/* ---- backward ---- */

/* Floats of scratch ic_conv2d_backward() needs for an (h, w) input: two
 * column matrices (cin/groups * kh * kw, OH * OW) for the im2col path, 0 for
 * 1x1 and depthwise convolutions (ws may then be NULL). */
size_t ic_conv2d_backward_workspace_floats(const ic_conv2d_params *p, int h, int w);

/* Backward of the convolution (without the fused ReLU: the caller masks dy
 * by the output first). ACCUMULATES like every backward in core/ops:
 *   dx (N, cin, H, W) += conv_transpose(dy, weight)
 *   dw (cout, cin/groups, kh, kw) += sum over images of dy (x) x-windows
 *   db (cout) += sum of dy over images and pixels
 * Any of dx, dw, db may be NULL. dy (N, cout, OH, OW). Returns 0, IC_EINVAL
 * (bad parameters, missing workspace) or IC_ESHAPE. */
int ic_conv2d_backward(ic_tensor *dx, float *dw, float *db, const ic_tensor *dy, const ic_tensor *x,
                       const float *weight, const ic_conv2d_params *p, float *ws);

/* Reference for tests: the seven loops of the definition. */
int ic_conv2d_backward_ref(ic_tensor *dx, float *dw, float *db, const ic_tensor *dy,
                           const ic_tensor *x, const float *weight, const ic_conv2d_params *p);

#endif
