/* Connections per address: the cap, the table bound, and deletion that
 * keeps every other address findable (backward shift in long probe chains). */
#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "addr_count.h"

static srv_addr v4(unsigned a)
{
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(a);
    return srv_addr_of((struct sockaddr *)&sa);
}

START_TEST(test_cap_per_address)
{
    srv_addr_count *t = srv_addr_count_create(8);
    ck_assert_ptr_nonnull(t);
    srv_addr a = v4(0x7f000001), b = v4(0x7f000002);
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(srv_addr_count_take(t, &a, 3), 1);
    ck_assert_int_eq(srv_addr_count_take(t, &a, 3), 0); /* over the cap */
    ck_assert_int_eq(srv_addr_count_take(t, &b, 3), 1); /* another address is not */
    ck_assert_int_eq(srv_addr_count_get(t, &a), 3);
    srv_addr_count_give(t, &a);
    ck_assert_int_eq(srv_addr_count_take(t, &a, 3), 1);
    ck_assert_int_eq(srv_addr_count_take(t, &a, 0), 1); /* cap 0: none */
    ck_assert_int_eq(srv_addr_count_get(t, &a), 4);
    srv_addr_count_destroy(t);
}
END_TEST

START_TEST(test_ipv4_and_ipv6_keys)
{
    struct sockaddr_in6 s6;
    memset(&s6, 0, sizeof s6);
    s6.sin6_family = AF_INET6;
    inet_pton(AF_INET6, "::ffff:127.0.0.1", &s6.sin6_addr);
    srv_addr m = srv_addr_of((struct sockaddr *)&s6), a = v4(0x7f000001);
    ck_assert_int_eq(memcmp(&m, &a, sizeof m), 0); /* a mapped address is the IPv4 one */
    inet_pton(AF_INET6, "2001:db8::1", &s6.sin6_addr);
    srv_addr x = srv_addr_of((struct sockaddr *)&s6);
    ck_assert_int_ne(memcmp(&x, &a, sizeof x), 0);
    srv_addr z = srv_addr_of(NULL), zero;
    memset(&zero, 0, sizeof zero);
    ck_assert_int_eq(memcmp(&z, &zero, sizeof z), 0);
}
END_TEST

START_TEST(test_many_addresses_and_deletions)
{
    /* 200 addresses with 1..3 connections each, then the odd ones leave in
     * a scrambled order: every remaining count must still be found. */
    enum { N = 200 };
    srv_addr_count *t = srv_addr_count_create(N);
    srv_addr a[N];
    for (int i = 0; i < N; i++) {
        a[i] = v4(0x0a000000u + (unsigned)i * 7919u);
        for (int k = 0; k <= i % 3; k++)
            ck_assert_int_eq(srv_addr_count_take(t, &a[i], 0), 1);
    }
    srv_addr extra = v4(0xc0a80001);
    ck_assert_int_eq(srv_addr_count_take(t, &extra, 0), 0); /* the table holds N addresses */
    for (int s = 0; s < N; s++) {
        int i = (s * 37) % N;
        if (i % 2)
            for (int k = 0; k <= i % 3; k++)
                srv_addr_count_give(t, &a[i]);
    }
    for (int i = 0; i < N; i++)
        ck_assert_int_eq(srv_addr_count_get(t, &a[i]), i % 2 ? 0 : i % 3 + 1);
    ck_assert_int_eq(srv_addr_count_take(t, &extra, 0), 1); /* room again */
    srv_addr_count_give(t, &extra);
    srv_addr_count_give(t, &extra); /* one too many: ignored */
    ck_assert_int_eq(srv_addr_count_get(t, &extra), 0);
    srv_addr_count_destroy(t);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("server/addr_count");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_cap_per_address);
    tcase_add_test(tc, test_ipv4_and_ipv6_keys);
    tcase_add_test(tc, test_many_addresses_and_deletions);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
