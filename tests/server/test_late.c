/* The late sender: a message larger than the socket buffer still arrives
 * whole after the caller closed its descriptor, and a reader that never
 * reads costs the sender only its deadline. */
#include <check.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "late.h"

static srv_buf message(size_t n)
{
    srv_buf b;
    srv_buf_init(&b, 0);
    for (size_t i = 0; i < n; i++) {
        char c = (char)('a' + i % 26);
        srv_buf_append(&b, &c, 1);
    }
    return b;
}

START_TEST(test_small_goes_at_once)
{
    srv_late *l;
    ck_assert_int_eq(srv_late_create(2000000000, &l), 0);
    int sv[2];
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    srv_buf m = message(100);
    ck_assert_int_eq(srv_late_send(l, sv[0], &m), 1);
    ck_assert_ptr_null(m.data);
    close(sv[0]);
    char buf[200];
    ck_assert_int_eq(read(sv[1], buf, sizeof buf), 100);
    ck_assert_int_eq(read(sv[1], buf, sizeof buf), 0);
    close(sv[1]);
    srv_late_destroy(&l);
    ck_assert_ptr_null(l);
}
END_TEST

START_TEST(test_large_arrives_whole_after_close)
{
    srv_late *l;
    ck_assert_int_eq(srv_late_create(5000000000, &l), 0);
    int sv[2];
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    size_t n = 6 << 20;
    srv_buf m = message(n);
    ck_assert_int_eq(srv_late_send(l, sv[0], &m), 0); /* too big for the buffer: pending */
    close(sv[0]); /* the HTTP layer lets go at once; the dup keeps the socket */
    ck_assert_int_eq(srv_late_pending(l), 1);
    char *got = malloc(n + 1);
    size_t have = 0;
    ssize_t r;
    while ((r = read(sv[1], got + have, n + 1 - have)) > 0)
        have += (size_t)r;
    ck_assert_uint_eq(have, n);
    for (size_t i = 0; i < n; i += 4099)
        ck_assert_int_eq(got[i], 'a' + (int)(i % 26));
    free(got);
    close(sv[1]);
    srv_late_destroy(&l);
}
END_TEST

START_TEST(test_deadline_for_a_reader_that_never_reads)
{
    srv_late *l;
    ck_assert_int_eq(srv_late_create(300000000, &l), 0); /* 0.3 s */
    int sv[2];
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    srv_buf m = message(6 << 20);
    ck_assert_int_eq(srv_late_send(l, sv[0], &m), 0);
    close(sv[0]);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    double dt = 0;
    while (srv_late_pending(l) && dt < 5) {
        struct timespec ts = {0, 20000000};
        nanosleep(&ts, NULL);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        dt = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-9;
    }
    ck_assert_int_eq(srv_late_pending(l), 0);
    ck_assert_msg(dt > 0.2 && dt < 2.0, "gave up after %.2f s", dt);
    close(sv[1]);
    srv_late_destroy(&l);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("server/late");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_small_goes_at_once);
    tcase_add_test(tc, test_large_arrives_whole_after_close);
    tcase_add_test(tc, test_deadline_for_a_reader_that_never_reads);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
