/* Channel concat (see concat.h). Validates every shape first so that a
 * failure leaves y untouched, then copies one contiguous block per
 * (image, input). */
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
