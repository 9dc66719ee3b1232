/* Heap wrappers with a process-wide fault injector (see alloc.h). */
#include "base/alloc.h"

#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>

static atomic_long fail_countdown = -1;
static atomic_ulong injected;

static int should_fail(void)
{
    long c = atomic_load_explicit(&fail_countdown, memory_order_relaxed);
    if (c < 0)
        return 0;
    if (c == 0) {
        atomic_fetch_add(&injected, 1);
        return 1;
    }
    /* Decrement; a race may let one extra allocation through, which is fine
     * for a test hook. */
    atomic_fetch_sub(&fail_countdown, 1);
    return 0;
}

void *ic_malloc(size_t size)
{
    if (should_fail())
        return NULL;
    return malloc(size ? size : 1);
}

void *ic_calloc(size_t n, size_t size)
{
    if (should_fail())
        return NULL;
    if (n == 0 || size == 0)
        return calloc(1, 1);
    return calloc(n, size);
}

void *ic_realloc(void *p, size_t size)
{
    if (should_fail())
        return NULL;
    return realloc(p, size ? size : 1);
}

void ic_free(void *p)
{
    free(p);
}

void *ic_malloc_aligned(size_t size)
{
    if (should_fail())
        return NULL;
    void *p = NULL;
    size = (size + 63) & ~(size_t)63;
    if (posix_memalign(&p, 64, size ? size : 64) != 0)
        return NULL;
    return p;
}

void ic_free_aligned(void *p)
{
    free(p);
}

void ic_alloc_fail_after(long n)
{
    atomic_store(&fail_countdown, n);
}

void ic_alloc_fail_reset(void)
{
    atomic_store(&fail_countdown, -1);
}

unsigned long ic_alloc_injected_failures(void)
{
    return atomic_load(&injected);
}

int ic_size_mul(size_t *out, size_t a, size_t b)
{
    if (a != 0 && b > SIZE_MAX / a)
        return -1;
    *out = a * b;
    return 0;
}

int ic_size_add(size_t *out, size_t a, size_t b)
{
    if (b > SIZE_MAX - a)
        return -1;
    *out = a + b;
    return 0;
}
