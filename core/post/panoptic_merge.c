/* The merge of semantic and instance labels into panoptic ids (the stages
 * of ic_pano_run after grouping; see panoptic_internal.h), as detectron2's
 * merge_semantic_and_instance, plus each segment's statistics. */
#include <math.h>
#include <stdlib.h>

#include "base/err.h"
#include "post/panoptic_internal.h"

/* Running sums of one segment while its pixels are painted. */
typedef struct seg_acc {
    int64_t area;
    int x0, y0, x1, y1;
    double sum_y, sum_x, sum_prob;
} seg_acc;

/* Softmax probability of class `cls` at pixel i, from logits or probs. */
static float class_prob(const ic_pano_inputs *in, int n_classes, size_t i, int cls)
{
    const size_t hw = (size_t)in->h * (size_t)in->w;
    const float *s = in->sem_scores + i;
    if (in->sem_maxprob && in->sem[i] == cls)
        return in->sem_maxprob[i];
    if (in->scores_are_probs)
        return s[(size_t)cls * hw];
    float m = -INFINITY;
    for (int c = 0; c < n_classes; c++)
        m = s[(size_t)c * hw] > m ? s[(size_t)c * hw] : m;
    float sum = 0.0f;
    for (int c = 0; c < n_classes; c++)
        sum += expf(s[(size_t)c * hw] - m);
    return expf(s[(size_t)cls * hw] - m) / sum;
}

static int cmp_segment(const void *pa, const void *pb)
{
    const ic_pano_segment *a = pa, *b = pb;
    return (a->id > b->id) - (a->id < b->id);
}

int pano_count_classes(pano_run *r)
{
    const int nc = r->p->n_classes, k = r->res->n_centers, n_thing = r->n_thing;
    const size_t hw = (size_t)r->in->h * (size_t)r->in->w;
    size_t n_hist = (size_t)k * (size_t)(n_thing ? n_thing : 1);
    r->hist = ic_arena_calloc(r->a, n_hist, sizeof *r->hist);
    r->cls_area = ic_arena_calloc(r->a, (size_t)nc, sizeof *r->cls_area);
    r->thing_cls = ic_arena_alloc(r->a, (size_t)(n_thing ? n_thing : 1) * sizeof *r->thing_cls);
    if (!r->hist || !r->cls_area || !r->thing_cls)
        return ic_error_prefix(IC_ENOMEM, "pano: class histograms");
    for (int c = 0; c < nc; c++)
        if (r->thing_idx[c] >= 0)
            r->thing_cls[r->thing_idx[c]] = c;
    const int32_t *pan = r->res->pan;
    for (size_t i = 0; i < hw; i++) {
        int32_t s = r->in->sem[i];
        if (pan[i] > 0)
            r->hist[(size_t)(pan[i] - 1) * (size_t)n_thing + (size_t)r->thing_idx[s]]++;
        else
            r->cls_area[s]++;
    }
    return 0;
}

int pano_vote_instances(pano_run *r)
{
    const ic_pano_params *p = r->p;
    const int nc = p->n_classes, k = r->res->n_centers, n_thing = r->n_thing;
    r->ins_id = ic_arena_alloc(r->a, (size_t)(k + 1) * sizeof *r->ins_id);
    r->ins_slot = ic_arena_alloc(r->a, (size_t)(k + 1) * sizeof *r->ins_slot);
    r->cls_slot = ic_arena_alloc(r->a, (size_t)nc * sizeof *r->cls_slot);
    int *counter = ic_arena_calloc(r->a, (size_t)nc, sizeof *counter);
    if (!r->ins_id || !r->ins_slot || !r->cls_slot || !counter)
        return ic_error_prefix(IC_ENOMEM, "pano: segment numbering");
    for (int j = 0; j < k; j++) {
        const int64_t *hj = r->hist + (size_t)j * (size_t)n_thing;
        int bi = -1;
        for (int t = 0; t < n_thing; t++)
            if (hj[t] > 0 && (bi < 0 || hj[t] > hj[bi]))
                bi = t;
        r->ins_slot[j + 1] = -1;
        if (bi < 0)
            continue; /* no pixel grouped to this center */
        int cls = r->thing_cls[bi];
        r->ins_id[j + 1] = cls * p->label_divisor + ++counter[cls];
        r->ins_slot[j + 1] = r->n_seg;
        ic_pano_segment *g = &r->res->segments[r->n_seg++];
        g->id = r->ins_id[j + 1];
        g->category_id = cls;
        g->isthing = 1;
    }
    return 0;
}

void pano_filter_stuff(pano_run *r)
{
    const ic_pano_params *p = r->p;
    for (int c = 0; c < p->n_classes; c++) {
        r->cls_slot[c] = -1;
        if (r->thing_idx[c] >= 0 || r->cls_area[c] == 0 || r->cls_area[c] < p->stuff_area)
            continue;
        r->cls_slot[c] = r->n_seg;
        ic_pano_segment *g = &r->res->segments[r->n_seg++];
        g->id = c * p->label_divisor;
        g->category_id = c;
        g->isthing = 0;
    }
}

int pano_paint_ids(pano_run *r)
{
    const ic_pano_params *p = r->p;
    const ic_pano_inputs *in = r->in;
    const int h = in->h, w = in->w, n_seg = r->n_seg;
    seg_acc *acc = ic_arena_calloc(r->a, (size_t)(n_seg ? n_seg : 1), sizeof *acc);
    if (!acc)
        return ic_error_prefix(IC_ENOMEM, "pano: segment statistics");
    for (int s = 0; s < n_seg; s++) {
        acc[s].x0 = w;
        acc[s].y0 = h;
        acc[s].x1 = acc[s].y1 = -1;
    }
    r->acc = acc;
    int32_t *pan = r->res->pan;
    const int with_prob = in->sem_scores != NULL;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            size_t i = (size_t)y * (size_t)w + (size_t)x;
            int32_t ins = pan[i];
            int slot;
            if (ins > 0) {
                slot = r->ins_slot[ins];
                pan[i] = r->ins_id[ins];
            } else {
                int c = in->sem[i];
                slot = r->thing_idx[c] >= 0 ? -1 : r->cls_slot[c];
                pan[i] = slot >= 0 ? c * p->label_divisor : p->void_label;
            }
            if (slot < 0)
                continue;
            seg_acc *s = &acc[slot];
            s->area++;
            s->x0 = x < s->x0 ? x : s->x0;
            s->x1 = x > s->x1 ? x : s->x1;
            s->y0 = y < s->y0 ? y : s->y0;
            s->y1 = y > s->y1 ? y : s->y1;
            if (ins > 0) {
                s->sum_y += y;
                s->sum_x += x;
                if (with_prob)
                    s->sum_prob +=
                        class_prob(in, p->n_classes, i, r->res->segments[slot].category_id);
            }
        }
    return 0;
}

void pano_finish_segments(pano_run *r)
{
    const ic_pano_inputs *in = r->in;
    const seg_acc *acc = r->acc;
    const int with_prob = in->sem_scores != NULL;
    ic_pano_segment *segs = r->res->segments;
    for (int s = 0; s < r->n_seg; s++) {
        ic_pano_segment *g = &segs[s];
        g->area = acc[s].area;
        g->bbox[0] = acc[s].x0;
        g->bbox[1] = acc[s].y0;
        g->bbox[2] = acc[s].x1 - acc[s].x0 + 1;
        g->bbox[3] = acc[s].y1 - acc[s].y0 + 1;
        if (!g->isthing) {
            g->score = 1.0f;
            continue;
        }
        double n = (double)acc[s].area;
        int my = (int)(acc[s].sum_y / n), mx = (int)(acc[s].sum_x / n);
        double sem_score = with_prob ? acc[s].sum_prob / n : 1.0;
        g->score = (float)(sem_score * in->center[(size_t)my * (size_t)in->w + (size_t)mx]);
    }
    qsort(segs, (size_t)r->n_seg, sizeof *segs, cmp_segment);
    r->res->n_segments = r->n_seg;
}

