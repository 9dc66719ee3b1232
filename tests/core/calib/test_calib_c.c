/* InstCal-C's strengths (core/calib/calib.c) against a reference written here
 * in double: m = clamp(prior + softmax(fc2 relu(fc1 [t; s])) . basis), for
 * the plain fc1 and for its packed form (ic_calib_c_pack: the source half
 * folded into the bias), on widths below, at and above the dot product's
 * blocks, a batch of two images, with one and with two threads; the hidden
 * layer is wider than one of the packed fc1's groups of 64 units. */
#include <check.h>
#include <cblas.h>
#include <math.h>
#include <stdlib.h>

#include "base/err.h"
#include "calib/calib.h"
#include "testutil.h"

enum { H = 72, HP = 128, K = 5, MAXC = 300, N = 2 }; /* HP: H packed (two groups) */

typedef struct c_fixture {
    float fc1_w[2][H * 2 * MAXC], fc1_b[2][H], fc2_w[2][K * H], fc2_b[2][K], basis[2][K * MAXC];
    float wt[2][HP * MAXC], bs[2][H];
    float mean_t[N * MAXC], var_t[N * MAXC], mean_s[MAXC], var_s[MAXC];
} c_fixture;

static void fill(c_fixture *f, int c)
{
    uint64_t seed = 99 + (uint64_t)c;
    for (int s = 0; s < 2; s++) {
        tu_rand_fill(f->fc1_w[s], (size_t)H * 2 * c, &seed, -0.3f, 0.3f);
        tu_rand_fill(f->fc1_b[s], H, &seed, -0.2f, 0.2f);
        tu_rand_fill(f->fc2_w[s], (size_t)K * H, &seed, -0.5f, 0.5f);
        tu_rand_fill(f->fc2_b[s], K, &seed, -0.2f, 0.2f);
        tu_rand_fill(f->basis[s], (size_t)K * c, &seed, -0.4f, 0.6f);
    }
    tu_rand_fill(f->mean_t, (size_t)N * c, &seed, -1.0f, 1.0f);
    tu_rand_fill(f->var_t, (size_t)N * c, &seed, 0.1f, 2.0f);
    tu_rand_fill(f->mean_s, (size_t)c, &seed, -1.0f, 1.0f);
    tu_rand_fill(f->var_s, (size_t)c, &seed, 0.1f, 2.0f);
}

/* The reference strength of channel ch, image b, statistic s. */
static double ref_m(const c_fixture *f, const ic_calib_c_shape *cs, int c, int s, int b, int ch)
{
    const float *t = (s ? f->var_t : f->mean_t) + (size_t)b * c, *src = s ? f->var_s : f->mean_s;
    double hid[H], a[K], mx = -INFINITY, sum = 0;
    for (int j = 0; j < H; j++) {
        double acc = f->fc1_b[s][j];
        for (int i = 0; i < c; i++)
            acc += (double)f->fc1_w[s][(size_t)j * 2 * c + i] * t[i] +
                   (double)f->fc1_w[s][(size_t)j * 2 * c + c + i] * src[i];
        hid[j] = acc > 0 ? acc : 0;
    }
    for (int k = 0; k < K; k++) {
        a[k] = f->fc2_b[s][k];
        for (int j = 0; j < H; j++)
            a[k] += (double)f->fc2_w[s][k * H + j] * hid[j];
        mx = fmax(mx, a[k]);
    }
    for (int k = 0; k < K; k++)
        sum += exp(a[k] - mx);
    double m = cs->prior;
    for (int k = 0; k < K; k++)
        m += exp(a[k] - mx) / sum * f->basis[s][(size_t)k * c + ch];
    return fmin(fmax(m, cs->clamp_eps), 1.0 - cs->clamp_eps);
}

static double worst_error(int c, int packed, int threads)
{
    static c_fixture f;
    fill(&f, c);
    const ic_calib_c_shape cs = {K, H, 0.1f, 1e-5f};
    ic_calib_layer layer = {.c = c};
    for (int s = 0; s < 2; s++) {
        layer.cc.basis[s] = f.basis[s];
        layer.cc.fc1_w[s] = f.fc1_w[s];
        layer.cc.fc1_b[s] = f.fc1_b[s];
        layer.cc.fc2_w[s] = f.fc2_w[s];
        layer.cc.fc2_b[s] = f.fc2_b[s];
    }
    ck_assert_uint_eq(ic_calib_c_packed_hidden(&cs), HP);
    if (packed)
        for (int s = 0; s < 2; s++) {
            ic_calib_c_pack(f.wt[s], f.bs[s], &layer.cc, s, &cs, c, s ? f.var_s : f.mean_s);
            layer.cc.fc1_wt[s] = f.wt[s];
            layer.cc.fc1_bs[s] = f.bs[s];
        }
    float *m_mu = malloc(sizeof(float) * N * c), *m_var = malloc(sizeof(float) * N * c);
    float *scratch = malloc(sizeof(float) * ic_calib_scratch_floats(&cs, c));
    ck_assert(m_mu && m_var && scratch);
    openblas_set_num_threads(threads);
    const ic_calib_opts opts = {.mode = IC_CALIB_INSTCAL_C};
    ck_assert_int_eq(ic_calib_strengths(m_mu, m_var, &opts, &layer, &cs, N, f.mean_t, f.var_t,
                                        f.mean_s, f.var_s, scratch),
                     0);
    double worst = 0;
    for (int b = 0; b < N; b++)
        for (int ch = 0; ch < c; ch++) {
            worst = fmax(worst, fabs(m_mu[b * c + ch] - ref_m(&f, &cs, c, 0, b, ch)));
            worst = fmax(worst, fabs(m_var[b * c + ch] - ref_m(&f, &cs, c, 1, b, ch)));
        }
    free(m_mu);
    free(m_var);
    free(scratch);
    return worst;
}

START_TEST(test_strengths_match_reference)
{
    const int widths[] = {3, 16, 100, 128, 200, 300};
    for (size_t i = 0; i < sizeof widths / sizeof *widths; i++)
        for (int packed = 0; packed <= 1; packed++)
            for (int threads = 1; threads <= 2; threads++) {
                const double e = worst_error(widths[i], packed, threads);
                ck_assert_msg(e < 2e-6, "C %d packed %d threads %d: strength off by %g",
                              widths[i], packed, threads, e);
            }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("calib/calib_c");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_strengths_match_reference);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
