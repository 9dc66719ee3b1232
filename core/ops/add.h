/* Element-wise addition with optional fused ReLU (residual connections).
 *
 * y = a + b, then max(., 0) when asked; the ResNet bottleneck ends with
 * relu(out + shortcut), so fusing saves a pass over the largest activations.
 * The backward pass will live in this file too. */
#ifndef IC_OPS_ADD_H
#define IC_OPS_ADD_H

#include "base/tensor.h"

/* y = a + b (+ ReLU when relu != 0; NaN stays NaN) for tensors of identical
 * shape (N, C, H, W). y may alias a or b (in place). Returns 0 or IC_ESHAPE. */
int ic_add_forward(ic_tensor *y, const ic_tensor *a, const ic_tensor *b, int relu);

#endif
