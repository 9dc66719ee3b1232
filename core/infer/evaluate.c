/* Evaluation accumulators (see evaluate.h). */
#include "infer/evaluate.h"

#include <math.h>
#include <string.h>

#include "base/err.h"

int ic_eval_init(ic_eval *e, const ic_pdl_config *cfg)
{
    memset(e, 0, sizeof *e);
    e->cfg = cfg;
    ic_ece_init(&e->ece);
    int rc = ic_confusion_init(&e->cm, cfg->num_classes);
    if (rc)
        return rc;
    ic_pq_category cats[IC_PDL_MAX_CLASSES];
    for (int c = 0; c < cfg->num_classes; c++)
        cats[c] = (ic_pq_category){.id = c, .isthing = cfg->is_thing[c]};
    if ((rc = ic_pq_init(&e->pq, cats, cfg->num_classes)) != 0)
        ic_confusion_deinit(&e->cm);
    return rc;
}

void ic_eval_deinit(ic_eval *e)
{
    ic_confusion_deinit(&e->cm);
    ic_pq_deinit(&e->pq);
}

int ic_eval_add(ic_eval *e, ic_arena *scratch, size_t n, const int32_t *pred_sem,
                const float *maxprob, const ic_pano_result *pano, const int32_t *gt_sem,
                const int32_t *gt_ids, const ic_pq_segment *gt_segments, int n_gt_segments)
{
    int ignore = e->cfg->ignore_value;
    int rc = ic_confusion_add(&e->cm, pred_sem, gt_sem, n, ignore);
    if (rc)
        return rc;
    ic_ece_add(&e->ece, maxprob, pred_sem, gt_sem, n, ignore);
    e->n_images++;
    if (!gt_ids || !pano)
        return 0;
    ic_arena_mark mark = ic_arena_get_mark(scratch);
    ic_pq_segment *pred = ic_arena_alloc(scratch, (size_t)(pano->n_segments + 1) * sizeof *pred);
    if (!pred)
        return ic_error_prefix(IC_ENOMEM, "evaluate: predicted segments");
    for (int i = 0; i < pano->n_segments; i++)
        pred[i] = (ic_pq_segment){.id = pano->segments[i].id,
                                  .category_id = pano->segments[i].category_id};
    rc = ic_pq_add(&e->pq, scratch, gt_ids, gt_segments, n_gt_segments, pano->pan, pred,
                   pano->n_segments, n);
    ic_arena_rewind(scratch, mark);
    if (!rc)
        e->n_panoptic++;
    return rc;
}

void ic_eval_summarize(const ic_eval *e, ic_eval_summary *s)
{
    memset(s, 0, sizeof *s);
    s->n_images = e->n_images;
    s->miou = ic_confusion_miou(&e->cm, NULL);
    s->pixel_acc = ic_confusion_pixel_acc(&e->cm);
    for (int k = 0; k < e->cfg->num_classes; k++)
        s->class_iou[k] = ic_confusion_iou(&e->cm, k);
    s->ece = ic_ece_value(&e->ece);
    s->labelled_pixels = e->ece.n;
    ic_ece_bins(&e->ece, s->bins);
    s->has_pq = e->n_panoptic > 0;
    if (s->has_pq) {
        s->pq_all = ic_pq_average(&e->pq, IC_PQ_ALL);
        s->pq_things = ic_pq_average(&e->pq, IC_PQ_THINGS);
        s->pq_stuff = ic_pq_average(&e->pq, IC_PQ_STUFF);
    }
}
