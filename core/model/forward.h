/* How a request's network runs, as a value chosen once per request: the
 * serving network's own forward (ic_pdl_forward), or a strategy that adapts
 * a private copy first and runs that (TENT, core/adapt/tent.h). The
 * inference path (core/infer) only calls ic_forward_run(); it never knows
 * which strategy it holds, so it needs nothing from the training code. */
#ifndef IC_MODEL_FORWARD_H
#define IC_MODEL_FORWARD_H

#include "model/pdl.h"

typedef struct ic_forward {
    /* The serving network: its config shapes the inputs and outputs. */
    const ic_pdl *net;
    /* NULL: ic_pdl_forward(net, ...). Otherwise the strategy's forward, with
     * ic_pdl_forward's contract; ctx is its state (one request at a time). */
    int (*run)(void *ctx, const ic_tensor *x, const ic_calib_opts *opts, int flags,
               ic_arena *arena, ic_pdl_outputs *out);
    void *ctx;
} ic_forward;

/* The plain strategy: net's own forward. */
static inline ic_forward ic_forward_plain(const ic_pdl *net)
{
    ic_forward f = {net, 0, 0};
    return f;
}

/* Runs the strategy on x (see ic_pdl_forward). */
static inline int ic_forward_run(const ic_forward *f, const ic_tensor *x,
                                 const ic_calib_opts *opts, int flags, ic_arena *arena,
                                 ic_pdl_outputs *out)
{
    return f->run ? f->run(f->ctx, x, opts, flags, arena, out)
                  : ic_pdl_forward(f->net, x, opts, flags, arena, out);
}

#endif
