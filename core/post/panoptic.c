/* Panoptic-DeepLab post-processing (see panoptic.h for the algorithm):
 * the entry point, which runs the stages in order (run(), at the end), and
 * the stages up to grouping: centers (threshold + NMS + top-k) and the
 * nearest center of every thing pixel, written into the output map as an
 * instance index. The merge into panoptic ids is panoptic_merge.c. */
#include "post/panoptic.h"

#include <math.h>
#include <string.h>

#include "base/err.h"
#include "post/panoptic_internal.h"

void ic_pano_params_default(ic_pano_params *p)
{
    memset(p, 0, sizeof *p);
    p->label_divisor = 1000;
    p->stuff_area = 2048;
    p->threshold = 0.1f;
    p->nms_kernel = 7;
    p->top_k = 200;
    p->void_label = -1;
    p->max_centers = 1000;
}

// ---------------------------------------------------------------------------
// centers

/* F.threshold(center, thr, -1): values not above thr (and NaN) become -1. */
static inline float thresholded(float v, float thr)
{
    return v > thr ? v : -1.0f;
}

/* True when no thresholded value in the (2r+1)^2 window (clipped at the
 * border, as max_pool2d's implicit -inf padding) exceeds v, i.e. v equals
 * the pooled max. Checked only at candidates, which are sparse, instead of
 * max-pooling the whole map. */
static int is_window_max(const float *c, int h, int w, int y, int x, int r, float v, float thr)
{
    int y0 = y - r < 0 ? 0 : y - r, y1 = y + r >= h ? h - 1 : y + r;
    int x0 = x - r < 0 ? 0 : x - r, x1 = x + r >= w ? w - 1 : x + r;
    for (int yy = y0; yy <= y1; yy++) {
        const float *row = c + (size_t)yy * (size_t)w;
        for (int xx = x0; xx <= x1; xx++)
            if (thresholded(row[xx], thr) > v)
                return 0;
    }
    return 1;
}

/* Min-heap push keeping the k largest values seen. */
static void topk_push(float *heap, int *n, int k, float v)
{
    if (*n == k) {
        if (v <= heap[0])
            return;
        heap[0] = v; /* replace the min and sift down */
        int i = 0;
        for (;;) {
            int l = 2 * i + 1, r = l + 1, m = i;
            if (l < k && heap[l] < heap[m])
                m = l;
            if (r < k && heap[r] < heap[m])
                m = r;
            if (m == i)
                break;
            float t = heap[i];
            heap[i] = heap[m];
            heap[m] = t;
            i = m;
        }
        return;
    }
    int i = (*n)++;
    heap[i] = v;
    while (i > 0 && heap[(i - 1) / 2] > heap[i]) {
        float t = heap[i];
        heap[i] = heap[(i - 1) / 2];
        heap[(i - 1) / 2] = t;
        i = (i - 1) / 2;
    }
}

static int find_centers(ic_pano_result *res, ic_arena *a, const ic_pano_params *p,
                        const ic_pano_inputs *in)
{
    const int h = in->h, w = in->w, r = (p->nms_kernel - 1) / 2;
    const float thr = p->threshold;
    float *heap = ic_arena_floats(a, (size_t)p->top_k);
    if (!heap)
        return ic_error_prefix(IC_ENOMEM, "pano: top-k heap");
    int n_heap = 0;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            float v = thresholded(in->center[(size_t)y * (size_t)w + (size_t)x], thr);
            if (v != -1.0f && is_window_max(in->center, h, w, y, x, r, v, thr))
                topk_push(heap, &n_heap, p->top_k, v);
        }
    /* topk over the whole map: with fewer survivors than k the k-th value is
     * a suppressed -1; either way it is clamped at 0. */
    float cut = n_heap == p->top_k ? heap[0] : -1.0f;
    if (cut < 0.0f)
        cut = 0.0f;
    res->n_centers = 0;
    res->n_centers_dropped = 0;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            float v = thresholded(in->center[(size_t)y * (size_t)w + (size_t)x], thr);
            if (v > cut && is_window_max(in->center, h, w, y, x, r, v, thr)) {
                if (res->n_centers == p->max_centers) {
                    res->n_centers_dropped++;
                    continue;
                }
                res->centers[2 * res->n_centers] = y;
                res->centers[2 * res->n_centers + 1] = x;
                res->n_centers++;
            }
        }
    return 0;
}

// ---------------------------------------------------------------------------
// grouping

/* Writes 1 + nearest center index into ins for thing pixels, 0 elsewhere,
 * one row at a time: the loop over centers runs over a whole row so the
 * compiler can vectorise the distance and the compare-select. Squared
 * distances are compared; sqrt is monotonic, so the argmin equals torch's
 * except when float sqrt rounds two different squares to one value. */
static int group_pixels(int32_t *ins, ic_arena *a, const ic_pano_inputs *in,
                        const int32_t *centers, int k, const int *thing_idx)
{
    const int h = in->h, w = in->w;
    const size_t hw = (size_t)h * (size_t)w;
    float *ly = ic_arena_floats(a, (size_t)w);
    float *lx = ic_arena_floats(a, (size_t)w);
    float *best = ic_arena_floats(a, (size_t)w);
    int32_t *arg = ic_arena_alloc(a, (size_t)w * sizeof *arg);
    float *cy = ic_arena_floats(a, (size_t)k);
    float *cx = ic_arena_floats(a, (size_t)k);
    if (!ly || !lx || !best || !arg || !cy || !cx)
        return ic_error_prefix(IC_ENOMEM, "pano: grouping rows");
    for (int j = 0; j < k; j++) {
        cy[j] = (float)centers[2 * j];
        cx[j] = (float)centers[2 * j + 1];
    }
    for (int y = 0; y < h; y++) {
        const int32_t *sem = in->sem + (size_t)y * (size_t)w;
        int32_t *out = ins + (size_t)y * (size_t)w;
        int any = 0;
        for (int x = 0; x < w; x++)
            any |= thing_idx[sem[x]] >= 0;
        if (!any || k == 0) {
            memset(out, 0, (size_t)w * sizeof *out);
            continue;
        }
        const float *dy = in->offset + (size_t)y * (size_t)w;
        const float *dx = dy + hw;
        for (int x = 0; x < w; x++) {
            /* same float ops as torch: loc = coord + offset, d = center - loc */
            ly[x] = (float)y + dy[x];
            lx[x] = (float)x + dx[x];
            best[x] = INFINITY;
            arg[x] = 0;
        }
        for (int j = 0; j < k; j++) {
            const float cyj = cy[j], cxj = cx[j];
            for (int x = 0; x < w; x++) {
                float u = cyj - ly[x], v = cxj - lx[x];
                float d = u * u + v * v;
                int better = d < best[x]; /* strict: ties keep the lower index */
                best[x] = better ? d : best[x];
                arg[x] = better ? j : arg[x];
            }
        }
        for (int x = 0; x < w; x++)
            out[x] = thing_idx[sem[x]] >= 0 ? arg[x] + 1 : 0;
    }
    return 0;
}

static int validate(const ic_pano_params *p, const ic_pano_inputs *in)
{
    if (!in || !in->sem || !in->center || !in->offset || in->h <= 0 || in->w <= 0)
        return ic_error_set(IC_EINVAL, "pano: missing inputs or bad size");
    if ((uint64_t)in->h * (uint64_t)in->w > (uint64_t)INT32_MAX)
        return ic_error_set(IC_ELIMIT, "pano: image %dx%d too large", in->h, in->w);
    if (p->n_classes <= 0 || p->label_divisor <= 0 || p->top_k <= 0 || p->max_centers <= 0 ||
        p->nms_kernel <= 0 || p->nms_kernel % 2 == 0 || p->stuff_area < 0)
        return ic_error_set(IC_EINVAL,
                            "pano: bad parameters (classes %d, divisor %d, top_k %d, kernel %d)",
                            p->n_classes, p->label_divisor, p->top_k, p->nms_kernel);
    if ((int64_t)(p->n_classes - 1) * p->label_divisor + p->max_centers > INT32_MAX)
        return ic_error_set(IC_EINVAL, "pano: %d classes x divisor %d overflow int32 ids",
                            p->n_classes, p->label_divisor);
    if (p->n_thing_ids > 0 && !p->thing_ids)
        return ic_error_set(IC_EINVAL, "pano: thing_ids missing");
    for (int i = 0; i < p->n_thing_ids; i++)
        if (p->thing_ids[i] < 0 || p->thing_ids[i] >= p->n_classes)
            return ic_error_set(IC_EINVAL, "pano: thing id %d outside [0, %d)", p->thing_ids[i],
                                p->n_classes);
    return 0;
}

// ---------------------------------------------------------------------------
// the stages of one run, in detectron2's order

/* Outputs first, so that scratch can be rewound behind them. */
static int alloc_outputs(pano_run *r)
{
    const ic_pano_params *p = r->p;
    const size_t hw = (size_t)r->in->h * (size_t)r->in->w;
    ic_pano_result *res = r->res;
    res->pan = ic_arena_alloc(r->a, hw * sizeof *res->pan);
    res->centers = ic_arena_alloc(r->a, (size_t)p->max_centers * 2 * sizeof *res->centers);
    res->segments =
        ic_arena_calloc(r->a, (size_t)p->max_centers + (size_t)p->n_classes, sizeof(ic_pano_segment));
    if (!res->pan || !res->centers || !res->segments)
        return ic_error_prefix(IC_ENOMEM, "pano: outputs");
    return 0;
}

/* Class -> thing index, in class order so that the vote's lowest index is
 * the smallest class id; then every semantic label (the argmax the caller
 * took) is checked against n_classes before it indexes anything. */
static int index_things(pano_run *r)
{
    const int nc = r->p->n_classes;
    const size_t hw = (size_t)r->in->h * (size_t)r->in->w;
    int *thing_idx = ic_arena_alloc(r->a, (size_t)nc * sizeof *thing_idx);
    if (!thing_idx)
        return ic_error_prefix(IC_ENOMEM, "pano: thing index");
    for (int c = 0; c < nc; c++)
        thing_idx[c] = -1;
    for (int i = 0; i < r->p->n_thing_ids; i++)
        thing_idx[r->p->thing_ids[i]] = 0;
    int n_thing = 0;
    for (int c = 0; c < nc; c++)
        if (thing_idx[c] == 0)
            thing_idx[c] = n_thing++;
    r->thing_idx = thing_idx;
    r->n_thing = n_thing;
    for (size_t i = 0; i < hw; i++)
        if ((uint32_t)r->in->sem[i] >= (uint32_t)nc)
            return ic_error_set(IC_EINVAL, "pano: semantic label %d at pixel %zu outside [0, %d)",
                                (int)r->in->sem[i], i, nc);
    return 0;
}

/* The stages in the order of detectron2's get_panoptic_segmentation; its
 * semantic argmax is the caller's (in->sem). */
static int run(ic_pano_result *res, ic_arena *a, const ic_pano_params *p,
               const ic_pano_inputs *in, ic_arena_mark *scratch)
{
    pano_run r = {.a = a, .p = p, .in = in, .res = res};
    int rc;
    if ((rc = alloc_outputs(&r)))
        return rc;
    *scratch = ic_arena_get_mark(a);
    if ((rc = index_things(&r)))
        return rc;
    /* find_instance_center: threshold, NMS, top-k */
    if ((rc = find_centers(res, a, p, in)))
        return rc;
    /* group_pixels: each thing pixel to its nearest center */
    if ((rc = group_pixels(res->pan, a, in, res->centers, res->n_centers, r.thing_idx)))
        return rc;
    /* merge_semantic_and_instance: class vote, stuff area filter, ids */
    if ((rc = pano_count_classes(&r)) || (rc = pano_vote_instances(&r)))
        return rc;
    pano_filter_stuff(&r);
    if ((rc = pano_paint_ids(&r)))
        return rc;
    pano_finish_segments(&r);
    return 0;
}

int ic_pano_run(ic_pano_result *ret, ic_arena *a, const ic_pano_params *p,
                const ic_pano_inputs *in)
{
    if (!ret || !a || !p)
        return ic_error_set(IC_EINVAL, "pano: NULL argument");
    int rc = validate(p, in);
    if (rc)
        return rc;
    ic_arena_mark start = ic_arena_get_mark(a), scratch = start;
    ic_pano_result res;
    memset(&res, 0, sizeof res);
    rc = run(&res, a, p, in, &scratch);
    if (rc) {
        ic_arena_rewind(a, start);
        return rc;
    }
    ic_arena_rewind(a, scratch);
    *ret = res;
    return 0;
}
