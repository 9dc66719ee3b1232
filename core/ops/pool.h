/* 2-D pooling forward: max, average and global average, as in PyTorch.
 *
 * Uses: the ResNet stem's max-pool (3x3, stride 2, padding 1), the center
 * heatmap NMS of post-processing (k x k, stride 1, padding (k-1)/2), and the
 * ASPP image-pooling branch, which in detectron2 is AvgPool2d((kh, kw),
 * stride 1, no padding) -- at 1024x2048 a 32x64 window over a 64x128 map with
 * 2048 channels, giving a 33x65 map -- or AdaptiveAvgPool2d(1) (global).
 * Output sizes follow PyTorch with ceil_mode=False:
 *   out = (in + 2 * pad - kernel) / stride + 1.
 * Max-pool padding acts as -inf; average-pool padding counts as zeros and,
 * with PyTorch's default count_include_pad=True, in the divisor too.
 * Stride-1 pooling (the two large cases above) runs as a separable filter:
 * running sums for average, row then column maxima for max, so its cost does
 * not grow with kh * kw.
 * Backward passes accumulate into dx (dx += ...), like every backward in
 * core/ops. Max-pool backward routes each output's gradient to its window's
 * argmax, recomputed from x in PyTorch's order (rows then columns, the first
 * maximum wins a tie, a NaN always takes over), so no index tensor has to be
 * kept from the forward; average backward spreads it evenly over the window
 * with the forward's divisor. */
#ifndef IC_OPS_POOL_H
#define IC_OPS_POOL_H

#include "base/tensor.h"

typedef struct ic_pool2d {
    int kh, kw;      /* window */
    int sh, sw;      /* stride */
    int ph, pw;      /* padding on each side, at most half the window */
    int exclude_pad; /* average only: 1 = PyTorch count_include_pad=False;
                      * 0 (the default) divides by kh * kw */
} ic_pool2d;

/* Output size for an (h, w) input. Returns 0, or IC_EINVAL for a
 * non-positive window or stride, negative padding, padding above half the
 * window (PyTorch refuses it too), or an empty output. */
int ic_pool_out_size(int *oh, int *ow, int h, int w, const ic_pool2d *p);

/* Max pooling of x (N, C, H, W) into y (N, C, OH, OW). NaN in a window wins
 * (as in PyTorch). y must not overlap x. Returns 0, IC_EINVAL (bad
 * parameters), IC_ESHAPE (y's shape is not the pooled shape). */
int ic_pool_max_forward(ic_tensor *y, const ic_tensor *x, const ic_pool2d *p);

/* Average pooling, same contract as ic_pool_max_forward. Stride-1 windows are
 * summed with running sums in double, other strides directly. */
int ic_pool_avg_forward(ic_tensor *y, const ic_tensor *x, const ic_pool2d *p);

/* Global average pooling (AdaptiveAvgPool2d(1)): y (N, C, 1, 1) = mean of
 * each plane of x, summed in double. Returns 0 or IC_ESHAPE. */
int ic_pool_global_avg_forward(ic_tensor *y, const ic_tensor *x);

/* Backward of ic_pool_max_forward: dx (N, C, H, W) += dy (N, C, OH, OW)
 * routed to the argmax of each window of x. dx must not overlap dy or x.
 * Returns 0, IC_EINVAL, IC_ESHAPE (dx not x's shape or dy not the pooled
 * shape). */
int ic_pool_max_backward(ic_tensor *dx, const ic_tensor *dy, const ic_tensor *x, const ic_pool2d *p);

/* Backward of ic_pool_avg_forward: dx (N, C, H, W) += dy / divisor over each
 * window (padding takes no gradient). Only shapes are needed, not x.
 * dx must not overlap dy. Returns 0, IC_EINVAL, IC_ESHAPE. */
int ic_pool_avg_backward(ic_tensor *dx, const ic_tensor *dy, const ic_pool2d *p);

/* Backward of ic_pool_global_avg_forward: dx (N, C, H, W) += dy (N, C, 1, 1)
 * / (H * W). Returns 0 or IC_ESHAPE. */
int ic_pool_global_avg_backward(ic_tensor *dx, const ic_tensor *dy);

/* References for tests: the plain window loop for every output element. */
int ic_pool_max_forward_ref(ic_tensor *y, const ic_tensor *x, const ic_pool2d *p);
int ic_pool_avg_forward_ref(ic_tensor *y, const ic_tensor *x, const ic_pool2d *p);

#endif
