/* Static file path sanitisation: traversal in every spelling is refused,
 * symlinks may not lead out of the root, and content types are right. */
#include <check.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/err.h"
#include "static_files.h"

static char root[PATH_MAX];

static void touch(const char *rel)
{
    char p[2 * PATH_MAX];
    snprintf(p, sizeof p, "%s/%s", root, rel);
    FILE *f = fopen(p, "w");
    ck_assert_ptr_nonnull(f);
    fputs("x", f);
    fclose(f);
}

static void setup(void)
{
    char tmpl[] = "/tmp/instcald-static-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(tmpl));
    ck_assert_ptr_nonnull(realpath(tmpl, root));
    char p[2 * PATH_MAX];
    snprintf(p, sizeof p, "%s/css", root);
    mkdir(p, 0755);
    snprintf(p, sizeof p, "%s/empty", root);
    mkdir(p, 0755);
    touch("index.html");
    touch("css/app.css");
    snprintf(p, sizeof p, "%s/out", root);
    ck_assert_int_eq(symlink("/etc/hostname", p), 0);
    snprintf(p, sizeof p, "%s/in", root);
    ck_assert_int_eq(symlink("index.html", p), 0);
}

static void teardown(void)
{
    char cmd[2 * PATH_MAX];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    ck_assert_int_eq(system(cmd), 0);
}

static int resolve(const char *url, char *out)
{
    return srv_static_resolve(root, url, out, PATH_MAX);
}

START_TEST(test_good_paths)
{
    char out[PATH_MAX], want[2 * PATH_MAX];
    ck_assert_int_eq(resolve("/", out), 0);
    snprintf(want, sizeof want, "%s/index.html", root);
    ck_assert_str_eq(out, want);
    ck_assert_int_eq(resolve("/index.html", out), 0);
    ck_assert_int_eq(resolve("/css/app.css", out), 0);
    ck_assert_int_eq(resolve("//css//app.css", out), 0);
    ck_assert_int_eq(resolve("/in", out), 0); /* symlink inside the root */
    ck_assert_str_eq(out, want);
}
END_TEST

START_TEST(test_traversal_refused)
{
    char out[PATH_MAX];
    const char *bad[] = {"/..",           "/../etc/passwd", "/css/../index.html",
                         "/css/..",       "/./index.html",  "/%2e%2e/etc/passwd",
                         "/%2E%2E%2Fetc", "/..%2fetc",      "/css\\..\\index.html",
                         "index.html",    "",               "/a\nb",
                         "/....//..//x"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ck_assert_msg(resolve(bad[i], out) == IC_EINVAL, "accepted '%s'", bad[i]);
}
END_TEST

START_TEST(test_missing_and_outside)
{
    char out[PATH_MAX];
    ck_assert_int_eq(resolve("/out", out), IC_ENOTFOUND); /* symlink leaving the root */
    ck_assert_int_eq(resolve("/missing.html", out), IC_ENOTFOUND);
    ck_assert_int_eq(resolve("/css", out), IC_ENOTFOUND);   /* a directory */
    ck_assert_int_eq(resolve("/empty/", out), IC_ENOTFOUND); /* no index.html */
    ck_assert_int_eq(resolve("/....", out), IC_ENOTFOUND);   /* just a name */
}
END_TEST

START_TEST(test_content_types)
{
    ck_assert_str_eq(srv_static_content_type("/a/index.html"), "text/html; charset=utf-8");
    ck_assert_str_eq(srv_static_content_type("x.CSS"), "text/css; charset=utf-8");
    ck_assert_str_eq(srv_static_content_type("app.js"), "text/javascript; charset=utf-8");
    ck_assert_str_eq(srv_static_content_type("a.png"), "image/png");
    ck_assert_str_eq(srv_static_content_type("a.jpg"), "image/jpeg");
    ck_assert_str_eq(srv_static_content_type("a.svg"), "image/svg+xml");
    ck_assert_str_eq(srv_static_content_type("a.json"), "application/json");
    ck_assert_str_eq(srv_static_content_type("favicon.ico"), "image/x-icon");
    ck_assert_str_eq(srv_static_content_type("dir.d/noext"), "application/octet-stream");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("server/static");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_good_paths);
    tcase_add_test(tc, test_traversal_refused);
    tcase_add_test(tc, test_missing_and_outside);
    tcase_add_test(tc, test_content_types);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
