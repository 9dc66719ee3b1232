/* SynthCity generator tests: determinism, paired domains, label/image
 * alignment, class coverage, segment bookkeeping, the COCO-panoptic
 * writer's files and JSON, and errors for bad arguments (library and CLI). */
#include <check.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/err.h"
#include "cli/commands.h"
#include "data/synth.h"
#include "data/synth_writer.h"
#include "image/ids.h"
#include "image/image.h"

#define H 128
#define W 256

static size_t npix(const ic_synth_sample *s)
{
    return (size_t)s->w * (size_t)s->h;
}

START_TEST(test_deterministic)
{
    ic_synth_sample a, b;
    ck_assert_int_eq(ic_synth_sample_init(&a, H, W), 0);
    ck_assert_int_eq(ic_synth_sample_init(&b, H, W), 0);
    for (int d = 0; d < IC_SYNTH_NUM_DOMAINS; d++) {
        ck_assert_int_eq(ic_synth_render(&a, 42, 3, (ic_synth_domain)d), 0);
        /* b renders something else first: no state may leak between renders */
        ck_assert_int_eq(ic_synth_render(&b, 7, 9, IC_SYNTH_NIGHT), 0);
        ck_assert_int_eq(ic_synth_render(&b, 42, 3, (ic_synth_domain)d), 0);
        ck_assert_mem_eq(a.rgb, b.rgb, 3 * npix(&a));
        ck_assert_mem_eq(a.ids, b.ids, npix(&a) * sizeof *a.ids);
        ck_assert_mem_eq(a.depth, b.depth, npix(&a) * sizeof *a.depth);
        ck_assert_int_eq(a.n_segments, b.n_segments);
    }
    /* another index is another scene */
    ck_assert_int_eq(ic_synth_render(&b, 42, 4, IC_SYNTH_SOURCE), 0);
    ck_assert_int_eq(ic_synth_render(&a, 42, 3, IC_SYNTH_SOURCE), 0);
    ck_assert(memcmp(a.ids, b.ids, npix(&a) * sizeof *a.ids) != 0);
    ic_synth_sample_deinit(&a);
    ic_synth_sample_deinit(&b);
}
END_TEST

static double mean_abs_diff(const uint8_t *x, const uint8_t *y, size_t n)
{
    double s = 0.0;
    for (size_t i = 0; i < n; i++)
        s += abs((int)x[i] - (int)y[i]);
    return s / (double)n;
}

static double mean_of(const uint8_t *x, size_t n)
{
    double s = 0.0;
    for (size_t i = 0; i < n; i++)
        s += x[i];
    return s / (double)n;
}

START_TEST(test_domains_share_labels)
{
    ic_synth_sample src, s;
    ck_assert_int_eq(ic_synth_sample_init(&src, H, W), 0);
    ck_assert_int_eq(ic_synth_sample_init(&s, H, W), 0);
    size_t n = (size_t)H * W;
    for (uint64_t idx = 0; idx < 3; idx++) {
        ck_assert_int_eq(ic_synth_render(&src, 5, idx, IC_SYNTH_SOURCE), 0);
        double fog_diff[4] = {0};
        for (int d = 1; d < IC_SYNTH_NUM_DOMAINS; d++) {
            ck_assert_int_eq(ic_synth_render(&s, 5, idx, (ic_synth_domain)d), 0);
            ck_assert_msg(!memcmp(src.ids, s.ids, n * sizeof *s.ids), "%s labels differ",
                          ic_synth_domain_name((ic_synth_domain)d));
            ck_assert(!memcmp(src.depth, s.depth, n * sizeof *s.depth));
            double diff = mean_abs_diff(src.rgb, s.rgb, 3 * n);
            ck_assert_msg(diff > 3.0, "%s looks like the source", ic_synth_domain_name((ic_synth_domain)d));
            if (d <= IC_SYNTH_FOG3)
                fog_diff[d] = diff;
            if (d == IC_SYNTH_NIGHT)
                ck_assert(mean_of(s.rgb, 3 * n) < 0.5 * mean_of(src.rgb, 3 * n));
        }
        /* fog is graded */
        ck_assert(fog_diff[1] < fog_diff[2] && fog_diff[2] < fog_diff[3]);
    }
    ck_assert(ic_synth_fog_beta(IC_SYNTH_FOG2) == 2.0f * ic_synth_fog_beta(IC_SYNTH_FOG1));
    ck_assert(ic_synth_fog_beta(IC_SYNTH_FOG3) == 4.0f * ic_synth_fog_beta(IC_SYNTH_FOG1));
    ck_assert(ic_synth_fog_beta(IC_SYNTH_SOURCE) == 0.0f);
    ic_synth_sample_deinit(&src);
    ic_synth_sample_deinit(&s);
}
END_TEST

/* Sky above the road in every column, sky at the sky depth, ground depth
 * falling towards the bottom of the image, things nearer than the sky. */
START_TEST(test_alignment)
{
    ic_synth_sample s;
    ck_assert_int_eq(ic_synth_sample_init(&s, H, W), 0);
    for (uint64_t idx = 0; idx < 8; idx++) {
        ck_assert_int_eq(ic_synth_render(&s, 11, idx, IC_SYNTH_SOURCE), 0);
        long sky_rows = 0, sky_n = 0, road_rows = 0, road_n = 0;
        for (int u = 0; u < W; u++) {
            int lowest_sky = -1, highest_road = H;
            float prev_ground = 1e9f;
            for (int v = 0; v < H; v++) {
                size_t i = (size_t)v * W + (size_t)u;
                int c = s.semantic[i];
                if (c == IC_SYNTH_SKY) {
                    ck_assert(s.depth[i] == IC_SYNTH_SKY_DEPTH);
                    lowest_sky = v;
                    sky_rows += v;
                    sky_n++;
                } else {
                    ck_assert(s.depth[i] > 0.0f && s.depth[i] < IC_SYNTH_SKY_DEPTH);
                }
                if (c == IC_SYNTH_ROAD) {
                    if (highest_road == H)
                        highest_road = v;
                    road_rows += v;
                    road_n++;
                }
                if (c == IC_SYNTH_ROAD || c == IC_SYNTH_SIDEWALK) {
                    ck_assert_msg(s.depth[i] <= prev_ground * 1.0001f, "ground depth rises at %d,%d", u, v);
                    prev_ground = s.depth[i];
                }
            }
            ck_assert_msg(lowest_sky < highest_road, "sky below road in column %d", u);
        }
        ck_assert(sky_n > 0 && road_n > 0);
        ck_assert(sky_rows / sky_n < road_rows / road_n);
    }
    ic_synth_sample_deinit(&s);
}
END_TEST

/* Segment areas and boxes match the id map; ids are unique and encode
 * their class; every labelled pixel belongs to a listed segment. */
static void check_segments(const ic_synth_sample *s)
{
    size_t n = npix(s);
    int min_area = ic_synth_min_area(s->h, s->w);
    int64_t covered = 0;
    for (int k = 0; k < s->n_segments; k++) {
        const ic_synth_segment *g = &s->segments[k];
        ck_assert_int_ne(g->id, 0);
        ck_assert_int_eq(g->id / 1000 - 1, g->category_id);
        ck_assert_ptr_nonnull(ic_synth_class_find(g->category_id));
        if (k > 0)
            ck_assert_int_gt(g->id, s->segments[k - 1].id);
        int64_t area = 0;
        int x0 = s->w, y0 = s->h, x1 = -1, y1 = -1;
        for (size_t i = 0; i < n; i++)
            if (s->ids[i] == g->id) {
                int x = (int)(i % (size_t)s->w), y = (int)(i / (size_t)s->w);
                area++;
                x0 = x < x0 ? x : x0;
                y0 = y < y0 ? y : y0;
                x1 = x > x1 ? x : x1;
                y1 = y > y1 ? y : y1;
                ck_assert_int_eq(s->semantic[i], g->category_id);
            }
        ck_assert_int_eq(area, g->area);
        ck_assert_int_eq(g->bbox[0], x0);
        ck_assert_int_eq(g->bbox[1], y0);
        ck_assert_int_eq(g->bbox[2], x1 - x0 + 1);
        ck_assert_int_eq(g->bbox[3], y1 - y0 + 1);
        if (ic_synth_class_find(g->category_id)->isthing)
            ck_assert_int_ge(g->area, min_area);
        covered += area;
    }
    int64_t labelled = 0;
    for (size_t i = 0; i < n; i++) {
        labelled += s->ids[i] != 0;
        ck_assert_int_eq(s->ids[i] == 0, s->semantic[i] == IC_SYNTH_VOID);
    }
    ck_assert_int_eq(covered, labelled);
}

START_TEST(test_classes_and_segments)
{
    ic_synth_sample s;
    ck_assert_int_eq(ic_synth_sample_init(&s, H, W), 0);
    int64_t per_class[256] = {0};
    int cars = 0, persons = 0;
    for (uint64_t idx = 0; idx < 16; idx++) {
        ck_assert_int_eq(ic_synth_render(&s, 3, idx, IC_SYNTH_SOURCE), 0);
        check_segments(&s);
        for (int k = 0; k < s.n_segments; k++) {
            per_class[s.segments[k].category_id] += s.segments[k].area;
            cars += s.segments[k].category_id == IC_SYNTH_CAR;
            persons += s.segments[k].category_id == IC_SYNTH_PERSON;
        }
    }
    const ic_synth_class *c = ic_synth_classes();
    for (int k = 0; k < IC_SYNTH_NUM_CLASSES; k++)
        ck_assert_msg(per_class[c[k].train_id] > 0, "class %s never drawn", c[k].name);
    /* things with many instances per image */
    ck_assert_int_ge(cars, 16 * 3);
    ck_assert_int_ge(persons, 16 * 2);
    ic_synth_sample_deinit(&s);
}
END_TEST

static char tmp_dir[256];

static char *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    ck_assert_ptr_nonnull(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    ck_assert_uint_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return buf;
}

START_TEST(test_writer_coco_panoptic)
{
    snprintf(tmp_dir, sizeof tmp_dir, "/tmp/ic_synth_test_%d/set", (int)getpid());
    ic_synth_write_opts o;
    memset(&o, 0, sizeof o);
    o.out_dir = tmp_dir;
    o.domain = IC_SYNTH_FOG2;
    o.seed = 9;
    o.start = 5;
    o.count = 3;
    o.h = H;
    o.w = W;
    o.threads = 2;
    ck_assert_int_eq(ic_synth_write_dataset(&o, NULL, NULL), 0);

    char path[512];
    snprintf(path, sizeof path, "%s/panoptic.json", tmp_dir);
    json_error_t jerr;
    json_t *root = json_load_file(path, 0, &jerr);
    ck_assert_msg(root != NULL, "panoptic.json: %s", jerr.text);
    /* round trip */
    char *text = json_dumps(root, JSON_COMPACT);
    json_t *again = json_loads(text, 0, &jerr);
    ck_assert(json_equal(root, again));
    free(text);
    json_decref(again);

    json_t *cats = json_object_get(root, "categories");
    ck_assert_int_eq(json_array_size(cats), IC_SYNTH_NUM_CLASSES);
    for (size_t k = 0; k < json_array_size(cats); k++) {
        json_t *c = json_array_get(cats, k);
        const ic_synth_class *cl = ic_synth_class_find((int)json_integer_value(json_object_get(c, "id")));
        ck_assert_ptr_nonnull(cl);
        ck_assert_str_eq(json_string_value(json_object_get(c, "name")), cl->name);
        ck_assert_int_eq(json_integer_value(json_object_get(c, "isthing")), cl->isthing);
        ck_assert_int_eq(json_integer_value(json_array_get(json_object_get(c, "color"), 0)), cl->color[0]);
    }
    json_t *images = json_object_get(root, "images"), *anns = json_object_get(root, "annotations");
    ck_assert_int_eq(json_array_size(images), 3);
    ck_assert_int_eq(json_array_size(anns), 3);

    ic_synth_sample s;
    ck_assert_int_eq(ic_synth_sample_init(&s, H, W), 0);
    for (size_t k = 0; k < 3; k++) {
        json_t *im = json_array_get(images, k), *an = json_array_get(anns, k);
        ck_assert_int_eq(json_integer_value(json_object_get(im, "id")), 5 + (int)k);
        ck_assert_int_eq(json_integer_value(json_object_get(an, "image_id")), 5 + (int)k);
        ck_assert_int_eq(json_integer_value(json_object_get(im, "width")), W);
        ck_assert_int_eq(json_integer_value(json_object_get(im, "height")), H);
        const char *name = json_string_value(json_object_get(an, "file_name"));
        char expect[32];
        snprintf(expect, sizeof expect, "%06d.png", 5 + (int)k);
        ck_assert_str_eq(name, expect);

        /* the PNG decodes to the ids the library renders */
        size_t len;
        snprintf(path, sizeof path, "%s/panoptic/%s", tmp_dir, name);
        char *buf = read_all(path, &len);
        ic_image img;
        ic_image_decode_opts dopt = ic_image_decode_opts_default();
        ck_assert_int_eq(ic_image_decode(buf, len, &dopt, &img), 0);
        free(buf);
        int32_t *ids = malloc((size_t)H * W * sizeof *ids);
        ck_assert_int_eq(ic_image_ids_from_rgb(&img, ids), 0);
        ic_image_free(&img);
        ck_assert_int_eq(ic_synth_render(&s, 9, 5 + k, IC_SYNTH_FOG2), 0);
        ck_assert_mem_eq(ids, s.ids, (size_t)H * W * sizeof *ids);

        json_t *infos = json_object_get(an, "segments_info");
        ck_assert_int_eq((int)json_array_size(infos), s.n_segments);
        for (size_t q = 0; q < json_array_size(infos); q++) {
            json_t *si = json_array_get(infos, q);
            int32_t id = (int32_t)json_integer_value(json_object_get(si, "id"));
            int64_t area = 0;
            for (size_t i = 0; i < (size_t)H * W; i++)
                area += ids[i] == id;
            ck_assert_int_eq(json_integer_value(json_object_get(si, "area")), area);
            ck_assert_int_eq(json_integer_value(json_object_get(si, "iscrowd")), 0);
            ck_assert_int_eq(json_integer_value(json_object_get(si, "category_id")), id / 1000 - 1);
            ck_assert_int_eq(json_array_size(json_object_get(si, "bbox")), 4);
        }
        free(ids);

        /* depth: 16-bit centimetres */
        snprintf(path, sizeof path, "%s/depth/%s", tmp_dir, name);
        buf = read_all(path, &len);
        dopt.keep16 = 1;
        ck_assert_int_eq(ic_image_decode(buf, len, &dopt, &img), 0);
        free(buf);
        ck_assert_int_eq(img.depth, 16);
        const uint16_t *cm = img.data;
        for (size_t i = 0; i < (size_t)H * W; i += 97) {
            float want = s.depth[i] * 100.0f + 0.5f;
            ck_assert_int_eq(cm[i], want >= 65535.0f ? 65535 : (int)want);
        }
        ic_image_free(&img);
        snprintf(path, sizeof path, "%s/images/%s", tmp_dir, name);
        ck_assert_int_eq(access(path, R_OK), 0);
    }
    ic_synth_sample_deinit(&s);
    json_decref(root);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf /tmp/ic_synth_test_%d", (int)getpid());
    ck_assert_int_eq(system(cmd), 0);
}
END_TEST

START_TEST(test_bad_arguments)
{
    ic_synth_sample s;
    memset(&s, 0, sizeof s);
    ck_assert_int_eq(ic_synth_sample_init(&s, 0, 0), IC_EINVAL);
    ck_assert_ptr_nonnull(strstr(ic_error_message(), "0x0"));
    ck_assert_int_eq(ic_synth_sample_init(&s, 64, 100000), IC_EINVAL);
    ck_assert_int_eq(ic_synth_render(&s, 0, 0, IC_SYNTH_SOURCE), IC_EINVAL);
    ic_synth_domain d;
    ck_assert_int_eq(ic_synth_domain_parse("snow", &d), IC_EINVAL);
    ck_assert_ptr_nonnull(strstr(ic_error_message(), "snow"));
    ck_assert_ptr_nonnull(strstr(ic_error_message(), "fog3"));
    ck_assert_int_eq(ic_synth_domain_parse("fog2", &d), 0);
    ck_assert_int_eq(d, IC_SYNTH_FOG2);
    ck_assert_str_eq(ic_synth_domain_name(IC_SYNTH_STYLE), "style");
    ck_assert_str_eq(ic_synth_domain_name((ic_synth_domain)99), "unknown");

    ck_assert_int_eq(ic_synth_sample_init(&s, H, W), 0);
    ck_assert_int_eq(ic_synth_render(&s, 0, 0, (ic_synth_domain)99), IC_EINVAL);
    ic_synth_sample_deinit(&s);
    ic_synth_sample_deinit(NULL);

    ic_synth_write_opts o;
    memset(&o, 0, sizeof o);
    o.out_dir = "/tmp/ic_synth_never";
    o.count = 0;
    ck_assert_int_eq(ic_synth_write_dataset(&o, NULL, NULL), IC_EINVAL);
    ck_assert_ptr_nonnull(strstr(ic_error_message(), "count"));
    o.count = 1;
    o.h = 8;
    o.w = 8;
    ck_assert_int_eq(ic_synth_write_dataset(&o, NULL, NULL), IC_EINVAL);
    o.h = o.w = 0;
    o.out_dir = "/proc/ic_synth_no_such_dir";
    ck_assert_int_eq(ic_synth_write_dataset(&o, NULL, NULL), IC_EIO);
    ck_assert_ptr_nonnull(strstr(ic_error_message(), "/proc/ic_synth_no_such_dir"));
}
END_TEST

static int run_cli(int n, const char **args)
{
    return cmd_synth(n, (char **)args);
}

START_TEST(test_cli_usage_errors)
{
    const char *size0[] = {"synth", "--out", "/tmp/x", "--size", "0x0"};
    ck_assert_int_eq(run_cli(5, size0), 2);
    const char *sizebad[] = {"synth", "--out", "/tmp/x", "--size", "256by512"};
    ck_assert_int_eq(run_cli(5, sizebad), 2);
    const char *dom[] = {"synth", "--out", "/tmp/x", "--domain", "snow"};
    ck_assert_int_eq(run_cli(5, dom), 2);
    const char *count0[] = {"synth", "--out", "/tmp/x", "--count", "0"};
    ck_assert_int_eq(run_cli(5, count0), 2);
    const char *noout[] = {"synth", "--count", "3"};
    ck_assert_int_eq(run_cli(3, noout), 2);
    const char *unknown[] = {"synth", "--frobnicate"};
    ck_assert_int_eq(run_cli(2, unknown), 2);
    const char *missing[] = {"synth", "--seed"};
    ck_assert_int_eq(run_cli(2, missing), 2);
    const char *help[] = {"synth", "--help"};
    ck_assert_int_eq(run_cli(2, help), 0);
}
END_TEST

START_TEST(test_allocation_failures)
{
    for (long k = 0; k < 40; k++) {
        ic_synth_sample s;
        ic_alloc_fail_after(k);
        int rc = ic_synth_sample_init(&s, H, W);
        ic_alloc_fail_reset();
        if (rc == 0) {
            ic_synth_sample_deinit(&s);
            break;
        }
        ck_assert_int_eq(rc, IC_ENOMEM);
    }
}
END_TEST

int main(void)
{
    Suite *su = suite_create("synth");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, test_deterministic);
    tcase_add_test(tc, test_domains_share_labels);
    tcase_add_test(tc, test_alignment);
    tcase_add_test(tc, test_classes_and_segments);
    tcase_add_test(tc, test_writer_coco_panoptic);
    tcase_add_test(tc, test_bad_arguments);
    tcase_add_test(tc, test_cli_usage_errors);
    tcase_add_test(tc, test_allocation_failures);
    suite_add_tcase(su, tc);
    SRunner *sr = srunner_create(su);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
