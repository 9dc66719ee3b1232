/* The job queue: bounded, FIFO, deadline extraction, close semantics and
 * cross-thread wake-ups. */
#include <check.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>

#include "base/err.h"
#include "queue.h"

static int items[8];

START_TEST(test_bounded_fifo)
{
    srv_queue *q;
    ck_assert_int_eq(srv_queue_create(0, &q), IC_EINVAL);
    ck_assert_int_eq(srv_queue_create(2, &q), 0);
    int64_t far = srv_clock_ns() + 1000000000000LL;
    ck_assert_int_eq(srv_queue_push(q, &items[0], far), 0);
    ck_assert_int_eq(srv_queue_push(q, &items[1], far), 0);
    ck_assert_int_eq(srv_queue_push(q, &items[2], far), IC_ELIMIT);
    ck_assert_int_eq(srv_queue_size(q), 2);
    ck_assert_int_eq(srv_queue_capacity(q), 2);
    void *it;
    int64_t enq, dl;
    ck_assert_int_eq(srv_queue_pop(q, &it, &enq, &dl), 0);
    ck_assert_ptr_eq(it, &items[0]);
    ck_assert(enq <= srv_clock_ns());
    ck_assert(dl == far);
    /* Wrap-around keeps the order. */
    ck_assert_int_eq(srv_queue_push(q, &items[3], far), 0);
    ck_assert_int_eq(srv_queue_pop(q, &it, NULL, NULL), 0);
    ck_assert_ptr_eq(it, &items[1]);
    ck_assert_int_eq(srv_queue_pop(q, &it, NULL, NULL), 0);
    ck_assert_ptr_eq(it, &items[3]);
    srv_queue_destroy(&q);
    ck_assert_ptr_null(q);
}
END_TEST

START_TEST(test_expired_are_taken_in_order)
{
    srv_queue *q;
    ck_assert_int_eq(srv_queue_create(8, &q), 0);
    int64_t now = srv_clock_ns();
    srv_queue_push(q, &items[0], now - 1);
    srv_queue_push(q, &items[1], now + 1000000000000LL);
    srv_queue_push(q, &items[2], now - 5);
    srv_queue_push(q, &items[3], now + 1000000000000LL);
    void *out[8];
    ck_assert_int_eq(srv_queue_take_expired(q, now, out, 8), 2);
    ck_assert_ptr_eq(out[0], &items[0]);
    ck_assert_ptr_eq(out[1], &items[2]);
    ck_assert_int_eq(srv_queue_size(q), 2);
    ck_assert_int_eq(srv_queue_take_expired(q, now, out, 8), 0);
    void *it;
    ck_assert_int_eq(srv_queue_pop(q, &it, NULL, NULL), 0);
    ck_assert_ptr_eq(it, &items[1]);
    ck_assert_int_eq(srv_queue_take_all(q, out, 8), 1);
    ck_assert_ptr_eq(out[0], &items[3]);
    ck_assert_int_eq(srv_queue_size(q), 0);
    /* max limits how many are taken; the rest stay. */
    srv_queue_push(q, &items[4], now - 1);
    srv_queue_push(q, &items[5], now - 1);
    ck_assert_int_eq(srv_queue_take_expired(q, now, out, 1), 1);
    ck_assert_ptr_eq(out[0], &items[4]);
    ck_assert_int_eq(srv_queue_size(q), 1);
    srv_queue_destroy(&q);
}
END_TEST

static void *popper(void *arg)
{
    srv_queue *q = arg;
    void *it = NULL;
    int rc = srv_queue_pop(q, &it, NULL, NULL);
    return rc == 0 ? it : (void *)(intptr_t)-1;
}

START_TEST(test_close_and_wakeups)
{
    srv_queue *q;
    ck_assert_int_eq(srv_queue_create(4, &q), 0);
    pthread_t t;
    pthread_create(&t, NULL, popper, q);
    srv_queue_push(q, &items[6], srv_clock_ns() + 1000000000LL);
    void *got;
    pthread_join(t, &got);
    ck_assert_ptr_eq(got, &items[6]);

    pthread_create(&t, NULL, popper, q);
    srv_queue_close(q);
    pthread_join(t, &got);
    ck_assert_ptr_eq(got, (void *)(intptr_t)-1);
    ck_assert_int_eq(srv_queue_push(q, &items[0], 0), IC_ESTATE);
    srv_queue_destroy(&q);

    /* Items queued before close are still handed out. */
    ck_assert_int_eq(srv_queue_create(4, &q), 0);
    srv_queue_push(q, &items[1], 0);
    srv_queue_close(q);
    void *it;
    ck_assert_int_eq(srv_queue_pop(q, &it, NULL, NULL), 0);
    ck_assert_int_eq(srv_queue_pop(q, &it, NULL, NULL), IC_ESTATE);
    srv_queue_destroy(&q);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("server/queue");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_bounded_fifo);
    tcase_add_test(tc, test_expired_are_taken_in_order);
    tcase_add_test(tc, test_close_and_wakeups);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
