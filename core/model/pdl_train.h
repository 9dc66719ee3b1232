/* Training support for Panoptic-DeepLab: a writable copy of every tensor
 * with gradients, fresh initialisation (detectron2's), calibration tensors
 * (InstCal-U and InstCal-C with the official initialisation), a training
 * forward that records a tape, and the backward over that tape.
 *
 * A model loaded with ic_pdl_load() is read-only (memory-mapped); call
 * ic_pdl_make_trainable() before training it. Training is single-threaded
 * at the model level (OpenBLAS threads inside the convolutions). */
#ifndef IC_MODEL_PDL_TRAIN_H
#define IC_MODEL_PDL_TRAIN_H

#include <stdint.h>

#include "model/pdl.h"

/* Kinds of tensors, so optimisers and savers can pick what they touch. */
typedef enum ic_param_kind {
    IC_PARAM_WEIGHT = 1,     /* conv weights and biases */
    IC_PARAM_BN_AFFINE = 2,  /* gamma, beta */
    IC_PARAM_BN_STAT = 4,    /* running mean / var: saved, never optimised */
    IC_PARAM_CALIB_U = 8,    /* InstCal-U strengths */
    IC_PARAM_CALIB_C = 16,   /* InstCal-C basis and MLPs */
    IC_PARAM_CALIB_G = 32,   /* InstCal-G strengths (projected into [eps, 1-eps]) */
    IC_PARAM_CALIB_G_GATE = 64, /* InstCal-G gate slope and threshold */
} ic_param_kind;

typedef struct ic_param {
    char name[160];          /* state_dict name */
    float *data;
    float *grad;             /* NULL for IC_PARAM_BN_STAT */
    size_t n;
    int ndim;
    int64_t shape[4];
    ic_param_kind kind;
} ic_param;

/* A new model with detectron2's initialisation for `cfg` (backbone and
 * depthwise-separable convs: c2_msra_fill; other head convs: c2_xavier_fill;
 * predictors: N(0, 0.001); BN: gamma 1, beta 0, mean 0, var 1). `config_json`
 * is the config's text, kept for saving. Returns 0, IC_EINVAL, IC_ENOMEM. */
int ic_pdl_create(ic_pdl **ret, const ic_pdl_config *cfg, const char *config_json, uint64_t seed);

/* Copies every tensor of a loaded model into owned, writable memory and
 * allocates gradients. Idempotent. Returns 0 or IC_ENOMEM. */
int ic_pdl_make_trainable(ic_pdl *net);

/* Adds calibration tensors of `mode` (IC_CALIB_INSTCAL_U: every strength
 * `u_init`, the official 0.1 unless the config says otherwise;
 * IC_CALIB_INSTCAL_C: basis N(0, 0.05^2), MLP weights N(0, 0.01^2), biases 0;
 * IC_CALIB_INSTCAL_G: strengths u_init, gate slope 1 and threshold 0 until
 * ic_pdl_fit_gate()). Replaces existing ones. The model must be trainable. */
int ic_pdl_add_calibration(ic_pdl *net, ic_calib_mode mode, float u_init, uint64_t seed);

/* Sets every InstCal-G gate from the drift its layer sees on `x`, a batch
 * of clean source images (network run with m = 0): with z the log drift,
 * mean and std over the images, k = slope / std and t = mean + margin *
 * std, so g = sigmoid(slope ((z - mean) / std - margin)): nearly closed on
 * typical clean images, half open `margin` deviations above them. Needs the
 * InstCal-G tensors (ic_pdl_add_calibration). Returns 0, IC_EINVAL, IC_ENOMEM. */
int ic_pdl_fit_gate(ic_pdl *net, const ic_tensor *x, float slope, float margin);

/* Removes every calibration tensor (for training the network itself on from
 * a calibrated model: the old strengths were learned for other weights, and
 * the saved model should not carry them). The model must be trainable. */
int ic_pdl_drop_calibration(ic_pdl *net);

/* Sets InstCal-C's prior strength (the official code fixes it at 0.1) in
 * the model and in the config text it saves. Returns 0, IC_EINVAL, IC_ENOMEM. */
int ic_pdl_set_calib_prior(ic_pdl *net, float prior);

/* The parameter list (valid until the model changes shape or is freed). */
int ic_pdl_params(ic_pdl *net, ic_param **ret, int *ret_n);

/* Sets every gradient to zero. */
void ic_pdl_zero_grad(ic_pdl *net);

/* Recomputes the BN-folded weights used by `none` inference after training. */
int ic_pdl_refold(ic_pdl *net);

/* Writes every tensor (detectron2 names, calibration names beside each BN)
 * and the config into __metadata__["config"]; `extra_meta` key/value pairs
 * (NULL-terminated array, may be NULL) are added too. Atomic (temp + rename). */
int ic_pdl_save(const ic_pdl *net, const char *path, const char *const *extra_meta);

typedef struct ic_pdl_tape ic_pdl_tape;

typedef enum ic_pdl_bn_mode {
    IC_PDL_BN_TRAIN,       /* batch statistics, running statistics updated */
    IC_PDL_BN_CALIBRATED,  /* per-image calibrated statistics (opts.calib) */
} ic_pdl_bn_mode;

typedef struct ic_pdl_train_opts {
    ic_pdl_bn_mode bn;
    ic_calib_opts calib;   /* for IC_PDL_BN_CALIBRATED */
    float momentum;        /* running statistics, 0.1 */
    unsigned grads;        /* IC_PARAM_* kinds whose gradients to compute */
    /* Calibrated mode only: take the per-image statistics from this tape of
     * an earlier forward on the same input instead of computing them. The
     * statistics are stop-gradient, so this makes the forward the function
     * whose derivative the backward computes (finite-difference checks). */
    const struct ic_pdl_tape *replay;
} ic_pdl_train_opts;


/* Training forward on x (N, 3, H, W) with H, W multiples of 16. Every
 * intermediate tensor and the tape live in `arena` (reset it after the
 * backward). Outputs are at the input resolution (offsets x4).
 * Returns 0, IC_EINVAL, IC_ENOMEM. */
int ic_pdl_forward_train(ic_pdl *net, const ic_tensor *x, const ic_pdl_train_opts *opts,
                         ic_arena *arena, ic_pdl_tape **ret_tape, ic_pdl_outputs *out);

/* Backward from the gradients of the three outputs (any may be NULL = 0):
 * accumulates into the gradients of the kinds asked for in opts->grads.
 * Scratch from `arena`. Returns 0, IC_EINVAL, IC_ENOMEM. */
int ic_pdl_backward(ic_pdl *net, ic_pdl_tape *tape, const ic_tensor *dsem, const ic_tensor *dcenter,
                    const ic_tensor *doffset, ic_arena *arena);

#endif
