/* Confusion matrix and IoU (see miou.h). */
#include "metrics/miou.h"

#include <math.h>
#include <string.h>

#include "base/alloc.h"
#include "base/err.h"

int ic_confusion_init(ic_confusion *c, int n_classes)
{
    c->n_classes = 0;
    c->m = NULL;
    if (n_classes < 1 || n_classes > 4096)
        return ic_error_set(IC_EINVAL, "confusion: %d classes", n_classes);
    c->m = ic_calloc((size_t)n_classes * (size_t)n_classes, sizeof *c->m);
    if (!c->m)
        return ic_error_set(IC_ENOMEM, "confusion: %d classes", n_classes);
    c->n_classes = n_classes;
    return 0;
}

void ic_confusion_deinit(ic_confusion *c)
{
    ic_free(c->m);
    c->m = NULL;
    c->n_classes = 0;
}

void ic_confusion_reset(ic_confusion *c)
{
    memset(c->m, 0, (size_t)c->n_classes * (size_t)c->n_classes * sizeof *c->m);
}

int ic_confusion_add(ic_confusion *c, const int32_t *pred, const int32_t *gt, size_t n,
                     int32_t ignore)
{
    const uint32_t nc = (uint32_t)c->n_classes;
    /* validate first so that a bad label leaves the counts untouched */
    for (size_t i = 0; i < n; i++) {
        if (gt[i] == ignore)
            continue;
        if ((uint32_t)gt[i] >= nc || (uint32_t)pred[i] >= nc)
            return ic_error_set(IC_EINVAL,
                                "confusion: pixel %zu has label %d / prediction %d, classes 0..%u",
                                i, (int)gt[i], (int)pred[i], nc - 1);
    }
    for (size_t i = 0; i < n; i++)
        if (gt[i] != ignore)
            c->m[(size_t)gt[i] * nc + (size_t)pred[i]]++;
    return 0;
}

int ic_confusion_merge(ic_confusion *dst, const ic_confusion *src)
{
    if (dst->n_classes != src->n_classes)
        return ic_error_set(IC_ESHAPE, "confusion: merging %d into %d classes", src->n_classes,
                            dst->n_classes);
    size_t nn = (size_t)dst->n_classes * (size_t)dst->n_classes;
    for (size_t i = 0; i < nn; i++)
        dst->m[i] += src->m[i];
    return 0;
}

double ic_confusion_iou(const ic_confusion *c, int k)
{
    const size_t nc = (size_t)c->n_classes;
    uint64_t tp = c->m[(size_t)k * nc + (size_t)k], row = 0, col = 0;
    for (size_t j = 0; j < nc; j++) {
        row += c->m[(size_t)k * nc + j];
        col += c->m[j * nc + (size_t)k];
    }
    uint64_t uni = row + col - tp;
    return uni ? (double)tp / (double)uni : NAN;
}

double ic_confusion_miou(const ic_confusion *c, int *n_used)
{
    double sum = 0.0;
    int n = 0;
    for (int k = 0; k < c->n_classes; k++) {
        double iou = ic_confusion_iou(c, k);
        if (isnan(iou))
            continue;
        sum += iou;
        n++;
    }
    if (n_used)
        *n_used = n;
    return n ? sum / n : 0.0;
}

double ic_confusion_pixel_acc(const ic_confusion *c)
{
    const size_t nc = (size_t)c->n_classes;
    uint64_t tot = 0, ok = 0;
    for (size_t i = 0; i < nc; i++)
        for (size_t j = 0; j < nc; j++) {
            tot += c->m[i * nc + j];
            ok += i == j ? c->m[i * nc + j] : 0;
        }
    return tot ? (double)ok / (double)tot : 0.0;
}
