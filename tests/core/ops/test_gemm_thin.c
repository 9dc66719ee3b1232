/* The thin-K product against plain loops on random shapes: every edge of
 * the register blocking (rows not a multiple of the block, columns past the
 * last full pair of vectors, K = 0 and 1), leading dimensions wider than
 * the rows, with and without bias and ReLU; and cells outside C untouched. */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "ops/gemm_thin.h"
#include "testutil.h"

#define RANDOM_CASES 80
#define GUARD 12345.0f

START_TEST(test_random_shapes)
{
    uint64_t rng = 0x7171;
    for (int t = 0; t < RANDOM_CASES; t++) {
        const int m = tu_rand_int(&rng, 1, 19), n = tu_rand_int(&rng, 1, 150);
        const int k = t < 4 ? t % 2 : tu_rand_int(&rng, 2, 40);
        const int lda = k + tu_rand_int(&rng, 0, 3), ldb = n + tu_rand_int(&rng, 0, 5);
        const int ldc = n + tu_rand_int(&rng, 0, 5), relu = tu_rand_int(&rng, 0, 1);
        const int with_bias = tu_rand_int(&rng, 0, 1);
        float *a = malloc(sizeof(float) * (size_t)m * (lda ? lda : 1));
        float *b = malloc(sizeof(float) * (size_t)(k ? k : 1) * ldb);
        float *bias = malloc(sizeof(float) * (size_t)m);
        float *c = malloc(sizeof(float) * (size_t)m * ldc);
        float *want = malloc(sizeof(float) * (size_t)m * ldc);
        ck_assert(a && b && bias && c && want);
        tu_rand_fill(a, (size_t)m * (lda ? lda : 1), &rng, -1.0f, 1.0f);
        tu_rand_fill(b, (size_t)(k ? k : 1) * ldb, &rng, -1.0f, 1.0f);
        tu_rand_fill(bias, (size_t)m, &rng, -1.0f, 1.0f);
        for (size_t i = 0; i < (size_t)m * ldc; i++)
            c[i] = want[i] = GUARD;
        const float *bp = with_bias ? bias : NULL;
        ic_gemm_thin(m, n, k, a, lda, b, ldb, bp, relu, c, ldc);
        ic_gemm_thin_ref(m, n, k, a, lda, b, ldb, bp, relu, want, ldc);
        char label[96];
        snprintf(label, sizeof label, "case %d: m %d n %d k %d relu %d bias %d", t, m, n, k, relu,
                 with_bias);
        ck_assert_uint_eq(tu_compare(c, want, (size_t)m * ldc, 1e-5, label, NULL), 0);
        for (int i = 0; i < m; i++)
            for (int j = n; j < ldc; j++)
                ck_assert_msg(c[(size_t)i * ldc + j] == GUARD, "%s: wrote past row end", label);
        free(a);
        free(b);
        free(bias);
        free(c);
        free(want);
    }
}
END_TEST

/* ReLU clamps negatives to exactly zero and keeps positives. */
START_TEST(test_relu_exact)
{
    const float a[2] = {1.0f, -1.0f}; /* m = 2, k = 1 */
    float b[40], c[80];
    for (int j = 0; j < 40; j++)
        b[j] = (float)(j - 20);
    ic_gemm_thin(2, 40, 1, a, 1, b, 40, NULL, 1, c, 40);
    for (int j = 0; j < 40; j++) {
        ck_assert_float_eq(c[j], j > 20 ? (float)(j - 20) : 0.0f);
        ck_assert_float_eq(c[40 + j], j < 20 ? (float)(20 - j) : 0.0f);
    }
}
END_TEST

static Suite *gemm_thin_suite(void)
{
    Suite *s = suite_create("gemm_thin");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_random_shapes);
    tcase_add_test(tc, test_relu_exact);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(gemm_thin_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
