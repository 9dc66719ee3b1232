/* Channel concatenation of K tensors.
 *
 * Panoptic-DeepLab concatenates the five ASPP branches ([1x1, d6, d12, d18,
 * pool], 1280 channels) and, in the decoder, [projected skip, upsampled]. In
 * NCHW a channel concat is one contiguous copy per (input, image), so no index
 * arithmetic per element is needed. The backward is the matching channel
 * split, accumulated into each input's gradient like every backward here. */
#ifndef IC_OPS_CONCAT_H
#define IC_OPS_CONCAT_H

#include "base/tensor.h"

/* y (N, sum C_k, H, W) = concat over channels of xs[0..k-1], each (N, C_k, H, W).
 * Inputs must not overlap y. Returns 0, IC_EINVAL (k < 1 or a NULL input),
 * IC_ESHAPE (N, H, W differ, or y's channel count is not the sum). */
int ic_concat_forward(ic_tensor *y, const ic_tensor *const *xs, int k);

/* Backward of ic_concat_forward: dxs[i] (N, C_i, H, W) += the channel slice
 * of dy (N, sum C_i, H, W) that input i produced. A NULL dxs[i] skips that
 * input (no gradient wanted) but still counts its channels, so C_i must then
 * be given in `channels` (k ints); `channels` may be NULL when every dxs[i]
 * is present. dxs must not overlap dy. Returns 0, IC_EINVAL, IC_ESHAPE. */
int ic_concat_backward(ic_tensor *const *dxs, const ic_tensor *dy, const int *channels, int k);

#endif
