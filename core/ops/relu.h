/* ReLU forward, in place or out of place.
 *
 * y = max(x, 0) element-wise. NaN inputs stay NaN, as with torch.relu, so a
 * numerical problem upstream is not silently hidden. BN and add have their
 * own fused ReLU; this op serves the remaining places (e.g. after a conv with
 * bias). The backward pass will live in this file too. */
#ifndef IC_OPS_RELU_H
#define IC_OPS_RELU_H

#include <stddef.h>

#include "base/tensor.h"

/* y = max(x, 0) over n floats; y may equal x (in place). */
void ic_relu_array(float *y, const float *x, size_t n);

/* y = relu(x) for x (N, C, H, W); y must have the same shape and may alias x.
 * Returns 0 or IC_ESHAPE. */
int ic_relu_forward(ic_tensor *y, const ic_tensor *x);

#endif
