/* Request parsing without a server: options from the form and the query,
 * their defaults and errors, the declared image type, the checks against
 * the uploads, and the option table itself. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "request.h"

static srv_config cfg;
static srv_request r;

static void setup(void)
{
    srv_config_defaults(&cfg);
    srv_request_init(&r, 0);
    ck_assert_int_eq(srv_buf_append(&r.image, "\x89PNG", 4), 0);
}

static void teardown(void)
{
    srv_request_free(&r);
}

/* Parses with the given form and query pairs (NULL-terminated key, value lists). */
static srv_err parse_kv(const char *const *form, const char *const *query, const char *ct,
                        const char *part_type)
{
    srv_kv f[16], q[16];
    size_t nf = 0, nq = 0;
    for (; form && form[2 * nf]; nf++)
        f[nf] = (srv_kv){form[2 * nf], form[2 * nf + 1]};
    for (; query && query[2 * nq]; nq++)
        q[nq] = (srv_kv){query[2 * nq], query[2 * nq + 1]};
    srv_request_args a = {f, nf, q, nq, ct, part_type};
    srv_err e = srv_request_parse(&r, &a, &cfg);
    if (e != SRV_ERR_NONE)
        ck_assert_msg(ic_error_message()[0], "error %s without a message", srv_err_code(e));
    return e;
}

#define FORM(...) ((const char *const[]){__VA_ARGS__, NULL})

START_TEST(test_defaults)
{
    ck_assert_int_eq(parse_kv(NULL, NULL, "image/png", NULL), SRV_ERR_NONE);
    ck_assert_int_eq(r.opts.calib.mode, IC_CALIB_INSTCAL_C); /* cfg.calibration */
    ck_assert_int_eq(r.has_m, 0);
    ck_assert_uint_eq(r.opts.outputs, IC_OUT_PANOPTIC_PNG | IC_OUT_SEMANTIC_PNG);
    ck_assert_int_eq(r.opts.limits.max_pixels, cfg.max_pixels);
    ck_assert_str_eq(r.image_type, "image/png");
    snprintf(cfg.calibration, sizeof cfg.calibration, "tbn");
    ck_assert_int_eq(parse_kv(NULL, NULL, NULL, NULL), SRV_ERR_NONE);
    ck_assert_int_eq(r.opts.calib.mode, IC_CALIB_TBN);
    ck_assert_str_eq(r.image_type, "");
}
END_TEST

START_TEST(test_form_wins_over_query)
{
    ck_assert_int_eq(parse_kv(FORM("calibration", "none"), FORM("calibration", "tbn", "m", "0.25"),
                              "multipart/form-data; boundary=x", "image/jpeg"),
                     SRV_ERR_NONE);
    ck_assert_int_eq(r.opts.calib.mode, IC_CALIB_NONE);
    ck_assert(r.has_m && r.opts.calib.m == 0.25f);
    ck_assert_str_eq(r.image_type, "image/jpeg");
    /* an empty form value counts as absent: the query's value holds */
    ck_assert_int_eq(parse_kv(FORM("calibration", ""), FORM("calibration", "tbn"), NULL, NULL),
                     SRV_ERR_NONE);
    ck_assert_int_eq(r.opts.calib.mode, IC_CALIB_TBN);
    /* unknown query keys are ignored, unknown form fields are not */
    ck_assert_int_eq(parse_kv(NULL, FORM("colour", "red"), NULL, NULL), SRV_ERR_NONE);
    ck_assert_int_eq(parse_kv(FORM("colour", "red"), NULL, NULL, NULL), SRV_ERR_UNKNOWN_FIELD);
    ck_assert_ptr_nonnull(strstr(ic_error_message(), "image, label, label_segments, calibration"));
    /* upload names are fields too (their data is not an option) */
    ck_assert_int_eq(parse_kv(FORM("image", "x"), NULL, NULL, NULL), SRV_ERR_NONE);
}
END_TEST

START_TEST(test_calibration_and_m)
{
    ck_assert_int_eq(parse_kv(FORM("calibration", "bogus"), NULL, NULL, NULL),
                     SRV_ERR_BAD_PARAMETER);
    ck_assert_str_eq(ic_error_message(),
                     "calibration must be one of none, manual, tbn, instcal-u, instcal-c, tent, "
                     "instcal-g, instcal-e");
    ck_assert_int_eq(r.opts.calib.mode, IC_CALIB_COUNT); /* the metrics label says invalid */
    ck_assert_int_eq(parse_kv(FORM("calibration", "manual"), NULL, NULL, NULL),
                     SRV_ERR_BAD_PARAMETER);
    ck_assert_str_eq(ic_error_message(), "calibration=manual needs m");
    ck_assert_int_eq(r.opts.calib.mode, IC_CALIB_MANUAL);
    ck_assert_int_eq(parse_kv(FORM("calibration", "manual", "m", "1"), NULL, NULL, NULL),
                     SRV_ERR_NONE);
    ck_assert(r.opts.calib.m == 1.0f && r.has_m);
    static const char *const bad_m[] = {"1.5", "-0.1", "abc", "0.5x", "nan", "inf", "1e999", " "};
    for (size_t i = 0; i < sizeof bad_m / sizeof bad_m[0]; i++)
        ck_assert_msg(parse_kv(FORM("m", bad_m[i]), NULL, NULL, NULL) == SRV_ERR_BAD_PARAMETER,
                      "m=%s accepted", bad_m[i]);
    cfg.calibration[0] = 'X'; /* a default that is no mode is refused, not used */
    ck_assert_int_eq(parse_kv(NULL, NULL, NULL, NULL), SRV_ERR_BAD_PARAMETER);
}
END_TEST

START_TEST(test_outputs_and_rle)
{
    ck_assert_int_eq(parse_kv(FORM("outputs", "panoptic,rle"), NULL, NULL, NULL), SRV_ERR_NONE);
    ck_assert_uint_eq(r.opts.outputs, IC_OUT_PANOPTIC_PNG | IC_OUT_RLE);
    ck_assert_int_eq(parse_kv(FORM("outputs", "panoptic,rle", "rle", "false"), NULL, NULL, NULL),
                     SRV_ERR_NONE);
    ck_assert_uint_eq(r.opts.outputs, IC_OUT_PANOPTIC_PNG);
    ck_assert_int_eq(parse_kv(FORM("rle", "1"), NULL, NULL, NULL), SRV_ERR_NONE);
    ck_assert_uint_eq(r.opts.outputs, IC_OUT_DEFAULT | IC_OUT_RLE);
    ck_assert_int_eq(parse_kv(NULL, FORM("outputs", "none"), NULL, NULL), SRV_ERR_NONE);
    ck_assert_uint_eq(r.opts.outputs, 0);
    ck_assert_int_eq(parse_kv(NULL, FORM("outputs", "semantic,confidence,overlay"), NULL, NULL),
                     SRV_ERR_NONE);
    ck_assert_uint_eq(r.opts.outputs,
                      IC_OUT_SEMANTIC_PNG | IC_OUT_CONFIDENCE_PNG | IC_OUT_OVERLAY_PNG);
    ck_assert_int_eq(parse_kv(FORM("outputs", "everything"), NULL, NULL, NULL),
                     SRV_ERR_BAD_PARAMETER);
    ck_assert_ptr_nonnull(strstr(ic_error_message(), "unknown output 'everything'"));
    ck_assert_int_eq(parse_kv(FORM("rle", "maybe"), NULL, NULL, NULL), SRV_ERR_BAD_PARAMETER);
}
END_TEST

START_TEST(test_field_lengths)
{
    char longest[128], over[129];
    memset(longest, 'n', sizeof longest - 1);
    longest[sizeof longest - 1] = '\0';
    memset(over, 'n', sizeof over - 1);
    over[sizeof over - 1] = '\0';
    /* outputs takes up to 127 bytes: at the limit the value is parsed (and refused) */
    ck_assert_int_eq(parse_kv(FORM("outputs", longest), NULL, NULL, NULL), SRV_ERR_BAD_PARAMETER);
    ck_assert_int_eq(parse_kv(FORM("outputs", over), NULL, NULL, NULL), SRV_ERR_BAD_FIELD);
    ck_assert_str_eq(ic_error_message(), "field 'outputs' is too long");
    /* the query has no such limit (libmicrohttpd bounds it) */
    ck_assert_int_eq(parse_kv(NULL, FORM("outputs", over), NULL, NULL), SRV_ERR_BAD_PARAMETER);
    ck_assert_int_eq(parse_kv(FORM("calibration", "0123456789012345678901234567890x"), NULL, NULL,
                              NULL),
                     SRV_ERR_BAD_FIELD);
}
END_TEST

START_TEST(test_image_type)
{
    ck_assert_int_eq(parse_kv(NULL, NULL, "IMAGE/PNG; q=1", NULL), SRV_ERR_NONE);
    ck_assert_str_eq(r.image_type, "image/png");
    ck_assert_int_eq(parse_kv(NULL, NULL, "image/jpeg", NULL), SRV_ERR_NONE);
    ck_assert_str_eq(r.image_type, "image/jpeg");
    /* multipart: the image part's own type; an unknown one says nothing */
    ck_assert_int_eq(parse_kv(NULL, NULL, "multipart/form-data; boundary=b", "image/png"),
                     SRV_ERR_NONE);
    ck_assert_str_eq(r.image_type, "image/png");
    ck_assert_int_eq(parse_kv(NULL, NULL, "multipart/form-data; boundary=b",
                              "application/octet-stream"),
                     SRV_ERR_NONE);
    ck_assert_str_eq(r.image_type, "");
    ck_assert_int_eq(srv_request_body_kind("image/jpeg"), SRV_BODY_IMAGE);
    ck_assert_int_eq(srv_request_body_kind("Image/PNG"), SRV_BODY_IMAGE);
    ck_assert_int_eq(srv_request_body_kind("multipart/form-data; boundary=x"), SRV_BODY_MULTIPART);
    ck_assert_int_eq(srv_request_body_kind("multipart/form-datax"), SRV_BODY_UNSUPPORTED);
    ck_assert_int_eq(srv_request_body_kind("image/gif"), SRV_BODY_UNSUPPORTED);
    ck_assert_int_eq(srv_request_body_kind(NULL), SRV_BODY_UNSUPPORTED);
}
END_TEST

START_TEST(test_uploads_checked)
{
    srv_request_free(&r);
    ck_assert_int_eq(parse_kv(FORM("calibration", "tbn"), NULL, NULL, NULL),
                     SRV_ERR_MISSING_IMAGE);
    ck_assert_int_eq(r.opts.calib.mode, IC_CALIB_TBN); /* options were parsed first */
    ck_assert_int_eq(srv_buf_append(srv_request_upload(&r, "image"), "x", 1), 0);
    ck_assert_int_eq(srv_buf_append(srv_request_upload(&r, "label_segments"), "[]", 2), 0);
    ck_assert_int_eq(parse_kv(NULL, NULL, NULL, NULL), SRV_ERR_BAD_PARAMETER);
    ck_assert_int_eq(srv_buf_append(srv_request_upload(&r, "label"), "y", 1), 0);
    ck_assert_int_eq(parse_kv(NULL, NULL, NULL, NULL), SRV_ERR_NONE);
    ck_assert_ptr_null(srv_request_upload(&r, "calibration"));
    srv_request moved;
    srv_request_move(&moved, &r);
    ck_assert_int_eq(moved.image.len, 1);
    ck_assert_int_eq(r.image.len, 0);
    ck_assert_ptr_null(r.image.data);
    srv_request_free(&moved);
}
END_TEST

START_TEST(test_option_table)
{
    for (int o = 0; o < SRV_OPT_COUNT; o++) {
        const char *name = srv_option_name((srv_option)o);
        ck_assert_int_eq(srv_option_find(name), o);
        ck_assert(srv_option_max_len((srv_option)o) <= SRV_OPT_VALUE_MAX);
    }
    ck_assert_int_eq(srv_option_find("image"), SRV_OPT_COUNT);
    ck_assert_str_eq(srv_request_field_names(),
                     "image, label, label_segments, calibration, m, outputs, rle, size");
}
END_TEST

START_TEST(test_size)
{
    ck_assert_int_eq(parse_kv(NULL, NULL, NULL, NULL), SRV_ERR_NONE);
    ck_assert_int_eq(r.opts.size, 0); /* the model's own */
    ck_assert_int_eq(parse_kv(NULL, FORM("size", "64"), NULL, NULL), SRV_ERR_NONE);
    ck_assert_int_eq(r.opts.size, 64);
    ck_assert_int_eq(parse_kv(FORM("size", "1024"), NULL, NULL, NULL), SRV_ERR_NONE);
    ck_assert_int_eq(r.opts.size, 1024);
    static const char *const bad[] = {"31", "1025", "64x", "-5", "1e2", " 64", "99999999999999999999"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ck_assert_msg(parse_kv(NULL, FORM("size", bad[i]), NULL, NULL) == SRV_ERR_BAD_PARAMETER,
                      "size=%s accepted", bad[i]);
        ck_assert_ptr_nonnull(strstr(ic_error_message(), "[32, 1024]"));
    }
    cfg.max_request_size = 2048; /* the config sets the bounds */
    ck_assert_int_eq(parse_kv(NULL, FORM("size", "2000"), NULL, NULL), SRV_ERR_NONE);
    ck_assert_int_eq(r.opts.size, 2000);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("server/request");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_defaults);
    tcase_add_test(tc, test_form_wins_over_query);
    tcase_add_test(tc, test_calibration_and_m);
    tcase_add_test(tc, test_outputs_and_rle);
    tcase_add_test(tc, test_field_lengths);
    tcase_add_test(tc, test_image_type);
    tcase_add_test(tc, test_uploads_checked);
    tcase_add_test(tc, test_option_table);
    tcase_add_test(tc, test_size);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
