/* The API error table: codes are unique and well formed, engine errors map
 * to the documented responses, and docs/api.md carries exactly the table
 * that srv_api_error_table_md() renders (between its two markers). */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_error.h"
#include "backend.h"
#include "base/alloc.h"
#include "base/err.h"
#include "testutil.h"

#define BEGIN_MARK "<!-- api-errors: generated from server/api_error.h -->\n"
#define END_MARK "<!-- api-errors: end -->\n"

START_TEST(test_codes_unique_and_well_formed)
{
    ck_assert_int_eq(srv_err_status(SRV_ERR_NONE), 200);
    ck_assert_str_eq(srv_err_code(SRV_ERR_NONE), "");
    for (int a = 1; a < SRV_ERR_COUNT; a++) {
        const char *code = srv_err_code((srv_err)a);
        int st = srv_err_status((srv_err)a);
        ck_assert_msg(st >= 400 && st < 600, "%s: status %d", code, st);
        ck_assert_msg(code[0] && strspn(code, "abcdefghijklmnopqrstuvwxyz_") == strlen(code),
                      "code '%s'", code);
        for (int b = a + 1; b < SRV_ERR_COUNT; b++)
            ck_assert_msg(strcmp(code, srv_err_code((srv_err)b)) != 0, "'%s' twice", code);
    }
    ck_assert_int_eq(srv_err_status(SRV_ERR_COUNT), 500); /* out of range: internal */
}
END_TEST

START_TEST(test_engine_mapping)
{
    static const struct {
        int rc, label;
        const char *code;
        int status;
    } want[] = {
        {IC_EFORMAT, 0, "bad_image", 400},       {IC_EFORMAT, 1, "bad_label", 400},
        {IC_ESHAPE, 0, "bad_image", 400},        {IC_ESHAPE, 1, "bad_label", 400},
        {IC_EUNSUPPORTED, 0, "unsupported_image", 415},
        {IC_EUNSUPPORTED, 1, "bad_label", 400},  {IC_ELIMIT, 0, "too_large", 413},
        {IC_ELIMIT, 1, "too_large", 413},        {IC_EINVAL, 0, "bad_parameter", 400},
        {IC_ENOMEM, 0, "out_of_memory", 503},    {IC_EIO, 0, "internal", 500},
        {IC_ESTATE, 1, "internal", 500},         {IC_ENOTFOUND, 0, "internal", 500},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        srv_err e = srv_err_from_engine(want[i].rc, want[i].label);
        ck_assert_msg(strcmp(srv_err_code(e), want[i].code) == 0 &&
                          srv_err_status(e) == want[i].status,
                      "%s label=%d: %d %s", ic_err_name(want[i].rc), want[i].label,
                      srv_err_status(e), srv_err_code(e));
    }
    srv_result res;
    memset(&res, 0, sizeof res);
    ic_error_set(IC_ENOMEM, "arena cap");
    srv_result_engine_error(&res, IC_ENOMEM, "label");
    ck_assert_int_eq(res.err, SRV_ERR_OUT_OF_MEMORY);
    ck_assert_str_eq(res.message, "not enough memory for this label: arena cap");
    ic_error_clear();
    srv_result_engine_error(&res, IC_EIO, "image");
    ck_assert_str_eq(res.message, "inference failed");
}
END_TEST

static char *read_text(const char *path)
{
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "cannot open %s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    ck_assert_ptr_nonnull(s);
    ck_assert_int_eq(fread(s, 1, (size_t)n, f), (size_t)n);
    s[n] = '\0';
    fclose(f);
    return s;
}

START_TEST(test_docs_table_matches)
{
    char *doc = read_text(tu_path("../docs/api.md"));
    const char *a = strstr(doc, BEGIN_MARK), *b = a ? strstr(a, END_MARK) : NULL;
    ck_assert_msg(a && b, "docs/api.md lacks the markers %s and %s", BEGIN_MARK, END_MARK);
    a += strlen(BEGIN_MARK);
    srv_buf want;
    srv_buf_init(&want, 0);
    ck_assert_int_eq(srv_api_error_table_md(&want), 0);
    int same = (size_t)(b - a) == want.len && memcmp(a, want.data, want.len) == 0;
    if (!same)
        fprintf(stderr, "docs/api.md's error table differs from server/api_error.h; put this "
                        "between the markers:\n%s",
                want.data);
    ck_assert_msg(same, "docs/api.md's error table is out of date");
    srv_buf_free(&want);
    free(doc);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("server/api_error");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_codes_unique_and_well_formed);
    tcase_add_test(tc, test_engine_mapping);
    tcase_add_test(tc, test_docs_table_matches);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
