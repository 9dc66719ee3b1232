/* Semantic segmentation confusion matrix, per-class IoU and mIoU.
 *
 * The matrix counts (ground truth, prediction) pixel pairs over any number
 * of images; ground truth equal to the ignore label (255 for Cityscapes
 * train ids) is skipped. mIoU averages IoU = TP / (TP + FP + FN) over the
 * classes whose union is non-empty (present in the ground truth or in the
 * prediction). Cityscapes' evaluator instead averages all classes with NaN
 * for absent ones (nanmean), which is the same number as long as every
 * class with a prediction also has ground truth somewhere in the set; on a
 * single image ours also penalises predicted classes absent from the label,
 * which is what a per-image answer should show. */
#ifndef IC_METRICS_MIOU_H
#define IC_METRICS_MIOU_H

#include <stddef.h>
#include <stdint.h>

typedef struct ic_confusion {
    int n_classes;
    uint64_t *m; /* (n_classes, n_classes): row = ground truth, col = prediction */
} ic_confusion;

/* Allocates a zeroed n_classes^2 matrix (ic_malloc; 1 <= n_classes <= 4096).
 * Errors: IC_EINVAL, IC_ENOMEM. */
int ic_confusion_init(ic_confusion *c, int n_classes);

/* Frees the matrix; safe on a zeroed or already released struct. */
void ic_confusion_deinit(ic_confusion *c);

/* Zeroes the counts. */
void ic_confusion_reset(ic_confusion *c);

/* Adds n pixels. Every ground truth must be `ignore` or in [0, n_classes) and
 * every prediction (at non-ignored pixels) in [0, n_classes); otherwise
 * nothing is added and IC_EINVAL names the first bad pixel. */
int ic_confusion_add(ic_confusion *c, const int32_t *pred, const int32_t *gt, size_t n,
                     int32_t ignore);

/* Adds another matrix of the same size. Errors: IC_ESHAPE. */
int ic_confusion_merge(ic_confusion *dst, const ic_confusion *src);

/* IoU of class k, or NaN when the class is absent from both. */
double ic_confusion_iou(const ic_confusion *c, int k);

/* Mean IoU over classes with a non-empty union; *n_used (may be NULL)
 * receives their number. 0 when there is none. */
double ic_confusion_miou(const ic_confusion *c, int *n_used);

/* Fraction of counted pixels predicted correctly (0 when empty). */
double ic_confusion_pixel_acc(const ic_confusion *c);

#endif
