/* TENT (Wang et al., ICLR 2021) as an episodic per-request calibration mode.
 *
 * For one request: N steps (default 1) of Adam on the BN affine parameters
 * (gamma, beta) minimising the mean per-pixel softmax entropy of the
 * semantic logits, with BN normalising by instance statistics (tbn, m = 1);
 * then a final tbn forward whose outputs are returned; then gamma and beta
 * are restored exactly, so no state leaks from one request to the next.
 *
 * The shared serving model is read-only, so TENT cannot touch it: every
 * worker creates its own ic_tent, which owns a trainable copy of the same
 * weights file (about three times the weights' size: data, gradients and a
 * copy of gamma/beta; Adam moments only over gamma/beta). An ic_tent serves
 * one request at a time.
 *
 * Optimiser choice: TENT's code uses Adam (lr 1e-3, betas 0.9/0.999) for its
 * CIFAR and segmentation experiments and SGD with momentum for ImageNet; per
 * image and with one step, Adam's first step moves every parameter by about
 * lr in the direction of its gradient's sign, independent of the loss scale,
 * which is what a single episodic step needs. Default lr 1e-3; the Adam
 * state is reset for every request. */
#ifndef IC_ADAPT_TENT_H
#define IC_ADAPT_TENT_H

#include "base/arena.h"
#include "base/tensor.h"
#include "calib/calib.h"
#include "model/pdl.h"

/* Defaults used when ic_calib_opts leaves tent_steps / tent_lr <= 0. */
#define IC_TENT_DEFAULT_STEPS 1
#define IC_TENT_DEFAULT_LR 1e-3f
/* Upper bound on steps per request (latency guard). */
#define IC_TENT_MAX_STEPS 100

typedef struct ic_tent ic_tent;

/* Loads a private trainable copy of the model (same arguments as
 * ic_pdl_load). Returns 0 or ic_pdl_load's / IC_ENOMEM. */
int ic_tent_create(ic_tent **ret, const char *weights_path, const char *config_path);

/* Releases it; *t becomes NULL. NULL is fine. */
void ic_tent_free(ic_tent **t);

/* The private model (for its config; do not run other requests on it). */
const ic_pdl *ic_tent_model(const ic_tent *t);

/* Runs TENT on x (N, 3, H, W), normalised like ic_pdl_forward's input, any
 * size (the adaptation steps pad to a multiple of 16 with zeros and ignore
 * the padding in the entropy). Outputs and scratch come from `arena`
 * (outputs stay valid until it is reset); flags as ic_pdl_forward. opts:
 * tent_steps and tent_lr (<= 0: defaults above); the mode field is ignored.
 * *ret_entropy (may be NULL) receives the mean entropy before adaptation.
 * gamma/beta are restored on every path, success or failure. Returns 0,
 * IC_EINVAL (bad input or steps > IC_TENT_MAX_STEPS), IC_ENOMEM. */
int ic_tent_forward(ic_tent *t, const ic_tensor *x, const ic_calib_opts *opts, int flags,
                    ic_arena *arena, ic_pdl_outputs *out, double *ret_entropy);

/* Mean per-pixel entropy (nats) of softmax(logits) over the top-left h x w
 * window of every image, and its gradient added into dlogits (same shape as
 * logits; may be NULL). Exposed for tests. */
double ic_tent_entropy(const ic_tensor *logits, int h, int w, ic_tensor *dlogits);

#endif
