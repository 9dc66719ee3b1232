/* Held-out evaluation while training or calibrating: runs the serving path
 * (ic_segment_run) over a COCO-panoptic directory and accumulates mIoU, PQ
 * and ECE exactly as `instcal eval` does. */
#ifndef IC_TRAIN_VALIDATE_H
#define IC_TRAIN_VALIDATE_H

#include <stdio.h>

#include "calib/calib.h"
#include "model/pdl.h"

/* The headline numbers (fractions, not percent). */
typedef struct ic_val_summary {
    int n_images, has_pq;
    double miou, pq, ece;
} ic_val_summary;

/* Evaluates `net` (a trainable model; BN is refolded first so `none` sees
 * the current weights) on DIR/panoptic.json, DIR/images/, DIR/panoptic/,
 * the first `limit` images (0 = all), with `calib`. Returns 0 or the first
 * error (IC_EIO, IC_EFORMAT, IC_ESHAPE, IC_EINVAL, IC_ENOMEM). */
int ic_train_validate(ic_pdl *net, const char *dir, const ic_calib_opts *calib, int limit,
                      ic_val_summary *out);

/* Prints "WHAT: N images  mIoU x  PQ y  ECE z" (percent). */
void ic_val_summary_print(FILE *f, const char *what, const ic_val_summary *s);

#endif
