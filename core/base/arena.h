/* A bump allocator for per-request and per-worker scratch memory.
 *
 * An arena owns a chain of 64-byte aligned blocks. ic_arena_alloc() bumps a
 * pointer inside the current block and takes the next block (or makes a new
 * one) when it is full. ic_arena_reset() rewinds every block but keeps them,
 * so once a worker has served its largest request its steady state allocates
 * nothing; ic_arena_shrink() gives back what a rare large request added.
 * A mark/rewind pair frees everything allocated after the mark.
 * An optional byte cap turns runaway requests into IC_ENOMEM errors. */
#ifndef IC_BASE_ARENA_H
#define IC_BASE_ARENA_H

#include <stddef.h>

typedef struct ic_arena_block ic_arena_block;

typedef struct ic_arena {
    ic_arena_block *first;   /* chain of blocks, in allocation order */
    ic_arena_block *cur;     /* block currently bumped */
    size_t block_size;       /* default size of a new block */
    size_t cap;              /* max bytes of all blocks together; 0 = none */
    size_t reserved;         /* bytes held in blocks */
    size_t peak;             /* high-water mark of bytes in use */
    unsigned long n_block_allocs; /* blocks ever malloc'd (steady state: flat) */
} ic_arena;

typedef struct ic_arena_mark {
    ic_arena_block *block;
    size_t used;
} ic_arena_mark;

/* Initialises an empty arena; no memory is taken until the first alloc.
 * block_size 0 picks 1 MiB. cap 0 means unlimited. */
void ic_arena_init(ic_arena *a, size_t block_size, size_t cap);

/* Releases every block. The arena can be initialised again afterwards. */
void ic_arena_deinit(ic_arena *a);

/* Returns `size` bytes aligned to 64, or NULL (IC_ENOMEM recorded) when the
 * heap or the cap refuses. Memory is uninitialised. */
void *ic_arena_alloc(ic_arena *a, size_t size);

/* Same, zero-filled. */
void *ic_arena_calloc(ic_arena *a, size_t n, size_t size);

/* Array of n floats (NULL on failure or overflow). */
float *ic_arena_floats(ic_arena *a, size_t n);

/* Rewinds everything; keeps the blocks for reuse. */
void ic_arena_reset(ic_arena *a);

/* Rewinds everything like ic_arena_reset(), then frees blocks (the first
 * ones in the chain stay) until at most `keep` bytes remain reserved, so one
 * large request does not pin its memory for the life of a worker. Returns
 * the bytes released; 0 when the arena already fits. */
size_t ic_arena_shrink(ic_arena *a, size_t keep);

ic_arena_mark ic_arena_get_mark(const ic_arena *a);
/* Frees everything allocated after `m` (blocks are kept). */
void ic_arena_rewind(ic_arena *a, ic_arena_mark m);

/* Bytes currently handed out (including alignment padding). */
size_t ic_arena_used(const ic_arena *a);

#endif
