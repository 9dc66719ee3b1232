/* Choosing the forward strategy of a request (core/adapt/adapt.h): every
 * mode but tent and instcal-e runs the network itself (and gives exactly its
 * outputs), tent runs the TENT copy (exactly ic_tent_forward's outputs) and
 * is refused without one, instcal-e runs the instcal-g + tbn ensemble
 * (exactly ic_ensemble_forward's outputs); modes the model lacks tensors for
 * are refused. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "adapt/adapt.h"
#include "adapt/ensemble.h"
#include "base/err.h"
#include "model/pdl_train.h"
#include "testutil.h"

#define MODEL "golden/fixtures/model_tiny_weights.safetensors"

static ic_tensor input(ic_arena *a)
{
    ic_tensor x;
    ck_assert_int_eq(ic_tensor_alloc(&x, a, 1, 3, 32, 48), 0);
    uint64_t seed = 5;
    tu_rand_fill(x.data, ic_tensor_numel(&x), &seed, -2.0f, 2.0f);
    return x;
}

START_TEST(test_plain_modes_run_the_network)
{
    ic_pdl *net;
    ck_assert_int_eq(ic_pdl_load(&net, tu_path(MODEL), NULL), 0);
    /* the fixture has no InstCal-G tensors: add them, so every mode runs */
    ck_assert_int_eq(ic_pdl_make_trainable(net), 0);
    ck_assert_int_eq(ic_pdl_add_calibration(net, IC_CALIB_INSTCAL_G, 0.5f, 0), 0);
    ic_arena a;
    ic_arena_init(&a, 0, 0);
    ic_tensor x = input(&a);
    for (int m = 0; m < IC_CALIB_COUNT; m++) {
        if (m == IC_CALIB_TENT || m == IC_CALIB_INSTCAL_E)
            continue; /* strategies of their own: the tests below */
        ic_forward fw;
        ck_assert_msg(ic_adapt_forward(&fw, net, NULL, (ic_calib_mode)m) == 0, "%s: %s",
                      ic_calib_mode_name((ic_calib_mode)m), ic_error_message());
        ck_assert_ptr_eq(fw.net, net);
        ck_assert(fw.run == NULL);
        ic_calib_opts o = {.mode = (ic_calib_mode)m, .m = 0.5f};
        ic_pdl_outputs got, want;
        ck_assert_int_eq(ic_forward_run(&fw, &x, &o, 0, &a, &got), 0);
        ck_assert_int_eq(ic_pdl_forward(net, &x, &o, 0, &a, &want), 0);
        ck_assert_mem_eq(got.sem.data, want.sem.data, ic_tensor_numel(&want.sem) * sizeof(float));
    }
    ic_arena_deinit(&a);
    ic_pdl_free(&net);
}
END_TEST

START_TEST(test_tent_runs_the_copy)
{
    ic_pdl *net;
    ck_assert_int_eq(ic_pdl_load(&net, tu_path(MODEL), NULL), 0);
    ic_tent *tent;
    ck_assert_int_eq(ic_tent_create(&tent, tu_path(MODEL), NULL), 0);
    ic_forward fw;
    ck_assert_int_eq(ic_adapt_forward(&fw, net, NULL, IC_CALIB_TENT), IC_EINVAL);
    ck_assert_ptr_nonnull(strstr(ic_error_message(), "tent"));
    ck_assert_int_eq(ic_adapt_forward(&fw, net, tent, IC_CALIB_TENT), 0);
    ck_assert_ptr_eq(fw.net, net); /* outputs follow the serving network's config */
    ic_arena a;
    ic_arena_init(&a, 0, 0);
    ic_tensor x = input(&a);
    ic_calib_opts o = {.mode = IC_CALIB_TENT};
    ic_pdl_outputs got, want;
    ck_assert_int_eq(ic_forward_run(&fw, &x, &o, 0, &a, &got), 0);
    ck_assert_int_eq(ic_tent_forward(tent, &x, &o, 0, &a, &want, NULL), 0);
    ck_assert_mem_eq(got.sem.data, want.sem.data, ic_tensor_numel(&want.sem) * sizeof(float));
    ck_assert(got.m_mu_mean == 1.0); /* TENT normalises with instance statistics */
    ic_arena_deinit(&a);
    ic_tent_free(&tent);
    ic_pdl_free(&net);
}
END_TEST

START_TEST(test_ensemble_strategy)
{
    ic_pdl *net;
    ck_assert_int_eq(ic_pdl_load(&net, tu_path(MODEL), NULL), 0);
    ic_forward fw;
    /* instcal-e needs instcal-g's tensors, which the fixture lacks */
    ck_assert_int_eq(ic_adapt_forward(&fw, net, NULL, IC_CALIB_INSTCAL_E), IC_EINVAL);
    ck_assert_ptr_nonnull(strstr(ic_error_message(), "instcal-e"));
    ck_assert_int_eq(ic_pdl_make_trainable(net), 0);
    ck_assert_int_eq(ic_pdl_add_calibration(net, IC_CALIB_INSTCAL_G, 0.5f, 0), 0);
    ck_assert_int_eq(ic_adapt_forward(&fw, net, NULL, IC_CALIB_INSTCAL_E), 0);
    ck_assert_ptr_eq(fw.net, net);
    ck_assert(fw.run != NULL);
    ic_arena a;
    ic_arena_init(&a, 0, 0);
    ic_tensor x = input(&a);
    ic_calib_opts o = {.mode = IC_CALIB_INSTCAL_E};
    ic_pdl_outputs got, want;
    ck_assert_int_eq(ic_forward_run(&fw, &x, &o, 0, &a, &got), 0);
    ck_assert_int_eq(ic_ensemble_forward(net, ic_ensemble_instcal_e, 2, &x, &o, 0, &a, &want), 0);
    ck_assert_mem_eq(got.sem.data, want.sem.data, ic_tensor_numel(&want.sem) * sizeof(float));
    ck_assert_mem_eq(got.offset.data, want.offset.data,
                     ic_tensor_numel(&want.offset) * sizeof(float));
    /* the plain forward refuses it, with the way to run it */
    ck_assert_int_eq(ic_pdl_forward(net, &x, &o, 0, &a, &want), IC_EINVAL);
    ck_assert_ptr_nonnull(strstr(ic_error_message(), "ic_adapt_forward"));
    ic_arena_deinit(&a);
    ic_pdl_free(&net);
}
END_TEST

START_TEST(test_missing_tensors_refused)
{
    /* a fresh model of the same config carries no calibration tensors */
    ic_pdl *net;
    ck_assert_int_eq(ic_pdl_load(&net, tu_path(MODEL), NULL), 0);
    ic_pdl_config cfg = *ic_pdl_get_config(net);
    ic_pdl_free(&net);
    ck_assert_int_eq(ic_pdl_create(&net, &cfg, "{}", 1), 0);
    ic_forward fw;
    ck_assert_int_eq(ic_adapt_forward(&fw, net, NULL, IC_CALIB_INSTCAL_C), IC_EINVAL);
    ck_assert_ptr_nonnull(strstr(ic_error_message(), "instcal-c"));
    ck_assert_int_eq(ic_adapt_forward(&fw, net, NULL, IC_CALIB_TBN), 0);
    ic_pdl_free(&net);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("adapt/adapt");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_plain_modes_run_the_network);
    tcase_add_test(tc, test_tent_runs_the_copy);
    tcase_add_test(tc, test_ensemble_strategy);
    tcase_add_test(tc, test_missing_tensors_refused);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
