/* The Open Inference Protocol inference codec (oip.h). */
#include "oip.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"

static const struct {
    const char *name, *datatype;
    int def;
} outputs[] = {
#define SRV_OIP_ROW(id, name, dt, def, what) {name, dt, def},
    SRV_OIP_OUTPUTS(SRV_OIP_ROW)
#undef SRV_OIP_ROW
};

const char *srv_oip_output_name(int i)
{
    return i >= 0 && i < SRV_OIP_N_OUTPUTS ? outputs[i].name : NULL;
}

const char *srv_oip_output_datatype(int i)
{
    return i >= 0 && i < SRV_OIP_N_OUTPUTS ? outputs[i].datatype : NULL;
}

int srv_oip_output_default(int i)
{
    return i >= 0 && i < SRV_OIP_N_OUTPUTS && outputs[i].def;
}


/* ------------------------------------------------------------- request */

static int b64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    return c == '+' ? 62 : c == '/' ? 63 : -1;
}

/* Standard base64 (RFC 4648 section 4, padding required) into out. */
static srv_err b64_decode(const char *s, size_t n, srv_buf *out)
{
    if (n % 4)
        return srv_err_fail(SRV_ERR_BAD_INFER_REQUEST,
                    "input 'image': the JSON data is not base64 (its length is not a multiple "
                    "of 4)");
    unsigned char q[3];
    for (size_t i = 0; i < n; i += 4) {
        int v[4], pad = 0;
        for (int k = 0; k < 4; k++) {
            unsigned char c = (unsigned char)s[i + k];
            if (c == '=' && i + 4 == n && k >= 2) {
                v[k] = 0;
                pad++;
            } else if (pad || (v[k] = b64_value(c)) < 0) {
                return srv_err_fail(SRV_ERR_BAD_INFER_REQUEST,
                            "input 'image': the JSON data is not base64 (byte %zu)", i + k);
            }
        }
        unsigned x = (unsigned)v[0] << 18 | (unsigned)v[1] << 12 | (unsigned)v[2] << 6 |
                     (unsigned)v[3];
        q[0] = (unsigned char)(x >> 16);
        q[1] = (unsigned char)(x >> 8);
        q[2] = (unsigned char)x;
        int rc = srv_buf_append(out, q, (size_t)(3 - pad));
        if (rc == IC_ELIMIT)
            return srv_err_fail(SRV_ERR_TOO_LARGE, "the image is larger than max_upload_bytes");
        if (rc)
            return srv_err_fail(SRV_ERR_OUT_OF_MEMORY, "out of memory");
    }
    return SRV_ERR_NONE;
}

static uint32_t le32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* The one element of a BYTES tensor's JSON data: [s] or [[s]]. */
static const char *json_single_string(json_t *data, size_t *len)
{
    while (json_is_array(data) && json_array_size(data) == 1)
        data = json_array_get(data, 0);
    if (!json_is_string(data))
        return NULL;
    *len = json_string_length(data);
    return json_string_value(data);
}

/* Checks shape: a JSON array of 1 or 2 dimensions, all 1 (one element). */
static int shape_is_one(json_t *shape)
{
    size_t n = json_array_size(shape);
    if (!json_is_array(shape) || n < 1 || n > 2)
        return 0;
    for (size_t i = 0; i < n; i++) {
        json_t *d = json_array_get(shape, i);
        if (!json_is_integer(d) || json_integer_value(d) != 1)
            return 0;
    }
    return 1;
}

/* The `image` input: its bytes into r->image. bin, bin_len: the binary
 * section; *used: how much of it the input takes. */
static srv_err parse_image(srv_request *r, json_t *in, const unsigned char *bin, size_t bin_len,
                           size_t *used)
{
    json_t *dt = json_object_get(in, "datatype"), *shape = json_object_get(in, "shape");
    json_t *data = json_object_get(in, "data"), *params = json_object_get(in, "parameters");
    if (!json_is_string(dt) || strcmp(json_string_value(dt), "BYTES") != 0)
        return srv_err_fail(SRV_ERR_BAD_INFER_REQUEST,
                    "input 'image' must have datatype BYTES (one encoded JPEG or PNG)");
    if (!shape_is_one(shape))
        return srv_err_fail(SRV_ERR_BAD_INFER_REQUEST,
                "input 'image' must have shape [1] (one image)");
    if (params && !json_is_object(params))
        return srv_err_fail(SRV_ERR_BAD_INFER_REQUEST,
                "input 'image': parameters must be an object");
    const char *key;
    json_t *v, *size = NULL;
    json_object_foreach(params, key, v) {
        if (strcmp(key, "binary_data_size") != 0)
            return srv_err_fail(SRV_ERR_BAD_INFER_REQUEST,
                        "input 'image': unknown parameter '%.64s' (binary_data_size)", key);
        size = v;
    }
    if (size) {
        if (data)
            return srv_err_fail(SRV_ERR_BAD_INFER_REQUEST,
                        "input 'image' has both data and binary_data_size");
        if (!json_is_integer(size) || json_integer_value(size) < 0)
            return srv_err_fail(SRV_ERR_BAD_INFER_REQUEST,
                        "input 'image': binary_data_size must be a non-negative integer");
        uint64_t n = (uint64_t)json_integer_value(size);
        if (n > bin_len)
            return srv_err_fail(SRV_ERR_BAD_BINARY_DATA,
                        "input 'image': binary_data_size %llu is more than the %zu bytes of "
                        "binary data after the JSON header",
                        (unsigned long long)n, bin_len);
        if (n < 4 || le32(bin) != n - 4)
            return srv_err_fail(SRV_ERR_BAD_BINARY_DATA,
                        "input 'image': a BYTES element is a 4-byte little-endian length and "
                        "that many bytes, and binary_data_size (%llu) must be 4 + that length",
                        (unsigned long long)n);
        *used = (size_t)n;
        int rc = srv_buf_append(&r->image, bin + 4, (size_t)n - 4);
        if (rc == IC_ELIMIT)
            return srv_err_fail(SRV_ERR_TOO_LARGE, "the image is larger than max_upload_bytes");
        if (rc)
            return srv_err_fail(SRV_ERR_OUT_OF_MEMORY, "out of memory");
        return SRV_ERR_NONE;
    }
    size_t n = 0;
    const char *s = data ? json_single_string(data, &n) : NULL;
    if (!data)
        return srv_err_fail(SRV_ERR_MISSING_IMAGE,
                    "input 'image' has neither data nor parameters.binary_data_size");
    if (!s)
        return srv_err_fail(SRV_ERR_BAD_INFER_REQUEST,
                    "input 'image': data must be one base64 string (the encoded image)");
    return b64_decode(s, n, &r->image);
}

static srv_err parse_outputs(srv_oip_want *w, json_t *outs, int binary_default)
{
    if (!outs) {
        for (int i = 0; i < SRV_OIP_N_OUTPUTS; i++)
            if (outputs[i].def)
                w->outputs |= 1u << i;
        w->binary = binary_default ? w->outputs : 0;
        return SRV_ERR_NONE;
    }
    if (!json_is_array(outs) || json_array_size(outs) == 0)
        return srv_err_fail(SRV_ERR_BAD_INFER_REQUEST,
                    "outputs must be a non-empty array of {\"name\": ...} (or absent)");
    size_t k;
    json_t *o;
    json_array_foreach(outs, k, o) {
        const char *name = json_string_value(json_object_get(o, "name"));
        if (!json_is_object(o) || !name)
            return srv_err_fail(SRV_ERR_BAD_INFER_REQUEST, "outputs[%zu] has no name", k);
        int i = 0;
        while (i < SRV_OIP_N_OUTPUTS && strcmp(outputs[i].name, name) != 0)
            i++;
        if (i == SRV_OIP_N_OUTPUTS)
            return srv_err_fail(SRV_ERR_UNKNOWN_TENSOR,
                        "unknown output '%.64s' (labels, semantic, confidence, segments_info)",
                        name);
        if (w->outputs & (1u << i))
            return srv_err_fail(SRV_ERR_BAD_INFER_REQUEST, "output '%s' is requested twice", name);
        w->outputs |= 1u << i;
        int binary = binary_default;
        json_t *params = json_object_get(o, "parameters"), *v;
        const char *key;
        if (params && !json_is_object(params))
            return srv_err_fail(SRV_ERR_BAD_INFER_REQUEST,
                    "output '%s': parameters must be an object",
                        name);
        json_object_foreach(params, key, v) {
            if (strcmp(key, "binary_data") != 0 || !json_is_boolean(v))
                return srv_err_fail(SRV_ERR_BAD_INFER_REQUEST,
                            "output '%s': the only parameter is binary_data (true or false)",
                            name);
            binary = json_is_true(v);
        }
        if (binary)
            w->binary |= 1u << i;
    }
    return SRV_ERR_NONE;
}

/* Request parameters: calibration, m, size (into kv for srv_request_parse)
 * and binary_data_output. */
static srv_err parse_params(json_t *params, char *cal, size_t cal_n, char *m, size_t m_n,
                            char *size, size_t size_n, int *binary)
{
    if (params && !json_is_object(params))
        return srv_err_fail(SRV_ERR_BAD_INFER_REQUEST, "parameters must be an object");
    const char *key;
    json_t *v;
    json_object_foreach(params, key, v) {
        if (strcmp(key, "calibration") == 0) {
            if (!json_is_string(v) || json_string_length(v) >= cal_n)
                return srv_err_fail(SRV_ERR_BAD_PARAMETER,
                        "parameters.calibration must be a mode name");
            snprintf(cal, cal_n, "%s", json_string_value(v));
        } else if (strcmp(key, "m") == 0) {
            if (!json_is_number(v))
                return srv_err_fail(SRV_ERR_BAD_PARAMETER,
                        "parameters.m must be a number in [0, 1]");
            snprintf(m, m_n, "%.17g", json_number_value(v));
        } else if (strcmp(key, "size") == 0) {
            if (!json_is_integer(v))
                return srv_err_fail(SRV_ERR_BAD_PARAMETER,
                            "parameters.size must be an integer (the network input's short side)");
            snprintf(size, size_n, "%lld", (long long)json_integer_value(v));
        } else if (strcmp(key, "binary_data_output") == 0) {
            if (!json_is_boolean(v))
                return srv_err_fail(SRV_ERR_BAD_INFER_REQUEST,
                            "parameters.binary_data_output must be true or false");
            *binary = json_is_true(v);
        } else {
            return srv_err_fail(SRV_ERR_BAD_PARAMETER,
                        "unknown parameter '%.64s' (calibration, m, size, binary_data_output)", key);
        }
    }
    return SRV_ERR_NONE;
}

static srv_err parse_header(srv_request *r, json_t *root, const unsigned char *bin,
                            size_t bin_len, const srv_config *cfg)
{
    if (!json_is_object(root))
        return srv_err_fail(SRV_ERR_BAD_INFER_REQUEST, "the request must be a JSON object");
    const char *key;
    json_t *v;
    json_object_foreach(root, key, v) {
        if (strcmp(key, "id") && strcmp(key, "parameters") && strcmp(key, "inputs") &&
            strcmp(key, "outputs"))
            return srv_err_fail(SRV_ERR_BAD_INFER_REQUEST,
                        "unknown key '%.64s' (id, parameters, inputs, outputs)", key);
    }
    srv_oip_want *w = &r->oip;
    json_t *id = json_object_get(root, "id");
    if (id) {
        if (!json_is_string(id) || json_string_length(id) > SRV_OIP_ID_MAX)
            return srv_err_fail(SRV_ERR_BAD_INFER_REQUEST,
                    "id must be a string of at most %d bytes",
                        SRV_OIP_ID_MAX);
        snprintf(w->id, sizeof w->id, "%s", json_string_value(id));
        w->has_id = 1;
    }
    char cal[32] = "", m[40] = "", size[24] = "";
    int binary = 0;
    srv_err e = parse_params(json_object_get(root, "parameters"), cal, sizeof cal, m, sizeof m,
                             size, sizeof size, &binary);
    if (e)
        return e;
    json_t *inputs = json_object_get(root, "inputs");
    if (!json_is_array(inputs))
        return srv_err_fail(SRV_ERR_BAD_INFER_REQUEST, "inputs must be an array");
    size_t k, used = 0;
    int have_image = 0;
    json_array_foreach(inputs, k, v) {
        const char *name = json_string_value(json_object_get(v, "name"));
        if (!json_is_object(v) || !name)
            return srv_err_fail(SRV_ERR_BAD_INFER_REQUEST, "inputs[%zu] has no name", k);
        if (strcmp(name, "image") != 0)
            return srv_err_fail(SRV_ERR_UNKNOWN_TENSOR,
                    "unknown input '%.64s' (the one input is image)",
                        name);
        if (have_image)
            return srv_err_fail(SRV_ERR_BAD_INFER_REQUEST, "input 'image' is given twice");
        have_image = 1;
        size_t n = 0;
        if ((e = parse_image(r, v, bin, bin_len, &n)) != SRV_ERR_NONE)
            return e;
        used += n;
    }
    if (used != bin_len)
        return srv_err_fail(SRV_ERR_BAD_BINARY_DATA,
                    "the inputs' binary_data_size add up to %zu bytes but %zu bytes follow the "
                    "JSON header",
                    used, bin_len);
    if (!have_image || r->image.len == 0)
        return srv_err_fail(SRV_ERR_MISSING_IMAGE, have_image ? "input 'image' is empty"
                                                      : "no input 'image' (BYTES, shape [1])");
    if ((e = parse_outputs(w, json_object_get(root, "outputs"), binary)) != SRV_ERR_NONE)
        return e;
    srv_kv form[4];
    size_t nf = 0;
    form[nf++] = (srv_kv){"outputs", "none"}; /* no PNGs: the tensors are the answer */
    if (cal[0])
        form[nf++] = (srv_kv){"calibration", cal};
    if (m[0])
        form[nf++] = (srv_kv){"m", m};
    if (size[0])
        form[nf++] = (srv_kv){"size", size};
    srv_request_args a = {.form = form, .n_form = nf};
    return srv_request_parse(r, &a, cfg);
}

srv_err srv_oip_parse(srv_request *r, const char *body, size_t len, const char *header_len,
                      const srv_config *cfg)
{
    memset(&r->oip, 0, sizeof r->oip);
    size_t hlen = len;
    if (header_len) {
        char *end;
        errno = 0;
        unsigned long long n = strtoull(header_len, &end, 10);
        if (!*header_len || *end || errno || header_len[0] == '-' || header_len[0] == '+')
            return srv_err_fail(SRV_ERR_BAD_BINARY_DATA,
                        "Inference-Header-Content-Length must be a decimal byte count");
        if (n > len)
            return srv_err_fail(SRV_ERR_BAD_BINARY_DATA,
                        "Inference-Header-Content-Length is %llu but the body has %zu bytes", n,
                        len);
        hlen = (size_t)n;
    }
    if (hlen == 0)
        return srv_err_fail(SRV_ERR_MISSING_IMAGE, "empty request: send a JSON inference request");
    json_error_t jerr;
    json_t *root = json_loadb(body, hlen, JSON_REJECT_DUPLICATES, &jerr);
    if (!root)
        return srv_err_fail(SRV_ERR_BAD_INFER_REQUEST,
                    "the JSON header is not valid JSON (byte %d: %s)%s", jerr.position,
                    jerr.text,
                    header_len ? "" : "; binary data needs Inference-Header-Content-Length");
    srv_err e = parse_header(r, root, (const unsigned char *)body + hlen, len - hlen, cfg);
    json_decref(root);
    if (e != SRV_ERR_NONE)
        memset(&r->oip, 0, sizeof r->oip);
    return e;
}

/* ------------------------------------------------------------ response */

static int put_le32(srv_buf *b, uint32_t v)
{
    unsigned char q[4] = {(unsigned char)v, (unsigned char)(v >> 8), (unsigned char)(v >> 16),
                          (unsigned char)(v >> 24)};
    return srv_buf_append(b, q, 4);
}

/* One output's bytes as the binary section has them (BYTES: length prefix). */
static int put_binary(srv_buf *b, int i, const srv_oip_tensors *t)
{
    size_t n = (size_t)t->w * (size_t)t->h;
    int rc = 0;
    switch (i) {
    case SRV_OIP_LABELS:
    case SRV_OIP_SEMANTIC: {
        const int32_t *p = i == SRV_OIP_LABELS ? t->labels : t->semantic;
        for (size_t k = 0; rc == 0 && k < n; k++)
            rc = put_le32(b, (uint32_t)p[k]);
        return rc;
    }
    case SRV_OIP_CONFIDENCE:
        for (size_t k = 0; rc == 0 && k < n; k++) {
            uint32_t u;
            memcpy(&u, &t->confidence[k], 4);
            rc = put_le32(b, u);
        }
        return rc;
    default:
        rc = put_le32(b, (uint32_t)t->segments_len);
        return rc ? rc : srv_buf_append(b, t->segments_info, t->segments_len);
    }
}

static size_t binary_size(int i, const srv_oip_tensors *t)
{
    return i == SRV_OIP_SEGMENTS_INFO ? 4 + t->segments_len : (size_t)t->w * (size_t)t->h * 4;
}

/* One output's JSON data array. */
static int put_json_data(srv_buf *b, int i, const srv_oip_tensors *t)
{
    size_t n = (size_t)t->w * (size_t)t->h;
    int rc = srv_buf_append(b, "[", 1);
    if (i == SRV_OIP_SEGMENTS_INFO) {
        json_t *s = json_stringn(t->segments_info, t->segments_len);
        char *txt = s ? json_dumps(s, JSON_ENCODE_ANY) : NULL;
        json_decref(s);
        if (!txt)
            return ic_error_set(IC_ENOMEM, "oip: no memory for segments_info");
        rc = rc ? rc : srv_buf_append(b, txt, strlen(txt));
        free(txt);
    } else {
        for (size_t k = 0; rc == 0 && k < n; k++) {
            const char *sep = k ? "," : "";
            if (i == SRV_OIP_CONFIDENCE)
                rc = srv_buf_printf(b, "%s%.9g", sep, (double)t->confidence[k]);
            else
                rc = srv_buf_printf(b, "%s%d", sep,
                                    (int)(i == SRV_OIP_LABELS ? t->labels : t->semantic)[k]);
        }
    }
    return rc ? rc : srv_buf_append(b, "]", 1);
}

static int put_json(srv_buf *b, json_t *v)
{
    char *txt = v ? json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT | JSON_REAL_PRECISION(9)) : NULL;
    json_decref(v);
    if (!txt)
        return ic_error_set(IC_ENOMEM, "oip: no memory to encode JSON");
    int rc = srv_buf_append(b, txt, strlen(txt));
    free(txt);
    return rc;
}

int srv_oip_encode(const srv_oip_want *want, const char *model, json_t *params,
                   const srv_oip_tensors *t, srv_buf *out, size_t *header_len)
{
    int rc = srv_buf_append(out, "{\"model_name\":", 14);
    rc = rc ? rc : put_json(out, json_string(model));
    rc = rc ? rc : srv_buf_append(out, ",\"model_version\":\"1\"", 20);
    if (want->has_id) {
        rc = rc ? rc : srv_buf_append(out, ",\"id\":", 6);
        rc = rc ? rc : put_json(out, json_string(want->id));
    }
    if (params) {
        rc = rc ? rc : srv_buf_append(out, ",\"parameters\":", 14);
        rc = rc ? rc : put_json(out, json_incref(params));
    }
    rc = rc ? rc : srv_buf_append(out, ",\"outputs\":[", 12);
    int first = 1;
    for (int i = 0; rc == 0 && i < SRV_OIP_N_OUTPUTS; i++) {
        if (!(want->outputs & (1u << i)))
            continue;
        if (i == SRV_OIP_SEGMENTS_INFO)
            rc = srv_buf_printf(out, "%s{\"name\":\"%s\",\"datatype\":\"%s\",\"shape\":[1]",
                                first ? "" : ",", outputs[i].name, outputs[i].datatype);
        else
            rc = srv_buf_printf(out, "%s{\"name\":\"%s\",\"datatype\":\"%s\",\"shape\":[%d,%d]",
                                first ? "" : ",", outputs[i].name, outputs[i].datatype, t->h,
                                t->w);
        first = 0;
        if (rc)
            break;
        if (want->binary & (1u << i)) {
            rc = srv_buf_printf(out, ",\"parameters\":{\"binary_data_size\":%zu}}",
                                binary_size(i, t));
        } else {
            rc = srv_buf_append(out, ",\"data\":", 8);
            rc = rc ? rc : put_json_data(out, i, t);
            rc = rc ? rc : srv_buf_append(out, "}", 1);
        }
    }
    rc = rc ? rc : srv_buf_append(out, "]}", 2);
    *header_len = out->len;
    for (int i = 0; rc == 0 && i < SRV_OIP_N_OUTPUTS; i++)
        if (want->outputs & want->binary & (1u << i))
            rc = put_binary(out, i, t);
    return rc;
}
