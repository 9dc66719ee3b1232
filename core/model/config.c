/* Parser of the "instcal-pdl" model configuration (see config.h). */
#include "model/config.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "base/alloc.h"
#include "base/err.h"

/* Looks up `key` in `obj`; a missing key gives `def` when optional. */
static int get_num(json_t *obj, const char *path, const char *key, int required, double def,
                   double *out)
{
    json_t *v = json_object_get(obj, key);
    if (!v) {
        if (required)
            return ic_error_set(IC_EFORMAT, "config: missing %s.%s", path, key);
        *out = def;
        return 0;
    }
    if (!json_is_number(v))
        return ic_error_set(IC_EFORMAT, "config: %s.%s must be a number", path, key);
    *out = json_number_value(v);
    return 0;
}

static int get_int(json_t *obj, const char *path, const char *key, int required, int def, int lo,
                   int hi, int *out)
{
    json_t *v = json_object_get(obj, key);
    if (!v) {
        if (required)
            return ic_error_set(IC_EFORMAT, "config: missing %s.%s", path, key);
        *out = def;
        return 0;
    }
    if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi)
        return ic_error_set(IC_EFORMAT, "config: %s.%s must be an integer in [%d, %d]", path, key,
                            lo, hi);
    *out = (int)json_integer_value(v);
    return 0;
}

static int get_bool(json_t *obj, const char *path, const char *key, int def, int *out)
{
    json_t *v = json_object_get(obj, key);
    if (!v) {
        *out = def;
        return 0;
    }
    if (!json_is_boolean(v))
        return ic_error_set(IC_EFORMAT, "config: %s.%s must be true or false", path, key);
    *out = json_is_true(v);
    return 0;
}

/* Reads an array of exactly n integers in [lo, hi] (n < 0: any length up to
 * -n, count in *count). */
static int get_int_array(json_t *obj, const char *path, const char *key, int n, int lo, int hi,
                         int *out, int *count)
{
    json_t *v = json_object_get(obj, key);
    if (!json_is_array(v))
        return ic_error_set(IC_EFORMAT, "config: %s.%s must be an array", path, key);
    size_t len = json_array_size(v);
    if ((n >= 0 && len != (size_t)n) || (n < 0 && (len == 0 || len > (size_t)-n)))
        return ic_error_set(IC_EFORMAT, "config: %s.%s has %zu entries, expected %d", path, key,
                            len, n >= 0 ? n : -n);
    for (size_t i = 0; i < len; i++) {
        json_t *e = json_array_get(v, i);
        if (!json_is_integer(e) || json_integer_value(e) < lo || json_integer_value(e) > hi)
            return ic_error_set(IC_EFORMAT, "config: %s.%s[%zu] must be an integer in [%d, %d]",
                                path, key, i, lo, hi);
        out[i] = (int)json_integer_value(e);
    }
    if (count)
        *count = (int)len;
    return 0;
}

static int get_float3(json_t *obj, const char *path, const char *key, float out[3])
{
    json_t *v = json_object_get(obj, key);
    if (!json_is_array(v) || json_array_size(v) != 3)
        return ic_error_set(IC_EFORMAT, "config: %s.%s must be an array of 3 numbers", path, key);
    for (size_t i = 0; i < 3; i++) {
        json_t *e = json_array_get(v, i);
        if (!json_is_number(e))
            return ic_error_set(IC_EFORMAT, "config: %s.%s[%zu] must be a number", path, key, i);
        out[i] = (float)json_number_value(e);
    }
    return 0;
}

static json_t *get_obj(json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    return json_is_object(v) ? v : NULL;
}

#define TRY(expr)              \
    do {                       \
        if ((rc = (expr)) != 0) \
            goto done;         \
    } while (0)

static int parse_head(json_t *h, const char *path, int is_sem, ic_pdl_head_config *hc, int *nc)
{
    int rc = 0, big = 1 << 16;
    if (!h)
        return ic_error_set(IC_EFORMAT, "config: missing object %s", path);
    TRY(get_int_array(h, path, "project_channels", 2, 1, big, hc->project_channels, NULL));
    TRY(get_int(h, path, "aspp_channels", 1, 0, 1, big, &hc->aspp_channels));
    TRY(get_int_array(h, path, "aspp_dilations", 3, 1, 1024, hc->aspp_dilations, NULL));
    TRY(get_int_array(h, path, "decoder_channels", 3, 1, big, hc->decoder_channels, NULL));
    TRY(get_bool(h, path, "use_depthwise_separable_conv", 0, &hc->dsconv));
    int cs = 4;
    TRY(get_int(h, path, "common_stride", 0, 4, 1, 64, &cs));
    if (cs != 4) {
        rc = ic_error_set(IC_EFORMAT, "config: %s.common_stride must be 4", path);
        goto done;
    }
    json_t *pool = get_obj(h, "aspp_pooling");
    if (!pool) {
        rc = ic_error_set(IC_EFORMAT, "config: missing object %s.aspp_pooling", path);
        goto done;
    }
    json_t *type = json_object_get(pool, "type");
    if (json_is_string(type) && !strcmp(json_string_value(type), "global")) {
        hc->aspp_pool_global = 1;
    } else if (json_is_string(type) && !strcmp(json_string_value(type), "avg")) {
        hc->aspp_pool_global = 0;
        TRY(get_int_array(pool, path, "kernel", 2, 1, big, hc->aspp_pool_kernel, NULL));
    } else {
        rc = ic_error_set(IC_EFORMAT, "config: %s.aspp_pooling.type must be \"global\" or \"avg\"",
                          path);
        goto done;
    }
    if (is_sem) {
        TRY(get_int(h, path, "head_channels", 1, 0, 1, big, &hc->head_channels));
        TRY(get_int(h, path, "num_classes", 1, 0, 1, IC_PDL_MAX_CLASSES, nc));
    } else {
        TRY(get_int(h, path, "center_head_channels", 1, 0, 1, big, &hc->center_head_channels));
        TRY(get_int(h, path, "offset_head_channels", 1, 0, 1, big, &hc->offset_head_channels));
    }
done:
    return rc;
}

static int parse_classes(json_t *cl, ic_pdl_config *cfg)
{
    int rc = 0;
    if (!cl)
        return ic_error_set(IC_EFORMAT, "config: missing object classes");
    json_t *names = json_object_get(cl, "names"), *colors = json_object_get(cl, "colors");
    if (!json_is_array(names) || json_array_size(names) != (size_t)cfg->num_classes)
        return ic_error_set(IC_EFORMAT, "config: classes.names must list %d names", cfg->num_classes);
    if (!json_is_array(colors) || json_array_size(colors) != (size_t)cfg->num_classes)
        return ic_error_set(IC_EFORMAT, "config: classes.colors must list %d colours",
                            cfg->num_classes);
    for (int i = 0; i < cfg->num_classes; i++) {
        json_t *n = json_array_get(names, (size_t)i);
        if (!json_is_string(n) || strlen(json_string_value(n)) >= sizeof cfg->class_names[0])
            return ic_error_set(IC_EFORMAT, "config: classes.names[%d] must be a short string", i);
        snprintf(cfg->class_names[i], sizeof cfg->class_names[i], "%s", json_string_value(n));
        int rgb[3];
        char path[32];
        snprintf(path, sizeof path, "classes.colors[%d]", i);
        json_t *wrap = json_pack("{s:O}", "c", json_array_get(colors, (size_t)i));
        rc = wrap ? get_int_array(wrap, path, "c", 3, 0, 255, rgb, NULL)
                  : ic_error_set(IC_ENOMEM, "config: no memory");
        json_decref(wrap);
        if (rc)
            return rc;
        for (int k = 0; k < 3; k++)
            cfg->class_colors[i][k] = (uint8_t)rgb[k];
    }
    int things[IC_PDL_MAX_CLASSES], nthings = 0;
    json_t *t = json_object_get(cl, "thing_ids");
    if (json_is_array(t) && json_array_size(t) == 0) {
        nthings = 0;
    } else {
        TRY(get_int_array(cl, "classes", "thing_ids", -IC_PDL_MAX_CLASSES, 0, cfg->num_classes - 1,
                          things, &nthings));
    }
    memset(cfg->is_thing, 0, sizeof cfg->is_thing);
    for (int i = 0; i < nthings; i++)
        cfg->is_thing[things[i]] = 1;
    TRY(get_int(cl, "classes", "ignore_value", 0, 255, 0, 65535, &cfg->ignore_value));
done:
    return rc;
}

int ic_pdl_config_parse(ic_pdl_config *cfg, const char *text, size_t len)
{
    json_error_t jerr;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root)
        return ic_error_set(IC_EFORMAT, "config: invalid JSON: %s (line %d)", jerr.text, jerr.line);
    int rc = 0, big = 1 << 16;
    double d;
    memset(cfg, 0, sizeof *cfg);
    json_t *fmt = json_object_get(root, "format"), *name = json_object_get(root, "name");
    if (!json_is_string(fmt) || strcmp(json_string_value(fmt), "instcal-pdl")) {
        rc = ic_error_set(IC_EFORMAT, "config: \"format\" must be \"instcal-pdl\"");
        goto done;
    }
    int version;
    TRY(get_int(root, "", "version", 1, 0, 1, 1, &version));
    if (!json_is_string(name) || strlen(json_string_value(name)) >= sizeof cfg->name) {
        rc = ic_error_set(IC_EFORMAT, "config: \"name\" must be a string under %d bytes",
                          IC_PDL_NAME_LEN);
        goto done;
    }
    snprintf(cfg->name, sizeof cfg->name, "%s", json_string_value(name));

    json_t *in = get_obj(root, "input");
    if (!in) {
        rc = ic_error_set(IC_EFORMAT, "config: missing object input");
        goto done;
    }
    TRY(get_float3(in, "input", "pixel_mean", cfg->pixel_mean));
    TRY(get_float3(in, "input", "pixel_std", cfg->pixel_std));
    for (int i = 0; i < 3; i++)
        if (!(cfg->pixel_std[i] > 0)) {
            rc = ic_error_set(IC_EFORMAT, "config: input.pixel_std must be > 0");
            goto done;
        }
    TRY(get_int(in, "input", "size_divisibility", 0, 0, -1, 4096, &cfg->size_divisibility));
    if (cfg->size_divisibility < 0)
        cfg->size_divisibility = 0;
    TRY(get_int(in, "input", "min_size_test", 0, 0, 0, 1 << 15, &cfg->min_size_test));
    TRY(get_int(in, "input", "max_size_test", 0, 0, 0, 1 << 15, &cfg->max_size_test));
    if (json_object_get(in, "train_crop"))
        TRY(get_int_array(in, "input", "train_crop", 2, 1, big, cfg->train_crop, NULL));

    json_t *norm = get_obj(root, "norm");
    TRY(get_num(norm ? norm : root, "norm", "eps", 0, 1e-5, &d));
    if (!(d > 0 && d < 1)) {
        rc = ic_error_set(IC_EFORMAT, "config: norm.eps must be in (0, 1)");
        goto done;
    }
    cfg->bn_eps = (float)d;

    json_t *bb = get_obj(root, "backbone");
    if (!bb) {
        rc = ic_error_set(IC_EFORMAT, "config: missing object backbone");
        goto done;
    }
    TRY(get_int_array(bb, "backbone", "stem_channels", 3, 1, big, cfg->stem_channels, NULL));
    TRY(get_int(bb, "backbone", "res2_out_channels", 1, 0, 1, big, &cfg->res2_out_channels));
    TRY(get_int(bb, "backbone", "width_per_group", 1, 0, 1, big, &cfg->width_per_group));
    int groups, stride_in_1x1;
    TRY(get_int(bb, "backbone", "num_groups", 0, 1, 1, 1, &groups));
    TRY(get_bool(bb, "backbone", "stride_in_1x1", 0, &stride_in_1x1));
    if (stride_in_1x1) {
        rc = ic_error_set(IC_EFORMAT, "config: backbone.stride_in_1x1 must be false (DeepLab)");
        goto done;
    }
    TRY(get_int_array(bb, "backbone", "blocks_per_stage", 4, 1, IC_PDL_MAX_BLOCKS, cfg->blocks, NULL));
    TRY(get_int(bb, "backbone", "res4_dilation", 0, 1, 1, 2, &cfg->res4_dilation));
    TRY(get_int(bb, "backbone", "res5_dilation", 0, 1, 1, 4, &cfg->res5_dilation));
    int ngrid = 0;
    if (json_object_get(bb, "res5_multi_grid")) {
        TRY(get_int_array(bb, "backbone", "res5_multi_grid", cfg->blocks[3], 1, 64, cfg->multi_grid,
                          &ngrid));
    } else {
        for (int i = 0; i < cfg->blocks[3]; i++)
            cfg->multi_grid[i] = 1;
    }
    if (cfg->res4_dilation != 1 && cfg->res5_dilation == 1) {
        rc = ic_error_set(IC_EFORMAT, "config: res4_dilation 2 needs res5_dilation 2 or 4");
        goto done;
    }

    TRY(parse_head(get_obj(root, "sem_seg_head"), "sem_seg_head", 1, &cfg->sem, &cfg->num_classes));
    TRY(parse_head(get_obj(root, "ins_embed_head"), "ins_embed_head", 0, &cfg->ins, NULL));

    json_t *pp = get_obj(root, "post_processing");
    if (!pp) {
        rc = ic_error_set(IC_EFORMAT, "config: missing object post_processing");
        goto done;
    }
    TRY(get_num(pp, "post_processing", "center_threshold", 0, 0.1, &d));
    cfg->center_threshold = (float)d;
    TRY(get_int(pp, "post_processing", "nms_kernel", 0, 7, 1, 255, &cfg->nms_kernel));
    if (cfg->nms_kernel % 2 == 0) {
        rc = ic_error_set(IC_EFORMAT, "config: post_processing.nms_kernel must be odd");
        goto done;
    }
    TRY(get_int(pp, "post_processing", "top_k", 0, 200, 1, 100000, &cfg->top_k));
    TRY(get_int(pp, "post_processing", "stuff_area", 0, 2048, 0, 1 << 30, &cfg->stuff_area));
    TRY(get_int(pp, "post_processing", "label_divisor", 0, 1000, 1, 1 << 20, &cfg->label_divisor));
    if ((long long)cfg->num_classes * cfg->label_divisor >= (1LL << 31)) {
        rc = ic_error_set(IC_EFORMAT, "config: num_classes x label_divisor overflows int32");
        goto done;
    }

    TRY(parse_classes(get_obj(root, "classes"), cfg));

    json_t *cal = get_obj(root, "calibration");
    json_t *cu = cal ? get_obj(cal, "instcal_u") : NULL, *cc = cal ? get_obj(cal, "instcal_c") : NULL;
    TRY(get_num(cal ? cal : root, "calibration", "clamp_eps", 0, cfg->bn_eps, &d));
    cfg->clamp_eps = (float)d;
    if (!(cfg->clamp_eps >= 0 && cfg->clamp_eps < 0.5f)) {
        rc = ic_error_set(IC_EFORMAT, "config: calibration.clamp_eps must be in [0, 0.5)");
        goto done;
    }
    TRY(get_num(cu ? cu : root, "calibration.instcal_u", "init", 0, 0.1, &d));
    cfg->u_init = (float)d;
    TRY(get_int(cc ? cc : root, "calibration.instcal_c", "num_basis", 0, 8, 1, 1024, &cfg->c_num_basis));
    TRY(get_int(cc ? cc : root, "calibration.instcal_c", "hidden", 0, 256, 1, 1 << 14, &cfg->c_hidden));
    TRY(get_num(cc ? cc : root, "calibration.instcal_c", "prior", 0, 0.1, &d));
    cfg->c_prior = (float)d;
done:
    json_decref(root);
    return rc;
}

int ic_pdl_config_load(ic_pdl_config *cfg, const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return ic_error_set(IC_EIO, "config: cannot open %s: %s", path, strerror(errno));
    char *buf = NULL;
    size_t len = 0, cap = 0;
    int rc = 0;
    for (;;) {
        if (len == cap) {
            if (cap >= ((size_t)1 << 22)) {
                rc = ic_error_set(IC_EFORMAT, "config: %s is larger than 4 MiB", path);
                break;
            }
            cap = cap ? 2 * cap : 8192;
            char *nb = ic_realloc(buf, cap);
            if (!nb) {
                rc = ic_error_set(IC_ENOMEM, "config: no memory");
                break;
            }
            buf = nb;
        }
        size_t got = fread(buf + len, 1, cap - len, f);
        len += got;
        if (got == 0)
            break;
    }
    fclose(f);
    if (!rc)
        rc = ic_pdl_config_parse(cfg, buf, len);
    ic_free(buf);
    return rc;
}

void ic_pdl_config_stages(const ic_pdl_config *cfg, ic_pdl_stage st[4])
{
    int cin = cfg->stem_channels[2], cout = cfg->res2_out_channels, width = cfg->width_per_group;
    for (int i = 0; i < 4; i++) {
        int n = cfg->blocks[i];
        st[i].blocks = n;
        st[i].cin = cin;
        st[i].bottleneck = width;
        st[i].cout = cout;
        for (int b = 0; b < n; b++)
            st[i].dilation[b] = i == 3 ? cfg->res5_dilation * cfg->multi_grid[b]
                                : i == 2 ? cfg->res4_dilation
                                         : 1;
        st[i].stride = (i == 0 || st[i].dilation[0] > 1) ? 1 : 2;
        cin = cout;
        cout *= 2;
        width *= 2;
    }
}
