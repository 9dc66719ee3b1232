/* Accumulated evaluation against ground truth: semantic confusion (mIoU),
 * pixel calibration (ECE, reliability bins) and panoptic quality, for one
 * image (a request with a label) or a whole dataset (`instcal eval`). */
#ifndef IC_INFER_EVALUATE_H
#define IC_INFER_EVALUATE_H

#include "base/arena.h"
#include "metrics/calib.h"
#include "metrics/miou.h"
#include "metrics/pq.h"
#include "model/config.h"
#include "post/panoptic.h"

typedef struct ic_eval {
    const ic_pdl_config *cfg;
    ic_confusion cm;
    ic_ece ece;
    ic_pq pq;
    int n_images, n_panoptic; /* images added / those with a panoptic ground truth */
} ic_eval;

typedef struct ic_eval_summary {
    int n_images, has_pq;
    double miou, pixel_acc, ece;
    uint64_t labelled_pixels;
    double class_iou[IC_PDL_MAX_CLASSES]; /* NaN where the class never appears */
    ic_ece_bin bins[IC_CALIB_BINS];
    ic_pq_result pq_all, pq_things, pq_stuff;
} ic_eval_summary;

/* Returns 0 or IC_ENOMEM. */
int ic_eval_init(ic_eval *e, const ic_pdl_config *cfg);
void ic_eval_deinit(ic_eval *e);

/* Adds one image: predicted classes and confidences (H*W), the panoptic
 * prediction, and the ground truth (sem always; ids/segments optional).
 * `scratch` serves temporary memory. Returns 0, IC_EINVAL or IC_ENOMEM. */
int ic_eval_add(ic_eval *e, ic_arena *scratch, size_t n_pixels, const int32_t *pred_sem,
                const float *maxprob, const ic_pano_result *pano, const int32_t *gt_sem,
                const int32_t *gt_ids, const ic_pq_segment *gt_segments, int n_gt_segments);

void ic_eval_summarize(const ic_eval *e, ic_eval_summary *out);

#endif
