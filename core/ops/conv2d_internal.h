/* What the files of the convolution share, not part of the API.
 *
 * core/ops/conv2d.c holds the public entry points (validation, the path
 * choice, workspace sizes, dispatch) and the seven-loop references; each
 * path lives in its own file:
 *   conv2d_gemm.c       1x1 (sgemm on the input), im2col + sgemm, thin K
 *   conv2d_shifted.c    one sgemm per kernel tap on phase planes
 *   conv2d_depthwise.c  the direct depthwise loops, forward and backward
 *   conv2d_backward.c   the column (im2col / col2im) backward
 * The path functions trust their arguments: ic_conv2d_forward() and
 * ic_conv2d_backward() have checked them. */
#ifndef IC_OPS_CONV2D_INTERNAL_H
#define IC_OPS_CONV2D_INTERNAL_H

#include <stddef.h>

#include "base/tensor.h"
#include "ops/conv2d.h"

/* Range [*lo, *hi) of output columns whose input column ox*s + off lies in
 * [0, w); everything outside reads zero padding. */
static inline void ic_conv2d_valid_cols(int off, int s, int w, int ow, int *lo, int *hi)
{
    int l = off >= 0 ? 0 : (-off + s - 1) / s;
    int h = w - off <= 0 ? 0 : (w - off + s - 1) / s;
    if (l > ow)
        l = ow;
    if (h > ow)
        h = ow;
    if (h < l)
        h = l;
    *lo = l;
    *hi = h;
}

/* Output rows [*lo, *hi) whose kernel row ky reads inside the input; for
 * the others that tap reads only zero padding and is skipped. */
static inline void ic_conv2d_tap_rows(const ic_conv2d_params *p, int ky, int h, int oh, int *lo,
                                      int *hi)
{
    ic_conv2d_valid_cols(ky * p->dil_h - p->pad_h, p->stride_h, h, oh, lo, hi);
}

/* y = relu(y + bias) over `len` values of one output channel. */
static inline void ic_conv2d_epilogue(float *restrict y, size_t len, float b, int relu)
{
    if (relu) {
        for (size_t i = 0; i < len; i++) {
            const float v = y[i] + b;
            y[i] = v > 0.0f ? v : 0.0f;
        }
    } else if (b != 0.0f) {
        for (size_t i = 0; i < len; i++)
            y[i] += b;
    }
}

/* ---- conv2d_gemm.c ---- */

/* How the im2col path cuts one group's work: `rows` output rows by `chans`
 * input channels per column buffer (see ic_conv2d_im2col_plan). */
typedef struct ic_conv2d_tile_plan {
    int rows, chans;
} ic_conv2d_tile_plan;

ic_conv2d_tile_plan ic_conv2d_im2col_plan(const ic_conv2d_params *p, int oh, int ow);

/* Output rows per tile and column buffers (one per thread) of the thin
 * path. */
int ic_conv2d_thin_rows(int oh, int ow);
int ic_conv2d_thin_slots(int oh, int ow);

/* One row of im2col columns or of a phase plane: dst[j] = src[j*s + off]
 * for the columns [cl, ch) where that lies inside the input row, zero
 * elsewhere up to wp (src == NULL: all zero). */
void ic_conv2d_pack_row(float *restrict dst, const float *restrict src, int s, int off, int cl,
                        int ch, int wp);

/* One slice of an im2col job: column-matrix rows [k0, k1) of
 * col (nc*kh*kw, nr*ow), row k = (c, ky, kx), column (oy - r0, ox), for
 * output rows [r0, r0 + nr), read from the plane stack x0 (nc, h, w). */
typedef struct ic_conv2d_im2col_job {
    float *col;
    const float *x0;
    const ic_conv2d_params *p;
    int h, w, ow, r0, nr;
    int k0, k1;
} ic_conv2d_im2col_job;

void ic_conv2d_im2col_run(const ic_conv2d_im2col_job *j);

void ic_conv2d_forward_1x1(ic_tensor *y, const ic_tensor *x, const float *weight, const float *bias,
                           const ic_conv2d_params *p);
void ic_conv2d_forward_im2col(ic_tensor *y, const ic_tensor *x, const float *weight,
                              const float *bias, const ic_conv2d_params *p, float *ws);
void ic_conv2d_forward_thin(ic_tensor *y, const ic_tensor *x, const float *weight,
                            const float *bias, const ic_conv2d_params *p, float *ws);

/* ---- conv2d_shifted.c ---- */

/* Workspace of the shifted path, in floats, carved in order:
 *   xp: one group's input split into stride_h*stride_w phase planes per
 *       channel, phase-major (phase, cin/g, hp, wp), zero-padded, followed
 *       by the floats that the last tap may read past the last plane
 *   wk: the group's weights regrouped by tap (kh*kw, cout/g, cin/g)
 *   yw: one tile of output rows at phase-plane width (cout/g, rows, wp) */
typedef struct ic_conv2d_shift_plan {
    int hp, wp, rows, phases;
    size_t plane, xp, wk, yw;
} ic_conv2d_shift_plan;

/* Fills *s; returns nonzero when a size does not fit a size_t. */
int ic_conv2d_shifted_plan(ic_conv2d_shift_plan *s, const ic_conv2d_params *p, int oh, int ow);

void ic_conv2d_forward_shifted(ic_tensor *y, const ic_tensor *x, const float *weight,
                               const float *bias, const ic_conv2d_params *p, float *ws);

/* ---- conv2d_depthwise.c ---- */

void ic_conv2d_forward_depthwise(ic_tensor *y, const ic_tensor *x, const float *weight,
                                 const float *bias, const ic_conv2d_params *p);
/* dw += ..., dx += ... (either may be NULL); db is the caller's. */
void ic_conv2d_backward_depthwise(ic_tensor *dx, float *dw, const ic_tensor *dy, const ic_tensor *x,
                                  const float *weight, const ic_conv2d_params *p);

/* ---- conv2d_backward.c ---- */

/* The 1x1 (`cols_needed` 0: the input is its own column matrix) and
 * im2col backward of dx and dw; ws holds two column matrices when
 * cols_needed. */
void ic_conv2d_backward_gemm(ic_tensor *dx, float *dw, const ic_tensor *dy, const ic_tensor *x,
                             const float *weight, const ic_conv2d_params *p, int cols_needed,
                             float *ws);

#endif
