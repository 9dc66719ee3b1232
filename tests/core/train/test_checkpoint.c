/* Tests for core/train/checkpoint: optimiser and loop state round-trip
 * exactly, the pointer file names the latest checkpoint, only the latest two
 * are kept, a missing directory is IC_ENOTFOUND, a broken state file fails. */
#include <check.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/err.h"
#include "train/checkpoint.h"
#include "train_testlib.h"

START_TEST(test_round_trip_and_pruning)
{
    ic_pdl_config cfg;
    char *text = tt_tiny_config(&cfg);
    ic_pdl *net;
    ck_assert_int_eq(ic_pdl_create(&net, &cfg, text, 1), 0);
    ic_param *p;
    int np;
    ck_assert_int_eq(ic_pdl_params(net, &p, &np), 0);
    ic_adam a, b;
    ck_assert_int_eq(ic_adam_init(&a, p, np, IC_PARAM_WEIGHT | IC_PARAM_BN_AFFINE, NULL), 0);
    ck_assert_int_eq(ic_adam_init(&b, p, np, IC_PARAM_WEIGHT | IC_PARAM_BN_AFFINE, NULL), 0);
    uint64_t st = 1;
    tu_rand_fill(a.m, a.total, &st, -1, 1);
    tu_rand_fill(a.v, a.total, &st, 0, 1);
    a.step = 17;
    char dir[] = "/tmp/ic_test_ckpt_XXXXXX";
    ck_assert(mkdtemp(dir) != NULL);
    int64_t it;
    char model[4096], path[4200];
    ck_assert_int_eq(ic_checkpoint_latest(dir, &it, model, sizeof model), IC_ENOTFOUND);
    for (int k = 1; k <= 3; k++) {
        ic_checkpoint_state s = {.iter = 2 * k, .samples = 100u * k, .seed = 9};
        ck_assert_msg(ic_checkpoint_save(dir, net, &a, &s) == 0, "%s", ic_error_message());
    }
    ck_assert_int_eq(ic_checkpoint_latest(dir, &it, model, sizeof model), 0);
    ck_assert_int_eq(it, 6);
    ck_assert_int_eq(access(model, R_OK), 0);
    snprintf(path, sizeof path, "%s/model_0000004.safetensors", dir);
    ck_assert_int_eq(access(path, R_OK), 0);
    snprintf(path, sizeof path, "%s/model_0000002.safetensors", dir);
    ck_assert_int_ne(access(path, R_OK), 0);
    snprintf(path, sizeof path, "%s/state_0000002.safetensors", dir);
    ck_assert_int_ne(access(path, R_OK), 0);
    ic_checkpoint_state got;
    ck_assert_int_eq(ic_checkpoint_load_state(dir, 6, &b, &got), 0);
    ck_assert(got.iter == 6 && got.samples == 300 && got.seed == 9 && b.step == 17);
    ck_assert_int_eq(memcmp(a.m, b.m, a.total * sizeof(float)), 0);
    ck_assert_int_eq(memcmp(a.v, b.v, a.total * sizeof(float)), 0);
    /* a state file that lacks a selected parameter is refused by name */
    snprintf(path, sizeof path, "%s/state_0000006.safetensors", dir);
    FILE *f = fopen(path, "wb");
    ck_assert(f != NULL);
    fclose(f);
    ck_assert_int_ne(ic_checkpoint_load_state(dir, 6, &b, &got), 0);
    ic_adam_deinit(&a);
    ic_adam_deinit(&b);
    ic_pdl_free(&net);
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
    free(text);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("train/checkpoint");
    TCase *tc = tcase_create("checkpoint");
    tcase_add_test(tc, test_round_trip_and_pruning);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *r = srunner_create(suite());
    srunner_run_all(r, CK_NORMAL);
    int failed = srunner_ntests_failed(r);
    srunner_free(r);
    return failed != 0;
}
