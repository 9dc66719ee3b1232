/* Best-fit buffer reuse on top of an arena (see bufpool.h). */
#include "model/bufpool.h"

#include "base/alloc.h"
#include "base/err.h"

#include <limits.h>

void ic_bufpool_init(ic_bufpool *p, ic_arena *arena)
{
    p->arena = arena;
    p->n = 0;
    p->live = p->peak = 0;
    p->mode = 0;
    p->req = NULL;
    p->n_req = p->max_req = p->next = p->step = 0;
    p->fake = p->region = NULL;
    p->region_floats = 0;
}

static void count_live(ic_bufpool *p, size_t n)
{
    p->live += n;
    if (p->live > p->peak)
        p->peak = p->live;
}

static size_t round16(size_t n)
{
    return (n + 15) & ~(size_t)15;
}

static float *record_get(ic_bufpool *p, size_t n)
{
    if (p->n_req == p->max_req) {
        ic_error_set(IC_ENOMEM, "buffer pool: more than %d requests to plan", p->max_req);
        return NULL;
    }
    ic_bufpool_req *r = &p->req[p->n_req];
    *r = (ic_bufpool_req){.n = round16(n), .get = p->step++, .put = INT_MAX};
    count_live(p, r->n);
    return p->fake + p->n_req++;
}

static float *planned_get(ic_bufpool *p, size_t n)
{
    if (p->next == p->n_req || round16(n) > p->req[p->next].n) {
        ic_error_set(IC_EINVAL, "buffer pool: request %d (%zu floats) is not the planned one",
                     p->next, n);
        return NULL;
    }
    ic_bufpool_req *r = &p->req[p->next++];
    r->held = 1;
    count_live(p, r->n);
    return p->region + r->off;
}

float *ic_bufpool_get(ic_bufpool *p, size_t n)
{
    if (p->mode == 1)
        return record_get(p, n);
    if (p->mode == 2)
        return planned_get(p, n);
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
    if (p->mode == 1) {
        if (buf >= p->fake && buf < p->fake + p->n_req && p->req[buf - p->fake].put == INT_MAX) {
            p->req[buf - p->fake].put = p->step++;
            p->live -= p->req[buf - p->fake].n;
        }
        return;
    }
    if (p->mode == 2) {
        for (int i = 0; i < p->next; i++)
            if (p->req[i].held && p->region + p->req[i].off == buf) {
                p->req[i].held = 0;
                p->live -= p->req[i].n;
                return;
            }
        return;
    }
    for (int i = 0; i < p->n; i++)
        if (p->buf[i] == buf && p->used[i]) {
            p->used[i] = 0;
            p->live -= p->cap[i];
            return;
        }
}

int ic_bufpool_record(ic_bufpool *p, int max_req)
{
    ic_bufpool_init(p, p->arena);
    p->req = ic_arena_calloc(p->arena, (size_t)max_req, sizeof *p->req);
    p->fake = ic_arena_floats(p->arena, (size_t)max_req);
    if (!p->req || !p->fake)
        return ic_error_prefix(IC_ENOMEM, "buffer pool: record of %d requests", max_req);
    p->max_req = max_req;
    p->mode = 1;
    return 0;
}

/* Largest request first (ties: the earlier one). */
static int by_size(const void *a, const void *b, void *ctx)
{
    const ic_bufpool_req *req = ctx;
    const ic_bufpool_req *x = &req[*(const int *)a], *y = &req[*(const int *)b];
    if (x->n != y->n)
        return x->n > y->n ? -1 : 1;
    return x->get - y->get;
}

int ic_bufpool_plan(ic_bufpool *p)
{
    const int n = p->n_req;
    int *order = ic_arena_alloc(p->arena, ((size_t)n + 1) * sizeof *order);
    int *placed = ic_arena_alloc(p->arena, ((size_t)n + 1) * sizeof *placed);
    if (!order || !placed)
        return ic_error_prefix(IC_ENOMEM, "buffer pool: plan of %d requests", n);
    for (int i = 0; i < n; i++)
        order[i] = i;
    /* insertion sort: a few hundred requests, and qsort has no context argument */
    for (int i = 1; i < n; i++) {
        const int k = order[i];
        int j = i;
        while (j > 0 && by_size(&k, &order[j - 1], p->req) < 0) {
            order[j] = order[j - 1];
            j--;
        }
        order[j] = k;
    }
    size_t total = 0;
    for (int i = 0; i < n; i++) {
        ic_bufpool_req *r = &p->req[order[i]];
        /* the placed requests alive at the same time as r, by offset */
        int m = 0;
        for (int j = 0; j < i; j++) {
            const ic_bufpool_req *q = &p->req[order[j]];
            if (q->get < r->put && r->get < q->put) {
                int at = m++;
                while (at > 0 && p->req[placed[at - 1]].off > q->off) {
                    placed[at] = placed[at - 1];
                    at--;
                }
                placed[at] = order[j];
            }
        }
        /* the lowest gap that holds r */
        size_t off = 0;
        for (int j = 0; j < m; j++) {
            const ic_bufpool_req *q = &p->req[placed[j]];
            if (q->off >= off + r->n)
                break;
            if (q->off + q->n > off)
                off = q->off + q->n;
        }
        r->off = off;
        if (off + r->n > total)
            total = off + r->n;
    }
    p->region = ic_arena_floats(p->arena, total ? total : 1);
    if (!p->region)
        return ic_error_prefix(IC_ENOMEM, "buffer pool: planned region of %zu floats", total);
    p->region_floats = total;
    p->mode = 2;
    p->next = 0;
    p->live = p->peak = 0;
    return 0;
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
