/* Config parsing: defaults, value checking, the file format and the
 * flag > env > file > default precedence. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/err.h"
#include "calib/calib.h"
#include "config.h"

static char err[1024];

static const char *write_file(const char *text)
{
    static char path[64];
    snprintf(path, sizeof path, "/tmp/instcald-test-%d.conf", (int)getpid());
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
    return path;
}

START_TEST(test_defaults_are_laptop_safe)
{
    srv_config c;
    srv_config_defaults(&c);
    ck_assert_str_eq(c.bind, "127.0.0.1");
    ck_assert_int_eq(c.port, 8080);
    ck_assert_int_eq(c.queue_length, 16);
    ck_assert_int_eq(c.max_upload_bytes, 20 << 20);
    ck_assert_int_eq(c.deadline_ms, 30000);
    ck_assert_int_eq(ic_calib_mode_parse(c.calibration, &(ic_calib_mode){0}), 0);
    /* Connection limits on, the admin listener off (a fixed port could clash). */
    ck_assert_int_eq(c.max_connections_per_ip, 64);
    ck_assert_int_eq(c.header_timeout_s, 10);
    ck_assert_int_eq(c.min_body_rate, 1024);
    ck_assert_int_eq(c.admin_port, -1);
}
END_TEST

START_TEST(test_connection_limit_keys)
{
    srv_config c;
    srv_config_defaults(&c);
    ck_assert_int_eq(srv_config_set(&c, "admin_port", "0", "t", err, sizeof err), 0);
    ck_assert_int_eq(c.admin_port, 0);
    ck_assert_int_eq(srv_config_set(&c, "admin-port", "-2", "t", err, sizeof err), IC_EINVAL);
    ck_assert_int_eq(srv_config_set(&c, "min_body_rate", "2K", "t", err, sizeof err), 0);
    ck_assert_int_eq(c.min_body_rate, 2048);
    ck_assert_int_eq(srv_config_set(&c, "min_body_rate", "0", "t", err, sizeof err), 0);
    ck_assert_int_eq(srv_config_set(&c, "header_timeout_s", "0", "t", err, sizeof err), IC_EINVAL);
    ck_assert_int_eq(srv_config_set(&c, "max_connections_per_ip", "0", "t", err, sizeof err), 0);
    ck_assert_int_eq(c.max_connections_per_ip, 0);
}
END_TEST

START_TEST(test_values_are_checked)
{
    srv_config c;
    srv_config_defaults(&c);
    ck_assert_int_eq(srv_config_set(&c, "port", "0", "t", err, sizeof err), 0);
    ck_assert_int_eq(c.port, 0);
    ck_assert_int_eq(srv_config_set(&c, "port", "70000", "t", err, sizeof err), IC_EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "port"));
    ck_assert_ptr_nonnull(strstr(err, "out of range"));
    ck_assert_int_eq(srv_config_set(&c, "workers", "two", "t", err, sizeof err), IC_EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "not an integer"));
    ck_assert_int_eq(srv_config_set(&c, "workers", "3x", "t", err, sizeof err), IC_EINVAL);
    ck_assert_int_eq(srv_config_set(&c, "workers", "", "t", err, sizeof err), IC_EINVAL);
    ck_assert_int_eq(srv_config_set(&c, "max_upload_bytes", "20M", "t", err, sizeof err), 0);
    ck_assert_int_eq(c.max_upload_bytes, 20 << 20);
    ck_assert_int_eq(srv_config_set(&c, "max_upload_bytes", "64KiB", "t", err, sizeof err), 0);
    ck_assert_int_eq(c.max_upload_bytes, 64 << 10);
    ck_assert_int_eq(srv_config_set(&c, "max_upload_bytes", "1.5M", "t", err, sizeof err),
                     IC_EINVAL);
    ck_assert_int_eq(srv_config_set(&c, "max_upload_bytes", "9999999999999999999", "t", err,
                                    sizeof err),
                     IC_EINVAL);
    ck_assert_int_eq(srv_config_set(&c, "calibration", "tbn", "t", err, sizeof err), 0);
    ck_assert_int_eq(srv_config_set(&c, "calibration", "magic", "t", err, sizeof err), IC_EINVAL);
    ck_assert_str_eq(c.calibration, "tbn");
    ck_assert_int_eq(srv_config_set(&c, "log_level", "loud", "t", err, sizeof err), IC_EINVAL);
    ck_assert_int_eq(srv_config_set(&c, "backend", "gpu", "t", err, sizeof err), IC_EINVAL);
    ck_assert_int_eq(srv_config_set(&c, "colour", "red", "origin-x", err, sizeof err), IC_EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "unknown setting 'colour'"));
    ck_assert_ptr_nonnull(strstr(err, "origin-x"));
    char longpath[5000];
    memset(longpath, 'a', sizeof longpath - 1);
    longpath[sizeof longpath - 1] = '\0';
    ck_assert_int_eq(srv_config_set(&c, "model", longpath, "t", err, sizeof err), IC_EINVAL);
}
END_TEST

START_TEST(test_file_format)
{
    srv_config c;
    srv_config_defaults(&c);
    const char *p = write_file("# comment\n\n  port = 9000   # trailing comment\n"
                               "static_dir = \"/srv/www\"\nqueue_length=4\n");
    ck_assert_int_eq(srv_config_load_file(&c, p, err, sizeof err), 0);
    ck_assert_int_eq(c.port, 9000);
    ck_assert_str_eq(c.static_dir, "/srv/www");
    ck_assert_int_eq(c.queue_length, 4);

    p = write_file("port = 1\nthis line has no equals\n");
    ck_assert_int_eq(srv_config_load_file(&c, p, err, sizeof err), IC_EINVAL);
    ck_assert_ptr_nonnull(strstr(err, ":2:"));
    p = write_file("prot = 1\n");
    ck_assert_int_eq(srv_config_load_file(&c, p, err, sizeof err), IC_EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "unknown setting 'prot'"));
    ck_assert_int_eq(srv_config_load_file(&c, "/nonexistent/x.conf", err, sizeof err), IC_EIO);
    unlink(p);
}
END_TEST

START_TEST(test_precedence)
{
    const char *p = write_file("port = 1111\nworkers = 1\nqueue_length = 5\n");
    char cfgflag[128];
    snprintf(cfgflag, sizeof cfgflag, "--config=%s", p);
    srv_config c;

    char *argv1[] = {"instcald", cfgflag, NULL};
    char *env0[] = {NULL};
    ck_assert_int_eq(srv_config_load(&c, 2, argv1, env0, err, sizeof err), 0);
    ck_assert_int_eq(c.port, 1111);
    ck_assert_int_eq(c.blas_threads, 1); /* default survives */

    char *env1[] = {"INSTCALD_PORT=2222", "INSTCALD_WORKERS=2", "PATH=/bin", NULL};
    ck_assert_int_eq(srv_config_load(&c, 2, argv1, env1, err, sizeof err), 0);
    ck_assert_int_eq(c.port, 2222);
    ck_assert_int_eq(c.workers, 2);
    ck_assert_int_eq(c.queue_length, 5);

    char *argv2[] = {"instcald", "--port", "3333", cfgflag, "--max-upload-bytes=2M", NULL};
    ck_assert_int_eq(srv_config_load(&c, 5, argv2, env1, err, sizeof err), 0);
    ck_assert_int_eq(c.port, 3333);
    ck_assert_int_eq(c.workers, 2);
    ck_assert_int_eq(c.max_upload_bytes, 2 << 20);

    /* The file may also come from the environment. */
    char envcfg[128];
    snprintf(envcfg, sizeof envcfg, "INSTCALD_CONFIG=%s", p);
    char *env2[] = {envcfg, NULL};
    char *argv0[] = {"instcald", NULL};
    ck_assert_int_eq(srv_config_load(&c, 1, argv0, env2, err, sizeof err), 0);
    ck_assert_int_eq(c.port, 1111);
    unlink(p);
}
END_TEST

START_TEST(test_bad_sources_fail)
{
    srv_config c;
    char *env_bad[] = {"INSTCALD_PROT=1", NULL};
    char *argv0[] = {"instcald", NULL};
    ck_assert_int_eq(srv_config_load(&c, 1, argv0, env_bad, err, sizeof err), IC_EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "INSTCALD_PROT"));
    char *env0[] = {NULL};
    char *argv_missing[] = {"instcald", "--port", NULL};
    ck_assert_int_eq(srv_config_load(&c, 2, argv_missing, env0, err, sizeof err), IC_EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "needs a value"));
    char *argv_pos[] = {"instcald", "serve", NULL};
    ck_assert_int_eq(srv_config_load(&c, 2, argv_pos, env0, err, sizeof err), IC_EINVAL);
    char *argv_badval[] = {"instcald", "--deadline_ms=0", NULL};
    ck_assert_int_eq(srv_config_load(&c, 2, argv_badval, env0, err, sizeof err), IC_EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "flag --deadline_ms"));
    char *argv_sizes[] = {"instcald", "--min_request_size=512", NULL}; /* max stays 1024 */
    ck_assert_int_eq(srv_config_load(&c, 2, argv_sizes, env0, err, sizeof err), 0);
    char *argv_inverted[] = {"instcald", "--min_request_size=512", "--max_request_size=256", NULL};
    ck_assert_int_eq(srv_config_load(&c, 3, argv_inverted, env0, err, sizeof err), IC_EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "min_request_size 512 is above max_request_size 256"));
    char *argv_nofile[] = {"instcald", "--config", "/nonexistent.conf", NULL};
    ck_assert_int_eq(srv_config_load(&c, 3, argv_nofile, env0, err, sizeof err), IC_EIO);
}
END_TEST

START_TEST(test_format_and_usage)
{
    srv_config c;
    srv_config_defaults(&c);
    srv_buf b;
    srv_buf_init(&b, 0);
    ck_assert_int_eq(srv_config_format(&c, &b), 0);
    ck_assert_ptr_nonnull(strstr(b.data, "port=8080"));
    ck_assert_ptr_nonnull(strstr(b.data, "model=\"\""));
    srv_buf_free(&b);
    ck_assert_int_eq(srv_config_usage(&b), 0);
    ck_assert_ptr_nonnull(strstr(b.data, "--max_upload_bytes"));
    srv_buf_free(&b);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("server/config");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_defaults_are_laptop_safe);
    tcase_add_test(tc, test_values_are_checked);
    tcase_add_test(tc, test_connection_limit_keys);
    tcase_add_test(tc, test_file_format);
    tcase_add_test(tc, test_precedence);
    tcase_add_test(tc, test_bad_sources_fail);
    tcase_add_test(tc, test_format_and_usage);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
