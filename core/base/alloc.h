/* The library's heap allocator, with a fault-injection hook for tests.
 *
 * All heap memory of libinstcal goes through ic_malloc/ic_calloc/ic_realloc/
 * ic_free so that tests (and the server's fault tests) can make the N-th
 * allocation fail and check that the failure becomes an error code, never a
 * crash. */
#ifndef IC_BASE_ALLOC_H
#define IC_BASE_ALLOC_H

#include <stddef.h>

void *ic_malloc(size_t size);
void *ic_calloc(size_t n, size_t size);
void *ic_realloc(void *p, size_t size);
void ic_free(void *p);

/* 64-byte aligned allocation, released with ic_free_aligned(). */
void *ic_malloc_aligned(size_t size);
void ic_free_aligned(void *p);

/* Fault injection: after `n` more successful allocations, every following
 * allocation fails (returns NULL) until ic_alloc_fail_reset(). n < 0 disables.
 * Process-wide; meant for tests only. */
void ic_alloc_fail_after(long n);
void ic_alloc_fail_reset(void);

/* Number of allocations refused by the fault injector since start. */
unsigned long ic_alloc_injected_failures(void);

/* Checked size arithmetic: *out = a * b; returns 0, or -1 on overflow. */
int ic_size_mul(size_t *out, size_t a, size_t b);
int ic_size_add(size_t *out, size_t a, size_t b);

#endif
