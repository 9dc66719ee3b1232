/* ReLU forward and backward, in place or out of place.
 *
 * y = max(x, 0) element-wise. NaN inputs stay NaN, as with torch.relu, so a
 * numerical problem upstream is not silently hidden. BN and add have their
 * own fused ReLU; this op serves the remaining places (e.g. after a conv with
 * bias). The backward needs only the output: y > 0 exactly where x > 0, so a
 * ReLU done in place keeps enough to differentiate it. Like every backward in
 * core/ops it ACCUMULATES into the gradient (dx += ...), so branches that fan
 * out sum their gradients without a temporary; callers zero dx first. */
#ifndef IC_OPS_RELU_H
#define IC_OPS_RELU_H

#include <stddef.h>

#include "base/tensor.h"

/* y = max(x, 0) over n floats; y may equal x (in place). */
void ic_relu_array(float *y, const float *x, size_t n);

/* y = relu(x) for x (N, C, H, W); y must have the same shape and may alias x.
 * Returns 0 or IC_ESHAPE. */
int ic_relu_forward(ic_tensor *y, const ic_tensor *x);

/* dx += dy where y > 0 (or y is NaN, as torch's threshold_backward lets the
 * gradient through unless y <= 0), over n floats. dx must not alias dy. */
void ic_relu_backward_array(float *dx, const float *dy, const float *y, size_t n);

/* dx += relu'(x) * dy for tensors of one shape, from the forward's output y
 * (which may be the forward's input buffer when it ran in place).
 * dx must not alias dy. Returns 0 or IC_ESHAPE. */
int ic_relu_backward(ic_tensor *dx, const ic_tensor *dy, const ic_tensor *y);

#endif
