/* The OIP inference codec without a server (server/oip.h): JSON and binary
 * requests into a srv_request, every error, and responses encoded then
 * decoded again (JSON and binary outputs). */
#include <check.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "oip.h"

static srv_config cfg;
static srv_request r;

static void setup(void)
{
    srv_config_defaults(&cfg);
    srv_request_init(&r, 1 << 20);
}

static void teardown(void)
{
    srv_request_free(&r);
}

/* Parses text as the whole body (JSON only). */
static srv_err parse_json(const char *text)
{
    srv_request_free(&r);
    srv_request_init(&r, 1 << 20);
    srv_err e = srv_oip_parse(&r, text, strlen(text), NULL, &cfg);
    if (e != SRV_ERR_NONE)
        ck_assert_msg(ic_error_message()[0], "error %s without a message", srv_err_code(e));
    return e;
}

/* Parses header then bin (n bytes), with header_len (NULL: the header's length). */
static srv_err parse_bin(const char *header, const void *bin, size_t n, const char *header_len)
{
    srv_request_free(&r);
    srv_request_init(&r, 1 << 20);
    size_t hl = strlen(header);
    char *body = malloc(hl + n + 1), len[32];
    memcpy(body, header, hl);
    memcpy(body + hl, bin, n);
    snprintf(len, sizeof len, "%zu", hl);
    srv_err e = srv_oip_parse(&r, body, hl + n, header_len ? header_len : len, &cfg);
    free(body);
    return e;
}

/* "\x89PNG" in base64 and as a BYTES element */
#define PNG_B64 "iVBORw=="
static const char elem[] = {4, 0, 0, 0, '\x89', 'P', 'N', 'G'};
#define IMG_JSON "{\"name\":\"image\",\"datatype\":\"BYTES\",\"shape\":[1],\"data\":[\"" PNG_B64 "\"]}"
#define IMG_BIN "{\"name\":\"image\",\"datatype\":\"BYTES\",\"shape\":[1],\"parameters\":{\"binary_data_size\":8}}"

START_TEST(test_json_request)
{
    ck_assert_int_eq(parse_json("{\"inputs\":[" IMG_JSON "]}"), SRV_ERR_NONE);
    ck_assert_uint_eq(r.image.len, 4);
    ck_assert_mem_eq(r.image.data, "\x89PNG", 4);
    ck_assert_uint_eq(r.oip.outputs, 1u << SRV_OIP_LABELS | 1u << SRV_OIP_SEGMENTS_INFO);
    ck_assert_uint_eq(r.oip.binary, 0);
    ck_assert_int_eq(r.oip.has_id, 0);
    ck_assert_int_eq(r.opts.calib.mode, IC_CALIB_INSTCAL_C); /* the server's default */
    ck_assert_uint_eq(r.opts.outputs, 0);                   /* no PNGs */
    ck_assert_int_eq(parse_json("{\"id\":\"a1\",\"parameters\":{\"calibration\":\"manual\",\"m\":0.25},"
                                "\"inputs\":[{\"name\":\"image\",\"datatype\":\"BYTES\",\"shape\":[1,1],"
                                "\"data\":[[\"" PNG_B64 "\"]]}],"
                                "\"outputs\":[{\"name\":\"confidence\"},{\"name\":\"semantic\","
                                "\"parameters\":{\"binary_data\":true}}]}"),
                     SRV_ERR_NONE);
    ck_assert_str_eq(r.oip.id, "a1");
    ck_assert_int_eq(r.opts.calib.mode, IC_CALIB_MANUAL);
    ck_assert(r.has_m && r.opts.calib.m == 0.25f);
    ck_assert_uint_eq(r.oip.outputs, 1u << SRV_OIP_CONFIDENCE | 1u << SRV_OIP_SEMANTIC);
    ck_assert_uint_eq(r.oip.binary, 1u << SRV_OIP_SEMANTIC);
    /* binary_data_output: every output binary unless it says otherwise */
    ck_assert_int_eq(parse_json("{\"parameters\":{\"binary_data_output\":true},\"inputs\":[" IMG_JSON
                                "],\"outputs\":[{\"name\":\"labels\"},{\"name\":\"semantic\","
                                "\"parameters\":{\"binary_data\":false}}]}"),
                     SRV_ERR_NONE);
    ck_assert_uint_eq(r.oip.binary, 1u << SRV_OIP_LABELS);
    ck_assert_int_eq(r.opts.size, 0);
    ck_assert_int_eq(parse_json("{\"parameters\":{\"size\":64},\"inputs\":[" IMG_JSON "]}"),
                     SRV_ERR_NONE);
    ck_assert_int_eq(r.opts.size, 64);
}
END_TEST

START_TEST(test_binary_request)
{
    ck_assert_int_eq(parse_bin("{\"inputs\":[" IMG_BIN "]}", elem, sizeof elem, NULL),
                     SRV_ERR_NONE);
    ck_assert_uint_eq(r.image.len, 4);
    ck_assert_mem_eq(r.image.data, "\x89PNG", 4);
    /* the header length lies: longer than the body, or not a number */
    ck_assert_int_eq(parse_bin("{\"inputs\":[" IMG_BIN "]}", elem, sizeof elem, "999"),
                     SRV_ERR_BAD_BINARY_DATA);
    ck_assert_int_eq(parse_bin("{\"inputs\":[" IMG_BIN "]}", elem, sizeof elem, "12x"),
                     SRV_ERR_BAD_BINARY_DATA);
    ck_assert_int_eq(parse_bin("{\"inputs\":[" IMG_BIN "]}", elem, sizeof elem, "-1"),
                     SRV_ERR_BAD_BINARY_DATA);
    /* shorter: the JSON is cut */
    ck_assert_int_eq(parse_bin("{\"inputs\":[" IMG_BIN "]}", elem, sizeof elem, "20"),
                     SRV_ERR_BAD_INFER_REQUEST);
    /* sizes that do not add up, a lying element length */
    ck_assert_int_eq(parse_bin("{\"inputs\":[" IMG_BIN "]}", elem, sizeof elem - 1, NULL),
                     SRV_ERR_BAD_BINARY_DATA);
    ck_assert_int_eq(parse_bin("{\"inputs\":[" IMG_BIN "]}", "\x08\0\0\0\x89PNGxx", 10, NULL),
                     SRV_ERR_BAD_BINARY_DATA);
    ck_assert_int_eq(parse_bin("{\"inputs\":[" IMG_BIN "]}", "\x05\0\0\0\x89PNG", 8, NULL),
                     SRV_ERR_BAD_BINARY_DATA);
    /* binary data without the header length */
    srv_request_free(&r);
    srv_request_init(&r, 1 << 20);
    const char *h = "{\"inputs\":[" IMG_BIN "]}";
    ck_assert_int_eq(srv_oip_parse(&r, h, strlen(h), NULL, &cfg), SRV_ERR_BAD_BINARY_DATA);
    /* an image over the upload limit */
    srv_request_free(&r);
    srv_request_init(&r, 3);
    char body[256];
    snprintf(body, sizeof body, "%s", h);
    memcpy(body + strlen(h), elem, sizeof elem);
    char len[16];
    snprintf(len, sizeof len, "%zu", strlen(h));
    ck_assert_int_eq(srv_oip_parse(&r, body, strlen(h) + sizeof elem, len, &cfg), SRV_ERR_TOO_LARGE);
}
END_TEST

START_TEST(test_errors)
{
    static const struct {
        const char *json;
        srv_err want;
    } cases[] = {
        {"", SRV_ERR_MISSING_IMAGE},
        {"{not json", SRV_ERR_BAD_INFER_REQUEST},
        {"[]", SRV_ERR_BAD_INFER_REQUEST},
        {"{\"inputs\":{}}", SRV_ERR_BAD_INFER_REQUEST},
        {"{\"inputs\":[]}", SRV_ERR_MISSING_IMAGE},
        {"{\"inputs\":[],\"colour\":1}", SRV_ERR_BAD_INFER_REQUEST},
        {"{\"inputs\":[{\"name\":\"image\",\"datatype\":\"BYTES\",\"shape\":[1]}]}", SRV_ERR_MISSING_IMAGE},
        {"{\"inputs\":[{\"name\":\"image\",\"datatype\":\"UINT8\",\"shape\":[1],\"data\":[1]}]}",
         SRV_ERR_BAD_INFER_REQUEST},
        {"{\"inputs\":[{\"name\":\"image\",\"datatype\":\"BYTES\",\"shape\":[2],\"data\":[\"a\",\"b\"]}]}",
         SRV_ERR_BAD_INFER_REQUEST},
        {"{\"inputs\":[{\"name\":\"image\",\"datatype\":\"BYTES\",\"shape\":[1],\"data\":[\"iVBORw=\"]}]}",
         SRV_ERR_BAD_INFER_REQUEST},
        {"{\"inputs\":[{\"name\":\"image\",\"datatype\":\"BYTES\",\"shape\":[1],\"data\":[\"iV=ORw==\"]}]}",
         SRV_ERR_BAD_INFER_REQUEST},
        {"{\"inputs\":[{\"name\":\"image\",\"datatype\":\"BYTES\",\"shape\":[1],\"data\":[\"\"]}]}",
         SRV_ERR_MISSING_IMAGE},
        {"{\"inputs\":[" IMG_JSON "," IMG_JSON "]}", SRV_ERR_BAD_INFER_REQUEST},
        {"{\"inputs\":[{\"name\":\"mask\",\"datatype\":\"BYTES\",\"shape\":[1]}]}", SRV_ERR_UNKNOWN_TENSOR},
        {"{\"inputs\":[" IMG_JSON "],\"outputs\":[{\"name\":\"depth\"}]}", SRV_ERR_UNKNOWN_TENSOR},
        {"{\"inputs\":[" IMG_JSON "],\"outputs\":[]}", SRV_ERR_BAD_INFER_REQUEST},
        {"{\"inputs\":[" IMG_JSON "],\"outputs\":[{\"name\":\"labels\"},{\"name\":\"labels\"}]}",
         SRV_ERR_BAD_INFER_REQUEST},
        {"{\"inputs\":[" IMG_JSON "],\"outputs\":[{\"name\":\"labels\",\"parameters\":{\"classification\":3}}]}",
         SRV_ERR_BAD_INFER_REQUEST},
        {"{\"parameters\":{\"calibration\":\"magic\"},\"inputs\":[" IMG_JSON "]}", SRV_ERR_BAD_PARAMETER},
        {"{\"parameters\":{\"calibration\":3},\"inputs\":[" IMG_JSON "]}", SRV_ERR_BAD_PARAMETER},
        {"{\"parameters\":{\"calibration\":\"manual\"},\"inputs\":[" IMG_JSON "]}", SRV_ERR_BAD_PARAMETER},
        {"{\"parameters\":{\"calibration\":\"manual\",\"m\":1.5},\"inputs\":[" IMG_JSON "]}",
         SRV_ERR_BAD_PARAMETER},
        {"{\"parameters\":{\"colour\":3},\"inputs\":[" IMG_JSON "]}", SRV_ERR_BAD_PARAMETER},
        {"{\"parameters\":{\"size\":3},\"inputs\":[" IMG_JSON "]}", SRV_ERR_BAD_PARAMETER},
        {"{\"parameters\":{\"size\":\"64\"},\"inputs\":[" IMG_JSON "]}", SRV_ERR_BAD_PARAMETER},
        {"{\"parameters\":{\"size\":64.5},\"inputs\":[" IMG_JSON "]}", SRV_ERR_BAD_PARAMETER},
        {"{\"parameters\":{\"binary_data_output\":1},\"inputs\":[" IMG_JSON "]}", SRV_ERR_BAD_INFER_REQUEST},
        {"{\"id\":7,\"inputs\":[" IMG_JSON "]}", SRV_ERR_BAD_INFER_REQUEST},
        {"{\"inputs\":[" IMG_JSON "],\"inputs\":[]}", SRV_ERR_BAD_INFER_REQUEST},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        srv_err e = parse_json(cases[i].json);
        ck_assert_msg(e == cases[i].want, "case %zu (%s): got %s, want %s (%s)", i, cases[i].json,
                      srv_err_code(e), srv_err_code(cases[i].want), ic_error_message());
        ck_assert_int_eq(srv_err_status(e), 400);
        ck_assert_uint_eq(r.oip.outputs, 0); /* a failed parse is no OIP request */
    }
}
END_TEST

/* Decodes a response body: the header's JSON and the binary section. */
static json_t *decode(const srv_buf *b, size_t header_len)
{
    json_error_t err;
    json_t *j = json_loadb(b->data, header_len, 0, &err);
    ck_assert_msg(j != NULL, "response header: %s", err.text);
    return j;
}

START_TEST(test_encode)
{
    const int32_t labels[6] = {0, 1, 1, 2, 2, -3}, sem[6] = {5, 4, 3, 2, 1, 0};
    const float conf[6] = {0.5f, 0.25f, 1.0f, 0.125f, 0.333333343f, 0.0f};
    srv_oip_tensors t = {.w = 3, .h = 2, .labels = labels, .semantic = sem, .confidence = conf,
                         .segments_info = "[{\"id\":1}]", .segments_len = 10};
    srv_oip_want w = {.outputs = 15, .binary = 0, .has_id = 1};
    snprintf(w.id, sizeof w.id, "q\"1");
    json_t *params = json_pack("{s:f}", "drift_score", 0.5);
    srv_buf b;
    srv_buf_init(&b, 0);
    size_t hl = 0;
    ck_assert_int_eq(srv_oip_encode(&w, "m1", params, &t, &b, &hl), 0);
    ck_assert_uint_eq(hl, b.len); /* nothing binary */
    json_t *j = decode(&b, hl);
    ck_assert_str_eq(json_string_value(json_object_get(j, "model_name")), "m1");
    ck_assert_str_eq(json_string_value(json_object_get(j, "id")), "q\"1");
    ck_assert(json_real_value(json_object_get(json_object_get(j, "parameters"), "drift_score")) == 0.5);
    json_t *outs = json_object_get(j, "outputs");
    ck_assert_uint_eq(json_array_size(outs), 4);
    for (int i = 0; i < 4; i++) {
        json_t *o = json_array_get(outs, (size_t)i), *d = json_object_get(o, "data");
        ck_assert_str_eq(json_string_value(json_object_get(o, "name")), srv_oip_output_name(i));
        ck_assert_str_eq(json_string_value(json_object_get(o, "datatype")), srv_oip_output_datatype(i));
        if (i == SRV_OIP_SEGMENTS_INFO) {
            ck_assert_str_eq(json_string_value(json_array_get(d, 0)), "[{\"id\":1}]");
            continue;
        }
        ck_assert_int_eq(json_integer_value(json_array_get(json_object_get(o, "shape"), 0)), 2);
        ck_assert_int_eq(json_integer_value(json_array_get(json_object_get(o, "shape"), 1)), 3);
        for (size_t k = 0; k < 6; k++) {
            json_t *v = json_array_get(d, k);
            if (i == SRV_OIP_CONFIDENCE)
                ck_assert((float)json_number_value(v) == conf[k]); /* 9 digits: exact */
            else
                ck_assert_int_eq(json_integer_value(v), (i == SRV_OIP_LABELS ? labels : sem)[k]);
        }
    }
    json_decref(j);

    /* binary: labels and segments_info, in output order after the header */
    srv_buf_free(&b);
    w.outputs = 1u << SRV_OIP_LABELS | 1u << SRV_OIP_SEGMENTS_INFO | 1u << SRV_OIP_CONFIDENCE;
    w.binary = 1u << SRV_OIP_LABELS | 1u << SRV_OIP_SEGMENTS_INFO;
    w.has_id = 0;
    ck_assert_int_eq(srv_oip_encode(&w, "m1", NULL, &t, &b, &hl), 0);
    ck_assert_uint_eq(b.len, hl + 6 * 4 + 4 + 10);
    j = decode(&b, hl);
    ck_assert_ptr_null(json_object_get(j, "id"));
    outs = json_object_get(j, "outputs");
    ck_assert_int_eq(json_integer_value(json_object_get(
                         json_object_get(json_array_get(outs, 0), "parameters"), "binary_data_size")),
                     24);
    ck_assert_ptr_nonnull(json_object_get(json_array_get(outs, 1), "data")); /* confidence: JSON */
    const unsigned char *p = (const unsigned char *)b.data + hl;
    for (int k = 0; k < 6; k++, p += 4) {
        int32_t v = (int32_t)((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
                              (uint32_t)p[3] << 24);
        ck_assert_int_eq(v, labels[k]);
    }
    ck_assert_mem_eq(p, "\x0a\0\0\0[{\"id\":1}]", 14);
    json_decref(j);
    json_decref(params);
    srv_buf_free(&b);
}
END_TEST

START_TEST(test_output_table)
{
    int defaults = 0;
    for (int i = 0; i < SRV_OIP_N_OUTPUTS; i++)
        defaults += srv_oip_output_default(i);
    ck_assert_int_eq(defaults, 2);
    ck_assert_ptr_null(srv_oip_output_name(SRV_OIP_N_OUTPUTS));
    ck_assert_str_eq(srv_oip_output_name(SRV_OIP_CONFIDENCE), "confidence");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("server/oip");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_json_request);
    tcase_add_test(tc, test_binary_request);
    tcase_add_test(tc, test_errors);
    tcase_add_test(tc, test_encode);
    tcase_add_test(tc, test_output_table);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
