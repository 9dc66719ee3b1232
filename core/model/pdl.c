/* Panoptic-DeepLab: graph construction and weight binding (see pdl.h).
 * The graph is a flat array of conv(+BN)(+ReLU) layers named by their
 * detectron2 module prefix; blocks, ASPPs, decoders and heads are small
 * structs of layer indices (pdl_internal.h). The forward pass is in
 * pdl_forward.c. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/err.h"
#include "model/pdl_internal.h"

/* ---------------------------------------------------------------- build */

static int add_layer(ic_pdl *net, const char *name, int cin, int cout, int k, int stride, int dil,
                     int groups, int has_norm, int relu, int has_bias)
{
    if (net->n_layers == net->cap_layers) {
        int cap = net->cap_layers ? 2 * net->cap_layers : 128;
        layer *nl = ic_realloc(net->layers, (size_t)cap * sizeof *nl);
        if (!nl)
            return ic_error_set(IC_ENOMEM, "model: no memory for layers");
        net->layers = nl;
        net->cap_layers = cap;
    }
    layer *l = &net->layers[net->n_layers];
    memset(l, 0, sizeof *l);
    snprintf(l->name, sizeof l->name, "%s", name);
    int pad = (k / 2) * dil;
    l->p = (ic_conv2d_params){.cin = cin, .cout = cout, .kh = k, .kw = k, .stride_h = stride,
                              .stride_w = stride, .pad_h = pad, .pad_w = pad, .dil_h = dil,
                              .dil_w = dil, .groups = groups, .relu = relu};
    l->has_norm = has_norm;
    l->has_bias = has_bias;
    if (has_norm)
        net->n_bn++;
    return net->n_layers++;
}

static int add_conv(ic_pdl *net, const char *name, int cin, int cout, int k, int stride, int dil,
                    int relu)
{
    return add_layer(net, name, cin, cout, k, stride, dil, 1, 1, relu, 0);
}

/* Regular conv unit or depthwise-separable unit named `name`. */
static int add_unit(ic_pdl *net, unit *u, const char *name, int cin, int cout, int k, int dil, int ds)
{
    char buf[NAME_LEN];
    if (!ds) {
        u->b = -1;
        return (u->a = add_conv(net, name, cin, cout, k, 1, dil, 1)) < 0 ? u->a : 0;
    }
    snprintf(buf, sizeof buf, "%s.depthwise", name);
    if ((u->a = add_layer(net, buf, cin, cin, k, 1, dil, cin, 1, 1, 0)) < 0)
        return u->a;
    snprintf(buf, sizeof buf, "%s.pointwise", name);
    return (u->b = add_conv(net, buf, cin, cout, 1, 1, 1, 1)) < 0 ? u->b : 0;
}

static int build_decoder(ic_pdl *net, decoder *d, const char *h, const ic_pdl_head_config *hc,
                         const int feat_c[3])
{
    char name[NAME_LEN];
    int a = hc->aspp_channels, c5 = feat_c[2];
    snprintf(name, sizeof name, "%s.decoder.res5.project_conv.convs.0", h);
    CHECK(add_unit(net, &d->top.branch[0], name, c5, a, 1, 1, 0));
    for (int k = 1; k <= 3; k++) {
        snprintf(name, sizeof name, "%s.decoder.res5.project_conv.convs.%d", h, k);
        CHECK(add_unit(net, &d->top.branch[k], name, c5, a, 3, hc->aspp_dilations[k - 1], hc->dsconv));
    }
    snprintf(name, sizeof name, "%s.decoder.res5.project_conv.convs.4.1", h);
    CHECK(d->top.pool_conv = add_layer(net, name, c5, a, 1, 1, 1, 1, 0, 1, 1));
    snprintf(name, sizeof name, "%s.decoder.res5.project_conv.project", h);
    CHECK(d->top.project = add_conv(net, name, 5 * a, a, 1, 1, 1, 1));
    d->top.pool_global = hc->aspp_pool_global;
    d->top.pool_k[0] = hc->aspp_pool_kernel[0];
    d->top.pool_k[1] = hc->aspp_pool_kernel[1];
    static const char *const feat[2] = {"res2", "res3"};
    for (int i = 0; i < 2; i++) {
        snprintf(name, sizeof name, "%s.decoder.%s.project_conv", h, feat[i]);
        CHECK(d->proj[i] = add_conv(net, name, feat_c[i], hc->project_channels[i], 1, 1, 1, 1));
        int cin = hc->project_channels[i] + hc->decoder_channels[i + 1], cout = hc->decoder_channels[i];
        if (hc->dsconv) {
            snprintf(name, sizeof name, "%s.decoder.%s.fuse_conv", h, feat[i]);
            CHECK(add_unit(net, &d->fuse[i][0], name, cin, cout, 5, 1, 1));
            d->n_fuse = 1;
        } else {
            snprintf(name, sizeof name, "%s.decoder.%s.fuse_conv.0", h, feat[i]);
            CHECK(add_unit(net, &d->fuse[i][0], name, cin, cout, 3, 1, 0));
            snprintf(name, sizeof name, "%s.decoder.%s.fuse_conv.1", h, feat[i]);
            CHECK(add_unit(net, &d->fuse[i][1], name, cout, cout, 3, 1, 0));
            d->n_fuse = 2;
        }
    }
    return 0;
}

/* Head convs: regular 3x3 pair (c0 -> c0 -> hc) or one 5x5 DS unit (c0 -> hc). */
static int build_head(ic_pdl *net, unit u[2], int *n, const char *name, int c0, int hc, int ds)
{
    char buf[NAME_LEN];
    if (ds) {
        *n = 1;
        return add_unit(net, &u[0], name, c0, hc, 5, 1, 1);
    }
    *n = 2;
    snprintf(buf, sizeof buf, "%s.0", name);
    CHECK(add_unit(net, &u[0], buf, c0, c0, 3, 1, 0));
    snprintf(buf, sizeof buf, "%s.1", name);
    return add_unit(net, &u[1], buf, c0, hc, 3, 1, 0);
}

int pdl_build(ic_pdl *net)
{
    const ic_pdl_config *cfg = &net->cfg;
    char name[NAME_LEN];
    int prev = 3;
    for (int i = 0; i < 3; i++) {
        snprintf(name, sizeof name, "backbone.stem.conv%d", i + 1);
        CHECK(net->stem[i] = add_conv(net, name, prev, cfg->stem_channels[i], 3, i == 0 ? 2 : 1, 1, 1));
        prev = cfg->stem_channels[i];
    }
    ic_pdl_stage st[4];
    ic_pdl_config_stages(cfg, st);
    int total = 0;
    for (int s = 0; s < 4; s++)
        total += st[s].blocks;
    net->blocks = ic_calloc((size_t)total, sizeof *net->blocks);
    if (!net->blocks)
        return ic_error_set(IC_ENOMEM, "model: no memory");
    static const char *const stage_names[4] = {"res2", "res3", "res4", "res5"};
    for (int s = 0; s < 4; s++) {
        net->stage_first[s] = net->n_blocks;
        net->stage_len[s] = st[s].blocks;
        for (int b = 0; b < st[s].blocks; b++) {
            block *bl = &net->blocks[net->n_blocks++];
            int cin = b == 0 ? st[s].cin : st[s].cout, stride = b == 0 ? st[s].stride : 1;
            int dil = st[s].dilation[b];
            bl->shortcut = -1;
            if (cin != st[s].cout) {
                snprintf(name, sizeof name, "backbone.%s.%d.shortcut", stage_names[s], b);
                CHECK(bl->shortcut = add_conv(net, name, cin, st[s].cout, 1, stride, 1, 0));
            }
            snprintf(name, sizeof name, "backbone.%s.%d.conv1", stage_names[s], b);
            CHECK(bl->conv1 = add_conv(net, name, cin, st[s].bottleneck, 1, 1, 1, 1));
            snprintf(name, sizeof name, "backbone.%s.%d.conv2", stage_names[s], b);
            CHECK(bl->conv2 = add_conv(net, name, st[s].bottleneck, st[s].bottleneck, 3, stride, dil, 1));
            snprintf(name, sizeof name, "backbone.%s.%d.conv3", stage_names[s], b);
            CHECK(bl->conv3 = add_conv(net, name, st[s].bottleneck, st[s].cout, 1, 1, 1, 0));
        }
    }
    int feat_c[3] = {st[0].cout, st[1].cout, st[3].cout};
    CHECK(build_decoder(net, &net->dec[0], "sem_seg_head", &cfg->sem, feat_c));
    CHECK(build_decoder(net, &net->dec[1], "ins_embed_head", &cfg->ins, feat_c));
    CHECK(build_head(net, net->sem_head, &net->n_sem_head, "sem_seg_head.head",
                     cfg->sem.decoder_channels[0], cfg->sem.head_channels, cfg->sem.dsconv));
    CHECK(net->sem_pred = add_layer(net, "sem_seg_head.predictor", cfg->sem.head_channels,
                                    cfg->num_classes, 1, 1, 1, 1, 0, 0, 1));
    int n_center;
    CHECK(build_head(net, net->center_head, &n_center, "ins_embed_head.center_head",
                     cfg->ins.decoder_channels[0], cfg->ins.center_head_channels, 0));
    CHECK(net->center_pred = add_layer(net, "ins_embed_head.center_predictor",
                                       cfg->ins.center_head_channels, 1, 1, 1, 1, 1, 0, 0, 1));
    CHECK(build_head(net, net->offset_head, &net->n_offset_head, "ins_embed_head.offset_head",
                     cfg->ins.decoder_channels[0], cfg->ins.offset_head_channels, cfg->ins.dsconv));
    CHECK(net->offset_pred = add_layer(net, "ins_embed_head.offset_predictor",
                                       cfg->ins.offset_head_channels, 2, 1, 1, 1, 1, 0, 0, 1));
    return 0;
}

/* ---------------------------------------------------------------- weights */

typedef struct binder {
    const ic_safetensors *st;
    float eps; /* BN epsilon of the config */
    unsigned char *used; /* per tensor index in the file */
    int missing;
    char first_missing[NAME_LEN + 32];
} binder;

static const ic_st_tensor *find_used(binder *bd, const char *name)
{
    for (size_t i = 0; i < ic_st_count(bd->st); i++) {
        const ic_st_tensor *t = ic_st_get(bd->st, i);
        if (!strcmp(t->name, name)) {
            bd->used[i] = 1;
            return t;
        }
    }
    return NULL;
}

static void shape_str(char *buf, size_t len, int nd, const int64_t *shape)
{
    size_t o = (size_t)snprintf(buf, len, "[");
    for (int i = 0; i < nd && o < len; i++)
        o += (size_t)snprintf(buf + o, len - o, i ? ", %lld" : "%lld", (long long)shape[i]);
    if (o < len)
        snprintf(buf + o, len - o, "]");
}

/* Binds `prefix.suffix` with the expected shape; missing ones are counted. */
static int bind(binder *bd, const float **out, const char *prefix, const char *suffix, int nd,
                const int64_t *shape)
{
    char name[NAME_LEN + 32];
    snprintf(name, sizeof name, "%s%s", prefix, suffix);
    const ic_st_tensor *t = find_used(bd, name);
    if (!t) {
        if (!bd->missing++)
            snprintf(bd->first_missing, sizeof bd->first_missing, "%s", name);
        return 0;
    }
    int ok = t->ndim == nd && t->f32 != NULL;
    for (int i = 0; ok && i < nd; i++)
        ok = t->shape[i] == shape[i];
    if (!ok) {
        char got[96], want[96];
        shape_str(got, sizeof got, t->ndim, t->shape);
        shape_str(want, sizeof want, nd, shape);
        return ic_error_set(IC_ESHAPE, "model: tensor '%s' has shape %s%s, expected %s", name, got,
                            t->f32 ? "" : " (not a float dtype)", want);
    }
    *out = t->f32;
    return 0;
}

static int bind_layer(binder *bd, layer *l)
{
    const ic_conv2d_params *p = &l->p;
    int64_t wshape[4] = {p->cout, p->cin / p->groups, p->kh, p->kw}, c[1] = {p->cout};
    CHECK(bind(bd, &l->w, l->name, ".weight", 4, wshape));
    if (l->has_bias)
        CHECK(bind(bd, &l->b, l->name, ".bias", 1, c));
    if (!l->has_norm)
        return 0;
    char norm[NAME_LEN + 8];
    snprintf(norm, sizeof norm, "%s.norm", l->name);
    l->bn.c = p->cout;
    l->bn.eps = bd->eps;
    CHECK(bind(bd, &l->bn.gamma, norm, ".weight", 1, c));
    CHECK(bind(bd, &l->bn.beta, norm, ".bias", 1, c));
    CHECK(bind(bd, &l->bn.mean, norm, ".running_mean", 1, c));
    CHECK(bind(bd, &l->bn.var, norm, ".running_var", 1, c));
    l->cal.c = p->cout;
    return 0;
}

/* Optional calibration tensors: all or none of each kind. Returns 1 when
 * the model has the kind, 0 when it has none, negative on a partial set. */
static int bind_calib(ic_pdl *net, binder *bd, int kind)
{
    int present = 0, absent = 0;
    char first_absent[NAME_LEN + 48] = "";
    for (int i = 0; i < net->n_layers; i++) {
        layer *l = &net->layers[i];
        if (!l->has_norm)
            continue;
        char pre[NAME_LEN + 32];
        int c = l->p.cout, K = net->cshape.num_basis, H = net->cshape.hidden;
        int64_t sc[1] = {c}, sb[2] = {K, c}, s1[2] = {H, 2 * c}, sh[1] = {H}, s2[2] = {K, H},
                sk[1] = {K};
        binder probe = *bd;
        probe.missing = 0;
        int64_t s2g[1] = {2};
        if (kind == 0) {
            snprintf(pre, sizeof pre, "%s.norm.calib_", l->name);
            CHECK(bind(&probe, &l->cal.u_mean, pre, "mean", 1, sc));
            CHECK(bind(&probe, &l->cal.u_var, pre, "var", 1, sc));
        } else if (kind == 2) {
            snprintf(pre, sizeof pre, "%s.norm.instcal_g.", l->name);
            CHECK(bind(&probe, &l->cal.g.u[0], pre, "mean", 1, sc));
            CHECK(bind(&probe, &l->cal.g.u[1], pre, "var", 1, sc));
            CHECK(bind(&probe, &l->cal.g.gate, pre, "gate", 1, s2g));
        } else {
            static const char *const nets[2] = {"mean_net", "var_net"};
            static const char *const bases[2] = {"basis_mean", "basis_var"};
            ic_calib_c_layer *cc = &l->cal.cc;
            for (int s = 0; s < 2; s++) {
                snprintf(pre, sizeof pre, "%s.norm.instcal_c.", l->name);
                CHECK(bind(&probe, &cc->basis[s], pre, bases[s], 2, sb));
                snprintf(pre, sizeof pre, "%s.norm.instcal_c.%s.", l->name, nets[s]);
                CHECK(bind(&probe, &cc->fc1_w[s], pre, "fc1.weight", 2, s1));
                CHECK(bind(&probe, &cc->fc1_b[s], pre, "fc1.bias", 1, sh));
                CHECK(bind(&probe, &cc->fc2_w[s], pre, "fc2.weight", 2, s2));
                CHECK(bind(&probe, &cc->fc2_b[s], pre, "fc2.bias", 1, sk));
            }
        }
        int expected = kind == 0 ? 2 : kind == 2 ? 3 : 10;
        if (probe.missing == expected) {
            absent++;
            if (!first_absent[0])
                snprintf(first_absent, sizeof first_absent, "%s", probe.first_missing);
        } else if (probe.missing == 0) {
            present++;
        } else {
            return ic_error_set(IC_ENOTFOUND, "model: calibration tensor '%s' is missing",
                                probe.first_missing);
        }
    }
    if (present && absent)
        return ic_error_set(IC_ENOTFOUND, "model: calibration tensor '%s' is missing (other layers "
                                          "have theirs)", first_absent);
    return present > 0;
}

int pdl_fold_all(ic_pdl *net)
{
    for (int i = 0; i < net->n_layers; i++) {
        layer *l = &net->layers[i];
        if (!l->has_norm)
            continue;
        size_t per = (size_t)(l->p.cin / l->p.groups) * (size_t)l->p.kh * (size_t)l->p.kw;
        if (!l->wf)
            l->wf = ic_malloc_aligned(per * (size_t)l->p.cout * sizeof(float));
        if (!l->bf)
            l->bf = ic_malloc_aligned((size_t)l->p.cout * sizeof(float));
        if (!l->wf || !l->bf)
            return ic_error_set(IC_ENOMEM, "model: no memory to fold BN of %s", l->name);
        CHECK(ic_bn_fold(l->wf, l->bf, l->w, NULL, &l->bn, l->p.cout, per));
    }
    return 0;
}

/* Reads the config (file or the weights' metadata) and keeps its text, so a
 * trained copy can be saved with the same config. */
static int load_config(ic_pdl *net, const char *config_path)
{
    const char *text = NULL;
    char *file_text = NULL;
    if (config_path) {
        FILE *f = fopen(config_path, "rb");
        if (!f)
            return ic_error_set(IC_EIO, "config: cannot open %s", config_path);
        size_t cap = 1 << 16, len = 0;
        file_text = ic_malloc(cap + 1);
        while (file_text && len < cap) {
            size_t got = fread(file_text + len, 1, cap - len, f);
            if (!got)
                break;
            len += got;
        }
        fclose(f);
        if (!file_text)
            return ic_error_set(IC_ENOMEM, "config: no memory");
        if (len == cap) {
            ic_free(file_text);
            return ic_error_set(IC_EFORMAT, "config: %s is larger than 64 KiB", config_path);
        }
        file_text[len] = '\0';
        text = file_text;
    } else {
        text = ic_st_metadata(net->st, "config");
        if (!text)
            return ic_error_set(IC_ENOTFOUND,
                                "model: the weights carry no __metadata__ config; give a config file");
    }
    int rc = ic_pdl_config_parse(&net->cfg, text, strlen(text));
    if (!rc) {
        net->config_json = ic_malloc(strlen(text) + 1);
        if (net->config_json)
            strcpy(net->config_json, text);
        else
            rc = ic_error_set(IC_ENOMEM, "config: no memory");
    }
    ic_free(file_text);
    return rc;
}

int ic_pdl_load(ic_pdl **ret, const char *weights_path, const char *config_path)
{
    ic_pdl *net = ic_calloc(1, sizeof *net);
    if (!net)
        return ic_error_set(IC_ENOMEM, "model: no memory");
    int rc = ic_st_open(&net->st, weights_path);
    if (!rc)
        rc = load_config(net, config_path);
    if (!rc)
        rc = pdl_build(net);
    binder bd = {.st = net->st};
    if (!rc) {
        net->cshape = (ic_calib_c_shape){.num_basis = net->cfg.c_num_basis,
                                         .hidden = net->cfg.c_hidden,
                                         .prior = net->cfg.c_prior,
                                         .clamp_eps = net->cfg.clamp_eps};
        bd.eps = net->cfg.bn_eps;
        bd.used = ic_calloc(ic_st_count(net->st) + 1, 1);
        if (!bd.used)
            rc = ic_error_set(IC_ENOMEM, "model: no memory");
    }
    for (int i = 0; !rc && i < net->n_layers; i++)
        rc = bind_layer(&bd, &net->layers[i]);
    if (!rc && bd.missing)
        rc = ic_error_set(IC_ENOTFOUND, "model: %d expected tensor%s missing, first '%s'", bd.missing,
                          bd.missing > 1 ? "s are" : " is", bd.first_missing);
    if (!rc) {
        rc = bind_calib(net, &bd, 0);
        if (rc >= 0) {
            net->has_u = rc;
            rc = bind_calib(net, &bd, 1);
            if (rc >= 0) {
                net->has_c = rc;
                rc = bind_calib(net, &bd, 2);
            }
            if (rc >= 0) {
                net->has_g = rc;
                rc = 0;
            }
        }
    }
    for (size_t i = 0; !rc && i < ic_st_count(net->st); i++) {
        const ic_st_tensor *t = ic_st_get(net->st, i);
        size_t nl = strlen(t->name);
        static const char nbt[] = ".num_batches_tracked";
        int ignorable = (nl >= sizeof nbt - 1 && !strcmp(t->name + nl - (sizeof nbt - 1), nbt)) ||
                        !strcmp(t->name, "pixel_mean") || !strcmp(t->name, "pixel_std");
        if (!bd.used[i] && !ignorable)
            rc = ic_error_set(IC_EFORMAT, "model: unexpected tensor '%s' (not part of config '%s')",
                              t->name, net->cfg.name);
    }
    ic_free(bd.used);
    if (!rc) {
        /* packing folds BN for nchw; the blocked engines never need the
         * folded copy, so it is never made (peak RSS at load) */
        net->engine = ic_pdl_engine_default();
        rc = pdl_engine_pack(net);
        if (rc == IC_EUNSUPPORTED) { /* a layer the blocked engine cannot run: stay on nchw */
            ic_error_clear();
            rc = 0;
        }
    }
    if (rc) {
        char msg[512];
        snprintf(msg, sizeof msg, "%s", ic_error_message());
        ic_pdl_free(&net);
        return ic_error_set(rc, "%s", msg);
    }
    *ret = net;
    return 0;
}

void ic_pdl_free(ic_pdl **pnet)
{
    if (!pnet || !*pnet)
        return;
    ic_pdl *net = *pnet;
    pdl_engine_free(net);
    for (int i = 0; i < net->n_layers; i++) {
        ic_free_aligned(net->layers[i].wf);
        ic_free_aligned(net->layers[i].bf);
    }
    pdl_train_state *t = net->train;
    if (t) {
        for (int i = 0; i < t->n_owned; i++)
            ic_free_aligned(t->owned[i]);
        ic_free(t->owned);
        ic_free(t->lt);
        ic_free(t->params);
        ic_free(t);
    }
    ic_free(net->config_json);
    ic_free(net->layers);
    ic_free(net->blocks);
    ic_st_close(&net->st);
    ic_free(net);
    *pnet = NULL;
}

const ic_pdl_config *ic_pdl_get_config(const ic_pdl *net)
{
    return &net->cfg;
}

int ic_pdl_supports(const ic_pdl *net, ic_calib_mode mode)
{
    switch (mode) {
    case IC_CALIB_INSTCAL_U:
        return net->has_u;
    case IC_CALIB_INSTCAL_C:
        return net->has_c;
    case IC_CALIB_INSTCAL_G:
    case IC_CALIB_INSTCAL_E: /* an ensemble of instcal-g and tbn forwards */
        return net->has_g;
    case IC_CALIB_TENT:
        return 0; /* not a forward of this network: a strategy of core/adapt */
    default:
        return (unsigned)mode < IC_CALIB_COUNT;
    }
}

int ic_pdl_bn_count(const ic_pdl *net)
{
    return net->n_bn;
}
