/* The close delimiter of a multipart body, fed whole and byte by byte. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "multipart_end.h"

/* Feeds body in pieces of `step` bytes; returns how many were kept. */
static size_t kept(const char *ct, const char *body, size_t step)
{
    srv_mp_end st;
    ck_assert_int_eq(srv_mp_end_init(&st, ct), 0);
    size_t n = strlen(body), keep = 0;
    for (size_t i = 0; i < n; i += step) {
        size_t len = i + step <= n ? step : n - i;
        size_t k = srv_mp_end_feed(&st, body + i, len);
        ck_assert_uint_le(k, len);
        keep += k;
        if (k < len) /* everything after the end is dropped */
            ck_assert_uint_eq(srv_mp_end_feed(&st, body + i + k, len - k), 0);
    }
    return keep;
}

START_TEST(test_epilogue_cut)
{
    const char *form = "--XyZ\r\nContent-Disposition: form-data; name=\"m\"\r\n\r\n0.5\r\n--XyZ--";
    char body[512];
    snprintf(body, sizeof body, "%s\r\nthe epilogue, with --XyZ-- again\r\n", form);
    for (size_t step = 1; step <= strlen(body); step++) {
        ck_assert_uint_eq(kept("multipart/form-data; boundary=XyZ", body, step), strlen(form));
        ck_assert_uint_eq(kept("multipart/form-data; boundary=\"XyZ\"; x=1", body, step),
                          strlen(form));
    }
    /* No epilogue: everything is kept. */
    ck_assert_uint_eq(kept("multipart/form-data;boundary=XyZ", form, 7), strlen(form));
}
END_TEST

START_TEST(test_only_the_close_delimiter_ends)
{
    /* A part delimiter, a look-alike in the content (not after CRLF) and a
     * near miss across chunk ends do not end the body. */
    const char *body = "--ab\r\nContent-Disposition: form-data; name=\"x\"\r\n\r\nx--ab--\r\n-ab--"
                       "\r\n--aab--\r\n--ab\r\nContent-Disposition: form-data; name=\"y\"\r\n\r\n"
                       "y\r\n--ab--";
    for (size_t step = 1; step < 20; step++)
        ck_assert_uint_eq(kept("multipart/form-data; boundary=ab", body, step), strlen(body));
    /* The close delimiter at the very start (a form without parts). */
    ck_assert_uint_eq(kept("multipart/form-data; boundary=ab", "--ab--\r\nrest", 3), 6);
}
END_TEST

START_TEST(test_no_boundary)
{
    srv_mp_end st;
    ck_assert_int_eq(srv_mp_end_init(&st, "multipart/form-data"), -1);
    ck_assert_int_eq(srv_mp_end_init(&st, "multipart/form-data; boundary="), -1);
    ck_assert_int_eq(srv_mp_end_init(&st, NULL), -1);
    char ct[128];
    snprintf(ct, sizeof ct, "multipart/form-data; boundary=%071d", 0);
    ck_assert_int_eq(srv_mp_end_init(&st, ct), -1); /* 71 characters */
    snprintf(ct, sizeof ct, "multipart/form-data; boundary=%070d", 0);
    ck_assert_int_eq(srv_mp_end_init(&st, ct), 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("server/multipart_end");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_epilogue_cut);
    tcase_add_test(tc, test_only_the_close_delimiter_ends);
    tcase_add_test(tc, test_no_boundary);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
