/* Output ensembles (core/adapt/ensemble.h) against a reference computed here
 * in double from the members' own forwards (a mirrored member's input and
 * outputs mirrored here, its x offsets negated): the semantic output is the
 * log of the mean softmax, the heatmap, offsets, strengths and drift are
 * means; one member gives its log-softmax; the members' scratch leaves the
 * arena; bad ensembles are refused with a message. */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "adapt/ensemble.h"
#include "base/err.h"
#include "model/pdl_train.h"
#include "testutil.h"

#define MODEL "golden/fixtures/model_tiny_weights.safetensors"

static ic_pdl *load_with_g(void)
{
    ic_pdl *net;
    ck_assert_int_eq(ic_pdl_load(&net, tu_path(MODEL), NULL), 0);
    ck_assert_int_eq(ic_pdl_make_trainable(net), 0);
    ck_assert_int_eq(ic_pdl_add_calibration(net, IC_CALIB_INSTCAL_G, 0.5f, 0), 0);
    return net;
}

static ic_tensor input(ic_arena *a, int n)
{
    ic_tensor x;
    ck_assert_int_eq(ic_tensor_alloc(&x, a, n, 3, 32, 48), 0);
    uint64_t seed = 11;
    tu_rand_fill(x.data, ic_tensor_numel(&x), &seed, -2.0f, 2.0f);
    return x;
}

/* Copies of one member's outputs (the arena is rewound between runs). */
typedef struct member {
    ic_tensor sem, center, offset;
    double m_mu, drift[2];
} member;

/* dst = src with every row reversed; with xsign, channel 1 (the offsets'
 * x) times -1. */
static void mirrored_copy(float *dst, const ic_tensor *src, int xsign)
{
    for (int b = 0; b < src->n; b++)
        for (int c = 0; c < src->c; c++)
            for (int y = 0; y < src->h; y++)
                for (int x = 0; x < src->w; x++) {
                    const size_t row = (((size_t)b * src->c + c) * src->h + y) * src->w;
                    const float v = src->data[row + (size_t)(src->w - 1 - x)];
                    dst[row + x] = xsign && c == 1 ? -v : v;
                }
}

static void run_member(member *m, const ic_pdl *net, const ic_tensor *x, ic_ensemble_member em,
                       int flags, ic_arena *a)
{
    ic_calib_opts o = {.mode = em.mode};
    ic_pdl_outputs out;
    ic_tensor xm = *x;
    if (em.mirror) {
        ck_assert_int_eq(ic_tensor_alloc(&xm, a, x->n, x->c, x->h, x->w), 0);
        mirrored_copy(xm.data, x, 0);
    }
    ck_assert_msg(ic_pdl_forward(net, &xm, &o, flags, a, &out) == 0, "%s", ic_error_message());
    const ic_tensor *src[3] = {&out.sem, &out.center, &out.offset};
    ic_tensor *dst[3] = {&m->sem, &m->center, &m->offset};
    for (int k = 0; k < 3; k++) {
        *dst[k] = *src[k];
        dst[k]->data = malloc(ic_tensor_numel(src[k]) * sizeof(float));
        ck_assert_ptr_nonnull(dst[k]->data);
        if (em.mirror)
            mirrored_copy(dst[k]->data, src[k], k == 2);
        else
            memcpy(dst[k]->data, src[k]->data, ic_tensor_numel(src[k]) * sizeof(float));
    }
    m->m_mu = out.m_mu_mean;
    for (int i = 0; i < x->n; i++)
        m->drift[i] = out.drift[i];
}

static void member_free(member *m)
{
    free(m->sem.data);
    free(m->center.data);
    free(m->offset.data);
}

/* Largest |got - log(mean_j softmax(member_j))| over every logit. */
static double sem_error(const ic_tensor *got, const member *ms, int n)
{
    const ic_tensor *t = &ms[0].sem;
    const size_t plane = ic_tensor_plane(t);
    double worst = 0;
    for (int b = 0; b < t->n; b++)
        for (size_t p = 0; p < plane; p++) {
            double mean[32] = {0};
            ck_assert_int_le(t->c, 32);
            for (int j = 0; j < n; j++) {
                const float *l = ms[j].sem.data + (size_t)b * t->c * plane + p;
                double mx = -INFINITY, sum = 0;
                for (int c = 0; c < t->c; c++)
                    mx = fmax(mx, l[(size_t)c * plane]);
                for (int c = 0; c < t->c; c++)
                    sum += exp(l[(size_t)c * plane] - mx);
                for (int c = 0; c < t->c; c++)
                    mean[c] += exp(l[(size_t)c * plane] - mx) / sum / n;
            }
            const float *g = got->data + (size_t)b * t->c * plane + p;
            for (int c = 0; c < t->c; c++)
                worst = fmax(worst, fabs(g[(size_t)c * plane] - log(mean[c])));
        }
    return worst;
}

static double mean_error(const ic_tensor *got, const member *ms, int n, int which)
{
    double worst = 0;
    const ic_tensor *t0 = which ? &ms[0].offset : &ms[0].center;
    ck_assert(ic_tensor_same_shape(got, t0));
    for (size_t i = 0; i < ic_tensor_numel(t0); i++) {
        double want = 0;
        for (int j = 0; j < n; j++)
            want += (which ? ms[j].offset.data : ms[j].center.data)[i] / n;
        worst = fmax(worst, fabs(got->data[i] - want));
    }
    return worst;
}

static void check_ensemble(const ic_ensemble_member *modes, int n, int batch, int flags)
{
    ic_pdl *net = load_with_g();
    ic_arena a;
    ic_arena_init(&a, 0, 0);
    ic_tensor x = input(&a, batch);
    member ms[IC_ENSEMBLE_MAX];
    for (int j = 0; j < n; j++) {
        const ic_arena_mark mark = ic_arena_get_mark(&a);
        run_member(&ms[j], net, &x, modes[j], flags, &a);
        ic_arena_rewind(&a, mark);
    }
    ic_calib_opts o = {.mode = IC_CALIB_NONE}; /* ignored: the members' modes count */
    ic_pdl_outputs got;
    ck_assert_msg(ic_ensemble_forward(net, modes, n, &x, &o, flags, &a, &got) == 0, "%s",
                  ic_error_message());
    ck_assert(ic_tensor_same_shape(&got.sem, &ms[0].sem));
    const double es = sem_error(&got.sem, ms, n);
    ck_assert_msg(es < 1e-5, "log mean softmax off by %g", es);
    ck_assert_msg(mean_error(&got.center, ms, n, 0) < 1e-6, "centre heatmap is not the mean");
    ck_assert_msg(mean_error(&got.offset, ms, n, 1) < 1e-5, "offsets are not the mean");
    double mu = 0, drift[2] = {0, 0};
    for (int j = 0; j < n; j++) {
        mu += ms[j].m_mu / n;
        for (int i = 0; i < batch; i++)
            drift[i] += ms[j].drift[i] / n;
    }
    ck_assert_double_eq_tol(got.m_mu_mean, mu, 1e-9);
    for (int i = 0; i < batch; i++)
        ck_assert_double_eq_tol(got.drift[i], drift[i], 1e-9);
    for (int j = 0; j < n; j++)
        member_free(&ms[j]);
    ic_arena_deinit(&a);
    ic_pdl_free(&net);
}

START_TEST(test_mean_of_members)
{
    check_ensemble(ic_ensemble_instcal_e, 2, 1, 0);
    const ic_ensemble_member three[3] = {
        {IC_CALIB_NONE, 0}, {IC_CALIB_TBN, 1}, {IC_CALIB_INSTCAL_G, 0}};
    check_ensemble(three, 3, 2, 0); /* a batch of two: each image its own softmax */
    check_ensemble(ic_ensemble_instcal_e, 2, 1, IC_PDL_STRIDE4);
    const ic_ensemble_member mirrored[2] = {{IC_CALIB_INSTCAL_G, 1}, {IC_CALIB_NONE, 1}};
    check_ensemble(mirrored, 2, 2, IC_PDL_STRIDE4);
}
END_TEST

START_TEST(test_one_member_is_its_log_softmax)
{
    const ic_ensemble_member one[1] = {{IC_CALIB_TBN, 0}};
    check_ensemble(one, 1, 1, 0);
}
END_TEST

START_TEST(test_members_leave_the_arena)
{
    ic_pdl *net = load_with_g();
    ic_arena a;
    ic_arena_init(&a, 0, 0);
    ic_tensor x = input(&a, 1);
    ic_calib_opts o = {.mode = IC_CALIB_TBN};
    ic_pdl_outputs out;
    size_t before = ic_arena_used(&a);
    ck_assert_int_eq(ic_pdl_forward(net, &x, &o, 0, &a, &out), 0);
    const size_t one = ic_arena_used(&a) - before;
    ic_arena_reset(&a);
    x = input(&a, 1);
    before = ic_arena_used(&a);
    const ic_ensemble_member four[4] = {
        {IC_CALIB_TBN, 1}, {IC_CALIB_NONE, 0}, {IC_CALIB_INSTCAL_G, 0}, {IC_CALIB_TBN, 0}};
    ck_assert_int_eq(ic_ensemble_forward(net, four, 4, &x, &o, 0, &a, &out), 0);
    const size_t ens = ic_arena_used(&a) - before;
    /* what stays is the averaged outputs, less than one forward's scratch */
    ck_assert_msg(ens < one, "ensemble kept %zu bytes, one forward uses %zu", ens, one);
    ic_arena_deinit(&a);
    ic_pdl_free(&net);
}
END_TEST

START_TEST(test_bad_ensembles_refused)
{
    ic_pdl *net = load_with_g();
    ic_arena a;
    ic_arena_init(&a, 0, 0);
    ic_tensor x = input(&a, 1);
    ic_calib_opts o = {.mode = IC_CALIB_NONE};
    ic_pdl_outputs out;
    const ic_ensemble_member five[5] = {{IC_CALIB_TBN, 0}, {IC_CALIB_TBN, 0}, {IC_CALIB_TBN, 0},
                                        {IC_CALIB_TBN, 0}, {IC_CALIB_TBN, 0}};
    ck_assert_int_eq(ic_ensemble_forward(net, five, 0, &x, &o, 0, &a, &out), IC_EINVAL);
    ck_assert_int_eq(ic_ensemble_forward(net, five, 5, &x, &o, 0, &a, &out), IC_EINVAL);
    ck_assert_ptr_nonnull(strstr(ic_error_message(), "5 members"));
    const ic_ensemble_member tent[2] = {{IC_CALIB_TBN, 0}, {IC_CALIB_TENT, 0}};
    ck_assert_int_eq(ic_ensemble_forward(net, tent, 2, &x, &o, 0, &a, &out), IC_EINVAL);
    ck_assert_ptr_nonnull(strstr(ic_error_message(), "'tent'"));
    const ic_ensemble_member nested[1] = {{IC_CALIB_INSTCAL_E, 0}};
    ck_assert_int_eq(ic_ensemble_forward(net, nested, 1, &x, &o, 0, &a, &out), IC_EINVAL);
    ck_assert_int_eq(ic_ensemble_forward(NULL, nested, 1, &x, &o, 0, &a, &out), IC_EINVAL);
    /* a model without instcal-g's tensors cannot have it as a member */
    ic_pdl *plain;
    ck_assert_int_eq(ic_pdl_load(&plain, tu_path(MODEL), NULL), 0);
    ck_assert_int_eq(
        ic_ensemble_forward(plain, ic_ensemble_instcal_e, 2, &x, &o, 0, &a, &out), IC_EINVAL);
    ck_assert_ptr_nonnull(strstr(ic_error_message(), "'instcal-g'"));
    /* a member's own error comes back with the member named */
    ic_tensor bad = x;
    bad.c = 4;
    ck_assert_int_eq(ic_ensemble_forward(net, ic_ensemble_instcal_e, 2, &bad, &o, 0, &a, &out),
                     IC_EINVAL);
    ck_assert_ptr_nonnull(strstr(ic_error_message(), "ensemble member instcal-g"));
    ic_pdl_free(&plain);
    ic_arena_deinit(&a);
    ic_pdl_free(&net);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("adapt/ensemble");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_mean_of_members);
    tcase_add_test(tc, test_one_member_is_its_log_softmax);
    tcase_add_test(tc, test_members_leave_the_arena);
    tcase_add_test(tc, test_bad_ensembles_refused);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
