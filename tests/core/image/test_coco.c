/* Tests of core/image/coco.c: a COCO-panoptic folder written by hand, read
 * back; a missing file, malformed JSON, bad annotations and segment ids out
 * of range each give an error with a message, never a crash (also with
 * every allocation failing in turn). */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/err.h"
#include "image/coco.h"
#include "testutil.h"

static char dir[64];

static void put(const char *rel, const char *text)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, rel);
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(fwrite(text, 1, strlen(text), f), strlen(text));
    fclose(f);
}

static const char good_json[] =
    "{\"images\": [{\"id\": 7, \"file_name\": \"a.jpg\", \"width\": 4, \"height\": 2},"
    "              {\"id\": 9, \"file_name\": \"b.jpg\"}],"
    " \"annotations\": ["
    "  {\"image_id\": 9, \"file_name\": \"b.png\", \"segments_info\": []},"
    "  {\"image_id\": 7, \"file_name\": \"a.png\", \"segments_info\": ["
    "    {\"id\": 1, \"category_id\": 3},"
    "    {\"id\": 16777215, \"category_id\": 0, \"iscrowd\": 1}]}],"
    " \"categories\": [{\"id\": 3, \"name\": \"car\"}, {\"id\": 0}]}";

static void make_dir(void)
{
    strcpy(dir, "/tmp/ic_test_coco_XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    char sub[128];
    snprintf(sub, sizeof sub, "%s/images", dir);
    ck_assert_int_eq(mkdir(sub, 0755), 0);
    snprintf(sub, sizeof sub, "%s/panoptic", dir);
    ck_assert_int_eq(mkdir(sub, 0755), 0);
    put("panoptic.json", good_json);
    put("images/a.jpg", "image a");
    put("panoptic/a.png", "label of a");
    put("images/b.jpg", "image b");
    put("panoptic/b.png", "label b");
}

static void remove_dir(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
}

/* Opening fails with `code` and a message holding `needle`. */
static void open_fails(int code, const char *needle)
{
    ic_coco *c = (ic_coco *)&c;
    ic_error_clear();
    ck_assert_int_eq(ic_coco_open(&c, dir), code);
    ck_assert_ptr_null(c);
    ck_assert_msg(strstr(ic_error_message(), needle) != NULL, "message '%s' lacks '%s'",
                  ic_error_message(), needle);
}

START_TEST(test_good_folder)
{
    make_dir();
    ic_coco *c = NULL;
    ck_assert_msg(ic_coco_open(&c, dir) == 0, "%s", ic_error_message());
    ck_assert_int_eq(ic_coco_count(c), 2);
    const ic_coco_image *b = ic_coco_get(c, 0), *a = ic_coco_get(c, 1);
    ck_assert_str_eq(b->image, "b.jpg");
    ck_assert_str_eq(b->label, "b.png");
    ck_assert_int_eq(b->n_segments, 0);
    ck_assert_int_eq(b->width, 0);
    ck_assert_str_eq(a->image, "a.jpg");
    ck_assert_int_eq(a->width, 4);
    ck_assert_int_eq(a->height, 2);
    ck_assert_int_eq(a->n_segments, 2);
    ck_assert_int_eq(a->segments[0].id, 1);
    ck_assert_int_eq(a->segments[0].category_id, 3);
    ck_assert_int_eq(a->segments[0].iscrowd, 0);
    ck_assert_int_eq(a->segments[1].id, 16777215);
    ck_assert_int_eq(a->segments[1].iscrowd, 1);
    ck_assert_str_eq(a->segments_json,
                     "[{\"id\":1,\"category_id\":3},{\"id\":16777215,\"category_id\":0,\"iscrowd\":1}]");
    ck_assert_ptr_null(ic_coco_get(c, 2));
    int n;
    const ic_coco_category *cats = ic_coco_categories(c, &n);
    ck_assert_int_eq(n, 2);
    ck_assert_int_eq(cats[0].id, 3);
    ck_assert_str_eq(cats[0].name, "car");
    ck_assert_ptr_null(cats[1].name);

    unsigned char *img = NULL, *lbl = NULL;
    size_t il = 0, ll = 0;
    ck_assert_int_eq(ic_coco_read(c, 1, 100, &img, &il, &lbl, &ll), 0);
    ck_assert_uint_eq(il, 7);
    ck_assert_int_eq(memcmp(img, "image a", 7), 0);
    ck_assert_uint_eq(ll, 10);
    ck_assert_int_eq(memcmp(lbl, "label of a", 10), 0);
    ic_free(img);
    ic_free(lbl);
    /* exactly max_bytes is read; one byte more is a limit */
    ck_assert_int_eq(ic_coco_read(c, 1, 7, &img, &il, NULL, NULL), 0);
    ic_free(img);
    ck_assert_int_eq(ic_coco_read(c, 1, 6, &img, &il, NULL, NULL), IC_ELIMIT);
    ck_assert_ptr_nonnull(strstr(ic_error_message(), "a.jpg is larger than 6 bytes"));
    ck_assert_int_eq(ic_coco_read(c, 2, 100, &img, &il, NULL, NULL), IC_EINVAL);
    ic_coco_free(&c);
    ck_assert_ptr_null(c);
    ic_coco_free(&c);
    remove_dir();
}
END_TEST

START_TEST(test_missing_files)
{
    make_dir();
    ic_coco *c = NULL;
    ck_assert_int_eq(ic_coco_open(&c, dir), 0);
    char path[256];
    snprintf(path, sizeof path, "%s/panoptic/a.png", dir);
    ck_assert_int_eq(unlink(path), 0);
    unsigned char *img = (unsigned char *)path, *lbl = NULL;
    size_t il = 0, ll = 0;
    ck_assert_int_eq(ic_coco_read(c, 1, 100, &img, &il, &lbl, &ll), IC_EIO);
    ck_assert_ptr_nonnull(strstr(ic_error_message(), path));
    ck_assert_ptr_null(img); /* the image read first is freed again */
    ic_coco_free(&c);
    snprintf(path, sizeof path, "%s/panoptic.json", dir);
    ck_assert_int_eq(unlink(path), 0);
    open_fails(IC_EIO, "panoptic.json");
    ck_assert_int_eq(ic_coco_open(&c, "/nonexistent/coco"), IC_EIO);
    ck_assert_ptr_nonnull(strstr(ic_error_message(), "/nonexistent/coco/panoptic.json"));
    remove_dir();
}
END_TEST

START_TEST(test_malformed_json)
{
    make_dir();
    put("panoptic.json", "{\"images\": [,\n");
    open_fails(IC_EIO, "line");
    put("panoptic.json", "[1, 2]");
    open_fails(IC_EFORMAT, "needs \"images\" and \"annotations\" arrays");
    put("panoptic.json", "{\"images\": [], \"annotations\": {}}");
    open_fails(IC_EFORMAT, "needs \"images\" and \"annotations\" arrays");
    /* an annotation whose image_id has no image entry */
    put("panoptic.json", "{\"images\": [{\"id\": 1, \"file_name\": \"x.jpg\"}], \"annotations\": "
                         "[{\"image_id\": 2, \"file_name\": \"x.png\", \"segments_info\": []}]}");
    open_fails(IC_EFORMAT, "annotation 0 without image_id/file_name/segments_info");
    put("panoptic.json", "{\"images\": [{\"id\": 1, \"file_name\": \"x.jpg\"}], \"annotations\": "
                         "[{\"image_id\": 1, \"file_name\": \"x.png\"}]}");
    open_fails(IC_EFORMAT, "annotation 0 without");
    put("panoptic.json", "{\"images\": [{\"id\": 1, \"file_name\": \"x.jpg\"}], \"annotations\": "
                         "[{\"image_id\": 1, \"file_name\": \"x.png\", \"segments_info\": "
                         "[{\"id\": \"1\", \"category_id\": 0}]}]}");
    open_fails(IC_EFORMAT, "segment 0: needs integer id and category_id");
    /* no annotations at all is a valid (empty) folder */
    put("panoptic.json", "{\"images\": [], \"annotations\": []}");
    ic_coco *c = NULL;
    ck_assert_int_eq(ic_coco_open(&c, dir), 0);
    ck_assert_int_eq(ic_coco_count(c), 0);
    ic_coco_free(&c);
    remove_dir();
}
END_TEST

START_TEST(test_segment_ids_out_of_range)
{
    make_dir();
    static const char *const bad[] = {"0", "-5", "16777216", "4294967297"};
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        char json[512];
        snprintf(json, sizeof json,
                 "{\"images\": [{\"id\": 1, \"file_name\": \"x.jpg\"}], \"annotations\": "
                 "[{\"image_id\": 1, \"file_name\": \"x.png\", \"segments_info\": "
                 "[{\"id\": 2, \"category_id\": 0}, {\"id\": %s, \"category_id\": 0}]}]}",
                 bad[k]);
        put("panoptic.json", json);
        char want[64];
        snprintf(want, sizeof want, "segment 1: id %s outside 1..16777215", bad[k]);
        open_fails(IC_EFORMAT, want);
    }
    put("panoptic.json", "{\"images\": [{\"id\": 1, \"file_name\": \"x.jpg\"}], \"annotations\": "
                         "[{\"image_id\": 1, \"file_name\": \"x.png\", \"segments_info\": "
                         "[{\"id\": 2, \"category_id\": -1}]}]}");
    open_fails(IC_EFORMAT, "category_id -1 is negative or too large");
    remove_dir();
}
END_TEST

/* Every allocation failing in turn: an error with a message or success,
 * nothing leaked (ASan), no crash. */
START_TEST(test_allocation_failures)
{
    make_dir();
    int opened = 0;
    for (long n = 0; n < 200 && !opened; n++) {
        ic_coco *c = NULL;
        ic_error_clear();
        ic_alloc_fail_after(n);
        int rc = ic_coco_open(&c, dir);
        ic_alloc_fail_reset();
        if (rc) {
            ck_assert_int_eq(rc, IC_ENOMEM);
            ck_assert_msg(ic_error_message()[0], "no message after %ld allocations", n);
            ck_assert_ptr_null(c);
        } else {
            opened = 1;
            ck_assert_int_eq(ic_coco_count(c), 2);
        }
        ic_coco_free(&c);
    }
    ck_assert(opened);
    remove_dir();
}
END_TEST

int main(void)
{
    Suite *s = suite_create("image/coco");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_good_folder);
    tcase_add_test(tc, test_missing_files);
    tcase_add_test(tc, test_malformed_json);
    tcase_add_test(tc, test_segment_ids_out_of_range);
    tcase_add_test(tc, test_allocation_failures);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
