/* Request parsing (see request.h): pure functions of the request's fields,
 * query and headers. */
#include "request.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/err.h"

static const struct {
    const char *name;
    size_t max_len;
} options[SRV_OPT_COUNT] = {
#define SRV_OPT_ROW(id, name, max_len) {name, max_len},
    SRV_REQUEST_OPTIONS(SRV_OPT_ROW)
#undef SRV_OPT_ROW
};

#define SRV_OPT_LIST(id, name, max_len) ", " name
static const char field_names[] = "image, label, label_segments" SRV_REQUEST_OPTIONS(SRV_OPT_LIST);
#undef SRV_OPT_LIST

srv_option srv_option_find(const char *name)
{
    int o = 0;
    while (o < SRV_OPT_COUNT && strcmp(name, options[o].name) != 0)
        o++;
    return (srv_option)o;
}

const char *srv_option_name(srv_option o)
{
    return (unsigned)o < SRV_OPT_COUNT ? options[o].name : "?";
}

size_t srv_option_max_len(srv_option o)
{
    return (unsigned)o < SRV_OPT_COUNT ? options[o].max_len : 0;
}

const char *srv_request_field_names(void)
{
    return field_names;
}

void srv_request_init(srv_request *r, size_t max_upload)
{
    memset(r, 0, sizeof *r);
    srv_buf_init(&r->image, max_upload);
    srv_buf_init(&r->label, max_upload);
    srv_buf_init(&r->label_segments, max_upload);
}

void srv_request_free(srv_request *r)
{
    if (!r)
        return;
    srv_buf_free(&r->image);
    srv_buf_free(&r->label);
    srv_buf_free(&r->label_segments);
}

void srv_request_move(srv_request *dst, srv_request *src)
{
    *dst = *src;
    srv_request_init(src, 0);
}

srv_buf *srv_request_upload(srv_request *r, const char *name)
{
    return strcmp(name, "image") == 0            ? &r->image
           : strcmp(name, "label") == 0          ? &r->label
           : strcmp(name, "label_segments") == 0 ? &r->label_segments
                                                 : NULL;
}

/* The media type of a Content-Type value: up to the first ';' or blank. */
static int media_type_is(const char *content_type, const char *type)
{
    if (!content_type)
        return 0;
    size_t n = strcspn(content_type, "; \t");
    return n == strlen(type) && strncasecmp(content_type, type, n) == 0;
}

srv_body_kind srv_request_body_kind(const char *content_type)
{
    if (media_type_is(content_type, "image/jpeg") || media_type_is(content_type, "image/png"))
        return SRV_BODY_IMAGE;
    if (media_type_is(content_type, "multipart/form-data"))
        return SRV_BODY_MULTIPART;
    return SRV_BODY_UNSUPPORTED;
}


/* The value of option o: the form's, else the query's; NULL if absent or empty. */
static const char *option_value(const srv_request_args *a, srv_option o)
{
    const char *name = options[o].name;
    for (size_t i = 0; i < a->n_form; i++)
        if (strcmp(a->form[i].key, name) == 0 && a->form[i].value[0])
            return a->form[i].value;
    for (size_t i = 0; i < a->n_query; i++)
        if (strcmp(a->query[i].key, name) == 0)
            return a->query[i].value[0] ? a->query[i].value : NULL;
    return NULL;
}

/* Sets one option from its text v (NULL: absent). */
static srv_err parse_option(srv_request *r, srv_option o, const char *v, const srv_config *cfg)
{
    ic_segment_opts *so = &r->opts;
    switch (o) {
    case SRV_OPT_CALIBRATION:
        if (ic_calib_mode_parse(v ? v : cfg->calibration, &so->calib.mode) != 0) {
            so->calib.mode = IC_CALIB_COUNT;
            return srv_err_fail(SRV_ERR_BAD_PARAMETER, "calibration must be one of %s",
                        ic_calib_mode_list());
        }
        return SRV_ERR_NONE;
    case SRV_OPT_M:
        if (v) {
            char *end;
            double m = strtod(v, &end);
            if (*end || !isfinite(m) || m < 0 || m > 1)
                return srv_err_fail(SRV_ERR_BAD_PARAMETER, "m must be a number in [0, 1]");
            so->calib.m = (float)m;
            r->has_m = 1;
        } else if (ic_calib_mode_needs_m(so->calib.mode)) {
            return srv_err_fail(SRV_ERR_BAD_PARAMETER, "calibration=%s needs m",
                        ic_calib_mode_name(so->calib.mode));
        }
        return SRV_ERR_NONE;
    case SRV_OPT_OUTPUTS:
        so->outputs = IC_OUT_DEFAULT;
        if (v && ic_segment_parse_outputs(v, &so->outputs) != 0)
            return srv_err_fail(SRV_ERR_BAD_PARAMETER, "outputs: %s", ic_error_message());
        return SRV_ERR_NONE;
    case SRV_OPT_RLE:
        if (!v)
            ; /* keep what outputs said */
        else if (strcmp(v, "0") == 0 || strcmp(v, "false") == 0)
            so->outputs &= ~(unsigned)IC_OUT_RLE;
        else if (strcmp(v, "1") == 0 || strcmp(v, "true") == 0)
            so->outputs |= IC_OUT_RLE;
        else
            return srv_err_fail(SRV_ERR_BAD_PARAMETER, "rle must be true, false, 1 or 0");
        return SRV_ERR_NONE;
    case SRV_OPT_SIZE:
        if (v) {
            char *end;
            errno = 0;
            long n = strtol(v, &end, 10);
            if (!(*v >= '0' && *v <= '9') || *end || errno || n < cfg->min_request_size ||
                n > cfg->max_request_size)
                return srv_err_fail(SRV_ERR_BAD_PARAMETER,
                            "size must be an integer in [%d, %d] (the network input's short side "
                            "in pixels)",
                            cfg->min_request_size, cfg->max_request_size);
            so->size = (int)n;
        }
        return SRV_ERR_NONE;
    case SRV_OPT_COUNT:
        break;
    }
    return SRV_ERR_INTERNAL;
}

srv_err srv_request_parse(srv_request *r, const srv_request_args *a, const srv_config *cfg)
{
    memset(&r->opts, 0, sizeof r->opts);
    r->opts.calib.mode = IC_CALIB_COUNT;
    r->has_m = 0;
    r->image_type[0] = '\0';
    for (size_t i = 0; i < a->n_form; i++) {
        const char *key = a->form[i].key;
        srv_option o = srv_option_find(key);
        if (o == SRV_OPT_COUNT && !srv_request_upload(r, key)) {
            return srv_err_fail(SRV_ERR_UNKNOWN_FIELD, "unknown form field '%.64s' (%s)", key,
                        field_names);
        }
        if (o != SRV_OPT_COUNT && strlen(a->form[i].value) > options[o].max_len)
            return srv_err_fail(SRV_ERR_BAD_FIELD, "field '%s' is too long", key);
    }
    /* In table order: calibration before m, outputs before rle. */
    for (int o = 0; o < SRV_OPT_COUNT; o++) {
        srv_err e = parse_option(r, (srv_option)o, option_value(a, (srv_option)o), cfg);
        if (e != SRV_ERR_NONE)
            return e;
    }
    r->opts.limits.max_pixels = cfg->max_pixels;

    /* The declared image type: the raw body's Content-Type, or the image part's. */
    const char *declared = srv_request_body_kind(a->content_type) == SRV_BODY_IMAGE
                               ? a->content_type
                               : a->image_part_type;
    if (media_type_is(declared, "image/png"))
        snprintf(r->image_type, sizeof r->image_type, "image/png");
    else if (media_type_is(declared, "image/jpeg"))
        snprintf(r->image_type, sizeof r->image_type, "image/jpeg");

    if (r->image.len == 0)
        return srv_err_fail(SRV_ERR_MISSING_IMAGE,
                    "no image: send it as the body or as the form field 'image'");
    if (r->label_segments.len && !r->label.len)
        return srv_err_fail(SRV_ERR_BAD_PARAMETER,
                    "label_segments needs a label (the COCO-panoptic PNG it describes)");
    return SRV_ERR_NONE;
}
