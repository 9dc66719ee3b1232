/* WarmupPolyLR, as detectron2 computes it (see schedule.h). */
#include "train/schedule.h"

#include <math.h>

ic_lr_schedule ic_lr_schedule_default(double base_lr, int64_t max_iters)
{
    return (ic_lr_schedule){.base_lr = base_lr,
                            .max_iters = max_iters,
                            .warmup_iters = max_iters < 1000 ? max_iters : 1000,
                            .warmup_factor = 0.001,
                            .power = 0.9};
}

double ic_lr_at(const ic_lr_schedule *s, int64_t it)
{
    if (it < 0)
        it = 0;
    if (s->max_iters <= 0 || it >= s->max_iters)
        return 0.0;
    double f = 1.0;
    if (it < s->warmup_iters) {
        double alpha = (double)it / (double)s->warmup_iters;
        f = s->warmup_factor * (1.0 - alpha) + alpha;
    }
    return s->base_lr * f * pow(1.0 - (double)it / (double)s->max_iters, s->power);
}
