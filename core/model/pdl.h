/* Panoptic-DeepLab (detectron2 layout) built from a config and safetensors.
 *
 * The network is the one of docs/network.md: DeepLab
 * ResNet backbone (3-conv stem, bottlenecks with the stride in the 3x3 conv,
 * res5 dilation x multi-grid), and two heads each with its own ASPP and
 * DeepLabV3+ decoder; semantic logits, center heatmap and offsets, upsampled
 * x4 (offsets also multiplied by 4). Weights use detectron2's state_dict
 * names; calibration tensors sit beside each BN (docs/model-config.md).
 *
 * A loaded model is read-only: many threads may run ic_pdl_forward() on it
 * at once, each with its own arena. */
#ifndef IC_MODEL_PDL_H
#define IC_MODEL_PDL_H

#include "base/arena.h"
#include "base/tensor.h"
#include "calib/calib.h"
#include "model/config.h"

typedef struct ic_pdl ic_pdl;

/* Loads weights (safetensors, memory-mapped) and the config: from
 * `config_path` when given, else from the weights' __metadata__["config"].
 * Every expected tensor must be present with its shape; the error names what
 * is missing, extra or misshapen. Returns 0, IC_EIO, IC_EFORMAT, IC_ESHAPE,
 * IC_ENOTFOUND or IC_ENOMEM. */
int ic_pdl_load(ic_pdl **ret, const char *weights_path, const char *config_path);

/* Releases the model; *net becomes NULL. NULL is fine. */
void ic_pdl_free(ic_pdl **net);

const ic_pdl_config *ic_pdl_get_config(const ic_pdl *net);

/* 1 when the network can serve `mode`: instcal-u / -c / -g need their
 * tensors, instcal-e those of instcal-g; tent never (it adapts a copy first,
 * core/adapt/adapt.h). ic_pdl_forward() runs every supported mode except
 * instcal-e, which is two of its forwards averaged (core/adapt/ensemble.h). */
int ic_pdl_supports(const ic_pdl *net, ic_calib_mode mode);

/* Number of BN layers (for summaries and tests). */
int ic_pdl_bn_count(const ic_pdl *net);

typedef struct ic_pdl_outputs {
    ic_tensor sem;     /* (N, num_classes, H, W) logits */
    ic_tensor center;  /* (N, 1, H, W) raw heatmap (no sigmoid) */
    ic_tensor offset;  /* (N, 2, H, W) (dy, dx) in input pixels */
    double m_mu_mean;  /* mean strength over all BN channels (0 for none) */
    double m_var_mean;
    double *drift;     /* (N) per-image drift score (calib/drift.h), in the arena; 0 when training */
    size_t peak_bytes; /* activation memory at the high-water mark */
} ic_pdl_outputs;

/* ic_pdl_forward() flags. */
enum {
    IC_PDL_STRIDE4 = 1, /* return the heads' raw stride-4 maps (no upsampling, offsets not x4) */
};

/* Which implementation ic_pdl_forward() runs (the training forward is
 * always NCHW):
 *   nchw     core/ops on NCHW tensors (OpenBLAS sgemm per convolution)
 *   blocked  (the default) core/engine: 16-channel blocked activations,
 *            weights packed once, fused write-outs and statistics,
 *            Winograd F(4x4, 3x3) for the 3x3 stride-1 convolutions
 *   exact    blocked without Winograd (direct products only)
 * docs/benchmarks.md compares them. */
typedef enum ic_pdl_engine {
    IC_PDL_ENGINE_NCHW,
    IC_PDL_ENGINE_BLOCKED,
    IC_PDL_ENGINE_EXACT,
} ic_pdl_engine;

/* Parses "nchw", "blocked" or "exact". Returns 0 or IC_EINVAL. */
int ic_pdl_engine_parse(const char *name, ic_pdl_engine *ret);
const char *ic_pdl_engine_name(ic_pdl_engine e);

/* The engine a loaded model starts with: $INSTCAL_ENGINE when set to a
 * valid name, else blocked. A model with a layer the blocked engine cannot
 * run (grouped, non-depthwise convolutions) loads on nchw. */
ic_pdl_engine ic_pdl_engine_default(void);

/* Switches the model's engine, packing (or freeing) the blocked engine's
 * weights; not while forwards run. A trainable model (ic_pdl_make_trainable)
 * starts on nchw and repacks at ic_pdl_refold() when switched. Returns 0,
 * IC_EUNSUPPORTED (a layer the blocked engine cannot run: the model stays
 * on nchw) or IC_ENOMEM. */
int ic_pdl_set_engine(ic_pdl *net, ic_pdl_engine e);
ic_pdl_engine ic_pdl_get_engine(const ic_pdl *net);

/* Runs the network on x (N, 3, H, W), already normalised, with the given
 * calibration. Outputs are allocated in `arena` and stay valid until it is
 * reset; they are at the input resolution (the x4 upsampled maps cropped to
 * H x W) unless flags ask otherwise. Returns 0, IC_EINVAL (bad input or mode
 * unavailable), IC_ENOMEM. */
int ic_pdl_forward(const ic_pdl *net, const ic_tensor *x, const ic_calib_opts *opts, int flags,
                   ic_arena *arena, ic_pdl_outputs *out);

/* Called after every conv layer (after its BN and ReLU) with the layer's
 * module name and output; for debugging and layer-by-layer comparisons. */
typedef void (*ic_pdl_trace_fn)(void *ctx, const char *layer, const ic_tensor *y);

/* ic_pdl_forward() that also reports every layer's output to `trace`. */
int ic_pdl_forward_trace(const ic_pdl *net, const ic_tensor *x, const ic_calib_opts *opts, int flags,
                         ic_arena *arena, ic_pdl_outputs *out, ic_pdl_trace_fn trace, void *ctx);

#endif
