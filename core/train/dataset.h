/* Training data: where panoptic samples come from and how a batch is made.
 *
 * A dataset yields items (8-bit RGB image, panoptic id map, segments with
 * the model's class ids) from either a COCO-panoptic directory (DIR/
 * panoptic.json, DIR/images/, DIR/panoptic/) or SynthCity rendered on the fly
 * (core/data/synth.h), so training needs no disk. Categories are matched to
 * the model's classes by name when any category name is a class name of the
 * model, else by id; categories the model does not have become void.
 *
 * The loader turns items into a batch: light (geometric: random scale, crop
 * to the training size, flip) or strong (core/augment's policy) augmentation,
 * detectron2's targets at crop resolution (core/train/targets.h) and
 * normalisation with the model's pixel mean/std. Which item and which random
 * augmentation a batch slot gets is a pure function of (seed, sample
 * number), so a run is reproducible and resumable from a sample counter. */
#ifndef IC_TRAIN_DATASET_H
#define IC_TRAIN_DATASET_H

#include <stdint.h>

#include "augment/policy.h"
#include "base/tensor.h"
#include "image/image.h"
#include "model/config.h"
#include "train/targets.h"

typedef struct ic_dataset ic_dataset;

/* One sample; release with ic_train_item_deinit(). */
typedef struct ic_train_item {
    ic_image img;          /* 8-bit RGB */
    int32_t *ids;          /* (img.h, img.w) panoptic ids, 0 = void; ic_malloc'd */
    ic_pano_segment *segs; /* ic_malloc'd, nseg entries (model class ids) */
    int nseg;
} ic_train_item;

void ic_train_item_deinit(ic_train_item *it);

/* Opens a COCO-panoptic directory and reads its JSON (images are read on
 * demand). Returns 0, IC_EIO, IC_EFORMAT (bad JSON, no annotations),
 * IC_ENOMEM. */
int ic_dataset_open_dir(ic_dataset **ret, const char *dir, const ic_pdl_config *cfg);

/* SynthCity scenes 0..count-1 of `seed` in the source domain, rendered at
 * h x w. Returns 0, IC_EINVAL (bad size or count), IC_ENOMEM. */
int ic_dataset_open_synth(ic_dataset **ret, uint64_t seed, int count, int h, int w,
                          const ic_pdl_config *cfg);

void ic_dataset_free(ic_dataset **d);

/* Number of items. */
int ic_dataset_size(const ic_dataset *d);

/* Loads item `index` (decoded or rendered). Not thread-safe: one caller at a
 * time per dataset. Returns 0, IC_EINVAL, IC_EIO, IC_EFORMAT, IC_ENOMEM. */
int ic_dataset_get(ic_dataset *d, int index, ic_train_item *out);

/* Item index of global sample number s: epoch s / size visits every item
 * once in an order shuffled from (seed, epoch). */
int ic_dataset_sample_index(ic_dataset *d, uint64_t seed, uint64_t s);

/* How the loader augments and labels. */
typedef struct ic_loader_opts {
    int crop_h, crop_w;         /* training size, multiples of 16 */
    int strong;                 /* 0: light (geometric only); 1: ic_aug_strong() */
    ic_aug_geom_params geom;    /* light pipeline (crop size forced to crop_h x crop_w) */
    ic_aug_strong_params strong_p; /* strong policy (its geom replaced by `geom`) */
    ic_target_params targets;   /* small_instance_area already at crop resolution */
    float mean[3], std[3];      /* the model's pixel normalisation */
} ic_loader_opts;

/* Defaults for a model and crop: scale U(0.5, 2), flip 0.5, mean padding,
 * the augment module's strong defaults, detectron2's targets with sigma
 * `sigma` (<= 0: 10) and the small-instance area 4096 scaled by
 * crop_h*crop_w / (512*1024) (at least 1). */
ic_loader_opts ic_loader_opts_default(const ic_pdl_config *cfg, int crop_h, int crop_w, int strong,
                                      int sigma);

/* A training batch with its targets (one allocation, reused across steps). */
typedef struct ic_batch {
    int n, h, w;
    ic_tensor image;    /* (N, 3, H, W) normalised */
    int32_t *sem;       /* (N, H, W) class or 255 */
    float *sem_w;       /* (N, H, W) */
    ic_tensor center;   /* (N, 1, H, W) */
    ic_tensor center_w; /* (N, 1, H, W) */
    ic_tensor offset;   /* (N, 2, H, W) dy, dx */
    ic_tensor offset_w; /* (N, 1, H, W) */
    void *mem;
} ic_batch;

/* Allocates a batch of n x h x w. Returns 0, IC_EINVAL, IC_ENOMEM. */
int ic_batch_init(ic_batch *b, int n, int h, int w);
void ic_batch_deinit(ic_batch *b);

/* Fills b with global samples first .. first + b->n - 1: item
 * ic_dataset_sample_index(d, seed, s), augmented with an ic_aug_rng seeded
 * from (seed, s). Returns 0 or the first failing step's code. */
int ic_loader_fill(ic_batch *b, ic_dataset *d, const ic_loader_opts *o, uint64_t seed,
                   uint64_t first);

#endif
