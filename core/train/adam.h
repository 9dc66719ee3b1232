/* Adam with PyTorch's semantics (torch.optim.Adam, foreach=False) over the
 * model's parameter list, restricted to the kinds being trained.
 *
 * detectron2 trains Panoptic-DeepLab, and InstCal-Pano its calibration
 * tensors, with plain Adam: betas (0.9, 0.999), eps 1e-8, no weight decay,
 * no gradient clipping. The moments live in one buffer so a checkpoint can
 * write them as two arrays. Per element, with t the new step count:
 *   g += wd p;  m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2
 *   p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
 * Optional clipping rescales all selected gradients together when their
 * global L2 norm exceeds clip_norm (torch.nn.utils.clip_grad_norm_). */
#ifndef IC_TRAIN_ADAM_H
#define IC_TRAIN_ADAM_H

#include <stddef.h>
#include <stdint.h>

#include "model/pdl_train.h"

typedef struct ic_adam_opts {
    float beta1, beta2, eps; /* 0.9, 0.999, 1e-8 */
    float weight_decay;      /* L2 added to the gradient (torch Adam); 0 */
    float clip_norm;         /* global gradient-norm clip; <= 0 = off */
} ic_adam_opts;

typedef struct ic_adam {
    ic_adam_opts o;
    ic_param **p;     /* the selected parameters (pointers into the model's list) */
    int n;
    size_t total;     /* elements over all selected parameters */
    float *m, *v;     /* (total) first and second moments, in parameter order */
    int64_t step;     /* completed steps */
} ic_adam;

/* PyTorch's defaults (above). */
ic_adam_opts ic_adam_opts_default(void);

/* Selects every parameter whose kind is in `kinds` (a mask of IC_PARAM_*;
 * IC_PARAM_BN_STAT is never selected) and zeroes the moments. `params` must
 * stay valid while the optimiser is used. Returns 0, IC_EINVAL (nothing
 * selected, bad options), IC_ENOMEM. */
int ic_adam_init(ic_adam *a, ic_param *params, int n, unsigned kinds, const ic_adam_opts *o);

/* Frees the moments. Safe on a zeroed struct. */
void ic_adam_deinit(ic_adam *a);

/* Forgets the moments and the step count (TENT starts every request fresh). */
void ic_adam_reset(ic_adam *a);

/* Global L2 norm of the selected gradients (summed in double). */
double ic_adam_grad_norm(const ic_adam *a);

/* One update with learning rate lr from the gradients currently stored
 * (clipped first when enabled). Writes the pre-clip gradient norm to
 * *ret_norm when not NULL (computed only if clipping or asked for). */
void ic_adam_step(ic_adam *a, float lr, double *ret_norm);

#endif
