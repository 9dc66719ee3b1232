/* Tensor helpers (see tensor.h). */
#include "base/tensor.h"

#include "base/alloc.h"
#include "base/err.h"

int ic_tensor_alloc(ic_tensor *t, ic_arena *a, int n, int c, int h, int w)
{
    if (n <= 0 || c <= 0 || h <= 0 || w <= 0)
        return ic_error_set(IC_EINVAL, "tensor: bad shape (%d, %d, %d, %d)", n, c, h, w);
    size_t count, tmp;
    if (ic_size_mul(&tmp, (size_t)n, (size_t)c) || ic_size_mul(&tmp, tmp, (size_t)h) ||
        ic_size_mul(&count, tmp, (size_t)w))
        return ic_error_set(IC_ENOMEM, "tensor: shape (%d, %d, %d, %d) overflows", n, c, h, w);
    float *data = ic_arena_floats(a, count);
    if (!data)
        return ic_error_prefix(IC_ENOMEM, "tensor (%d, %d, %d, %d)", n, c, h, w);
    t->data = data;
    t->n = n;
    t->c = c;
    t->h = h;
    t->w = w;
    return 0;
}

int ic_tensor_same_shape(const ic_tensor *a, const ic_tensor *b)
{
    return a->n == b->n && a->c == b->c && a->h == b->h && a->w == b->w;
}
