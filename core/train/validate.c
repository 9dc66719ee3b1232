/* Validation during training: `instcal eval`'s loop (infer/eval_coco.h)
 * over a COCO-panoptic directory (see validate.h). Kept apart from the loop
 * because post/panoptic.h and train/targets.h both define ic_pano_segment. */
#include "train/validate.h"

#include <math.h>

#include "base/err.h"
#include "image/coco.h"
#include "infer/eval_coco.h"
#include "model/pdl_train.h"

int ic_train_validate(ic_pdl *net, const char *dir, const ic_calib_opts *calib, int limit,
                      ic_val_summary *out)
{
    ic_coco *coco = NULL;
    int rc = ic_coco_open(&coco, dir);
    if (rc)
        return rc;
    ic_eval ev;
    if (!(rc = ic_pdl_refold(net)))
        rc = ic_eval_init(&ev, ic_pdl_get_config(net));
    if (rc) {
        ic_coco_free(&coco);
        return rc;
    }
    const ic_segment_opts so = {.calib = *calib, .outputs = 0};
    const ic_forward fw = {.net = net};
    rc = ic_eval_coco(&ev, &fw, coco, limit, &so, NULL, NULL, NULL);
    if (!rc) {
        ic_eval_summary s;
        ic_eval_summarize(&ev, &s);
        *out = (ic_val_summary){.n_images = s.n_images, .has_pq = s.has_pq, .miou = s.miou,
                                .pq = s.pq_all.pq, .ece = s.ece};
    }
    ic_eval_deinit(&ev);
    ic_coco_free(&coco);
    return rc;
}

void ic_val_summary_print(FILE *f, const char *what, const ic_val_summary *s)
{
    fprintf(f, "%s: %d images  mIoU %.2f  PQ %.2f  ECE %.2f\n", what, s->n_images, 100 * s->miou,
            s->has_pq ? 100 * s->pq : NAN, 100 * s->ece);
}
