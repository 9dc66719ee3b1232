/* A pool of float buffers carved from an arena and reused by liveness.
 *
 * The forward pass asks for a buffer per activation and gives it back as
 * soon as the last consumer has read it; a later request of the same or a
 * smaller size gets the same memory back (best fit). Peak memory is thus
 * close to the largest set of simultaneously live tensors, and since the
 * pool lives in a worker's arena, a steady-state request allocates nothing.
 *
 * Best fit over whole buffers fragments when sizes vary (R-52-DSConv's
 * blocked forward at 512x1024: 400 MiB of buffers for 204 MiB live at
 * most), so a forward that can walk the network without computing (the
 * blocked one, model/pdl_engine.c) plans instead:
 *   1. ic_bufpool_record(): the gets and puts of a dry walk are recorded
 *      (gets return distinct placeholders that must never be read or
 *      written);
 *   2. ic_bufpool_plan(): each recorded buffer gets an offset in one region
 *      so that buffers alive at the same time never overlap (greedy by
 *      size: largest first, each at the lowest offset that fits), and the
 *      region is taken from the arena;
 *   3. the real walk makes the same requests in the same order and gets
 *      the planned memory; a request that differs from the record is an
 *      error (IC_EINVAL), never a silent overlap. */
#ifndef IC_MODEL_BUFPOOL_H
#define IC_MODEL_BUFPOOL_H

#include <stddef.h>

#include "base/arena.h"
#include "base/tensor.h"

#define IC_BUFPOOL_MAX 128

/* One recorded request: its size and the steps of its get and put. */
typedef struct ic_bufpool_req {
    size_t n, off;   /* floats (rounded to 16), planned offset */
    int get, put;    /* put: INT_MAX while held to the end */
    int held;        /* planned mode: handed out and not given back */
} ic_bufpool_req;

typedef struct ic_bufpool {
    ic_arena *arena;
    int n;
    float *buf[IC_BUFPOOL_MAX];
    size_t cap[IC_BUFPOOL_MAX]; /* floats */
    unsigned char used[IC_BUFPOOL_MAX];
    size_t live, peak;          /* floats handed out now / at most */
    /* planning (ic_bufpool_record / ic_bufpool_plan) */
    int mode;                   /* 0 best fit, 1 recording, 2 planned */
    ic_bufpool_req *req;        /* recorded requests, in order */
    int n_req, max_req, next;   /* recorded, capacity, next planned request */
    int step;                   /* gets and puts so far (recording) */
    float *fake;                /* recording: placeholder k is fake + k */
    float *region;              /* planned: base of the region */
    size_t region_floats;
} ic_bufpool;

void ic_bufpool_init(ic_bufpool *p, ic_arena *arena);

/* A buffer of at least n floats, or NULL (IC_ENOMEM recorded). */
float *ic_bufpool_get(ic_bufpool *p, size_t n);

/* Gives a buffer back; NULL and pointers not from this pool are ignored. */
void ic_bufpool_put(ic_bufpool *p, const float *buf);

/* Starts recording up to max_req requests (memory for the record from the
 * arena). Returns 0 or IC_ENOMEM. */
int ic_bufpool_record(ic_bufpool *p, int max_req);

/* Plans the recorded requests into one region from the arena and switches
 * to handing out planned memory (the record is replayed from its start).
 * Returns 0 or IC_ENOMEM. */
int ic_bufpool_plan(ic_bufpool *p);

/* Shapes and allocates a tensor from the pool. Returns 0 or IC_ENOMEM/IC_EINVAL. */
int ic_bufpool_tensor(ic_bufpool *p, ic_tensor *t, int n, int c, int h, int w);

#endif
