/* safetensors reader/writer: round trips, dtype conversion and every
 * malformed-file error the reader must name. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/err.h"
#include "io/safetensors.h"
#include "testutil.h"

/* Builds a file image: 8-byte length, header text, then `data`. */
static unsigned char *make_file(const char *header, const void *data, size_t data_len, size_t *len)
{
    size_t hl = strlen(header);
    *len = 8 + hl + data_len;
    unsigned char *buf = malloc(*len);
    for (int i = 0; i < 8; i++)
        buf[i] = (unsigned char)((uint64_t)hl >> (8 * i));
    memcpy(buf + 8, header, hl);
    if (data_len)
        memcpy(buf + 8 + hl, data, data_len);
    return buf;
}

static int open_header(const char *header, size_t data_len)
{
    unsigned char data[64] = {0};
    size_t len;
    unsigned char *buf = make_file(header, data, data_len, &len);
    ic_safetensors *st = NULL;
    int rc = ic_st_open_memory(&st, buf, len);
    ic_st_close(&st);
    free(buf);
    return rc;
}

START_TEST(test_roundtrip)
{
    char path[] = "/tmp/ic_st_test_XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    close(fd);
    ic_st_writer *w = NULL;
    ck_assert_int_eq(ic_st_writer_create(&w), 0);
    float a[6] = {1, 2, 3, 4, 5, 6.5f};
    int64_t sa[2] = {2, 3};
    float b[1] = {-7};
    int64_t sb[1] = {1};
    uint8_t c[3] = {9, 8, 7};
    int64_t sc[1] = {3};
    ck_assert_int_eq(ic_st_writer_add_f32(w, "layer.weight", a, 2, sa), 0);
    ck_assert_int_eq(ic_st_writer_add_f32(w, "layer.bias", b, 1, sb), 0);
    ck_assert_int_eq(ic_st_writer_add_raw(w, "bytes", IC_ST_U8, c, 3, 1, sc), 0);
    ck_assert_int_eq(ic_st_writer_add_f32(w, "layer.bias", b, 1, sb), IC_EINVAL); /* duplicate */
    ck_assert_int_eq(ic_st_writer_set_metadata(w, "config", "{\"x\": 1}"), 0);
    ck_assert_int_eq(ic_st_writer_save(w, path), 0);
    ic_st_writer_destroy(&w);
    ck_assert_ptr_null(w);

    ic_safetensors *st = NULL;
    ck_assert_int_eq(ic_st_open(&st, path), 0);
    ck_assert_uint_eq(ic_st_count(st), 3);
    const ic_st_tensor *t = ic_st_find(st, "layer.weight");
    ck_assert_ptr_nonnull(t);
    ck_assert_int_eq(t->ndim, 2);
    ck_assert_int_eq(t->shape[0], 2);
    ck_assert_int_eq(t->shape[1], 3);
    ck_assert_ptr_nonnull(t->f32);
    ck_assert_float_eq(t->f32[5], 6.5f);
    t = ic_st_find(st, "bytes");
    ck_assert_ptr_null(t->f32);
    ck_assert_int_eq(((const uint8_t *)t->raw)[2], 7);
    ck_assert_str_eq(ic_st_metadata(st, "config"), "{\"x\": 1}");
    ck_assert_ptr_null(ic_st_metadata(st, "nope"));
    ck_assert_ptr_null(ic_st_find(st, "nope"));
    ic_st_close(&st);
    unlink(path);
}
END_TEST

START_TEST(test_half_and_bf16)
{
    /* 1.0, -2.0, 0.5 as F16; 1.0, -2.0 as BF16 */
    unsigned char data[] = {0x00, 0x3c, 0x00, 0xc0, 0x00, 0x38, 0x80, 0x3f, 0x00, 0xc0};
    const char *hdr = "{\"h\":{\"dtype\":\"F16\",\"shape\":[3],\"data_offsets\":[0,6]},"
                      "\"b\":{\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":[6,10]}}";
    size_t len;
    unsigned char *buf = make_file(hdr, data, sizeof data, &len);
    ic_safetensors *st = NULL;
    ck_assert_int_eq(ic_st_open_memory(&st, buf, len), 0);
    const ic_st_tensor *h = ic_st_find(st, "h"), *b = ic_st_find(st, "b");
    ck_assert_float_eq(h->f32[0], 1.0f);
    ck_assert_float_eq(h->f32[1], -2.0f);
    ck_assert_float_eq(h->f32[2], 0.5f);
    ck_assert_float_eq(b->f32[0], 1.0f);
    ck_assert_float_eq(b->f32[1], -2.0f);
    ic_st_close(&st);
    free(buf);
}
END_TEST

START_TEST(test_misaligned_f32_is_copied)
{
    float v[2] = {3.25f, -1.5f};
    const char *hdr = "{\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}"; /* odd length */
    size_t len;
    unsigned char *buf = make_file(hdr, v, sizeof v, &len);
    ic_safetensors *st = NULL;
    ck_assert_int_eq(ic_st_open_memory(&st, buf, len), 0);
    ck_assert_float_eq(ic_st_find(st, "x")->f32[0], 3.25f);
    ck_assert_float_eq(ic_st_find(st, "x")->f32[1], -1.5f);
    ic_st_close(&st);
    free(buf);
}
END_TEST

START_TEST(test_python_fixture)
{
    /* Written by tests/golden/gen_safetensors.py, i.e. by an independent writer. */
    ic_safetensors *st = tu_fixture("st_python");
    const ic_st_tensor *t = tu_fixture_tensor(st, "arange");
    ck_assert_int_eq(t->ndim, 3);
    for (size_t i = 0; i < t->numel; i++)
        ck_assert_float_eq(t->f32[i], (float)i * 0.5f);
    t = tu_fixture_tensor(st, "half");
    ck_assert_float_eq(t->f32[1], -2.5f);
    ck_assert_str_eq(ic_st_metadata(st, "purpose"), "test");
    ic_st_close(&st);
}
END_TEST

START_TEST(test_bad_files)
{
    const char *ok = "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}";
    ck_assert_int_eq(open_header(ok, 8), 0);
    /* Each malformed case and the error code it must give. */
    struct {
        const char *hdr;
        size_t data_len;
        int rc;
        const char *msg_part;
    } cases[] = {
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]", 8, IC_EFORMAT, "JSON"},
        {"[1,2]", 0, IC_EFORMAT, "object"},
        {"{\"a\":{\"dtype\":\"F99\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, IC_EUNSUPPORTED, "'a'"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,16]}}", 8, IC_EFORMAT, "past the end"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8, IC_EFORMAT, "'a'"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
         "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
         8, IC_EFORMAT, "overlaps"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8, IC_EFORMAT, "gap"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 8, IC_EFORMAT, "trailing"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", 8, IC_EFORMAT, "shape"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}", 8, IC_EFORMAT, "offsets"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2]}}", 8, IC_EFORMAT, "data_offsets"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[4611686018427387904,4],\"data_offsets\":[0,8]}}", 8,
         IC_EFORMAT, "overflow"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
         "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}",
         8, IC_EFORMAT, "JSON"},
        {"{\"__metadata__\":{\"k\":3}}", 0, IC_EFORMAT, "metadata"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int rc = open_header(cases[i].hdr, cases[i].data_len);
        ck_assert_msg(rc == cases[i].rc, "case %zu: rc %d, want %d (%s)", i, rc, cases[i].rc,
                      ic_error_message());
        ck_assert_msg(strstr(ic_error_message(), cases[i].msg_part) != NULL,
                      "case %zu: message '%s' lacks '%s'", i, ic_error_message(), cases[i].msg_part);
    }
}
END_TEST

START_TEST(test_bad_lengths)
{
    ic_safetensors *st = NULL;
    unsigned char small[4] = {0};
    ck_assert_int_eq(ic_st_open_memory(&st, small, sizeof small), IC_EFORMAT);
    unsigned char huge[16] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, '{', '}'};
    ck_assert_int_eq(ic_st_open_memory(&st, huge, sizeof huge), IC_EFORMAT);
    ck_assert_ptr_nonnull(strstr(ic_error_message(), "limit"));
    unsigned char longer[16] = {100, 0, 0, 0, 0, 0, 0, 0, '{', '}'};
    ck_assert_int_eq(ic_st_open_memory(&st, longer, sizeof longer), IC_EFORMAT);
    ck_assert_ptr_nonnull(strstr(ic_error_message(), "larger than the file"));
    ck_assert_int_eq(ic_st_open(&st, "/nonexistent/file.safetensors"), IC_EIO);
    ck_assert_int_eq(ic_st_open(&st, "/tmp"), IC_EIO);
    ck_assert_ptr_null(st);
}
END_TEST

START_TEST(test_alloc_failures)
{
    const char *hdr = "{\"__metadata__\":{\"k\":\"v\"},"
                      "\"a\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[0,4]}}";
    unsigned char data[4] = {0, 0x3c, 0, 0x3c};
    size_t len;
    unsigned char *buf = make_file(hdr, data, sizeof data, &len);
    for (long k = 0; k < 8; k++) {
        ic_safetensors *st = NULL;
        ic_alloc_fail_after(k);
        int rc = ic_st_open_memory(&st, buf, len);
        ic_alloc_fail_reset();
        ck_assert(rc == 0 || rc == IC_ENOMEM);
        ic_st_close(&st);
    }
    free(buf);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("safetensors");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_roundtrip);
    tcase_add_test(tc, test_half_and_bf16);
    tcase_add_test(tc, test_misaligned_f32_is_copied);
    tcase_add_test(tc, test_python_fixture);
    tcase_add_test(tc, test_bad_files);
    tcase_add_test(tc, test_bad_lengths);
    tcase_add_test(tc, test_alloc_failures);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
