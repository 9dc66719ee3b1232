/* Per-request BatchNorm calibration modes and the strengths they produce.
 *
 * For every BN layer the calibrated statistics are
 *   mu = (1 - m_mu) mu_s + m_mu mu_t,  var = (1 - m_var) var_s + m_var var_t
 * (core/ops/bn.h applies them). This module decides m_mu and m_var:
 *   none       m = 0 (plain inference; the model folds BN into the conv)
 *   manual     one scalar m in [0, 1] for every layer and channel
 *   tbn        m = 1 (pure instance statistics)
 *   instcal-u  learned per-channel strengths, projected into [eps, 1 - eps]
 *   instcal-c  m = clamp(prior + softmax(MLP([stat_t; stat_s])) . basis, eps, 1 - eps),
 *              one MLP and basis for the mean and one for the variance
 * exactly as the official InstCal-Pano code (docs/calibration.md §2), and
 *   instcal-g  m = gate(drift of this image's statistics) * learned strengths,
 *              with the mixture variance (not in the paper: calib/gate.h).
 * instcal-e is not a strength rule but two forwards, instcal-g and tbn (of the
 * mirrored image), whose outputs are averaged (core/adapt/ensemble.h);
 * ic_calib_strengths refuses it. */
#ifndef IC_CALIB_CALIB_H
#define IC_CALIB_CALIB_H

#include <stddef.h>

#include "calib/gate.h"

/* The calibration modes, one row each: X(ID, name, needs_m, revision), where
 * needs_m says that a request must give the strength m and revision counts
 * the changes to what the mode computes from the same model (instcal-e 2:
 * its tbn member runs on the mirrored image), so that cached results are
 * keyed by it. A new mode is one row here (its position is its enum value)
 * plus its case in ic_calib_strengths(). */
#define IC_CALIB_MODES(X)           \
    X(NONE, "none", 0, 1)           \
    X(MANUAL, "manual", 1, 1)       \
    X(TBN, "tbn", 0, 1)             \
    X(INSTCAL_U, "instcal-u", 0, 1) \
    X(INSTCAL_C, "instcal-c", 0, 1) \
    X(TENT, "tent", 0, 1)           \
    X(INSTCAL_G, "instcal-g", 0, 1) \
    X(INSTCAL_E, "instcal-e", 0, 2)

typedef enum ic_calib_mode {
#define IC_CALIB_ENUM(id, name, needs_m, rev) IC_CALIB_##id,
    IC_CALIB_MODES(IC_CALIB_ENUM)
#undef IC_CALIB_ENUM
    IC_CALIB_COUNT
} ic_calib_mode;

/* The mode's name ("none", "manual", ...); "?" for others. */
const char *ic_calib_mode_name(ic_calib_mode mode);
/* Parses a mode name; returns 0 or IC_EINVAL (message lists the modes). */
int ic_calib_mode_parse(const char *name, ic_calib_mode *ret_mode);
/* Parses a comma-separated list of mode names ("none,tbn,instcal-u") into
 * modes[] (room for IC_CALIB_COUNT), in the order given; *ret_n gets the
 * count. Returns 0, or IC_EINVAL with a message for an empty list or item,
 * an unknown name or a mode listed twice (modes[] is then undefined). */
int ic_calib_mode_parse_list(const char *list, ic_calib_mode modes[IC_CALIB_COUNT], int *ret_n);
/* Whether a request for this mode must give the strength m (manual). */
int ic_calib_mode_needs_m(ic_calib_mode mode);
/* The mode's revision (1 for most; 0 for an unknown mode): results cached
 * for one revision do not stand for another. */
int ic_calib_mode_revision(ic_calib_mode mode);
/* Writes the mode's name as cached results know it into buf (size bytes):
 * the name, with "-r<revision>" after it from the second revision on
 * ("instcal-e-r2"), so that the first revision's keys stand as they were. */
void ic_calib_mode_key(ic_calib_mode mode, char *buf, size_t size);
/* Every mode name, comma-separated: "none, manual, tbn, ...". */
const char *ic_calib_mode_list(void);

/* What a request asks for. */
typedef struct ic_calib_opts {
    ic_calib_mode mode;
    float m;          /* manual strength in [0, 1] */
    int tent_steps;   /* tent: entropy-minimisation steps (default 1) */
    float tent_lr;    /* tent: learning rate */
} ic_calib_opts;

/* InstCal-C parameters of one BN layer of width C (pointers into the model's
 * weights; all NULL when the model has none). */
typedef struct ic_calib_c_layer {
    const float *basis[2];  /* [stat] (K, C); stat 0 = mean, 1 = var */
    const float *fc1_w[2];  /* (hidden, 2C) */
    const float *fc1_b[2];  /* (hidden) */
    const float *fc2_w[2];  /* (K, hidden) */
    const float *fc2_b[2];  /* (K) */
    /* Optional, the blocked engine's pack-time form of fc1 (NULL: use fc1_w,
     * fc1_b): fc1 acts on [t; s] and s, the stored statistics, is fixed, so
     * fc1_b + fc1_w[:, C:] . s is one vector per layer and only the instance
     * half fc1_w[:, :C] is read per image. Filled by ic_calib_c_pack(). */
    const float *fc1_wt[2]; /* (C, ic_calib_c_packed_hidden()): fc1_w[:, :C]
                             * transposed, hidden units zero-padded */
    const float *fc1_bs[2]; /* (hidden) */
} ic_calib_c_layer;

/* Calibration parameters of one BN layer. */
typedef struct ic_calib_layer {
    int c;                  /* channels */
    const float *u_mean;    /* InstCal-U (C) strengths for the mean, or NULL */
    const float *u_var;     /* InstCal-U (C) strengths for the variance, or NULL */
    ic_calib_c_layer cc;    /* InstCal-C, basis[0] == NULL when absent */
    ic_calib_g_layer g;     /* InstCal-G, u[0] == NULL when absent */
} ic_calib_layer;

/* Shape constants shared by every InstCal-C layer of a model. */
typedef struct ic_calib_c_shape {
    int num_basis, hidden;
    float prior, clamp_eps;
} ic_calib_c_shape;

/* Fills the strengths m_mu, m_var (n, C) for one BN layer and a batch of n
 * images from the instance statistics mean_t, var_t (n, C) and the source
 * statistics mean_s, var_s (C). `scratch` needs ic_calib_scratch_floats()
 * floats. For IC_CALIB_NONE the strengths are all 0. Returns 0, IC_EINVAL
 * (mode needs parameters the layer lacks, or m outside [0, 1]). */
int ic_calib_strengths(float *m_mu, float *m_var, const ic_calib_opts *opts,
                       const ic_calib_layer *layer, const ic_calib_c_shape *cs, int n,
                       const float *mean_t, const float *var_t, const float *mean_s,
                       const float *var_s, float *scratch);

/* Whether the strengths of this mode depend on the instance statistics
 * (InstCal-C only). When they do not, a BN layer can compute each plane's
 * statistics and normalise it in one pass (ic_bn_forward_instance). */
int ic_calib_uses_stats(const ic_calib_opts *opts);

/* Whether the mode normalises with the mixture variance (bn.mixture; InstCal-G). */
int ic_calib_uses_mixture(const ic_calib_opts *opts);

/* Hidden units per row of the packed fc1 (hidden rounded up to 64). */
size_t ic_calib_c_packed_hidden(const ic_calib_c_shape *cs);

/* Fills wt (C, ic_calib_c_packed_hidden()) and bs (hidden), the pack-time form of statistic
 * stat's fc1 (see ic_calib_c_layer) for the stored statistic stat_s (C):
 * bs = fc1_b + fc1_w[:, C:] . stat_s, summed in double. */
void ic_calib_c_pack(float *wt, float *bs, const ic_calib_c_layer *cc, int stat,
                     const ic_calib_c_shape *cs, int c, const float *stat_s);

/* Scratch floats ic_calib_strengths() needs for a layer of width c. */
size_t ic_calib_scratch_floats(const ic_calib_c_shape *cs, int c);

/* Gradient buffers of one InstCal-C statistic (same shapes as the weights). */
typedef struct ic_calib_c_grads {
    float *basis, *fc1_w, *fc1_b, *fc2_w, *fc2_b;
} ic_calib_c_grads;

/* Backward of one InstCal-C strength vector m (C) of one image, statistic
 * `stat` (0 mean, 1 var): recomputes the MLP forward from stat_t, stat_s
 * (stop-gradient inputs, as the official code), then accumulates into g the
 * gradients of the basis and both MLP layers for dm (C). The clamp is in the
 * graph: saturated channels pass no gradient. `scratch` needs
 * ic_calib_c_backward_scratch_floats() floats. */
void ic_calib_c_backward(const ic_calib_c_grads *g, const float *dm, const ic_calib_c_layer *cc,
                         int stat, const ic_calib_c_shape *cs, int c, const float *stat_t,
                         const float *stat_s, float *scratch);

size_t ic_calib_c_backward_scratch_floats(const ic_calib_c_shape *cs, int c);

#endif
