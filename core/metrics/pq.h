/* Panoptic quality (PQ, SQ, RQ) exactly as panopticapi's pq_compute.
 *
 * Per image, a predicted and a ground-truth segment of the same category
 * match when IoU > 0.5, where the union leaves out the predicted segment's
 * pixels on ground-truth VOID. Crowd ground truth never matches and is not a
 * false negative. An unmatched prediction is not a false positive when more
 * than half of its area lies on VOID plus the crowd region of its category
 * (the last crowd segment of that category in the list, as panopticapi's
 * dict). Per category tp, fp, fn and the IoU sum accumulate over images;
 * PQ = iou / (tp + fp/2 + fn/2), SQ = iou / tp, RQ = tp / (tp + fp/2 + fn/2),
 * averaged over the categories with tp + fp + fn > 0.
 *
 * Inputs are two panoptic id maps with their segment lists. A pixel whose id
 * is in no segment list entry is VOID: this covers COCO's id 0 and our
 * post-processing's -1 (where 0 can be a real id, class 0 stuff). Two
 * deviations from panopticapi, which raises or trusts the JSON instead:
 * listed predictions with no pixel are ignored, and ground-truth areas are
 * counted from the map rather than read from the JSON. */
#ifndef IC_METRICS_PQ_H
#define IC_METRICS_PQ_H

#include <stddef.h>
#include <stdint.h>

#include "base/arena.h"

typedef struct ic_pq_category {
    int id;
    int isthing;
} ic_pq_category;

typedef struct ic_pq_segment {
    int32_t id;       /* value in the id map */
    int category_id;
    int iscrowd;      /* ground truth only; ignored for predictions */
} ic_pq_segment;

typedef struct ic_pq_stat {
    int category_id;
    int isthing;
    double iou;       /* sum of matched IoUs */
    uint64_t tp, fp, fn;
} ic_pq_stat;

typedef struct ic_pq {
    int n_categories;
    ic_pq_stat *cat;  /* one per category, in the order given to init */
} ic_pq;

typedef struct ic_pq_result {
    double pq, sq, rq;
    int n;            /* categories averaged */
} ic_pq_result;

/* Which categories ic_pq_average() averages. */
enum ic_pq_which { IC_PQ_ALL = -1, IC_PQ_STUFF = 0, IC_PQ_THINGS = 1 };

/* Sets up zeroed per-category statistics (ic_malloc). Category ids must be
 * unique. Errors: IC_EINVAL, IC_ENOMEM. */
int ic_pq_init(ic_pq *pq, const ic_pq_category *cats, int n);

/* Frees the statistics; safe on a zeroed or released struct. */
void ic_pq_deinit(ic_pq *pq);

/* Most segments on either side of one image: the intersection matrix of
 * ic_pq_add() has (gt + 1) x (pred + 1) entries of 8 bytes (128 MB here). */
#define IC_PQ_MAX_SEGMENTS 4095

/* Accumulates one image of n_pixels pixels. Scratch memory (sorted id
 * tables, the gt x pred intersection matrix) comes from `scratch` and is
 * rewound before returning. Errors: IC_EINVAL (duplicate segment id,
 * unknown category), IC_ELIMIT (more than IC_PQ_MAX_SEGMENTS on a side or
 * 2^32 pixels), IC_ENOMEM; on error nothing is accumulated. */
int ic_pq_add(ic_pq *pq, ic_arena *scratch, const int32_t *gt_map, const ic_pq_segment *gt,
              int n_gt, const int32_t *pred_map, const ic_pq_segment *pred, int n_pred,
              size_t n_pixels);

/* Adds another accumulator with the same categories. Errors: IC_ESHAPE. */
int ic_pq_merge(ic_pq *dst, const ic_pq *src);

/* PQ/SQ/RQ of category index k (all 0 when tp + fp + fn == 0). */
ic_pq_result ic_pq_category_result(const ic_pq *pq, int k);

/* Average over all categories, things or stuff (pq_average); zeros and
 * n = 0 when no category qualifies (panopticapi divides by zero there). */
ic_pq_result ic_pq_average(const ic_pq *pq, enum ic_pq_which which);

#endif
