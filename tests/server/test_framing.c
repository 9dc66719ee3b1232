/* Request framing (RFC 9112 6.1-6.3) and the query limits. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "framing.h"

static srv_err check(const char *n1, const char *v1, const char *n2, const char *v2)
{
    srv_header h[3] = {{"Host", "x"}, {n1, v1}, {n2, v2}};
    const char *why = NULL;
    srv_err e = srv_framing_check(h, n2 ? 3 : n1 ? 2 : 1, &why);
    ck_assert(e == SRV_ERR_NONE || (why && why[0]));
    return e;
}

START_TEST(test_content_length)
{
    ck_assert_int_eq(check(NULL, NULL, NULL, NULL), SRV_ERR_NONE);
    ck_assert_int_eq(check("Content-Length", "790", NULL, NULL), SRV_ERR_NONE);
    ck_assert_int_eq(check("content-length", " 0 ", NULL, NULL), SRV_ERR_NONE);
    ck_assert_int_eq(check("Content-Length", "790", "Content-Length", "790"), SRV_ERR_NONE);
    ck_assert_int_eq(check("Content-Length", "790, 790", NULL, NULL), SRV_ERR_NONE);
    ck_assert_int_eq(check("Content-Length", "790", "Content-Length", "795"), SRV_ERR_BAD_FRAMING);
    ck_assert_int_eq(check("Content-Length", "790, 795", NULL, NULL), SRV_ERR_BAD_FRAMING);
    const char *bad[] = {"", "abc", "-1", "+790", "0x316", "79 0", "7,", ",7", "1e3",
                         "99999999999999999999999"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ck_assert_msg(check("Content-Length", bad[i], NULL, NULL) == SRV_ERR_BAD_FRAMING, "'%s'",
                      bad[i]);
}
END_TEST

START_TEST(test_transfer_encoding)
{
    ck_assert_int_eq(check("Transfer-Encoding", "chunked", NULL, NULL), SRV_ERR_NONE);
    ck_assert_int_eq(check("Transfer-Encoding", "Chunked", NULL, NULL), SRV_ERR_NONE);
    ck_assert_int_eq(check("Transfer-Encoding", " chunked ", NULL, NULL), SRV_ERR_NONE);
    /* Both framings: the smuggling set-up. */
    ck_assert_int_eq(check("Content-Length", "5", "Transfer-Encoding", "chunked"),
                     SRV_ERR_BAD_FRAMING);
    ck_assert_int_eq(check("Transfer-Encoding", "chunked", "Content-Length", "5"),
                     SRV_ERR_BAD_FRAMING);
    /* A coding before chunked that we do not decode. */
    ck_assert_int_eq(check("Transfer-Encoding", "gzip, chunked", NULL, NULL),
                     SRV_ERR_NOT_IMPLEMENTED);
    ck_assert_int_eq(check("Transfer-Encoding", "gzip", "Transfer-Encoding", "chunked"),
                     SRV_ERR_NOT_IMPLEMENTED);
    /* chunked not final, twice, or missing: the length is unknowable. */
    ck_assert_int_eq(check("Transfer-Encoding", "gzip", NULL, NULL), SRV_ERR_BAD_FRAMING);
    ck_assert_int_eq(check("Transfer-Encoding", "chunked, gzip", NULL, NULL), SRV_ERR_BAD_FRAMING);
    ck_assert_int_eq(check("Transfer-Encoding", "chunked, chunked", NULL, NULL),
                     SRV_ERR_BAD_FRAMING);
    ck_assert_int_eq(check("Transfer-Encoding", "chunked", "Transfer-Encoding", "chunked"),
                     SRV_ERR_BAD_FRAMING);
    ck_assert_int_eq(check("Transfer-Encoding", "", NULL, NULL), SRV_ERR_BAD_FRAMING);
    ck_assert_int_eq(check("Transfer-Encoding", "xchunked", NULL, NULL), SRV_ERR_BAD_FRAMING);
}
END_TEST

START_TEST(test_query_limits)
{
    ck_assert_int_eq(srv_query_too_big("/healthz"), 0);
    ck_assert_int_eq(srv_query_too_big(NULL), 0);
    ck_assert_int_eq(srv_query_too_big("/v1/segment?calibration=tbn&m=0.5&outputs=none"), 0);
    char *u = malloc(40000);
    strcpy(u, "/x?");
    for (int i = 0; i < SRV_QUERY_MAX_PARAMS - 1; i++)
        strcat(u, "a&");
    strcat(u, "a");
    ck_assert_int_eq(srv_query_too_big(u), 0); /* exactly the limit */
    strcat(u, "&b");
    ck_assert_int_eq(srv_query_too_big(u), 1);
    strcpy(u, "/x?v=");
    memset(u + 5, 'a', SRV_QUERY_MAX_BYTES - 2);
    u[5 + SRV_QUERY_MAX_BYTES - 2] = '\0';
    ck_assert_int_eq(srv_query_too_big(u), 0); /* 8192 bytes after '?' */
    strcat(u, "a");
    ck_assert_int_eq(srv_query_too_big(u), 1);
    free(u);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("server/framing");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_content_length);
    tcase_add_test(tc, test_transfer_encoding);
    tcase_add_test(tc, test_query_limits);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
