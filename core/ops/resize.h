/* Bilinear resize, bit-compatible with PyTorch's
 * F.interpolate(mode='bilinear', align_corners=False) on CPU (torch 1.13).
 *
 * Two modes, as in PyTorch:
 *  - explicit output size: the coordinate ratio is in / out;
 *  - scale factor s (recompute_scale_factor unset): out = floor(in * s) and
 *    the ratio is 1 / s, which differs from in / out when in * s is not an
 *    integer.
 * Source coordinate: src = ratio * (dst + 0.5) - 0.5, clamped at 0 below
 * (area_pixel_compute_source_index); i0 = (int)src, i1 = i0 + 1 except at the
 * last row/column, lambda1 = src - i0. When an axis keeps its size it is
 * copied, as PyTorch does. Taps and weights are computed as PyTorch does
 * (float ratio, source index and fraction in double, weights in float); the
 * 4-term sum may round differently from PyTorch's build (FMA contraction), so
 * results agree to within about 1e-7 relative, not bit for bit.
 * Panoptic-DeepLab uses it for the ASPP pool branch, the decoder's x2
 * upsamplings and the final x4 (offsets additionally multiplied by 4 by the
 * caller).
 * The backward scatters each output gradient to the same four taps with the
 * same weights, so it is the exact adjoint of the forward (PyTorch's
 * upsample_bilinear2d_backward does the same); it accumulates into dx like
 * every backward in core/ops. */
#ifndef IC_OPS_RESIZE_H
#define IC_OPS_RESIZE_H

#include "base/tensor.h"

/* One output position along one axis: it reads source indices i0, i1 with
 * weights l0, l1 (PyTorch's compute_source_index_and_lambda). */
typedef struct ic_resize_tap {
    int i0, i1;
    float l0, l1;
} ic_resize_tap;

/* The tap of output position dst of an axis resized from `in` to `out`
 * (scale > 0: PyTorch scale_factor, ratio 1 / scale; else ratio in / out).
 * For other layouts of the same resize (core/engine/eops.c). */
ic_resize_tap ic_resize_tap_at(int in, int out, double scale, int dst);

/* Output size for a scale factor: floor(h * scale_h), floor(w * scale_w).
 * Returns 0, or IC_EINVAL when a scale is not positive and finite or the
 * result is empty or above INT_MAX. */
int ic_resize_out_size(int *oh, int *ow, int h, int w, double scale_h, double scale_w);

/* Resizes x (N, C, H, W) to y (N, C, OH, OW), sizes taken from y (PyTorch
 * `size=`). y must not overlap x. Nothing is allocated: the per-column
 * indices and weights are computed once per call into a stack buffer,
 * chunk by chunk. Returns 0 or IC_ESHAPE (N or C differ, empty sizes). */
int ic_resize_bilinear_forward(ic_tensor *y, const ic_tensor *x);

/* Same with PyTorch `scale_factor=(scale_h, scale_w)`: y must be
 * (N, C, floor(H * scale_h), floor(W * scale_w)) and the coordinate ratio
 * is 1 / scale. Returns 0, IC_EINVAL (bad scale), IC_ESHAPE. */
int ic_resize_bilinear_scale_forward(ic_tensor *y, const ic_tensor *x, double scale_h,
                                     double scale_w);

/* Backward of ic_resize_bilinear_forward: dx (N, C, H, W) += the adjoint of
 * the resize applied to dy (N, C, OH, OW); sizes come from the tensors.
 * dx must not overlap dy. Returns 0 or IC_ESHAPE. */
int ic_resize_bilinear_backward(ic_tensor *dx, const ic_tensor *dy);

/* Backward of ic_resize_bilinear_scale_forward with the same scale factors.
 * Returns 0, IC_EINVAL (bad scale), IC_ESHAPE. */
int ic_resize_bilinear_scale_backward(ic_tensor *dx, const ic_tensor *dy, double scale_h,
                                      double scale_w);

/* Reference for tests: computes indices and weights per output element.
 * scale_h, scale_w <= 0 selects the explicit-size mode. */
int ic_resize_bilinear_forward_ref(ic_tensor *y, const ic_tensor *x, double scale_h,
                                   double scale_w);

#endif
