/* Panoptic-DeepLab target generator (see targets.h).
 *
 * detectron2 loops over segments and scans the whole map for each
 * (`panoptic == seg["id"]`), O(H W nseg). Here each pixel finds its segment
 * by binary search in the segments sorted by id (with the previous pixel's
 * answer cached, since ids come in runs), which gives the same result in
 * O(H W log nseg) because a pixel belongs to at most one segment: the order
 * of segments only matters for the Gaussians, and those are combined with
 * max, which is order-free. Rounding follows numpy (half to even, rint()), and
 * the Gaussian and offsets are computed in double and stored as float, as the
 * float32 arrays of the Python code store them. */
#include "train/targets.h"

#include <math.h>
#include <stdlib.h>

#include "base/alloc.h"
#include "base/err.h"

/* Per-segment accumulators, sorted by id for the lookup. */
typedef struct seg_acc {
    int32_t id;
    int seg;                   /* index into the caller's segments */
    long long cnt, sy, sx;     /* pixel count and coordinate sums (exact) */
    double cy, cx;             /* float centroid, numpy's mean */
} seg_acc;

ic_target_params ic_target_params_default(void)
{
    ic_target_params p = {.sigma = 10, .small_instance_area = 4096, .small_instance_weight = 3.0f,
                          .ignore_label = 255};
    return p;
}

static int cmp_acc(const void *a, const void *b)
{
    int32_t x = ((const seg_acc *)a)->id, y = ((const seg_acc *)b)->id;
    return (x > y) - (x < y);
}

/* Index in acc of the segment with this id, or -1. */
static int find_seg(const seg_acc *acc, int nseg, int32_t id)
{
    int lo = 0, hi = nseg;
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2;
        if (acc[mid].id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < nseg && acc[lo].id == id ? lo : -1;
}

/* center = max(center, g) over the window of 6 sigma + 3 pixels around
 * (y, x), clipped to the map, as detectron2 slices its precomputed g. */
static void paste_gaussian(float *center, int h, int w, int y, int x, int sigma)
{
    int ulx = x - 3 * sigma - 1, uly = y - 3 * sigma - 1;
    int brx = x + 3 * sigma + 2, bry = y + 3 * sigma + 2;
    int x0 = ulx > 0 ? ulx : 0, x1 = brx < w ? brx : w;
    int y0 = uly > 0 ? uly : 0, y1 = bry < h ? bry : h;
    double c0 = 3.0 * sigma + 1, den = 2.0 * (double)sigma * (double)sigma;
    for (int r = y0; r < y1; r++) {
        double dy = (double)(r - uly) - c0;
        for (int c = x0; c < x1; c++) {
            double dx = (double)(c - ulx) - c0;
            float g = (float)exp(-(dx * dx + dy * dy) / den);
            float *dst = &center[(size_t)r * (size_t)w + (size_t)c];
            if (g > *dst)
                *dst = g;
        }
    }
}

int ic_targets_generate(const ic_pano_targets *out, const int32_t *pan, int h, int w,
                        const ic_pano_segment *segs, int nseg, const ic_target_params *p)
{
    if (!out || !pan || !p || h <= 0 || w <= 0 || nseg < 0 || (nseg > 0 && !segs))
        return ic_error_set(IC_EINVAL, "targets: bad arguments (%dx%d, %d segments)", h, w, nseg);
    if (!out->semantic || !out->semantic_weights || !out->center || !out->center_weights ||
        !out->offset || !out->offset_weights)
        return ic_error_set(IC_EINVAL, "targets: missing output buffer");
    if (p->sigma <= 0 || p->sigma > 1000)
        return ic_error_set(IC_EINVAL, "targets: sigma %d out of range", p->sigma);
    if (p->n_class_weights < 0 || (p->n_class_weights > 0 && !p->class_weights))
        return ic_error_set(IC_EINVAL, "targets: %d class weights without values",
                            p->n_class_weights);
    for (int c = 0; c < p->n_class_weights; c++)
        if (!(p->class_weights[c] >= 0.0f && p->class_weights[c] <= 1e6f))
            return ic_error_set(IC_EINVAL, "targets: class weight %d is %g, not in [0, 1e6]", c,
                                (double)p->class_weights[c]);
    for (int i = 0; i < nseg; i++)
        if (segs[i].category < 0 || segs[i].category >= 255)
            return ic_error_set(IC_EINVAL, "targets: segment %d has category %d outside [0, 255)",
                                segs[i].id, segs[i].category);
    seg_acc *acc = ic_calloc(nseg > 0 ? (size_t)nseg : 1, sizeof(*acc));
    if (!acc)
        return ic_error_set(IC_ENOMEM, "targets: out of memory for %d segments", nseg);
    for (int i = 0; i < nseg; i++) {
        acc[i].id = segs[i].id;
        acc[i].seg = i;
    }
    qsort(acc, (size_t)nseg, sizeof(*acc), cmp_acc);
    for (int i = 1; i < nseg; i++)
        if (acc[i].id == acc[i - 1].id) {
            int32_t id = acc[i].id;
            ic_free(acc);
            return ic_error_set(IC_EINVAL, "targets: segment id %d listed twice", id);
        }

    size_t hw = (size_t)h * (size_t)w;
    float *dy = out->offset, *dx = out->offset + hw;
    /* pass 1: labels, weights, and the areas and centroids of the segments */
    int last = -1;
    int32_t last_id = 0;
    for (int r = 0; r < h; r++)
        for (int c = 0; c < w; c++) {
            size_t i = (size_t)r * (size_t)w + (size_t)c;
            if (last < 0 || pan[i] != last_id) {
                last_id = pan[i];
                last = find_seg(acc, nseg, last_id);
            }
            out->semantic[i] = p->ignore_label;
            out->semantic_weights[i] = 1.0f;
            out->center[i] = 0.0f;
            out->center_weights[i] = 0.0f;
            out->offset_weights[i] = 0.0f;
            dy[i] = dx[i] = 0.0f;
            if (last < 0)
                continue;
            seg_acc *a = &acc[last];
            const ic_pano_segment *s = &segs[a->seg];
            out->semantic[i] = s->category;
            if (s->category < p->n_class_weights)
                out->semantic_weights[i] = p->class_weights[s->category];
            if (!s->iscrowd) {
                out->center_weights[i] = 1.0f;
                if (s->isthing)
                    out->offset_weights[i] = 1.0f;
            }
            a->cnt++;
            a->sy += r;
            a->sx += c;
        }
    for (int k = 0; k < nseg; k++) {
        seg_acc *a = &acc[k];
        if (a->cnt == 0 || !segs[a->seg].isthing)
            continue;
        a->cy = (double)a->sy / (double)a->cnt;
        a->cx = (double)a->sx / (double)a->cnt;
        paste_gaussian(out->center, h, w, (int)rint(a->cy), (int)rint(a->cx), p->sigma);
    }
    /* pass 2: small-instance weights and offsets of thing pixels */
    last = -1;
    for (int r = 0; r < h; r++)
        for (int c = 0; c < w; c++) {
            size_t i = (size_t)r * (size_t)w + (size_t)c;
            if (last < 0 || pan[i] != last_id) {
                last_id = pan[i];
                last = find_seg(acc, nseg, last_id);
            }
            if (last < 0 || !segs[acc[last].seg].isthing)
                continue;
            const seg_acc *a = &acc[last];
            if (a->cnt < p->small_instance_area)
                out->semantic_weights[i] *= p->small_instance_weight;
            dy[i] = (float)(a->cy - (double)r);
            dx[i] = (float)(a->cx - (double)c);
        }
    ic_free(acc);
    return 0;
}
