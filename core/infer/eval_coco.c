/* The per-image evaluation loop over a COCO-panoptic folder (see
 * eval_coco.h). */
#include "infer/eval_coco.h"

#include <string.h>

#include "base/alloc.h"
#include "base/err.h"

/* Image and label files are read whole; larger ones are refused. */
#define MAX_FILE_BYTES ((size_t)1 << 30)

static int eval_one(ic_eval *ev, const ic_forward *fw, ic_arena *arena, const ic_coco *coco, int i,
                    const ic_segment_opts *so, double *forward_s)
{
    const ic_coco_image *e = ic_coco_get(coco, i);
    unsigned char *img = NULL, *lbl = NULL;
    size_t ilen = 0, llen = 0;
    int rc = ic_coco_read(coco, i, MAX_FILE_BYTES, &img, &ilen, &lbl, &llen);
    if (rc)
        return rc; /* the message names the file */
    ic_segment_gt gt;
    ic_segment_result res;
    rc = ic_segment_gt_load(&gt, arena, ic_pdl_get_config(fw->net), lbl, llen, e->segments_json,
                            strlen(e->segments_json), NULL);
    if (!rc)
        rc = ic_segment_run(&res, fw, arena, img, ilen, so, NULL);
    if (!rc) {
        if (forward_s)
            *forward_s += res.t.forward;
        if (gt.w != res.width || gt.h != res.height)
            rc = ic_error_set(IC_ESHAPE, "label is %dx%d, image %dx%d", gt.w, gt.h, res.width,
                              res.height);
        else
            rc = ic_eval_add(ev, arena, (size_t)res.width * (size_t)res.height, res.sem, res.maxprob,
                             &res.pano, gt.sem, gt.ids, gt.segments, gt.n_segments);
        ic_segment_result_deinit(&res);
    }
    ic_free(img);
    ic_free(lbl);
    return rc ? ic_error_prefix(rc, "%s", e->image) : 0;
}

int ic_eval_coco(ic_eval *ev, const ic_forward *fw, const ic_coco *coco, int limit,
                 const ic_segment_opts *so, double *forward_s, ic_eval_coco_progress progress,
                 void *ctx)
{
    if (!ev || !fw || !fw->net || !coco || !so)
        return ic_error_set(IC_EINVAL, "eval_coco: NULL argument");
    const int total = ic_coco_count(coco);
    const int n = limit > 0 && limit < total ? limit : total;
    ic_arena arena;
    ic_arena_init(&arena, 0, 0);
    int rc = 0;
    for (int i = 0; !rc && i < n; i++) {
        ic_arena_reset(&arena);
        rc = eval_one(ev, fw, &arena, coco, i, so, forward_s);
        if (!rc && progress)
            progress(ctx, i + 1, total);
    }
    ic_arena_deinit(&arena);
    return rc;
}
