/* Tests for core/calib/calib.c's mode names: every name parses back to its
 * mode, and mode lists (the --rows/--modes of the CLI) parse in order and
 * refuse empty items, unknown names and repeats with a message. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "calib/calib.h"

START_TEST(test_names_round_trip)
{
    for (int i = 0; i < IC_CALIB_COUNT; i++) {
        ic_calib_mode m = IC_CALIB_COUNT;
        ck_assert_int_eq(ic_calib_mode_parse(ic_calib_mode_name((ic_calib_mode)i), &m), 0);
        ck_assert_int_eq(m, i);
        ck_assert_ptr_nonnull(strstr(ic_calib_mode_list(), ic_calib_mode_name((ic_calib_mode)i)));
    }
    ic_calib_mode m;
    ck_assert_int_eq(ic_calib_mode_parse("instcal", &m), IC_EINVAL);
    ck_assert_ptr_nonnull(strstr(ic_error_message(), "instcal-u"));
    ck_assert_int_eq(ic_calib_mode_parse(NULL, &m), IC_EINVAL);
    ck_assert_str_eq(ic_calib_mode_name(IC_CALIB_COUNT), "?");
}
END_TEST

/* Cached results are keyed by a mode's revision: every mode has one, and
 * instcal-e's changed when its tbn member went to the mirrored image. */
START_TEST(test_revisions)
{
    for (int i = 0; i < IC_CALIB_COUNT; i++)
        ck_assert_int_ge(ic_calib_mode_revision((ic_calib_mode)i), 1);
    ck_assert_int_eq(ic_calib_mode_revision(IC_CALIB_TBN), 1);
    ck_assert_int_eq(ic_calib_mode_revision(IC_CALIB_INSTCAL_E), 2);
    ck_assert_int_eq(ic_calib_mode_revision(IC_CALIB_COUNT), 0);
    char key[32];
    ic_calib_mode_key(IC_CALIB_TBN, key, sizeof key);
    ck_assert_str_eq(key, "tbn");
    ic_calib_mode_key(IC_CALIB_INSTCAL_E, key, sizeof key);
    ck_assert_str_eq(key, "instcal-e-r2");
}
END_TEST

START_TEST(test_list_in_order)
{
    ic_calib_mode m[IC_CALIB_COUNT];
    int n = -1;
    ck_assert_int_eq(ic_calib_mode_parse_list("tbn,none,instcal-c", m, &n), 0);
    ck_assert_int_eq(n, 3);
    ck_assert_int_eq(m[0], IC_CALIB_TBN);
    ck_assert_int_eq(m[1], IC_CALIB_NONE);
    ck_assert_int_eq(m[2], IC_CALIB_INSTCAL_C);
    ck_assert_int_eq(ic_calib_mode_parse_list("tent", m, &n), 0);
    ck_assert_int_eq(n, 1);
    ck_assert_int_eq(m[0], IC_CALIB_TENT);

    /* every mode once: the array's whole capacity */
    char all[256] = "";
    for (int i = 0; i < IC_CALIB_COUNT; i++) {
        strcat(all, i ? "," : "");
        strcat(all, ic_calib_mode_name((ic_calib_mode)i));
    }
    ck_assert_int_eq(ic_calib_mode_parse_list(all, m, &n), 0);
    ck_assert_int_eq(n, IC_CALIB_COUNT);
    for (int i = 0; i < IC_CALIB_COUNT; i++)
        ck_assert_int_eq(m[i], i);
}
END_TEST

START_TEST(test_list_refusals)
{
    static const struct {
        const char *list, *msg;
    } bad[] = {
        {"", "empty list"},
        {"none,", "empty item"},
        {",tbn", "empty item"},
        {"none,,tbn", "empty item"},
        {"none,fog", "unknown calibration mode 'fog'"},
        {"none, tbn", "unknown calibration mode ' tbn'"},
        {"tbn,none,tbn", "tbn listed twice"},
        /* more items than modes: eval --suite's old loop wrote past its array here */
        {"none,none,none,none,none,none,none,none,none,none,none,none", "none listed twice"},
        {"instcal-u-with-a-name-much-too-long-for-a-mode", "too long an item"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ic_calib_mode m[IC_CALIB_COUNT];
        int n = -1;
        ck_assert_int_eq(ic_calib_mode_parse_list(bad[i].list, m, &n), IC_EINVAL);
        ck_assert_int_eq(n, 0);
        ck_assert_msg(strstr(ic_error_message(), bad[i].msg), "'%s': message '%s' lacks '%s'",
                      bad[i].list, ic_error_message(), bad[i].msg);
    }
    ic_calib_mode m[IC_CALIB_COUNT];
    int n = -1;
    ck_assert_int_eq(ic_calib_mode_parse_list(NULL, m, &n), IC_EINVAL);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("calib/calib");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_names_round_trip);
    tcase_add_test(tc, test_revisions);
    tcase_add_test(tc, test_list_in_order);
    tcase_add_test(tc, test_list_refusals);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
