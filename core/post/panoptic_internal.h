/* What the stages of ic_pano_run share, not part of the API.
 *
 * core/post/panoptic.c holds the entry point (validation, the outputs, the
 * order of the stages), the thing index, center finding and grouping;
 * core/post/panoptic_merge.c the merge of semantic and instance labels:
 * the class vote of each instance, the stuff area filter, the panoptic ids
 * and each segment's statistics. The stages trust their arguments:
 * ic_pano_run() has checked them. */
#ifndef IC_POST_PANOPTIC_INTERNAL_H
#define IC_POST_PANOPTIC_INTERNAL_H

#include <stdint.h>

#include "base/arena.h"
#include "post/panoptic.h"

struct seg_acc; /* running sums of one segment (panoptic_merge.c) */

/* What the stages hand each other; everything but res's outputs is scratch
 * in the arena. k = res->n_centers, instance index = 1 + center index. */
typedef struct pano_run {
    ic_arena *a;
    const ic_pano_params *p;
    const ic_pano_inputs *in;
    ic_pano_result *res;
    int *thing_idx;    /* (n_classes) class -> thing index, -1 for stuff */
    int n_thing;
    int *thing_cls;    /* (n_thing) thing index -> class */
    int64_t *hist;     /* (k, n_thing) per instance, pixels of each thing class */
    int64_t *cls_area; /* (n_classes) pixels of each class outside instances */
    int32_t *ins_id;   /* (k + 1) instance index -> panoptic id */
    int *ins_slot;     /* (k + 1) instance index -> segment slot, -1 if empty */
    int *cls_slot;     /* (n_classes) stuff class -> segment slot, -1 if void */
    int n_seg;
    struct seg_acc *acc; /* (n_seg) area, bbox and sums of each segment */
} pano_run;

/* Per instance, the pixels of each thing class; per class, the pixels
 * outside every instance (the stuff areas). Needs res->pan grouped. */
int pano_count_classes(pano_run *r);

/* Each instance takes the majority thing class of its pixels (ties: the
 * smallest class) and the next number of that class; an instance with no
 * pixel gets no segment. */
int pano_vote_instances(pano_run *r);

/* A stuff class becomes a segment when its area reaches stuff_area; the
 * pixels of the others will be void. */
void pano_filter_stuff(pano_run *r);

/* Panoptic ids in res->pan in place of instance indices and classes, and
 * each segment's area, bbox and sums. */
int pano_paint_ids(pano_run *r);

/* Area, bbox and score of every segment, the list in id order. */
void pano_finish_segments(pano_run *r);

#endif
