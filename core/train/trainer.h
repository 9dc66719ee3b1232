/* The training loop of Panoptic-DeepLab and of its calibration tensors.
 *
 * One step: zero the gradients; for each of `accum` micro-batches, load a
 * batch (dataset.h), run the training forward, the three losses of
 * detectron2 (DeepLabCE with hard-pixel mining, center MSE x200, offset L1
 * x0.01; core/ops/loss.h) and the backward; then one Adam step with the
 * WarmupPolyLR rate, and the InstCal-U strengths projected into [eps, 1-eps]
 * (the official code clamps .data before every forward; projecting after
 * every update is the same thing). Micro-batch gradients are averaged, so
 * B x A images behave like one batch of B*A except that hard-pixel mining
 * picks its top-k within each micro-batch.
 *
 * Base training: bn IC_PDL_BN_TRAIN, grads WEIGHT | BN_AFFINE.
 * Calibration learning: bn IC_PDL_BN_CALIBRATED with calib.mode instcal-u or
 * instcal-c, grads CALIB_U or CALIB_C; everything else stays bit-identical.
 *
 * Everything random is a function of (seed, sample counter), so a run is
 * reproducible, and a checkpoint (checkpoint.h) resumes it bit for bit. */
#ifndef IC_TRAIN_TRAINER_H
#define IC_TRAIN_TRAINER_H

#include <stdint.h>
#include <stdio.h>

#include "model/pdl_train.h"
#include "train/adam.h"
#include "train/dataset.h"
#include "train/schedule.h"

/* The "training" object of a model config (docs/model-config.md). */
typedef struct ic_train_config {
    double sem_top_k;                 /* 0.2 */
    float sem_weight, center_weight, offset_weight; /* 1, 200, 0.01 */
    int sigma;                        /* 10 */
    long small_instance_area;         /* 4096 at 512x1024 */
    float small_instance_weight;      /* 3 */
} ic_train_config;

/* detectron2's Cityscapes values (above). */
ic_train_config ic_train_config_default(void);

/* Reads config_json's "training" object over the defaults (NULL or a config
 * without it gives the defaults). Returns 0 or IC_EFORMAT. */
int ic_train_config_parse(ic_train_config *tc, const char *config_json);

typedef struct ic_trainer_opts {
    int batch;               /* images per micro-batch */
    int accum;               /* micro-batches per step */
    int64_t iters;           /* schedule length (max_iter) */
    ic_lr_schedule sched;    /* base_lr, warm-up etc.; max_iters = iters */
    uint64_t seed;
    unsigned grads;          /* IC_PARAM_* kinds trained */
    ic_pdl_train_opts fwd;   /* BN mode and calibration of the forward */
    ic_train_config loss;
    ic_adam_opts adam;
    FILE *log;               /* progress lines; NULL = silent */
    int log_every;           /* iterations between progress lines */
    const char *checkpoint_dir; /* NULL = no checkpoints */
    int64_t checkpoint_every;
    const char *val_dir;     /* COCO-panoptic validation set, or NULL */
    int64_t val_every;       /* 0 = only when asked */
    int val_limit;           /* images (0 = all) */
    ic_calib_opts val_calib; /* how validation runs the model */
} ic_trainer_opts;

/* Base-training defaults: batch 8, accum 1, Adam 1e-3 with detectron2's
 * warm-up and poly schedule over `iters`, BN train mode, grads WEIGHT |
 * BN_AFFINE, momentum 0.1, log every 20, no checkpoints or validation. */
ic_trainer_opts ic_trainer_opts_default(int64_t iters);

/* Loss terms of one step (weighted, averaged over micro-batches). */
typedef struct ic_train_losses {
    double total, sem, center, offset;
    double grad_norm;        /* only when clipping is on */
} ic_train_losses;

typedef struct ic_trainer ic_trainer;

/* A trainer for `net` (made trainable here) over `data` with loader options
 * `lo` (its crop is the training size). net and data must outlive it.
 * Returns 0, IC_EINVAL (bad options, no parameter to train), IC_ENOMEM. */
int ic_trainer_create(ic_trainer **ret, ic_pdl *net, ic_dataset *data, const ic_loader_opts *lo,
                      const ic_trainer_opts *o);

void ic_trainer_free(ic_trainer **t);

/* Restores optimiser and loop state from the latest checkpoint of `dir`
 * (the model itself must already be loaded from that checkpoint's model
 * file: ic_checkpoint_latest()). Returns 0 or the loader's error. */
int ic_trainer_resume(ic_trainer *t, const char *dir);

/* Runs one step (see the top of this file). Returns 0, IC_ESTATE (loss not
 * finite), or the failing stage's error. */
int ic_trainer_step(ic_trainer *t, ic_train_losses *out);

/* Steps until `until` iterations are done (<= 0: opts.iters), printing
 * progress, writing checkpoints and validating as configured. */
int ic_trainer_run(ic_trainer *t, int64_t until);

/* Writes a checkpoint of the current state into opts.checkpoint_dir. */
int ic_trainer_checkpoint(ic_trainer *t);

/* Completed iterations and images trained on by this process (for
 * throughput) and the seconds spent in steps. */
int64_t ic_trainer_iter(const ic_trainer *t);
double ic_trainer_images_per_second(const ic_trainer *t);

#endif
