/* Channel concat and split (see concat.h). Both validate every shape first so
 * that a failure leaves the outputs untouched, then handle one contiguous
 * block per (image, input). */
#include "ops/concat.h"

#include <string.h>

#include "base/err.h"

int ic_concat_forward(ic_tensor *y, const ic_tensor *const *xs, int k)
{
    if (k < 1 || !xs)
        return ic_error_set(IC_EINVAL, "concat: need at least one input");
    long total = 0;
    for (int i = 0; i < k; i++) {
        const ic_tensor *x = xs[i];
        if (!x || !x->data)
            return ic_error_set(IC_EINVAL, "concat: input %d is NULL", i);
        if (x->n != y->n || x->h != y->h || x->w != y->w)
            return ic_error_set(IC_ESHAPE, "concat: input %d is (%d, %d, %d, %d), output (%d, %d, %d, %d)",
                                i, x->n, x->c, x->h, x->w, y->n, y->c, y->h, y->w);
        total += x->c;
    }
    if (total != y->c)
        return ic_error_set(IC_ESHAPE, "concat: inputs have %ld channels, output %d", total, y->c);
    size_t hw = ic_tensor_plane(y);
    for (int n = 0; n < y->n; n++) {
        int c0 = 0;
        for (int i = 0; i < k; i++) {
            const ic_tensor *x = xs[i];
            memcpy(ic_tensor_at(y, n, c0), ic_tensor_at(x, n, 0), (size_t)x->c * hw * sizeof(float));
            c0 += x->c;
        }
    }
    return 0;
}

int ic_concat_backward(ic_tensor *const *dxs, const ic_tensor *dy, const int *channels, int k)
{
    if (k < 1 || !dxs)
        return ic_error_set(IC_EINVAL, "concat backward: need at least one input");
    long total = 0;
    for (int i = 0; i < k; i++) {
        const ic_tensor *dx = dxs[i];
        if (!dx) {
            if (!channels)
                return ic_error_set(IC_EINVAL, "concat backward: input %d skipped without a channel count", i);
            total += channels[i];
            continue;
        }
        if (dx->n != dy->n || dx->h != dy->h || dx->w != dy->w || (channels && channels[i] != dx->c))
            return ic_error_set(IC_ESHAPE, "concat backward: gradient %d is (%d, %d, %d, %d), dy (%d, %d, %d, %d)",
                                i, dx->n, dx->c, dx->h, dx->w, dy->n, dy->c, dy->h, dy->w);
        total += dx->c;
    }
    if (total != dy->c)
        return ic_error_set(IC_ESHAPE, "concat backward: inputs have %ld channels, dy %d", total, dy->c);
    size_t hw = ic_tensor_plane(dy);
    for (int n = 0; n < dy->n; n++) {
        int c0 = 0;
        for (int i = 0; i < k; i++) {
            int ci = dxs[i] ? dxs[i]->c : channels[i];
            if (dxs[i]) {
                float *d = ic_tensor_at(dxs[i], n, 0);
                const float *g = ic_tensor_at(dy, n, c0);
                size_t m = (size_t)ci * hw;
                for (size_t j = 0; j < m; j++)
                    d[j] += g[j];
            }
            c0 += ci;
        }
    }
    return 0;
}
