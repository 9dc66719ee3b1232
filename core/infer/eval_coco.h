/* A model evaluated over a COCO-panoptic folder (image/coco.h), image by
 * image on the service path (ic_segment_run), into an ic_eval: what
 * `instcal eval` and validation during training both run. */
#ifndef IC_INFER_EVAL_COCO_H
#define IC_INFER_EVAL_COCO_H

#include "image/coco.h"
#include "infer/evaluate.h"
#include "infer/segment.h"
#include "model/forward.h"

/* Called after each image with the images done and the folder's count. */
typedef void (*ic_eval_coco_progress)(void *ctx, int done, int total);

/* Adds the first `limit` images of `coco` (all when limit <= 0 or larger)
 * to `ev` (initialised for fw's model): each image and label file read,
 * the label and its segments loaded as ground truth, the image segmented
 * with `so`. *forward_s (if not NULL) gains the forward seconds. Stops at
 * the first failing image; its message then starts with the image's file
 * name. Returns 0 or that image's code (IC_EIO, IC_EFORMAT, IC_ESHAPE when
 * label and image sizes differ, IC_ELIMIT, IC_ENOMEM ...). */
int ic_eval_coco(ic_eval *ev, const ic_forward *fw, const ic_coco *coco, int limit,
                 const ic_segment_opts *so, double *forward_s, ic_eval_coco_progress progress,
                 void *ctx);

#endif
