/* Panoptic-DeepLab post-processing, as detectron2's get_panoptic_segmentation.
 *
 * From the network's semantic labels (argmax), center heatmap and center
 * offsets this builds the panoptic id map (class * label_divisor + instance,
 * stuff has instance 0, void is void_label) and the list of its segments:
 *
 *  1. centers: values <= threshold become -1; a pixel survives NMS when it
 *     equals the max of its nms_kernel x nms_kernel window (plateau ties all
 *     survive); centers are the survivors strictly above max(top_k-th
 *     largest value of the map, 0), in row-major order.
 *  2. grouping: every thing pixel goes to the center nearest to (y+dy, x+dx)
 *     (Euclidean; ties go to the lowest center index, as torch.argmin);
 *     instance ids are 1 + center index.
 *  3. merge: instances in id order take the majority semantic class of their
 *     pixels (ties -> smallest class id; torch.mode leaves the tie-break
 *     unspecified) and a per-class counter starting at 1; each stuff class is
 *     kept when its area is >= stuff_area, else its pixels are void.
 *
 * Unlike detectron2 (K x H x W distances, ~3 GB at K = 200 and 1024x2048),
 * memory is O(H x W): the pixel-to-center loop keeps the best distance only.
 * All memory comes from a caller's arena, so a worker that reuses its arena
 * allocates nothing in steady state. */
#ifndef IC_POST_PANOPTIC_H
#define IC_POST_PANOPTIC_H

#include <stddef.h>
#include <stdint.h>

#include "base/arena.h"

typedef struct ic_pano_params {
    const int *thing_ids; /* contiguous class ids that are things */
    int n_thing_ids;
    int n_classes;        /* semantic labels must lie in [0, n_classes) */
    int label_divisor;    /* 1000 */
    int stuff_area;       /* 2048 (Cityscapes), 4096 (COCO) */
    float threshold;      /* center score threshold, 0.1 */
    int nms_kernel;       /* odd window size, 7 (Cityscapes) */
    int top_k;            /* 200 */
    int void_label;       /* -1 */
    /* Safety cap, not in detectron2: top_k limits centers by value only, so
     * a flat saturated heatmap would make every pixel a center (O(HW^2)
     * grouping). Beyond max_centers the rest (row-major order) are dropped
     * and counted in ic_pano_result.n_centers_dropped. */
    int max_centers;      /* 1000 */
} ic_pano_params;

/* Raw network outputs at image resolution, row-major planes. */
typedef struct ic_pano_inputs {
    int h, w;
    const int32_t *sem;    /* (H, W) argmax of the semantic logits */
    const float *center;   /* (H, W) center heatmap */
    const float *offset;   /* (2, H, W): plane 0 = dy, plane 1 = dx, in pixels */
    /* Optional (n_classes, H, W) semantic logits, or probabilities when
     * scores_are_probs. Only used for instance scores; softmax is evaluated
     * per thing pixel for the one class needed, so no softmax copy is made.
     * NULL: the semantic factor of the score is taken as 1. */
    const float *sem_scores;
    int scores_are_probs;
    /* Optional (H, W) max softmax probability (ic_softmax_stats computes it
     * for the confidence statistics anyway). Where a pixel's argmax is the
     * instance's class this is the wanted probability, so the C-way softmax
     * is only evaluated at the few pixels that disagree with the vote: at
     * 1024x2048 that takes the score from ~160 ms to a few ms. */
    const float *sem_maxprob;
} ic_pano_inputs;

typedef struct ic_pano_segment {
    int32_t id;        /* value in the panoptic map: class * divisor + instance */
    int category_id;   /* contiguous class id */
    int isthing;
    int64_t area;      /* pixels */
    int bbox[4];       /* x, y, w, h (COCO), tight around the pixels */
    /* Things (as detectron2's instance output): mean over the mask of the
     * softmax probability of the segment's class, times the center heatmap
     * at (int(mean y), int(mean x)) of the mask. Stuff: 1.0, since
     * detectron2 gives stuff no score and consumers want a number. */
    float score;
} ic_pano_segment;

typedef struct ic_pano_result {
    int32_t *pan;              /* (H, W) panoptic ids, in the arena */
    ic_pano_segment *segments; /* sorted by id ascending (torch.unique order) */
    int n_segments;
    int32_t *centers;          /* (n_centers, 2): y, x of each center */
    int n_centers;
    int n_centers_dropped;     /* centers beyond max_centers (normally 0) */
} ic_pano_result;

/* Fills detectron2's defaults for Cityscapes (divisor 1000, stuff_area 2048,
 * threshold 0.1, kernel 7, top_k 200, void -1, max_centers 1000) and no
 * classes; the caller sets thing_ids, n_thing_ids and n_classes. */
void ic_pano_params_default(ic_pano_params *p);

/* Runs the post-processing. Outputs (pan, segments, centers) are allocated in
 * `a` and stay valid until the arena is reset; scratch is rewound before
 * returning. Errors: IC_EINVAL (bad parameters, a semantic label outside
 * [0, n_classes), ids that would overflow int32), IC_ENOMEM. */
int ic_pano_run(ic_pano_result *ret, ic_arena *a, const ic_pano_params *p,
                const ic_pano_inputs *in);

#endif
