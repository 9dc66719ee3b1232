/* Best-fit buffer reuse on top of an arena (see bufpool.h). */
#include "model/bufpool.h"

#include "base/alloc.h"
#include "base/err.h"

void ic_bufpool_init(ic_bufpool *p, ic_arena *arena)
{
    p->arena = arena;
    p->n = 0;
    p->live = p->peak = 0;
}

float *ic_bufpool_get(ic_bufpool *p, size_t n)
{
    int best = -1;
    for (int i = 0; i < p->n; i++)
        if (!p->used[i] && p->cap[i] >= n && (best < 0 || p->cap[i] < p->cap[best]))
            best = i;
    if (best < 0) {
        /* Grow the largest free buffer's slot would need realloc; a new slot is simpler. */
        if (p->n == IC_BUFPOOL_MAX) {
            ic_error_set(IC_ENOMEM, "buffer pool: more than %d live buffers", IC_BUFPOOL_MAX);
            return NULL;
        }
        float *b = ic_arena_floats(p->arena, n);
        if (!b)
            return NULL;
        best = p->n++;
        p->buf[best] = b;
        p->cap[best] = n;
    }
    p->used[best] = 1;
    p->live += p->cap[best];
    if (p->live > p->peak)
        p->peak = p->live;
    return p->buf[best];
}

void ic_bufpool_put(ic_bufpool *p, const float *buf)
{
    for (int i = 0; i < p->n; i++)
        if (p->buf[i] == buf && p->used[i]) {
            p->used[i] = 0;
            p->live -= p->cap[i];
            return;
        }
}

int ic_bufpool_tensor(ic_bufpool *p, ic_tensor *t, int n, int c, int h, int w)
{
    if (n <= 0 || c <= 0 || h <= 0 || w <= 0)
        return ic_error_set(IC_EINVAL, "tensor: bad shape (%d, %d, %d, %d)", n, c, h, w);
    size_t count, tmp;
    if (ic_size_mul(&tmp, (size_t)n, (size_t)c) || ic_size_mul(&tmp, tmp, (size_t)h) ||
        ic_size_mul(&count, tmp, (size_t)w))
        return ic_error_set(IC_ENOMEM, "tensor: shape overflows");
    float *d = ic_bufpool_get(p, count);
    if (!d)
        return ic_error_prefix(IC_ENOMEM, "tensor (%d, %d, %d, %d)", n, c, h, w);
    *t = ic_tensor_wrap(d, n, c, h, w);
    return 0;
}
