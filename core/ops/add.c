/* Element-wise add (+ ReLU) forward and backward (see add.h). One streaming
 * pass each; aliasing of y with a or b is safe in the forward because every
 * element is read before it is written. */
#include "ops/add.h"

#include "base/err.h"

int ic_add_forward(ic_tensor *y, const ic_tensor *a, const ic_tensor *b, int relu)
{
    if (!ic_tensor_same_shape(a, b) || !ic_tensor_same_shape(y, a))
        return ic_error_set(IC_ESHAPE, "add: shapes differ: a (%d, %d, %d, %d), b (%d, %d, %d, %d), y (%d, %d, %d, %d)",
                            a->n, a->c, a->h, a->w, b->n, b->c, b->h, b->w, y->n, y->c, y->h, y->w);
    size_t n = ic_tensor_numel(a);
    const float *pa = a->data, *pb = b->data;
    float *py = y->data;
    if (relu) {
        for (size_t i = 0; i < n; i++) {
            float v = pa[i] + pb[i];
            py[i] = v < 0.0f ? 0.0f : v;
        }
    } else {
        for (size_t i = 0; i < n; i++)
            py[i] = pa[i] + pb[i];
    }
    return 0;
}

int ic_add_backward(ic_tensor *da, ic_tensor *db, const ic_tensor *dy, const ic_tensor *y, int relu)
{
    if (relu && (!y || !y->data))
        return ic_error_set(IC_EINVAL, "add backward: fused ReLU needs the forward output");
    if ((da && !ic_tensor_same_shape(da, dy)) || (db && !ic_tensor_same_shape(db, dy)) ||
        (relu && !ic_tensor_same_shape(y, dy)))
        return ic_error_set(IC_ESHAPE, "add backward: gradient shapes differ");
    size_t n = ic_tensor_numel(dy);
    const float *g = dy->data;
    for (size_t i = 0; i < n; i++) {
        float v = relu && y->data[i] <= 0.0f ? 0.0f : g[i];
        if (da)
            da->data[i] += v;
        if (db)
            db->data[i] += v;
    }
    return 0;
}
