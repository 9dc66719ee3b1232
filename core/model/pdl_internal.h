/* Internal layout of a Panoptic-DeepLab model, shared by the files that
 * build, run and train it (pdl.c, pdl_forward.c, pdl_train.c). Not part of
 * the public API: use model/pdl.h. */
#ifndef IC_MODEL_PDL_INTERNAL_H
#define IC_MODEL_PDL_INTERNAL_H

#include "engine/conv.h"
#include "io/safetensors.h"
#include "model/pdl.h"
#include "model/pdl_train.h"
#include "ops/pool.h"
#include "ops/bn.h"
#include "ops/conv2d.h"

#define NAME_LEN 128

typedef struct layer {
    char name[NAME_LEN]; /* module prefix, e.g. "backbone.res2.0.conv1" */
    ic_conv2d_params p;
    const float *w;      /* (cout, cin/groups, kh, kw) */
    const float *b;      /* conv bias (convs without norm), or NULL */
    int has_norm, has_bias;
    ic_bn bn;
    float *wf, *bf;      /* BN folded into the conv, owned (norm layers only) */
    ic_calib_layer cal;
} layer;

/* One layer packed for the blocked engine (model/pdl_engine.c). */
typedef struct eng_layer {
    ic_eng_conv cv;       /* raw weights (the conv bias when the layer has no norm) */
    float *fscale, *fbias; /* norm layers: eval-mode BN as the write-out's scale/shift */
    float *shift;         /* norm layers: the stored mean, shift of the statistics' sums */
    float *c_wt[2], *c_bs[2]; /* InstCal-C's fc1 in pack-time form (calib.h), or NULL */
} eng_layer;

/* A conv unit: one layer, or a depthwise-separable pair (a = depthwise, b = pointwise). */
typedef struct unit {
    int a, b;
} unit;

typedef struct block {
    int conv1, conv2, conv3, shortcut; /* shortcut -1: identity */
} block;

typedef struct aspp {
    unit branch[4];   /* 1x1, then the three dilated 3x3 */
    int pool_conv;    /* 1x1 with bias + ReLU after pooling */
    int project;
    int pool_global, pool_k[2];
} aspp;

typedef struct decoder {
    aspp top;
    int proj[2];      /* res2, res3 projections */
    unit fuse[2][2];  /* per level: regular pair, or one DS unit in [0] */
    int n_fuse;
} decoder;

/* Writable storage and gradients of one layer (training only). */
typedef struct layer_train {
    float *w, *b, *gamma, *beta, *mean, *var;
    float *dw, *db, *dgamma, *dbeta;
    float *u[2], *du[2];                          /* InstCal-U mean / var strengths */
    float *basis[2], *fc1_w[2], *fc1_b[2], *fc2_w[2], *fc2_b[2];      /* InstCal-C */
    float *gu[2], *dgu[2], *gate, *dgate;         /* InstCal-G strengths and gate */
    float *dbasis[2], *dfc1_w[2], *dfc1_b[2], *dfc2_w[2], *dfc2_b[2];
} layer_train;

typedef enum op_kind {
    OP_CONV, OP_BN, OP_ADD, OP_CONCAT, OP_RESIZE, OP_UPSAMPLE, OP_MAXPOOL, OP_AVGPOOL, OP_GAP
} op_kind;

/* One recorded forward op. src[i] is the op that produced in[i] (-1: the
 * network input). */
typedef struct tape_op {
    op_kind kind;
    int layer;
    int relu;
    int n_in;
    ic_tensor in[5];
    int src[5];
    ic_tensor out;
    ic_pool2d pool;
    float mul;
    float *save_mean, *save_invstd;       /* BN, batch statistics (C) */
    float *mean_t, *var_t, *m_mu, *m_var; /* BN, calibrated (N, C) */
} tape_op;

struct ic_pdl_tape {
    tape_op *ops;
    int n, cap;
    ic_pdl_train_opts opts;
};

struct ic_pdl {
    ic_pdl_config cfg;
    ic_safetensors *st;
    layer *layers;
    int n_layers, cap_layers;
    int stem[3];
    block *blocks;
    int n_blocks, stage_first[4], stage_len[4];
    decoder dec[2];   /* 0 semantic, 1 instance */
    unit sem_head[2];
    int n_sem_head, sem_pred;
    unit center_head[2];
    int center_pred;
    unit offset_head[2];
    int n_offset_head, offset_pred;
    int n_bn;
    int has_u, has_c, has_g;
    ic_calib_c_shape cshape;
    char *config_json;        /* the config's text, for saving */
    ic_pdl_engine engine;     /* which forward ic_pdl_forward() runs */
    eng_layer *eng;           /* (n_layers) packed layers, with a blocked engine */
    struct pdl_train_state *train; /* NULL for a serving model (see below) */
};

/* What only a trainable model has (ic_pdl_make_trainable, pdl_train.c):
 * writable storage and gradients per layer, the parameter list and the
 * buffers the copy owns. A model loaded for serving carries none of it. */
typedef struct pdl_train_state {
    layer_train *lt;          /* [n_layers] */
    ic_param *params;
    int n_params;
    void **owned;
    int n_owned, cap_owned;
} pdl_train_state;

/* Builds the layer graph of net->cfg (pdl.c). */
int pdl_build(ic_pdl *net);
/* Packs every layer for net->engine and frees the NCHW forward's folded
 * weights, or, for the NCHW engine, frees the packed layers and folds what
 * is not folded; on failure the model is left on the NCHW engine, folded
 * (pdl_engine.c). */
int pdl_engine_pack(ic_pdl *net);
void pdl_engine_free(ic_pdl *net);
/* The blocked forward (pdl_engine.c); the input is checked by the caller. */
int pdl_forward_blocked(const ic_pdl *net, const ic_tensor *x, const ic_calib_opts *opts, int flags,
                        ic_arena *arena, ic_pdl_outputs *out, ic_pdl_trace_fn trace, void *ctx);

/* (Re)computes the BN-folded weights of every norm layer (pdl.c). */
int pdl_fold_all(ic_pdl *net);

#define CHECK(expr)             \
    do {                        \
        int rc_ = (expr);       \
        if (rc_ < 0)            \
            return rc_;         \
    } while (0)

#endif
