#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/arena.h"
#include "base/err.h"

START_TEST(test_alignment_and_reuse)
{
    ic_arena a;
    ic_arena_init(&a, 4096, 0);
    for (int round = 0; round < 3; round++) {
        for (int i = 1; i < 200; i++) {
            unsigned char *p = ic_arena_alloc(&a, (size_t)i * 7);
            ck_assert_ptr_nonnull(p);
            ck_assert_uint_eq((uintptr_t)p % 64, 0);
            memset(p, i, (size_t)i * 7); /* ASan catches overlap/overflow */
        }
        unsigned long blocks = a.n_block_allocs;
        ic_arena_reset(&a);
        if (round > 0) /* steady state: the same work allocates no new block */
            ck_assert_uint_eq(a.n_block_allocs, blocks);
        ck_assert_uint_eq(ic_arena_used(&a), 0);
    }
    ic_arena_deinit(&a);
}
END_TEST

START_TEST(test_steady_state_allocates_nothing)
{
    ic_arena a;
    ic_arena_init(&a, 1024, 0);
    size_t sizes[] = {100, 5000, 30, 70000, 10};
    for (int round = 0; round < 4; round++) {
        for (size_t i = 0; i < 5; i++)
            ck_assert_ptr_nonnull(ic_arena_alloc(&a, sizes[i]));
        ic_arena_reset(&a);
    }
    unsigned long before = a.n_block_allocs;
    for (size_t i = 0; i < 5; i++)
        ck_assert_ptr_nonnull(ic_arena_alloc(&a, sizes[i]));
    ck_assert_uint_eq(a.n_block_allocs, before);
    ic_arena_deinit(&a);
}
END_TEST

/* After one large request the blocks it added go back; the steady state
 * of the small requests stays allocation-free. */
START_TEST(test_shrink_after_large)
{
    ic_arena a;
    ic_arena_init(&a, 4096, 0);
    for (int i = 0; i < 3; i++)
        memset(ic_arena_alloc(&a, 3000), 1, 3000); /* 3 blocks of 4096 */
    ic_arena_reset(&a);
    size_t small = a.reserved;
    ck_assert_uint_eq(small, 3 * 4096);
    unsigned char *big = ic_arena_alloc(&a, (size_t)1 << 20);
    ck_assert_ptr_nonnull(big);
    memset(big, 2, (size_t)1 << 20);
    ck_assert_uint_gt(a.reserved, small);
    /* Within budget: nothing to give back. */
    ck_assert_uint_eq(ic_arena_shrink(&a, a.reserved), 0);
    ck_assert_uint_eq(ic_arena_shrink(&a, small), ((size_t)1 << 20));
    ck_assert_uint_eq(a.reserved, small);
    ck_assert_uint_eq(ic_arena_used(&a), 0);
    unsigned long blocks = a.n_block_allocs;
    for (int i = 0; i < 3; i++)
        memset(ic_arena_alloc(&a, 3000), 3, 3000);
    ck_assert_uint_eq(a.n_block_allocs, blocks);
    /* A budget between block sizes keeps what fits, frees the rest. */
    ck_assert_uint_eq(ic_arena_shrink(&a, 2 * 4096 + 100), 4096);
    ck_assert_uint_eq(a.reserved, 2 * 4096);
    /* Zero frees everything; the arena still works afterwards. */
    ck_assert_uint_eq(ic_arena_shrink(&a, 0), 2 * 4096);
    ck_assert_ptr_null(a.first);
    ck_assert_uint_eq(a.reserved, 0);
    memset(ic_arena_alloc(&a, 100), 4, 100);
    ck_assert_uint_eq(a.reserved, 4096);
    ic_arena_deinit(&a);
}
END_TEST

START_TEST(test_mark_rewind)
{
    ic_arena a;
    ic_arena_init(&a, 256, 0);
    ck_assert_ptr_nonnull(ic_arena_alloc(&a, 100));
    ic_arena_mark m = ic_arena_get_mark(&a);
    size_t used = ic_arena_used(&a);
    void *p = ic_arena_alloc(&a, 1000);
    ck_assert_ptr_nonnull(p);
    ic_arena_rewind(&a, m);
    ck_assert_uint_eq(ic_arena_used(&a), used);
    void *q = ic_arena_alloc(&a, 1000);
    ck_assert_ptr_eq(p, q); /* the same memory comes back */
    ic_arena_deinit(&a);
}
END_TEST

START_TEST(test_cap_and_failures)
{
    ic_arena a;
    ic_arena_init(&a, 1024, 4096);
    ck_assert_ptr_nonnull(ic_arena_alloc(&a, 1000));
    ck_assert_ptr_null(ic_arena_alloc(&a, 8192));
    ck_assert_int_eq(ic_error_code(), IC_ENOMEM);
    ck_assert_ptr_null(ic_arena_alloc(&a, SIZE_MAX));
    ck_assert_ptr_null(ic_arena_calloc(&a, SIZE_MAX / 2, 4));
    ic_arena_deinit(&a);

    ic_arena_init(&a, 1024, 0);
    ic_alloc_fail_after(0);
    ck_assert_ptr_null(ic_arena_alloc(&a, 10));
    ic_alloc_fail_reset();
    ck_assert_ptr_nonnull(ic_arena_alloc(&a, 10));
    ic_arena_deinit(&a);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("arena");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_alignment_and_reuse);
    tcase_add_test(tc, test_steady_state_allocates_nothing);
    tcase_add_test(tc, test_shrink_after_large);
    tcase_add_test(tc, test_mark_rewind);
    tcase_add_test(tc, test_cap_and_failures);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
