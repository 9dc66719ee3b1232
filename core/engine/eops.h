/* The engine's non-convolution ops on blocked activations (engine/blk.h),
 * each applying its inputs' pending affines as it reads them: residual add,
 * channel concat, bilinear resize, max / average / global-average pooling,
 * and the network's output edge (x4 upsampling into NCHW, cropped and
 * scaled). Semantics are those of the NCHW ops in core/ops (resize.h,
 * pool.h, concat.h, add.h). `threads` splits the work (>= 1). Shapes are
 * the callers' to get right (the forward derives them from the NCHW op
 * sizes); every function returns 0 or IC_ESHAPE / IC_EINVAL. */
#ifndef IC_ENGINE_EOPS_H
#define IC_ENGINE_EOPS_H

#include "base/tensor.h"
#include "engine/blk.h"
#include "ops/pool.h"

/* a = relu?(pa(a) + pb(b)) in place; same shapes. */
int ic_eng_add(ic_tensor *a, const ic_blk_pend *pa, const ic_tensor *b, const ic_blk_pend *pb,
               int relu, int threads);

/* y = [pend_0(x_0), ..., pend_k-1(x_k-1)] along channels; pends may be NULL. */
int ic_eng_concat(ic_tensor *y, const ic_tensor *const *xs, const ic_blk_pend *const *pends, int k,
                  int threads);

/* y = bilinear resize of pend(x) (scale > 0: PyTorch scale_factor, else the
 * sizes of y). */
int ic_eng_resize(ic_tensor *y, const ic_tensor *x, const ic_blk_pend *pend, double scale_h,
                  double scale_w, int threads);

int ic_eng_maxpool(ic_tensor *y, const ic_tensor *x, const ic_blk_pend *pend, const ic_pool2d *p,
                   int threads);
int ic_eng_avgpool(ic_tensor *y, const ic_tensor *x, const ic_blk_pend *pend, const ic_pool2d *p,
                   int threads);
/* y (N, C, 1, 1) blocked = mean over pixels of pend(x). */
int ic_eng_gap(ic_tensor *y, const ic_tensor *x, const ic_blk_pend *pend, int threads);

/* The output edge: y (N, C, H, W) NCHW = mul * (resize of pend(x) by
 * `scale`) cropped to y's H x W (the top-left corner of the resized map). */
int ic_eng_upsample_nchw(ic_tensor *y, const ic_tensor *x, const ic_blk_pend *pend, double scale,
                         float mul, int threads);

#endif
