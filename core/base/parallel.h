/* Fork-join over an index range, for the memory-bound passes beside sgemm.
 *
 * sgemm runs on OpenBLAS's own threads; the copies before and after it
 * (im2col, the phase-split input of a strided convolution, the bias + ReLU
 * epilogue) and the per-plane ops (depthwise conv, pooling, resize, add,
 * calibrated BN) would otherwise run on one core and cost as much as the
 * sgemm for layers with few channels. ic_parallel_for() splits [0, n) into
 * `threads` contiguous ranges and runs fn on each, the caller taking the
 * first. The other ranges run on helper threads that the calling thread
 * keeps for its lifetime (each caller has its own; they are joined when it
 * exits, and a forked child starts fresh ones). It never fails: a range
 * whose helper cannot be started runs on the caller, and a call made from
 * inside a range runs inline. */
#ifndef IC_BASE_PARALLEL_H
#define IC_BASE_PARALLEL_H

#include <stddef.h>

/* Most threads ic_parallel_for() starts for one call. */
#define IC_PARALLEL_MAX 16
/* Fewest floats of copying worth a thread of its own (waking a helper and
 * waiting for it costs about as much as copying this many). */
#define IC_PARALLEL_MIN_FLOATS ((size_t)1 << 16)

typedef void (*ic_range_fn)(void *ctx, int lo, int hi);

/* Runs fn(ctx, lo, hi) over disjoint ranges covering [0, n), on up to
 * `threads` threads (capped by IC_PARALLEL_MAX and by n). Returns when
 * every range is done. n <= 0 does nothing. */
void ic_parallel_for(ic_range_fn fn, void *ctx, int n, int threads);

/* How many threads a job of `work` units deserves when each thread should
 * get at least `min_work` of them: min(threads, work / min_work), >= 1. */
int ic_parallel_threads(size_t work, size_t min_work, int threads);

/* Fewest floats per thread for the streaming passes of ic_parallel_threads_for:
 * 2 MiB per thread. Measured when every call started its threads (35-60 us
 * each), splitting 256 KiB planes made the shipped model's (256x512)
 * calibrated modes slower; with kept helpers, lowering it to 1 << 16
 * measured no gain outside the noise, so it stays. */
#define IC_PARALLEL_MIN_STREAM ((size_t)1 << 19)

/* Threads for a memory-bound pass over `floats` values: the calling
 * thread's OpenBLAS thread count (a daemon worker is given that many
 * cores), fewer when each would get under IC_PARALLEL_MIN_STREAM. */
int ic_parallel_threads_for(size_t floats);

#endif
