#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"

START_TEST(test_names)
{
    ck_assert_str_eq(ic_err_name(IC_OK), "OK");
    ck_assert_str_eq(ic_err_name(IC_EFORMAT), "EFORMAT");
    ck_assert_str_eq(ic_err_name(12345), "EUNKNOWN");
    ck_assert_str_eq(ic_strerror(IC_ENOMEM), "out of memory");
}
END_TEST

START_TEST(test_message)
{
    ic_error_clear();
    ck_assert_str_eq(ic_error_message(), "");
    int rc = ic_error_set(IC_ELIMIT, "image %dx%d exceeds %d pixels", 10, 20, 100);
    ck_assert_int_eq(rc, IC_ELIMIT);
    ck_assert_int_eq(ic_error_code(), IC_ELIMIT);
    ck_assert_str_eq(ic_error_message(), "image 10x20 exceeds 100 pixels");
    char big[2000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = 0;
    ic_error_set(IC_EINVAL, "%s", big); /* truncated, not overflowed */
    ck_assert_uint_lt(strlen(ic_error_message()), 600);
}
END_TEST

/* A message composed from the current one: reading and writing the same
 * per-thread buffer in one vsnprintf is undefined behaviour (glibc printed
 * "label: label: ges are not supported..."). */
START_TEST(test_message_from_itself)
{
    ic_error_set(IC_EUNSUPPORTED, "GIF images are not supported; send JPEG or PNG");
    int rc = ic_error_set(ic_error_code(), "label: %s", ic_error_message());
    ck_assert_int_eq(rc, IC_EUNSUPPORTED);
    ck_assert_str_eq(ic_error_message(), "label: GIF images are not supported; send JPEG or PNG");
    /* The message as the only argument, after the text, and twice. */
    ic_error_set(IC_EIO, "short");
    ic_error_set(IC_EIO, "%s, %s (%d)", ic_error_message(), ic_error_message(), 7);
    ck_assert_str_eq(ic_error_message(), "short, short (7)");
}
END_TEST

START_TEST(test_prefix)
{
    ic_error_set(IC_EFORMAT, "tensors: bad header");
    int rc = ic_error_prefix(IC_EIO, "cannot load model %s", "m.safetensors");
    ck_assert_int_eq(rc, IC_EIO);
    ck_assert_int_eq(ic_error_code(), IC_EIO);
    ck_assert_str_eq(ic_error_message(), "cannot load model m.safetensors: tensors: bad header");
    /* Twice: each context goes in front. */
    ic_error_prefix(IC_EIO, "reload");
    ck_assert_str_eq(ic_error_message(), "reload: cannot load model m.safetensors: tensors: bad header");
    /* No message yet: only the context. */
    ic_error_clear();
    ic_error_prefix(IC_EFORMAT, "label");
    ck_assert_str_eq(ic_error_message(), "label");
    /* Long ones are cut at the buffer, never overflowed. */
    char big[2000];
    memset(big, 'y', sizeof big - 1);
    big[sizeof big - 1] = 0;
    ic_error_set(IC_EINVAL, "%s", big);
    ic_error_prefix(IC_EINVAL, "ctx");
    ck_assert_uint_lt(strlen(ic_error_message()), 600);
    ck_assert(strncmp(ic_error_message(), "ctx: yyy", 8) == 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("err");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_names);
    tcase_add_test(tc, test_message);
    tcase_add_test(tc, test_message_from_itself);
    tcase_add_test(tc, test_prefix);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
