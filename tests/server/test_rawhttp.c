/* Raw responses: the exact message bytes, and that they really go out on a
 * socket (a socketpair) without blocking. */
#include <check.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "rawhttp.h"
#include "server.h"

START_TEST(test_format_error)
{
    srv_buf b;
    srv_buf_init(&b, 0);
    ck_assert_int_eq(srv_raw_format_error(&b, SRV_ERR_REQUEST_TIMEOUT, "too slow", "id-1", 0), 0);
    const char *body = "{\"error\":{\"code\":\"request_timeout\",\"message\":\"too slow\"}}";
    ck_assert_msg(strncmp(b.data, "HTTP/1.1 408 Request Timeout\r\n", 30) == 0, "%s", b.data);
    ck_assert_ptr_nonnull(strstr(b.data, "\r\nConnection: close\r\n"));
    ck_assert_ptr_nonnull(strstr(b.data, "\r\nContent-Type: application/json\r\n"));
    ck_assert_ptr_nonnull(strstr(b.data, "\r\nX-Request-Id: id-1\r\n"));
    ck_assert_ptr_null(strstr(b.data, "Retry-After"));
    char cl[64];
    snprintf(cl, sizeof cl, "\r\nContent-Length: %zu\r\n", strlen(body));
    ck_assert_ptr_nonnull(strstr(b.data, cl));
    const char *end = strstr(b.data, "\r\n\r\n");
    ck_assert_ptr_nonnull(end);
    ck_assert_str_eq(end + 4, body);
    srv_buf_free(&b);

    ck_assert_int_eq(srv_raw_format_error(&b, SRV_ERR_TOO_MANY_CONNECTIONS, "busy", "", 3), 0);
    ck_assert(strncmp(b.data, "HTTP/1.1 503 Service Unavailable\r\n", 34) == 0);
    ck_assert_ptr_nonnull(strstr(b.data, "\r\nRetry-After: 3\r\n"));
    ck_assert_ptr_null(strstr(b.data, "X-Request-Id")); /* no id: no header */
    srv_buf_free(&b);

    srv_reply f = {.status = 200, .file_fd = 3};
    ck_assert_int_ne(srv_raw_format(&b, &f, ""), 0); /* files are not for raw replies */
    srv_buf_free(&b);
}
END_TEST

START_TEST(test_send_does_not_block)
{
    int sv[2];
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    ck_assert_int_eq(srv_raw_send_error(sv[0], SRV_ERR_BAD_FRAMING, "two lengths", "x", 0), 1);
    char buf[1024];
    ssize_t n = read(sv[1], buf, sizeof buf - 1);
    ck_assert_int_gt(n, 0);
    buf[n] = '\0';
    ck_assert(strncmp(buf, "HTTP/1.1 400 Bad Request\r\n", 26) == 0);
    ck_assert_ptr_nonnull(strstr(buf, "\"code\":\"bad_framing\""));
    /* A full socket takes part of a large message, and the call returns. */
    size_t big = 8 << 20;
    char *data = calloc(1, big);
    size_t sent = srv_raw_send(sv[0], data, big);
    ck_assert_uint_lt(sent, big);
    free(data);
    close(sv[1]);
    ck_assert_uint_eq(srv_raw_send(sv[0], "x", 1), 0); /* peer gone: no SIGPIPE, 0 */
    close(sv[0]);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("server/rawhttp");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_format_error);
    tcase_add_test(tc, test_send_does_not_block);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
