/* Chained-block bump allocator (see arena.h). */
#include "base/arena.h"

#include "base/alloc.h"
#include "base/err.h"

#include <string.h>

#define ARENA_ALIGN 64

struct ic_arena_block {
    ic_arena_block *next;
    size_t size; /* usable bytes in data */
    size_t used;
    unsigned char *data; /* ARENA_ALIGN aligned */
};

void ic_arena_init(ic_arena *a, size_t block_size, size_t cap)
{
    memset(a, 0, sizeof *a);
    a->block_size = block_size ? block_size : ((size_t)1 << 20);
    a->cap = cap;
}

void ic_arena_deinit(ic_arena *a)
{
    ic_arena_block *b = a->first;
    while (b) {
        ic_arena_block *next = b->next;
        ic_free_aligned(b->data);
        ic_free(b);
        b = next;
    }
    a->first = a->cur = NULL;
    a->reserved = 0;
}

static size_t align_up(size_t n)
{
    return (n + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
}

static ic_arena_block *new_block(ic_arena *a, size_t need)
{
    size_t size = need > a->block_size ? need : a->block_size;
    if (a->cap) {
        size_t room = a->reserved < a->cap ? a->cap - a->reserved : 0;
        if (need > room)
            return NULL;
        if (size > room)
            size = room; /* a smaller block that still fits the request */
    }
    ic_arena_block *b = ic_malloc(sizeof *b);
    if (!b)
        return NULL;
    b->data = ic_malloc_aligned(size);
    if (!b->data) {
        ic_free(b);
        return NULL;
    }
    b->next = NULL;
    b->size = size;
    b->used = 0;
    a->reserved += size;
    a->n_block_allocs++;
    return b;
}

void *ic_arena_alloc(ic_arena *a, size_t size)
{
    if (size > ((size_t)-1) / 2) {
        ic_error_set(IC_ENOMEM, "arena: request of %zu bytes is too large", size);
        return NULL;
    }
    size_t need = align_up(size ? size : 1);
    ic_arena_block *b = a->cur;
    if (!b && a->first)
        b = a->cur = a->first;
    /* Walk forward through kept blocks until one has room. Skipped blocks
     * stay unused until the next rewind; that wastes little because block
     * sizes settle after the first large request. */
    while (b && b->size - b->used < need) {
        if (!b->next)
            break;
        b = b->next;
        b->used = 0;
        a->cur = b;
    }
    if (!b || b->size - b->used < need) {
        ic_arena_block *nb = new_block(a, need);
        if (!nb) {
            ic_error_set(IC_ENOMEM, "arena: cannot allocate %zu bytes (%zu reserved, cap %zu)",
                         size, a->reserved, a->cap);
            return NULL;
        }
        if (b) {
            /* Insert after b so that later kept blocks stay reachable. */
            nb->next = b->next;
            b->next = nb;
        } else {
            a->first = nb;
        }
        b = a->cur = nb;
    }
    void *p = b->data + b->used;
    b->used += need;
    size_t used = ic_arena_used(a);
    if (used > a->peak)
        a->peak = used;
    return p;
}

void *ic_arena_calloc(ic_arena *a, size_t n, size_t size)
{
    size_t bytes;
    if (ic_size_mul(&bytes, n, size) != 0) {
        ic_error_set(IC_ENOMEM, "arena: size overflow (%zu x %zu)", n, size);
        return NULL;
    }
    void *p = ic_arena_alloc(a, bytes);
    if (p)
        memset(p, 0, bytes);
    return p;
}

float *ic_arena_floats(ic_arena *a, size_t n)
{
    size_t bytes;
    if (ic_size_mul(&bytes, n, sizeof(float)) != 0) {
        ic_error_set(IC_ENOMEM, "arena: size overflow (%zu floats)", n);
        return NULL;
    }
    return ic_arena_alloc(a, bytes);
}

void ic_arena_reset(ic_arena *a)
{
    for (ic_arena_block *b = a->first; b; b = b->next)
        b->used = 0;
    a->cur = a->first;
}

size_t ic_arena_shrink(ic_arena *a, size_t keep)
{
    ic_arena_reset(a);
    size_t kept = 0, freed = 0;
    ic_arena_block **link = &a->first;
    while (*link) {
        ic_arena_block *b = *link;
        if (b->size <= keep - kept) {
            kept += b->size;
            link = &b->next;
            continue;
        }
        *link = b->next;
        freed += b->size;
        ic_free_aligned(b->data);
        ic_free(b);
    }
    a->reserved = kept;
    a->cur = a->first;
    return freed;
}

ic_arena_mark ic_arena_get_mark(const ic_arena *a)
{
    ic_arena_mark m = {a->cur, a->cur ? a->cur->used : 0};
    return m;
}

void ic_arena_rewind(ic_arena *a, ic_arena_mark m)
{
    if (!m.block) {
        ic_arena_reset(a);
        return;
    }
    for (ic_arena_block *b = m.block->next; b; b = b->next)
        b->used = 0;
    m.block->used = m.used;
    a->cur = m.block;
}

size_t ic_arena_used(const ic_arena *a)
{
    size_t used = 0;
    for (ic_arena_block *b = a->first; b; b = b->next)
        used += b->used;
    return used;
}
