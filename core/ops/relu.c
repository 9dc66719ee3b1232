/* ReLU forward and backward (see relu.h). Single streaming passes; the
 * comparison form `v < 0 ? 0 : v` vectorises to a compare+blend and passes
 * NaN through. */
#include "ops/relu.h"

#include "base/err.h"

void ic_relu_array(float *y, const float *x, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        float v = x[i];
        y[i] = v < 0.0f ? 0.0f : v;
    }
}

int ic_relu_forward(ic_tensor *y, const ic_tensor *x)
{
    if (!ic_tensor_same_shape(y, x))
        return ic_error_set(IC_ESHAPE, "relu: output shape (%d, %d, %d, %d) differs from input (%d, %d, %d, %d)",
                            y->n, y->c, y->h, y->w, x->n, x->c, x->h, x->w);
    ic_relu_array(y->data, x->data, ic_tensor_numel(x));
    return 0;
}

void ic_relu_backward_array(float *dx, const float *dy, const float *y, size_t n)
{
    for (size_t i = 0; i < n; i++)
        dx[i] += y[i] <= 0.0f ? 0.0f : dy[i];
}

int ic_relu_backward(ic_tensor *dx, const ic_tensor *dy, const ic_tensor *y)
{
    if (!ic_tensor_same_shape(dx, y) || !ic_tensor_same_shape(dy, y))
        return ic_error_set(IC_ESHAPE, "relu backward: dx, dy and y must have one shape");
    ic_relu_backward_array(dx->data, dy->data, y->data, ic_tensor_numel(y));
    return 0;
}
