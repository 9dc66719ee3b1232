/* Trainable storage, initialisation, calibration tensors and saving of a
 * Panoptic-DeepLab (see pdl_train.h). */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "base/alloc.h"
#include "base/err.h"
#include "base/rng.h"
#include "io/safetensors.h"
#include "model/pdl_internal.h"

/* An owned, 64-byte aligned copy of src (zeros when src is NULL). */
static float *own(ic_pdl *net, const float *src, size_t n)
{
    if (net->train->n_owned == net->train->cap_owned) {
        int cap = net->train->cap_owned ? 2 * net->train->cap_owned : 256;
        void **no = ic_realloc(net->train->owned, (size_t)cap * sizeof *no);
        if (!no)
            return NULL;
        net->train->owned = no;
        net->train->cap_owned = cap;
    }
    float *p = ic_malloc_aligned((n ? n : 1) * sizeof(float));
    if (!p)
        return NULL;
    if (src)
        memcpy(p, src, n * sizeof(float));
    else
        memset(p, 0, n * sizeof(float));
    net->train->owned[net->train->n_owned++] = p;
    return p;
}

static size_t weight_count(const layer *l)
{
    return (size_t)l->p.cout * (size_t)(l->p.cin / l->p.groups) * (size_t)l->p.kh * (size_t)l->p.kw;
}

static int add_param(ic_pdl *net, int *cap, const char *prefix, const char *suffix, float *data,
                     float *grad, int ndim, const int64_t *shape, ic_param_kind kind)
{
    if (net->train->n_params == *cap) {
        int nc = *cap ? 2 * *cap : 512;
        ic_param *np = ic_realloc(net->train->params, (size_t)nc * sizeof *np);
        if (!np)
            return ic_error_set(IC_ENOMEM, "model: no memory for the parameter list");
        net->train->params = np;
        *cap = nc;
    }
    ic_param *p = &net->train->params[net->train->n_params++];
    memset(p, 0, sizeof *p);
    snprintf(p->name, sizeof p->name, "%s%s", prefix, suffix);
    p->data = data;
    p->grad = grad;
    p->ndim = ndim;
    p->n = 1;
    for (int i = 0; i < ndim; i++) {
        p->shape[i] = shape[i];
        p->n *= (size_t)shape[i];
    }
    p->kind = kind;
    return 0;
}

/* Rebuilds net->train->params from the layers' training storage, in layer order
 * (weights, bias, BN, then calibration tensors). */
static int rebuild_params(ic_pdl *net)
{
    ic_free(net->train->params);
    net->train->params = NULL;
    net->train->n_params = 0;
    int cap = 0;
    int K = net->cshape.num_basis, H = net->cshape.hidden;
    for (int i = 0; i < net->n_layers; i++) {
        const layer *l = &net->layers[i];
        layer_train *t = &net->train->lt[i];
        int64_t c = l->p.cout, ws[4] = {c, l->p.cin / l->p.groups, l->p.kh, l->p.kw};
        char norm[NAME_LEN + 8];
        snprintf(norm, sizeof norm, "%s.norm", l->name);
        CHECK(add_param(net, &cap, l->name, ".weight", t->w, t->dw, 4, ws, IC_PARAM_WEIGHT));
        if (l->has_bias)
            CHECK(add_param(net, &cap, l->name, ".bias", t->b, t->db, 1, &c, IC_PARAM_WEIGHT));
        if (!l->has_norm)
            continue;
        CHECK(add_param(net, &cap, norm, ".weight", t->gamma, t->dgamma, 1, &c, IC_PARAM_BN_AFFINE));
        CHECK(add_param(net, &cap, norm, ".bias", t->beta, t->dbeta, 1, &c, IC_PARAM_BN_AFFINE));
        CHECK(add_param(net, &cap, norm, ".running_mean", t->mean, NULL, 1, &c, IC_PARAM_BN_STAT));
        CHECK(add_param(net, &cap, norm, ".running_var", t->var, NULL, 1, &c, IC_PARAM_BN_STAT));
        if (t->u[0]) {
            CHECK(add_param(net, &cap, norm, ".calib_mean", t->u[0], t->du[0], 1, &c, IC_PARAM_CALIB_U));
            CHECK(add_param(net, &cap, norm, ".calib_var", t->u[1], t->du[1], 1, &c, IC_PARAM_CALIB_U));
        }
        if (t->basis[0]) {
            static const char *const bases[2] = {".instcal_c.basis_mean", ".instcal_c.basis_var"};
            static const char *const nets[2] = {".instcal_c.mean_net", ".instcal_c.var_net"};
            int64_t sb[2] = {K, c}, s1[2] = {H, 2 * c}, sh[1] = {H}, s2[2] = {K, H}, sk[1] = {K};
            for (int s = 0; s < 2; s++)
                CHECK(add_param(net, &cap, norm, bases[s], t->basis[s], t->dbasis[s], 2, sb,
                                IC_PARAM_CALIB_C));
            for (int s = 0; s < 2; s++) {
                char pre[NAME_LEN + 48];
                snprintf(pre, sizeof pre, "%s%s", norm, nets[s]);
                CHECK(add_param(net, &cap, pre, ".fc1.weight", t->fc1_w[s], t->dfc1_w[s], 2, s1,
                                IC_PARAM_CALIB_C));
                CHECK(add_param(net, &cap, pre, ".fc1.bias", t->fc1_b[s], t->dfc1_b[s], 1, sh,
                                IC_PARAM_CALIB_C));
                CHECK(add_param(net, &cap, pre, ".fc2.weight", t->fc2_w[s], t->dfc2_w[s], 2, s2,
                                IC_PARAM_CALIB_C));
                CHECK(add_param(net, &cap, pre, ".fc2.bias", t->fc2_b[s], t->dfc2_b[s], 1, sk,
                                IC_PARAM_CALIB_C));
            }
        }
        if (t->gu[0]) {
            int64_t s2[1] = {2};
            CHECK(add_param(net, &cap, norm, ".instcal_g.mean", t->gu[0], t->dgu[0], 1, &c,
                            IC_PARAM_CALIB_G));
            CHECK(add_param(net, &cap, norm, ".instcal_g.var", t->gu[1], t->dgu[1], 1, &c,
                            IC_PARAM_CALIB_G));
            CHECK(add_param(net, &cap, norm, ".instcal_g.gate", t->gate, t->dgate, 1, s2,
                            IC_PARAM_CALIB_G_GATE));
        }
    }
    return 0;
}

#define OWN(dst, src, n)                                              \
    do {                                                              \
        if (!((dst) = own(net, (src), (n))))                          \
            return ic_error_set(IC_ENOMEM, "model: no memory to train"); \
    } while (0)

/* Gives one layer writable storage (copied from what it reads now) and gradients. */
static int make_layer_trainable(ic_pdl *net, int i)
{
    layer *l = &net->layers[i];
    layer_train *t = &net->train->lt[i];
    size_t nw = weight_count(l), c = (size_t)l->p.cout;
    OWN(t->w, l->w, nw);
    OWN(t->dw, NULL, nw);
    l->w = t->w;
    if (l->has_bias) {
        OWN(t->b, l->b, c);
        OWN(t->db, NULL, c);
        l->b = t->b;
    }
    if (!l->has_norm)
        return 0;
    OWN(t->gamma, l->bn.gamma, c);
    OWN(t->beta, l->bn.beta, c);
    OWN(t->mean, l->bn.mean, c);
    OWN(t->var, l->bn.var, c);
    OWN(t->dgamma, NULL, c);
    OWN(t->dbeta, NULL, c);
    l->bn.gamma = t->gamma;
    l->bn.beta = t->beta;
    l->bn.mean = t->mean;
    l->bn.var = t->var;
    if (l->cal.u_mean) {
        OWN(t->u[0], l->cal.u_mean, c);
        OWN(t->u[1], l->cal.u_var, c);
        OWN(t->du[0], NULL, c);
        OWN(t->du[1], NULL, c);
        l->cal.u_mean = t->u[0];
        l->cal.u_var = t->u[1];
    }
    if (l->cal.cc.basis[0]) {
        size_t K = (size_t)net->cshape.num_basis, H = (size_t)net->cshape.hidden;
        ic_calib_c_layer *cc = &l->cal.cc;
        for (int s = 0; s < 2; s++) {
            OWN(t->basis[s], cc->basis[s], K * c);
            OWN(t->fc1_w[s], cc->fc1_w[s], H * 2 * c);
            OWN(t->fc1_b[s], cc->fc1_b[s], H);
            OWN(t->fc2_w[s], cc->fc2_w[s], K * H);
            OWN(t->fc2_b[s], cc->fc2_b[s], K);
            OWN(t->dbasis[s], NULL, K * c);
            OWN(t->dfc1_w[s], NULL, H * 2 * c);
            OWN(t->dfc1_b[s], NULL, H);
            OWN(t->dfc2_w[s], NULL, K * H);
            OWN(t->dfc2_b[s], NULL, K);
            cc->basis[s] = t->basis[s];
            cc->fc1_w[s] = t->fc1_w[s];
            cc->fc1_b[s] = t->fc1_b[s];
            cc->fc2_w[s] = t->fc2_w[s];
            cc->fc2_b[s] = t->fc2_b[s];
        }
    }
    if (l->cal.g.u[0]) {
        ic_calib_g_layer *g = &l->cal.g;
        for (int s = 0; s < 2; s++) {
            OWN(t->gu[s], g->u[s], c);
            OWN(t->dgu[s], NULL, c);
            g->u[s] = t->gu[s];
        }
        OWN(t->gate, g->gate, 2);
        OWN(t->dgate, NULL, 2);
        g->gate = t->gate;
    }
    return 0;
}

int ic_pdl_make_trainable(ic_pdl *net)
{
    if (net->train)
        return 0;
    pdl_train_state *t = ic_calloc(1, sizeof *t);
    layer_train *lt = ic_calloc((size_t)net->n_layers, sizeof *lt);
    if (!t || !lt) {
        ic_free(t);
        ic_free(lt);
        return ic_error_set(IC_ENOMEM, "model: no memory to train");
    }
    t->lt = lt;
    net->train = t;
    for (int i = 0; i < net->n_layers; i++)
        CHECK(make_layer_trainable(net, i));
    CHECK(rebuild_params(net));
    /* training changes the weights: back to nchw (folded again from the
     * trainable copy if a blocked engine had freed the folded weights)
     * until a refold repacks */
    net->engine = IC_PDL_ENGINE_NCHW;
    return pdl_engine_pack(net);
}

static void fill_normal(ic_rng *r, float *p, size_t n, double std)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (float)(std * ic_rng_normal(r));
}

static void fill_uniform(ic_rng *r, float *p, size_t n, double bound)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (float)(bound * (2.0 * ic_rng_uniform(r) - 1.0));
}

/* detectron2's initialisers: c2_msra_fill = kaiming_normal(fan_out, relu)
 * for the backbone and depthwise-separable convs, c2_xavier_fill =
 * kaiming_uniform(a=1) for the other decoder/head convs, N(0, 0.001) for the
 * predictors; biases 0; BN gamma 1, beta 0, running mean 0, var 1. */
static void init_layer(ic_pdl *net, int i, ic_rng *r)
{
    const layer *l = &net->layers[i];
    layer_train *t = &net->train->lt[i];
    size_t nw = weight_count(l), c = (size_t)l->p.cout;
    size_t rf = (size_t)l->p.kh * (size_t)l->p.kw;
    double fan_out = (double)c * (double)rf, fan_in = (double)(l->p.cin / l->p.groups) * (double)rf;
    if (strstr(l->name, "predictor"))
        fill_normal(r, t->w, nw, 0.001);
    else if (!strncmp(l->name, "backbone.", 9) || strstr(l->name, ".depthwise") ||
             strstr(l->name, ".pointwise"))
        fill_normal(r, t->w, nw, sqrt(2.0 / fan_out));
    else
        fill_uniform(r, t->w, nw, sqrt(3.0 / fan_in));
    if (t->b)
        memset(t->b, 0, c * sizeof(float));
    if (l->has_norm)
        for (size_t k = 0; k < c; k++) {
            t->gamma[k] = 1.0f;
            t->beta[k] = 0.0f;
            t->mean[k] = 0.0f;
            t->var[k] = 1.0f;
        }
}

int ic_pdl_create(ic_pdl **ret, const ic_pdl_config *cfg, const char *config_json, uint64_t seed)
{
    if (!cfg || !config_json)
        return ic_error_set(IC_EINVAL, "create: config and its text are required");
    ic_pdl *net = ic_calloc(1, sizeof *net);
    if (!net)
        return ic_error_set(IC_ENOMEM, "model: no memory");
    net->cfg = *cfg;
    net->cshape = (ic_calib_c_shape){.num_basis = cfg->c_num_basis,
                                     .hidden = cfg->c_hidden,
                                     .prior = cfg->c_prior,
                                     .clamp_eps = cfg->clamp_eps};
    int rc = 0;
    net->config_json = ic_malloc(strlen(config_json) + 1);
    if (!net->config_json)
        rc = ic_error_set(IC_ENOMEM, "model: no memory");
    else
        strcpy(net->config_json, config_json);
    if (!rc)
        rc = pdl_build(net);
    for (int i = 0; !rc && i < net->n_layers; i++) {
        layer *l = &net->layers[i];
        l->bn.c = l->p.cout;
        l->bn.eps = cfg->bn_eps;
        l->cal.c = l->p.cout;
    }
    if (!rc)
        rc = ic_pdl_make_trainable(net);
    if (!rc) {
        ic_rng r;
        ic_rng_seed(&r, seed);
        for (int i = 0; i < net->n_layers; i++)
            init_layer(net, i, &r);
        rc = pdl_fold_all(net);
    }
    if (rc) {
        char msg[400];
        snprintf(msg, sizeof msg, "%s", ic_error_message());
        ic_pdl_free(&net);
        return ic_error_set(rc, "%s", msg);
    }
    *ret = net;
    return 0;
}

int ic_pdl_add_calibration(ic_pdl *net, ic_calib_mode mode, float u_init, uint64_t seed)
{
    if (!net->train)
        return ic_error_set(IC_EINVAL, "add_calibration: the model is not trainable");
    if (mode != IC_CALIB_INSTCAL_U && mode != IC_CALIB_INSTCAL_C && mode != IC_CALIB_INSTCAL_G)
        return ic_error_set(IC_EINVAL,
                            "add_calibration: mode must be instcal-u, instcal-c or instcal-g");
    ic_rng r;
    ic_rng_seed(&r, seed);
    size_t K = (size_t)net->cshape.num_basis, H = (size_t)net->cshape.hidden;
    for (int i = 0; i < net->n_layers; i++) {
        layer *l = &net->layers[i];
        layer_train *t = &net->train->lt[i];
        size_t c = (size_t)l->p.cout;
        if (!l->has_norm)
            continue;
        if (mode == IC_CALIB_INSTCAL_G) {
            for (int s = 0; s < 2; s++) {
                OWN(t->gu[s], NULL, c);
                OWN(t->dgu[s], NULL, c);
                for (size_t k = 0; k < c; k++)
                    t->gu[s][k] = u_init;
                l->cal.g.u[s] = t->gu[s];
            }
            OWN(t->gate, NULL, 2);
            OWN(t->dgate, NULL, 2);
            /* closed until ic_pdl_fit_gate(): slope 1, threshold log(1) = 0 */
            t->gate[0] = 1.0f;
            t->gate[1] = 0.0f;
            l->cal.g.gate = t->gate;
            continue;
        }
        if (mode == IC_CALIB_INSTCAL_U) {
            for (int s = 0; s < 2; s++) {
                OWN(t->u[s], NULL, c);
                OWN(t->du[s], NULL, c);
                for (size_t k = 0; k < c; k++)
                    t->u[s][k] = u_init;
            }
            l->cal.u_mean = t->u[0];
            l->cal.u_var = t->u[1];
            continue;
        }
        ic_calib_c_layer *cc = &l->cal.cc;
        for (int s = 0; s < 2; s++) {
            OWN(t->basis[s], NULL, K * c);
            OWN(t->fc1_w[s], NULL, H * 2 * c);
            OWN(t->fc1_b[s], NULL, H);
            OWN(t->fc2_w[s], NULL, K * H);
            OWN(t->fc2_b[s], NULL, K);
            OWN(t->dbasis[s], NULL, K * c);
            OWN(t->dfc1_w[s], NULL, H * 2 * c);
            OWN(t->dfc1_b[s], NULL, H);
            OWN(t->dfc2_w[s], NULL, K * H);
            OWN(t->dfc2_b[s], NULL, K);
            fill_normal(&r, t->basis[s], K * c, 0.05);
            fill_normal(&r, t->fc1_w[s], H * 2 * c, 0.01);
            fill_normal(&r, t->fc2_w[s], K * H, 0.01);
            cc->basis[s] = t->basis[s];
            cc->fc1_w[s] = t->fc1_w[s];
            cc->fc1_b[s] = t->fc1_b[s];
            cc->fc2_w[s] = t->fc2_w[s];
            cc->fc2_b[s] = t->fc2_b[s];
        }
    }
    if (mode == IC_CALIB_INSTCAL_U)
        net->has_u = 1;
    else if (mode == IC_CALIB_INSTCAL_C)
        net->has_c = 1;
    else
        net->has_g = 1;
    return rebuild_params(net);
}

int ic_pdl_fit_gate(ic_pdl *net, const ic_tensor *x, float slope, float margin)
{
    if (!net->train || !net->has_g)
        return ic_error_set(IC_EINVAL, "fit_gate: the model is not trainable or has no InstCal-G");
    if (!(slope > 0.0f && slope < 1e3f) || !(margin > -1e3f && margin < 1e3f) || !x || x->n < 1)
        return ic_error_set(IC_EINVAL, "fit_gate: need slope in (0, 1e3), a finite margin and images");
    double *sum = ic_calloc((size_t)net->n_layers * 2, sizeof *sum);
    if (!sum)
        return ic_error_set(IC_ENOMEM, "fit_gate: no memory");
    double *sq = sum + net->n_layers;
    ic_arena a;
    ic_arena_init(&a, (size_t)16 << 20, 0);
    ic_pdl_train_opts o = {.bn = IC_PDL_BN_CALIBRATED, .calib = {.mode = IC_CALIB_MANUAL, .m = 0}};
    size_t img = (size_t)x->c * x->h * x->w;
    int rc = 0;
    /* one image at a time: the tape of a large batch would not fit */
    for (int i = 0; i < x->n && !rc; i++) {
        ic_tensor xi = ic_tensor_wrap(x->data + (size_t)i * img, 1, x->c, x->h, x->w);
        ic_pdl_tape *tape = NULL;
        ic_pdl_outputs out;
        rc = ic_pdl_forward_train(net, &xi, &o, &a, &tape, &out);
        for (int k = 0; !rc && k < tape->n; k++) {
            const tape_op *op = &tape->ops[k];
            if (op->kind != OP_BN || !op->mean_t)
                continue;
            const layer *l = &net->layers[op->layer];
            double z = ic_calib_g_log_drift(l->p.cout, op->mean_t, op->var_t, l->bn.mean, l->bn.var);
            sum[op->layer] += z;
            sq[op->layer] += z * z;
        }
        ic_arena_reset(&a);
    }
    for (int li = 0; !rc && li < net->n_layers; li++) {
        layer_train *t = &net->train->lt[li];
        if (!net->layers[li].has_norm || !t->gate)
            continue;
        double mean = sum[li] / x->n, var = sq[li] / x->n - mean * mean;
        /* a floor: one image, or a layer whose drift hardly varies */
        double sd = sqrt(var > 0 ? var : 0);
        if (sd < 0.05)
            sd = 0.05;
        t->gate[0] = (float)(slope / sd);
        t->gate[1] = (float)(mean + margin * sd);
    }
    ic_arena_deinit(&a);
    ic_free(sum);
    return rc;
}

int ic_pdl_drop_calibration(ic_pdl *net)
{
    if (!net->train)
        return ic_error_set(IC_EINVAL, "drop_calibration: the model is not trainable");
    for (int i = 0; i < net->n_layers; i++) {
        layer_train *t = &net->train->lt[i];
        int c = net->layers[i].cal.c;
        /* the buffers stay in net->train->owned and go with the model */
        memset(t->u, 0, sizeof t->u);
        memset(t->du, 0, sizeof t->du);
        memset(t->basis, 0, sizeof t->basis);
        memset(t->fc1_w, 0, sizeof t->fc1_w);
        memset(t->fc1_b, 0, sizeof t->fc1_b);
        memset(t->fc2_w, 0, sizeof t->fc2_w);
        memset(t->fc2_b, 0, sizeof t->fc2_b);
        memset(t->dbasis, 0, sizeof t->dbasis);
        memset(t->dfc1_w, 0, sizeof t->dfc1_w);
        memset(t->dfc1_b, 0, sizeof t->dfc1_b);
        memset(t->dfc2_w, 0, sizeof t->dfc2_w);
        memset(t->dfc2_b, 0, sizeof t->dfc2_b);
        memset(t->gu, 0, sizeof t->gu);
        memset(t->dgu, 0, sizeof t->dgu);
        t->gate = t->dgate = NULL;
        memset(&net->layers[i].cal, 0, sizeof net->layers[i].cal);
        net->layers[i].cal.c = c;
    }
    net->has_u = net->has_c = net->has_g = 0;
    return rebuild_params(net);
}

int ic_pdl_set_calib_prior(ic_pdl *net, float prior)
{
    if (!(prior >= 0.0f && prior <= 1.0f))
        return ic_error_set(IC_EINVAL, "InstCal-C prior %g is outside [0, 1]", (double)prior);
    json_error_t jerr;
    json_t *root = json_loads(net->config_json, 0, &jerr);
    if (!root)
        return ic_error_set(IC_EINVAL, "model config text is not JSON: %s", jerr.text);
    json_t *cal = json_object_get(root, "calibration");
    if (!json_is_object(cal)) {
        cal = json_object();
        json_object_set_new(root, "calibration", cal);
    }
    json_t *cc = json_object_get(cal, "instcal_c");
    if (!json_is_object(cc)) {
        cc = json_object();
        json_object_set_new(cal, "instcal_c", cc);
    }
    json_object_set_new(cc, "prior", json_real(prior));
    char *text = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(root);
    if (!text)
        return ic_error_set(IC_ENOMEM, "model: no memory");
    char *copy = ic_malloc(strlen(text) + 1);
    if (!copy) {
        free(text);
        return ic_error_set(IC_ENOMEM, "model: no memory");
    }
    strcpy(copy, text);
    free(text);
    ic_free(net->config_json);
    net->config_json = copy;
    net->cfg.c_prior = prior;
    net->cshape.prior = prior;
    return 0;
}

int ic_pdl_params(ic_pdl *net, ic_param **ret, int *ret_n)
{
    if (!net->train)
        return ic_error_set(IC_EINVAL, "params: the model is not trainable");
    *ret = net->train->params;
    *ret_n = net->train->n_params;
    return 0;
}

void ic_pdl_zero_grad(ic_pdl *net)
{
    for (int i = 0; net->train && i < net->train->n_params; i++)
        if (net->train->params[i].grad)
            memset(net->train->params[i].grad, 0, net->train->params[i].n * sizeof(float));
}

int ic_pdl_refold(ic_pdl *net)
{
    CHECK(pdl_fold_all(net));
    return pdl_engine_pack(net);
}

int ic_pdl_save(const ic_pdl *net, const char *path, const char *const *extra_meta)
{
    if (!net->train)
        return ic_error_set(IC_EINVAL, "save: the model is not trainable (nothing to write)");
    ic_st_writer *w = NULL;
    int rc = ic_st_writer_create(&w);
    for (int i = 0; !rc && i < net->train->n_params; i++) {
        const ic_param *p = &net->train->params[i];
        rc = ic_st_writer_add_f32(w, p->name, p->data, p->ndim, p->shape);
    }
    if (!rc)
        rc = ic_st_writer_set_metadata(w, "config", net->config_json);
    if (!rc)
        rc = ic_st_writer_set_metadata(w, "format", "pt");
    for (int i = 0; !rc && extra_meta && extra_meta[i] && extra_meta[i + 1]; i += 2)
        rc = ic_st_writer_set_metadata(w, extra_meta[i], extra_meta[i + 1]);
    if (!rc)
        rc = ic_st_writer_save(w, path);
    ic_st_writer_destroy(&w);
    return rc;
}
