/* NCHW float32 tensors with explicit shapes.
 *
 * A tensor is a view: it does not own its data. Storage comes from an arena
 * (ic_tensor_alloc) or from the caller (ic_tensor_wrap). Dimensions are ints
 * (images are far below 2^31 per side); element counts are size_t. */
#ifndef IC_BASE_TENSOR_H
#define IC_BASE_TENSOR_H

#include <stddef.h>

#include "base/arena.h"

typedef struct ic_tensor {
    float *data; /* (n, c, h, w), row-major, contiguous */
    int n, c, h, w;
} ic_tensor;

static inline size_t ic_tensor_numel(const ic_tensor *t)
{
    return (size_t)t->n * (size_t)t->c * (size_t)t->h * (size_t)t->w;
}

/* Elements in one (h, w) plane. */
static inline size_t ic_tensor_plane(const ic_tensor *t)
{
    return (size_t)t->h * (size_t)t->w;
}

/* Pointer to plane (n, c). */
static inline float *ic_tensor_at(const ic_tensor *t, int n, int c)
{
    return t->data + ((size_t)n * (size_t)t->c + (size_t)c) * ic_tensor_plane(t);
}

static inline ic_tensor ic_tensor_wrap(float *data, int n, int c, int h, int w)
{
    ic_tensor t = {data, n, c, h, w};
    return t;
}

/* Allocates an uninitialised tensor in `a`. Returns 0, IC_EINVAL for a
 * non-positive dimension, IC_ENOMEM when the arena refuses. */
int ic_tensor_alloc(ic_tensor *t, ic_arena *a, int n, int c, int h, int w);

/* 1 if both tensors have the same n, c, h, w. */
int ic_tensor_same_shape(const ic_tensor *a, const ic_tensor *b);

#endif
