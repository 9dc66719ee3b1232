/* Element-wise add (+ ReLU) forward and backward (see add.h). One streaming
 * pass each; aliasing of y with a or b is safe in the forward because every
 * element is read before it is written. */
#include "ops/add.h"

#include "base/err.h"
#include "base/parallel.h"

/* Elements per unit of work of the threaded forward. */
#define ADD_CHUNK ((size_t)1 << 14)

typedef struct add_job {
    float *y;
    const float *a, *b;
    size_t n;
    int relu;
} add_job;

/* Chunks [lo, hi) of ADD_CHUNK elements. */
static void add_range(void *ctx, int lo, int hi)
{
    const add_job *j = ctx;
    const size_t i0 = (size_t)lo * ADD_CHUNK;
    const size_t i1 = (size_t)hi * ADD_CHUNK < j->n ? (size_t)hi * ADD_CHUNK : j->n;
    const float *pa = j->a, *pb = j->b;
    float *py = j->y;
    if (j->relu) {
        for (size_t i = i0; i < i1; i++) {
            float v = pa[i] + pb[i];
            py[i] = v < 0.0f ? 0.0f : v;
        }
    } else {
        for (size_t i = i0; i < i1; i++)
            py[i] = pa[i] + pb[i];
    }
}

int ic_add_forward(ic_tensor *y, const ic_tensor *a, const ic_tensor *b, int relu)
{
    if (!ic_tensor_same_shape(a, b) || !ic_tensor_same_shape(y, a))
        return ic_error_set(IC_ESHAPE, "add: shapes differ: a (%d, %d, %d, %d), b (%d, %d, %d, %d), y (%d, %d, %d, %d)",
                            a->n, a->c, a->h, a->w, b->n, b->c, b->h, b->w, y->n, y->c, y->h, y->w);
    add_job j = {y->data, a->data, b->data, ic_tensor_numel(a), relu};
    const size_t chunks = (j.n + ADD_CHUNK - 1) / ADD_CHUNK;
    ic_parallel_for(add_range, &j, (int)chunks, ic_parallel_threads_for(j.n));
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
