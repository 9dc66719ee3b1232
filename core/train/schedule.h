/* detectron2's WarmupPolyLR learning-rate schedule.
 *
 * Panoptic-DeepLab (and InstCal-Pano's calibration learning) use
 *   lr(it) = base_lr * warmup(it) * (1 - it / max_iters)^power
 * with a linear warm-up factor warmup(it) = f (1 - it / W) + it / W for
 * it < W (f = 0.001, W = warmup_iters) and 1 afterwards, power 0.9. The
 * factor multiplies the poly term, as in detectron2's solver/lr_scheduler.py;
 * `it` is the 0-based index of the iteration about to run. */
#ifndef IC_TRAIN_SCHEDULE_H
#define IC_TRAIN_SCHEDULE_H

#include <stdint.h>

typedef struct ic_lr_schedule {
    double base_lr;
    int64_t max_iters;     /* > 0 */
    int64_t warmup_iters;  /* 0 = no warm-up */
    double warmup_factor;  /* 0.001 */
    double power;          /* 0.9 */
} ic_lr_schedule;

/* detectron2's values for the given lr and length: warm-up 1000 iterations
 * (capped at max_iters), factor 0.001, power 0.9. */
ic_lr_schedule ic_lr_schedule_default(double base_lr, int64_t max_iters);

/* Learning rate for iteration `it` (0-based); 0 at and after max_iters. */
double ic_lr_at(const ic_lr_schedule *s, int64_t it);

#endif
