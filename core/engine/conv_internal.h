/* What the engine's convolution files share (not an API): conv.c packs and
 * dispatches, conv_direct.c, conv_wino.c and conv_dw.c run the paths. */
#ifndef IC_ENGINE_CONV_INTERNAL_H
#define IC_ENGINE_CONV_INTERNAL_H

#include "engine/conv.h"
#include "engine/kern.h"

/* Most kernel taps of the gemm path (7x7). */
#define IC_ENG_MAX_TAPS 49
/* Largest cin * kh * kw that goes through im2col columns (the stem's 27). */
#define IC_ENG_IM2COL_K 64

/* One image's job, shared by the threads of a path. */
typedef struct ic_eng_job {
    const ic_eng_conv *cv;
    ic_tensor *y;
    ic_tensor *x;
    const ic_blk_pend *pend;
    const ic_eng_out *o;
    int n;        /* image */
    float *ws;    /* the path's scratch (after the statistics) */
    double *st;   /* per-thread statistics: threads x pairs x 64 */
    int threads;
    int x_nchw; /* x is NCHW (im2col only) */
} ic_eng_job;

/* Floats of per-thread statistics a path reserves at the start of ws. */
size_t ic_eng_stats_floats(const ic_eng_conv *cv, int threads);

/* Adds the threads' statistics of image n to o->stats. */
void ic_eng_stats_merge(const ic_eng_job *j);

size_t ic_eng_direct_ws_floats(const ic_eng_conv *cv, int h, int w);
/* The K chunks of the gemm path (the last one writes out). */
int ic_eng_direct_chunks(const ic_eng_conv *cv, int *kcb);
void ic_eng_direct_run(const ic_eng_job *j);

size_t ic_eng_wino_ws_floats(const ic_eng_conv *cv, int h, int w, int threads);
void ic_eng_wino_run(const ic_eng_job *j);
int ic_eng_wino_pack(ic_eng_conv *cv, const float *weight);

size_t ic_eng_dw_ws_floats(const ic_eng_conv *cv, int h, int w, int threads);
void ic_eng_dw_run(const ic_eng_job *j);

/* The write-out parameters of output pair `pair` for thread `tid`. */
static inline ic_kern_out ic_eng_kern_out(const ic_eng_job *j, int pair, int tid)
{
    const ic_eng_out *o = j->o;
    ic_kern_out k = {
        .scale = o->scale ? o->scale + 32 * pair : NULL,
        .bias = (o->bias ? o->bias : j->cv->bias) + 32 * pair,
        .relu = o->relu,
        .stats = o->stats ? j->st + ((size_t)tid * j->cv->pairs + (size_t)pair) * 64 : NULL,
        .shift = o->shift ? o->shift + 32 * pair : NULL,
    };
    return k;
}

#endif
