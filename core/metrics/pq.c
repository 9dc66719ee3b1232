/* Panoptic quality accumulator (see pq.h). One pass over the two id maps
 * fills a (gt segments + void) x (pred segments + void) intersection
 * matrix; everything else is arithmetic on that matrix, following
 * panopticapi's pq_compute_single_core step by step. */
#include "metrics/pq.h"

#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/err.h"

typedef struct id_slot {
    int32_t id;
    int idx; /* index in the caller's segment list */
} id_slot;

static int cmp_slot(const void *pa, const void *pb)
{
    const id_slot *a = pa, *b = pb;
    return (a->id > b->id) - (a->id < b->id);
}

int ic_pq_init(ic_pq *pq, const ic_pq_category *cats, int n)
{
    pq->n_categories = 0;
    pq->cat = NULL;
    if (n <= 0 || !cats)
        return ic_error_set(IC_EINVAL, "pq: %d categories", n);
    for (int i = 0; i < n; i++)
        for (int j = 0; j < i; j++)
            if (cats[i].id == cats[j].id)
                return ic_error_set(IC_EINVAL, "pq: category %d listed twice", cats[i].id);
    pq->cat = ic_calloc((size_t)n, sizeof *pq->cat);
    if (!pq->cat)
        return ic_error_set(IC_ENOMEM, "pq: %d categories", n);
    for (int i = 0; i < n; i++) {
        pq->cat[i].category_id = cats[i].id;
        pq->cat[i].isthing = cats[i].isthing != 0;
    }
    pq->n_categories = n;
    return 0;
}

void ic_pq_deinit(ic_pq *pq)
{
    ic_free(pq->cat);
    pq->cat = NULL;
    pq->n_categories = 0;
}

static int category_index(const ic_pq *pq, int category_id)
{
    for (int i = 0; i < pq->n_categories; i++)
        if (pq->cat[i].category_id == category_id)
            return i;
    return -1;
}

/* Sorted id table of a segment list plus each segment's category index. */
static int build_table(id_slot **ret, int **ret_cat, ic_arena *a, const ic_pq *pq,
                       const ic_pq_segment *segs, int n, const char *side)
{
    id_slot *t = ic_arena_alloc(a, (size_t)(n ? n : 1) * sizeof *t);
    int *cat = ic_arena_alloc(a, (size_t)(n ? n : 1) * sizeof *cat);
    if (!t || !cat)
        return ic_error_prefix(IC_ENOMEM, "pq: %s segment table", side);
    for (int i = 0; i < n; i++) {
        t[i].id = segs[i].id;
        t[i].idx = i;
        cat[i] = category_index(pq, segs[i].category_id);
        if (cat[i] < 0)
            return ic_error_set(IC_EINVAL, "pq: %s segment %d has unknown category %d", side,
                                (int)segs[i].id, segs[i].category_id);
    }
    qsort(t, (size_t)n, sizeof *t, cmp_slot);
    for (int i = 1; i < n; i++)
        if (t[i].id == t[i - 1].id)
            return ic_error_set(IC_EINVAL, "pq: %s segment id %d listed twice", side,
                                (int)t[i].id);
    *ret = t;
    *ret_cat = cat;
    return 0;
}

/* Segment index of an id, or n (VOID) when unlisted. */
static int lookup(const id_slot *t, int n, int32_t id)
{
    int lo = 0, hi = n;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (t[mid].id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < n && t[lo].id == id ? t[lo].idx : n;
}

static int add_image(ic_pq *pq, ic_arena *a, const int32_t *gt_map, const ic_pq_segment *gt,
                     int n_gt, const int32_t *pred_map, const ic_pq_segment *pred, int n_pred,
                     size_t n_pixels)
{
    id_slot *gt_t, *pr_t;
    int *gt_cat, *pr_cat;
    int rc = build_table(&gt_t, &gt_cat, a, pq, gt, n_gt, "ground-truth");
    if (rc)
        return rc;
    rc = build_table(&pr_t, &pr_cat, a, pq, pred, n_pred, "predicted");
    if (rc)
        return rc;

    /* inter[g * np1 + p]; row n_gt is gt VOID, column n_pred is pred VOID */
    const size_t np1 = (size_t)n_pred + 1;
    uint32_t *inter = ic_arena_calloc(a, ((size_t)n_gt + 1) * np1, sizeof *inter);
    uint64_t *gt_area = ic_arena_calloc(a, (size_t)n_gt + 1, sizeof *gt_area);
    uint64_t *pr_area = ic_arena_calloc(a, np1, sizeof *pr_area);
    char *gt_matched = ic_arena_calloc(a, (size_t)n_gt + 1, 1);
    char *pr_matched = ic_arena_calloc(a, np1, 1);
    int *crowd = ic_arena_alloc(a, (size_t)pq->n_categories * sizeof *crowd);
    ic_pq_stat *delta = ic_arena_calloc(a, (size_t)pq->n_categories, sizeof *delta);
    if (!inter || !gt_area || !pr_area || !gt_matched || !pr_matched || !crowd || !delta)
        return ic_error_prefix(IC_ENOMEM, "pq: matching tables");

    /* ids repeat along a row, so remember the last lookup on each side */
    int32_t last_g = 0, last_p = 0;
    int gi = lookup(gt_t, n_gt, 0), pi = lookup(pr_t, n_pred, 0);
    for (size_t i = 0; i < n_pixels; i++) {
        if (gt_map[i] != last_g) {
            last_g = gt_map[i];
            gi = lookup(gt_t, n_gt, last_g);
        }
        if (pred_map[i] != last_p) {
            last_p = pred_map[i];
            pi = lookup(pr_t, n_pred, last_p);
        }
        inter[(size_t)gi * np1 + (size_t)pi]++;
    }
    for (int g = 0; g <= n_gt; g++)
        for (int p = 0; p <= n_pred; p++) {
            uint32_t v = inter[(size_t)g * np1 + (size_t)p];
            gt_area[g] += v;
            pr_area[p] += v;
        }

    /* matches: same category, not crowd, IoU > 0.5 with VOID out of the union */
    for (int g = 0; g < n_gt; g++) {
        if (gt[g].iscrowd)
            continue;
        for (int p = 0; p < n_pred; p++) {
            uint64_t in = inter[(size_t)g * np1 + (size_t)p];
            if (!in || gt_cat[g] != pr_cat[p])
                continue;
            uint64_t uni = pr_area[p] + gt_area[g] - in - inter[(size_t)n_gt * np1 + (size_t)p];
            double iou = (double)in / (double)uni;
            if (iou > 0.5) {
                delta[gt_cat[g]].tp++;
                delta[gt_cat[g]].iou += iou;
                gt_matched[g] = 1;
                pr_matched[p] = 1;
            }
        }
    }

    /* false negatives; crowd regions remembered per category (last wins) */
    for (int c = 0; c < pq->n_categories; c++)
        crowd[c] = -1;
    for (int g = 0; g < n_gt; g++) {
        if (gt_matched[g])
            continue;
        if (gt[g].iscrowd) {
            crowd[gt_cat[g]] = g;
            continue;
        }
        delta[gt_cat[g]].fn++;
    }

    /* false positives, unless mostly on VOID + same-category crowd */
    for (int p = 0; p < n_pred; p++) {
        if (pr_matched[p] || pr_area[p] == 0)
            continue;
        uint64_t on_void = inter[(size_t)n_gt * np1 + (size_t)p];
        if (crowd[pr_cat[p]] >= 0)
            on_void += inter[(size_t)crowd[pr_cat[p]] * np1 + (size_t)p];
        if ((double)on_void / (double)pr_area[p] > 0.5)
            continue;
        delta[pr_cat[p]].fp++;
    }

    for (int c = 0; c < pq->n_categories; c++) {
        pq->cat[c].iou += delta[c].iou;
        pq->cat[c].tp += delta[c].tp;
        pq->cat[c].fp += delta[c].fp;
        pq->cat[c].fn += delta[c].fn;
    }
    return 0;
}

int ic_pq_add(ic_pq *pq, ic_arena *scratch, const int32_t *gt_map, const ic_pq_segment *gt,
              int n_gt, const int32_t *pred_map, const ic_pq_segment *pred, int n_pred,
              size_t n_pixels)
{
    if (!pq || !pq->cat || !scratch || (n_pixels && (!gt_map || !pred_map)) || n_gt < 0 ||
        n_pred < 0 || (n_gt && !gt) || (n_pred && !pred))
        return ic_error_set(IC_EINVAL, "pq: bad arguments");
    if (n_gt > IC_PQ_MAX_SEGMENTS || n_pred > IC_PQ_MAX_SEGMENTS)
        return ic_error_set(IC_ELIMIT, "pq: %d / %d segments, at most %d", n_gt, n_pred,
                            IC_PQ_MAX_SEGMENTS);
    if ((uint64_t)n_pixels > UINT32_MAX)
        return ic_error_set(IC_ELIMIT, "pq: %zu pixels", n_pixels);
    ic_arena_mark m = ic_arena_get_mark(scratch);
    int rc = add_image(pq, scratch, gt_map, gt, n_gt, pred_map, pred, n_pred, n_pixels);
    ic_arena_rewind(scratch, m);
    return rc;
}

int ic_pq_merge(ic_pq *dst, const ic_pq *src)
{
    if (dst->n_categories != src->n_categories)
        return ic_error_set(IC_ESHAPE, "pq: merging %d into %d categories", src->n_categories,
                            dst->n_categories);
    for (int c = 0; c < dst->n_categories; c++) {
        if (dst->cat[c].category_id != src->cat[c].category_id)
            return ic_error_set(IC_ESHAPE, "pq: category %d vs %d at %d",
                                src->cat[c].category_id, dst->cat[c].category_id, c);
    }
    for (int c = 0; c < dst->n_categories; c++) {
        dst->cat[c].iou += src->cat[c].iou;
        dst->cat[c].tp += src->cat[c].tp;
        dst->cat[c].fp += src->cat[c].fp;
        dst->cat[c].fn += src->cat[c].fn;
    }
    return 0;
}

ic_pq_result ic_pq_category_result(const ic_pq *pq, int k)
{
    ic_pq_result r = {0.0, 0.0, 0.0, 0};
    const ic_pq_stat *s = &pq->cat[k];
    if (s->tp + s->fp + s->fn == 0)
        return r;
    double denom = (double)s->tp + 0.5 * (double)s->fp + 0.5 * (double)s->fn;
    r.pq = s->iou / denom;
    r.sq = s->tp ? s->iou / (double)s->tp : 0.0;
    r.rq = (double)s->tp / denom;
    r.n = 1;
    return r;
}

ic_pq_result ic_pq_average(const ic_pq *pq, enum ic_pq_which which)
{
    ic_pq_result avg = {0.0, 0.0, 0.0, 0};
    for (int k = 0; k < pq->n_categories; k++) {
        if (which != IC_PQ_ALL && pq->cat[k].isthing != (int)which)
            continue;
        ic_pq_result r = ic_pq_category_result(pq, k);
        if (!r.n)
            continue;
        avg.pq += r.pq;
        avg.sq += r.sq;
        avg.rq += r.rq;
        avg.n++;
    }
    if (avg.n) {
        avg.pq /= avg.n;
        avg.sq /= avg.n;
        avg.rq /= avg.n;
    }
    return avg;
}
