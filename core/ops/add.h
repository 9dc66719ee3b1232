/* Element-wise addition with optional fused ReLU (residual connections).
 *
 * y = a + b, then max(., 0) when asked; the ResNet bottleneck ends with
 * relu(out + shortcut), so fusing saves a pass over the largest activations.
 * The backward routes the upstream gradient to both operands, masked by the
 * fused ReLU, which is why it needs the forward's output y when relu is on.
 * It accumulates (da += ..., db += ...) like every backward in core/ops. */
#ifndef IC_OPS_ADD_H
#define IC_OPS_ADD_H

#include "base/tensor.h"

/* y = a + b (+ ReLU when relu != 0; NaN stays NaN) for tensors of identical
 * shape (N, C, H, W). y may alias a or b (in place). Returns 0 or IC_ESHAPE. */
int ic_add_forward(ic_tensor *y, const ic_tensor *a, const ic_tensor *b, int relu);

/* Backward of ic_add_forward: g = dy, times (y > 0) when relu != 0 (NaN
 * passes, as torch), then da += g and db += g. da or db may be NULL (operand
 * without gradient); they must not alias dy or each other. y is the forward's
 * output and is read only when relu != 0 (may be NULL otherwise).
 * Returns 0, IC_EINVAL (relu without y), IC_ESHAPE. */
int ic_add_backward(ic_tensor *da, ic_tensor *db, const ic_tensor *dy, const ic_tensor *y, int relu);

#endif
