/* Training losses of Panoptic-DeepLab, forward and backward, exactly as
 * detectron2 computes them (docs/network.md §Losses):
 *  - DeepLabCE: per-pixel softmax cross-entropy with an ignore label, times
 *    per-pixel weights, then hard-pixel mining: the mean of the k largest
 *    pixel losses with k = int(top_k * N*H*W) counted over the WHOLE batch,
 *    ignored pixels included (they contribute zeros). top_k = 1 is the plain
 *    mean over every pixel, ignored ones in the denominator too;
 *  - center heatmap MSE: sum((pred - target)^2 * w) / sum(w);
 *  - offset L1: sum(|pred - target| * w) / sum(w), with w (N, 1, H, W)
 *    broadcast over the two offset channels and counted once per pixel.
 * The loss weights (1, 200, 0.01 for Cityscapes) are applied by the caller:
 * the forward returns the unweighted loss and the backward takes the
 * upstream gradient dloss (= the loss weight for a plain sum of losses).
 * Backward passes accumulate into the prediction gradients (+=), like every
 * backward in core/ops. Nothing here allocates: scratch comes from the caller.
 */
#ifndef IC_OPS_LOSS_H
#define IC_OPS_LOSS_H

#include <stddef.h>
#include <stdint.h>

#include "base/tensor.h"

/* detectron2's ignore label for semantic targets. */
#define IC_LOSS_IGNORE 255

/* Panoptic-DeepLab's loss weights (detectron2 configs, Cityscapes). */
#define IC_LOSS_CENTER_WEIGHT 200.0f
#define IC_LOSS_OFFSET_WEIGHT 0.01f

/* DeepLabCE forward. logits (N, C, H, W); labels (N*H*W) in [0, C) or
 * ignore_index (pixel loss 0, no gradient); weights (N*H*W) multiply the
 * pixel losses (NULL = all ones). top_k in (0, 1].
 * k = (size_t)(top_k * N*H*W) as Python's int(); the k largest weighted pixel
 * losses are found with a 3-way quickselect on `work` (N*H*W floats,
 * caller-owned scratch, clobbered), not a full sort. Among pixels tied with
 * the k-th value, the lowest indices are the selected ones (the loss value
 * does not depend on that choice; PyTorch's topk leaves it unspecified).
 * `coef` (N*H*W, caller-owned) receives the backward's cache:
 * d loss / d (pixel loss) = weight / k for selected pixels, 0 for the rest.
 * *loss = mean of the selected pixel losses (summed in double).
 * Returns 0, IC_EINVAL (top_k out of range, k = 0 -- detectron2 would return
 * NaN -- or a label outside [0, C) that is not ignore_index), IC_ESHAPE. */
int ic_loss_deeplab_ce_forward(float *loss, float *coef, float *work, const ic_tensor *logits,
                               const int32_t *labels, const float *weights, double top_k,
                               int ignore_index);

/* DeepLabCE backward: dlogits += dloss * coef_i * (softmax(logits_i) -
 * onehot(label_i)) for every pixel i with coef_i != 0 (only the mined pixels
 * get gradient). coef, logits, labels as given to / produced by the forward.
 * dlogits must not overlap logits. Returns 0 or IC_ESHAPE. */
int ic_loss_deeplab_ce_backward(ic_tensor *dlogits, float dloss, const float *coef,
                                const ic_tensor *logits, const int32_t *labels, int ignore_index);

/* Center MSE forward: *loss = sum((pred - target)^2 * w) / sum(w), or 0 when
 * sum(w) == 0 (detectron2 returns sum * 0 there). pred and target have one
 * shape (N, C, H, W); weight is (N, 1, H, W) and broadcasts over channels
 * (for the center head C = 1). Sums in double.
 * Returns 0 or IC_ESHAPE. */
int ic_loss_center_mse_forward(float *loss, const ic_tensor *pred, const ic_tensor *target,
                               const ic_tensor *weight);

/* Center MSE backward: dpred += dloss * 2 (pred - target) w / sum(w)
 * (nothing when sum(w) == 0). Returns 0 or IC_ESHAPE. */
int ic_loss_center_mse_backward(ic_tensor *dpred, float dloss, const ic_tensor *pred,
                                const ic_tensor *target, const ic_tensor *weight);

/* Offset L1 forward: *loss = sum(|pred - target| * w) / sum(w) with pred and
 * target (N, 2, H, W) and weight (N, 1, H, W) broadcast over the channels;
 * sum(w) counts each pixel once, not once per channel. 0 when sum(w) == 0.
 * Any channel count works the same way. Returns 0 or IC_ESHAPE. */
int ic_loss_offset_l1_forward(float *loss, const ic_tensor *pred, const ic_tensor *target,
                              const ic_tensor *weight);

/* Offset L1 backward: dpred += dloss * sign(pred - target) w / sum(w), with
 * sign(0) = 0 as in torch. Returns 0 or IC_ESHAPE. */
int ic_loss_offset_l1_backward(ic_tensor *dpred, float dloss, const ic_tensor *pred,
                               const ic_tensor *target, const ic_tensor *weight);

#endif
