/* Softmax over channels, argmax, and fused confidence statistics.
 *
 * Semantic logits are (N, C, H, W) with C classes; every pixel is one
 * distribution over C. Besides the plain softmax, serving needs per pixel
 * only the predicted class, its probability and the entropy (confidence maps,
 * ECE, the response's confidence summary), which ic_softmax_stats computes in
 * two passes over the logits without materialising the C probabilities.
 *
 * Ties and NaN, matching torch.argmax / torch.max on CPU (checked on torch
 * 1.13): among equal maxima the LOWEST channel index wins; a NaN logit counts
 * as larger than any number, and the first NaN wins.
 * The backward of the softmax (for losses on probabilities, e.g. TENT's
 * entropy) lives here and accumulates into dx like every backward in
 * core/ops; softmax cross-entropy has its fused backward in ops/loss.h. */
#ifndef IC_OPS_SOFTMAX_H
#define IC_OPS_SOFTMAX_H

#include <stdint.h>

#include "base/tensor.h"

/* y = softmax(x) over the channel axis, per (n, h, w); numerically stable
 * (the per-pixel maximum is subtracted first). y has x's shape and may alias
 * x (in place). Returns 0 or IC_ESHAPE. */
int ic_softmax_forward(ic_tensor *y, const ic_tensor *x);

/* Backward of ic_softmax_forward from its output y: per pixel,
 * dx_c += y_c (dy_c - sum_k dy_k y_k) (the sum in double). dx must not
 * overlap dy or y. Returns 0 or IC_ESHAPE. */
int ic_softmax_backward(ic_tensor *dx, const ic_tensor *dy, const ic_tensor *y);

/* label (N, H, W) = argmax over channels of x (ties: lowest index). label is
 * a caller-owned array of N*H*W. Returns 0 or IC_EINVAL (NULL label). */
int ic_softmax_argmax(int32_t *label, const ic_tensor *x);

/* Fused per-pixel statistics of softmax(logits), all (N, H, W), caller-owned,
 * each may be NULL when not wanted:
 *   label    argmax (as ic_softmax_argmax),
 *   maxprob  the largest probability, 1 / sum_c exp(x_c - max),
 *   entropy  -sum_c p_c log p_c in nats, computed as
 *            log s - sum_c e_c (x_c - max) / s with e_c = exp(x_c - max), s = sum e_c.
 * Two passes over the logits and no allocation. Returns 0. */
int ic_softmax_stats(int32_t *label, float *maxprob, float *entropy, const ic_tensor *logits);

/* References for tests: one pixel at a time, softmax materialised in double. */
int ic_softmax_forward_ref(ic_tensor *y, const ic_tensor *x);
int ic_softmax_stats_ref(int32_t *label, float *maxprob, float *entropy, const ic_tensor *logits);

#endif
