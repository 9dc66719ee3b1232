/* A pool of float buffers carved from an arena and reused by liveness.
 *
 * The forward pass asks for a buffer per activation and gives it back as
 * soon as the last consumer has read it; a later request of the same or a
 * smaller size gets the same memory back (best fit). Peak memory is thus
 * close to the largest set of simultaneously live tensors, and since the
 * pool lives in a worker's arena, a steady-state request allocates nothing. */
#ifndef IC_MODEL_BUFPOOL_H
#define IC_MODEL_BUFPOOL_H

#include <stddef.h>

#include "base/arena.h"
#include "base/tensor.h"

#define IC_BUFPOOL_MAX 128

typedef struct ic_bufpool {
    ic_arena *arena;
    int n;
    float *buf[IC_BUFPOOL_MAX];
    size_t cap[IC_BUFPOOL_MAX]; /* floats */
    unsigned char used[IC_BUFPOOL_MAX];
    size_t live, peak;          /* floats handed out now / at most */
} ic_bufpool;

void ic_bufpool_init(ic_bufpool *p, ic_arena *arena);

/* A buffer of at least n floats, or NULL (IC_ENOMEM recorded). */
float *ic_bufpool_get(ic_bufpool *p, size_t n);

/* Gives a buffer back; NULL and pointers not from this pool are ignored. */
void ic_bufpool_put(ic_bufpool *p, const float *buf);

/* Shapes and allocates a tensor from the pool. Returns 0 or IC_ENOMEM/IC_EINVAL. */
int ic_bufpool_tensor(ic_bufpool *p, ic_tensor *t, int n, int c, int h, int w);

#endif
