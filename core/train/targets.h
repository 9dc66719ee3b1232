/* Panoptic-DeepLab training targets from a panoptic id map, exactly as
 * detectron2's PanopticDeepLabTargetGenerator (docs/network.md
 * §Targets) with its Panoptic-DeepLab settings:
 * ignore_stuff_in_offset = True, ignore_crowd_in_semantic = False.
 *
 * For every listed segment:
 *  - semantic = category on its pixels (crowd included); 255 elsewhere;
 *  - non-crowd: center_weights = 1 on its pixels (stuff too) and, for things,
 *    offset_weights = 1;
 *  - things (crowd or not) with at least one pixel: semantic_weights =
 *    small_instance_weight when the area is below small_instance_area; a
 *    Gaussian (sigma, window 6 sigma + 3) is pasted into the center heatmap
 *    with max, its peak at the centroid rounded half to even (numpy's round);
 *    offsets point from each pixel to the float centroid (channel 0 = dy,
 *    1 = dx), computed in double and stored as float as numpy does.
 * Pixels of ids not listed (void) keep semantic 255, semantic weight 1 and
 * zero center/offset weights. Targets are made at crop resolution after
 * augmentation, so the caller scales small_instance_area (4096 at
 * detectron2's resolution) to the training resolution. */
#ifndef IC_TRAIN_TARGETS_H
#define IC_TRAIN_TARGETS_H

#include <stdint.h>

/* One entry of segments_info, categories already contiguous train ids. */
typedef struct ic_pano_segment {
    int32_t id;     /* value in the panoptic id map */
    int category;   /* train id in [0, 255) */
    int iscrowd;    /* nonzero: crowd region */
    int isthing;    /* nonzero: category is a thing class */
} ic_pano_segment;

/* Generator settings (detectron2 defaults in comments). */
typedef struct ic_target_params {
    int sigma;                   /* Gaussian sigma in pixels, INPUT.GAUSSIAN_SIGMA (10) */
    long small_instance_area;    /* 4096, scaled to the training resolution */
    float small_instance_weight; /* 3 */
    int ignore_label;            /* 255 */
    /* Not in detectron2: per-class factors of the semantic weight (class c's
     * pixels get class_weights[c], times small_instance_weight for small
     * things); NULL or classes >= n_class_weights: 1. */
    const float *class_weights;
    int n_class_weights;
} ic_target_params;

/* Caller-owned outputs for an H x W map; every field is required. */
typedef struct ic_pano_targets {
    int32_t *semantic;        /* (H, W) train id or ignore_label */
    float *semantic_weights;  /* (H, W) */
    float *center;            /* (H, W) heatmap in [0, 1] */
    float *center_weights;    /* (H, W), detectron2's (1, H, W) */
    float *offset;            /* (2, H, W): dy plane, then dx plane */
    float *offset_weights;    /* (H, W), detectron2's (1, H, W) */
} ic_pano_targets;

/* detectron2's values for the fields above (sigma 10, area 4096, weight 3,
 * ignore 255), no class weights. */
ic_target_params ic_target_params_default(void);

/* Fills `out` from the panoptic id map pan (H, W) and nseg segments. Work is
 * O(H W log nseg + nseg sigma^2) with one temporary allocation of a few
 * words per segment. Returns 0, IC_EINVAL (bad sizes or params, a category
 * outside [0, 255), a duplicate segment id), IC_ENOMEM. */
int ic_targets_generate(const ic_pano_targets *out, const int32_t *pan, int h, int w,
                        const ic_pano_segment *segs, int nseg, const ic_target_params *p);

#endif
