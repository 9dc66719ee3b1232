/* One image through the whole service path: decode, resize to the model's
 * test size, normalise, forward with the requested calibration, upsample
 * back to the image's own size, softmax statistics, panoptic
 * post-processing, optional metrics against a ground truth, and the encoded
 * outputs (COCO-panoptic PNG, semantic palette PNG, confidence PNG, overlay,
 * per-segment COCO RLE). Shared by `instcal segment`, `instcal eval` and the
 * daemon's workers, so all three give the same answer for the same image. */
#ifndef IC_INFER_SEGMENT_H
#define IC_INFER_SEGMENT_H

#include <stddef.h>
#include <stdint.h>

#include "base/arena.h"
#include "calib/calib.h"
#include "image/image.h"
#include "infer/evaluate.h"
#include "metrics/calib.h"
#include "metrics/pq.h"
#include "model/forward.h"
#include "model/pdl.h"
#include "post/panoptic.h"

/* The encoded outputs, one row each: X(ID, name, what). Each is one bit
 * IC_OUT_<ID> of an outputs mask; `name` is what the `outputs` option of a
 * request and `instcal segment --outputs` call it. */
#define IC_OUTPUTS(X)                                                                     \
    X(PANOPTIC_PNG, "panoptic", "COCO-panoptic RGB ids (segment ids 1..n)")               \
    X(SEMANTIC_PNG, "semantic", "palette PNG, index = class id")                          \
    X(CONFIDENCE_PNG, "confidence", "8-bit gray, max softmax probability x 255")          \
    X(OVERLAY_PNG, "overlay", "the image with class colours and instance outlines")       \
    X(RLE, "rle", "COCO compressed RLE string per segment")

enum {
#define IC_OUT_INDEX(id, name, what) IC_OUT_INDEX_##id,
    IC_OUTPUTS(IC_OUT_INDEX)
#undef IC_OUT_INDEX
    IC_OUT_COUNT
};

enum {
#define IC_OUT_BIT(id, name, what) IC_OUT_##id = 1u << IC_OUT_INDEX_##id,
    IC_OUTPUTS(IC_OUT_BIT)
#undef IC_OUT_BIT
    IC_OUT_ALL = (1u << IC_OUT_COUNT) - 1,
    IC_OUT_DEFAULT = IC_OUT_PANOPTIC_PNG | IC_OUT_SEMANTIC_PNG,
};

/* The name of output i (0 <= i < IC_OUT_COUNT; bit 1 << i), else NULL. */
const char *ic_segment_output_name(int i);

/* Parses a list of output names separated by commas or spaces (the names
 * above, "all" or "none") into a mask. Returns 0 or IC_EINVAL. */
int ic_segment_parse_outputs(const char *list, unsigned *ret_mask);

/* A ground truth for one image. Either a panoptic id map with its segments
 * (full metrics: ECE, mIoU, PQ) or a semantic class map (ECE and mIoU). */
typedef struct ic_segment_gt {
    int w, h;
    int32_t *sem;             /* (H, W) class ids, ignore_value where void */
    int32_t *ids;             /* (H, W) panoptic segment ids (0 = void), or NULL */
    ic_pq_segment *segments;  /* id -> category, iscrowd */
    int n_segments;
} ic_segment_gt;

/* Builds a ground truth from a label image: an 8-bit RGB COCO-panoptic
 * PNG with its segments_info JSON (`segments_json`, `segments_len` bytes:
 * an array, or an object with "segments_info"; at most IC_PQ_MAX_SEGMENTS
 * entries), or, with segments_json NULL, a 1-channel (gray or palette) PNG
 * of class ids, read at its stored bit depth. Class ids must be
 * < cfg->num_classes or equal cfg->ignore_value. Memory comes from `arena`.
 * Returns 0, IC_EFORMAT (bad PNG/JSON, too many segments, unknown
 * category, ids not listed, class ids out of range), IC_EUNSUPPORTED (not
 * a PNG or JPEG), IC_EINVAL, IC_ELIMIT (size), IC_ENOMEM. */
int ic_segment_gt_load(ic_segment_gt *gt, ic_arena *arena, const ic_pdl_config *cfg,
                       const void *png, size_t png_len, const char *segments_json,
                       size_t segments_len, const ic_image_limits *limits);

typedef struct ic_segment_opts {
    ic_calib_opts calib;
    unsigned outputs;         /* IC_OUT_* mask */
    ic_image_limits limits;   /* all zero: ic_image defaults */
    int repeat;               /* run the forward this many times (timing); <= 1: once */
    /* > 0: the network input's short side in pixels instead of the model's
     * min_size_test (smaller is faster, larger finer); the long-side cap
     * max_size_test scales by the same factor. 0: the model's sizes. */
    int size;
} ic_segment_opts;

typedef struct ic_segment_timing {
    double decode, preprocess, forward, post, metrics, encode; /* seconds */
    double forward_median;    /* median over opts.repeat runs */
} ic_segment_timing;

typedef struct ic_segment_result {
    int width, height;        /* the image, after EXIF orientation */
    int net_width, net_height; /* what the network saw */
    ic_segment_timing t;
    /* Maps at (height, width), in the arena. */
    int32_t *sem;             /* argmax class */
    float *maxprob, *entropy;
    ic_pdl_outputs raw;       /* logits/center/offset at the image size */
    ic_pano_result pano;      /* pan: class * divisor + instance, void -1 */
    int32_t *segment_ids;     /* COCO id (1..n) of each pano.segments[i] */
    char **rle;               /* per segment (IC_OUT_RLE), else NULL */
    ic_conf_stats conf;
    double m_mu_mean, m_var_mean;
    double drift;             /* drift score of this image (calib/drift.h, docs/drift.md) */
    /* With a ground truth: this image's metrics. */
    int has_gt;
    ic_eval_summary metrics;
    /* Encoded outputs (ic_malloc'd; ic_segment_result_deinit frees them). */
    unsigned char *panoptic_png, *semantic_png, *confidence_png, *overlay_png;
    size_t panoptic_png_len, semantic_png_len, confidence_png_len, overlay_png_len;
} ic_segment_result;

/* Runs the whole path on an encoded image with the forward strategy fw
 * (model/forward.h: the network itself, or TENT from core/adapt), chosen
 * by the caller for this request. Per-pixel maps live in `arena`
 * (reset it between images; a worker's steady state then allocates little
 * beyond the encoded PNGs). `gt` may be NULL. On failure the result holds
 * nothing that needs freeing. Returns 0 or the first error (IC_EFORMAT,
 * IC_EUNSUPPORTED, IC_ELIMIT for bad images; IC_EINVAL for an unavailable
 * mode; IC_ESHAPE when gt's size differs from the image; IC_ENOMEM). */
int ic_segment_run(ic_segment_result *res, const ic_forward *fw, ic_arena *arena,
                   const void *image, size_t image_len, const ic_segment_opts *opts,
                   const ic_segment_gt *gt);

/* Writes the (height, width) map of COCO segment ids (1..n, 0 = void) of
 * a successful result: the ids of the panoptic PNG and of the segments. */
void ic_segment_panoptic_ids(const ic_segment_result *res, int32_t *ids);

/* The post-processing parameters of `cfg`'s network (its thing classes, label divisor, stuff
 * area, centre threshold, NMS kernel, top k), as ic_segment_run uses them; `things` holds
 * the thing class ids pp points to and must outlive pp. */
void ic_segment_pano_params(ic_pano_params *pp, int things[IC_PDL_MAX_CLASSES],
                            const ic_pdl_config *cfg);

/* Frees the encoded outputs. Safe on a zeroed or failed result. */
void ic_segment_result_deinit(ic_segment_result *res);

#endif
