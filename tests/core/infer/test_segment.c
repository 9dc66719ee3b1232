/* The whole inference path on the tiny model: masks decode and agree with
 * the segments, a label made from the prediction itself scores perfectly,
 * and bad inputs give named errors. */
#include <check.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/err.h"
#include "image/ids.h"
#include "image/png.h"
#include "infer/result_json.h"
#include "infer/segment.h"
#include "testutil.h"

static ic_pdl *net;

static void setup(void)
{
    int rc = ic_pdl_load(&net, tu_path("golden/fixtures/model_tiny_weights.safetensors"), NULL);
    ck_assert_msg(rc == 0, "%s", ic_error_message());
}

static void teardown(void)
{
    ic_pdl_free(&net);
}

/* A 96x64 RGB test picture: a gradient sky over a darker ground with two blobs. */
static unsigned char *make_png(size_t *len)
{
    ic_image img;
    ck_assert_int_eq(ic_image_alloc(&img, 96, 64, 3, 8), 0);
    uint8_t *p = img.data;
    for (int y = 0; y < 64; y++)
        for (int x = 0; x < 96; x++) {
            uint8_t *q = p + ((size_t)y * 96 + x) * 3;
            int blob = (x - 30) * (x - 30) + (y - 45) * (y - 45) < 60 ||
                       (x - 70) * (x - 70) + (y - 40) * (y - 40) < 90;
            q[0] = (uint8_t)(y < 28 ? 90 + y : blob ? 220 : 60);
            q[1] = (uint8_t)(y < 28 ? 140 + y : blob ? 30 : 60 + x / 4);
            q[2] = (uint8_t)(y < 28 ? 200 : blob ? 40 : 70);
        }
    unsigned char *out;
    ck_assert_int_eq(ic_image_encode_png(&img, NULL, &out, len), 0);
    ic_image_free(&img);
    return out;
}

START_TEST(test_masks_agree_and_self_label_is_perfect)
{
    size_t len;
    unsigned char *png = make_png(&len);
    ic_arena a;
    ic_arena_init(&a, 0, 0);
    ic_segment_opts so = {.calib = {.mode = IC_CALIB_INSTCAL_U},
                          .outputs = IC_OUT_PANOPTIC_PNG | IC_OUT_SEMANTIC_PNG | IC_OUT_RLE |
                                     IC_OUT_OVERLAY_PNG | IC_OUT_CONFIDENCE_PNG};
    ic_segment_result res;
    int rc = ic_segment_run(&res, net, &a, png, len, &so, NULL);
    ck_assert_msg(rc == 0, "%s", ic_error_message());
    ck_assert_int_eq(res.width, 96);
    ck_assert_int_eq(res.height, 64);
    ck_assert_int_gt(res.pano.n_segments, 0);

    /* The panoptic PNG decodes to segment ids whose areas are the segments'. */
    ic_image dec = {0};
    ic_image_decode_opts o = {0};
    ck_assert_int_eq(ic_image_decode(res.panoptic_png, res.panoptic_png_len, &o, &dec), 0);
    int32_t *ids = malloc(96 * 64 * sizeof *ids);
    ck_assert_int_eq(ic_image_ids_from_rgb(&dec, ids), 0);
    for (int s = 0; s < res.pano.n_segments; s++) {
        int64_t area = 0;
        for (int i = 0; i < 96 * 64; i++)
            area += ids[i] == res.segment_ids[s];
        ck_assert_int_eq(area, res.pano.segments[s].area);
        ck_assert_ptr_nonnull(res.rle[s]);
    }
    ic_image_free(&dec);

    /* JSON: segments, masks, confidence histogram summing to the pixel count. */
    json_t *j = ic_segment_result_json(&res, ic_pdl_get_config(net), &so.calib);
    ck_assert_ptr_nonnull(j);
    ck_assert_int_eq((int)json_array_size(json_object_get(j, "segments")), res.pano.n_segments);
    ck_assert(json_is_string(json_object_get(json_object_get(j, "masks"), "panoptic_png")));
    json_t *hist = json_object_get(json_object_get(j, "confidence"), "histogram");
    json_int_t total = 0;
    for (size_t i = 0; i < json_array_size(hist); i++)
        total += json_integer_value(json_array_get(hist, i));
    ck_assert_int_eq(total, 96 * 64);
    json_decref(j);

    /* A label made from this prediction: perfect mIoU and PQ; ECE in [0, 1]. */
    json_t *segs = json_array();
    for (int s = 0; s < res.pano.n_segments; s++)
        json_array_append_new(segs, json_pack("{s:i, s:i, s:i}", "id", res.segment_ids[s],
                                              "category_id", res.pano.segments[s].category_id,
                                              "iscrowd", 0));
    char *segtext = json_dumps(segs, 0);
    json_decref(segs);
    unsigned char *label = res.panoptic_png;
    size_t label_len = res.panoptic_png_len;
    res.panoptic_png = NULL; /* keep it past deinit */
    ic_image sem;
    ck_assert_int_eq(ic_image_alloc(&sem, 96, 64, 1, 8), 0);
    for (int i = 0; i < 96 * 64; i++)
        ((uint8_t *)sem.data)[i] = (uint8_t)res.sem[i];
    unsigned char *sem_png;
    size_t sem_len;
    ck_assert_int_eq(ic_image_encode_png(&sem, NULL, &sem_png, &sem_len), 0);
    ic_image_free(&sem);
    ic_segment_result_deinit(&res);
    ic_arena_reset(&a);
    ic_segment_gt gt;
    rc = ic_segment_gt_load(&gt, &a, ic_pdl_get_config(net), label, label_len, segtext, NULL);
    ck_assert_msg(rc == 0, "%s", ic_error_message());
    rc = ic_segment_run(&res, net, &a, png, len, &so, &gt);
    ck_assert_msg(rc == 0, "%s", ic_error_message());
    ck_assert(res.has_gt);
    ck_assert(res.metrics.has_pq);
    ck_assert(fabs(res.metrics.pq_all.pq - 1.0) < 1e-12);
    ck_assert(res.metrics.ece >= 0 && res.metrics.ece <= 1);
    ic_segment_result_deinit(&res);
    /* The semantic prediction as a class-id label: perfect mIoU, no PQ. */
    ic_arena_reset(&a);
    rc = ic_segment_gt_load(&gt, &a, ic_pdl_get_config(net), sem_png, sem_len, NULL, NULL);
    ck_assert_msg(rc == 0, "%s", ic_error_message());
    rc = ic_segment_run(&res, net, &a, png, len, &so, &gt);
    ck_assert_msg(rc == 0, "%s", ic_error_message());
    ck_assert(fabs(res.metrics.miou - 1.0) < 1e-12);
    ck_assert(fabs(res.metrics.pixel_acc - 1.0) < 1e-12);
    ck_assert(!res.metrics.has_pq);
    ic_segment_result_deinit(&res);
    ic_free(sem_png);
    free(segtext);
    ic_free(label);
    free(ids);
    ic_free(png);
    ic_arena_deinit(&a);
}
END_TEST

START_TEST(test_errors)
{
    ic_arena a;
    ic_arena_init(&a, 0, 0);
    ic_segment_opts so = {.outputs = IC_OUT_DEFAULT};
    ic_segment_result res;
    const char junk[] = "definitely not an image";
    ck_assert_int_eq(ic_segment_run(&res, net, &a, junk, sizeof junk, &so, NULL), IC_EUNSUPPORTED);
    size_t len;
    unsigned char *png = make_png(&len);
    ck_assert_int_eq(ic_segment_run(&res, net, &a, png, len / 2, &so, NULL), IC_EFORMAT);
    so.calib.mode = IC_CALIB_TENT;
    ck_assert_int_eq(ic_segment_run(&res, net, &a, png, len, &so, NULL), IC_EINVAL);
    so.calib.mode = IC_CALIB_NONE;
    so.limits.max_pixels = 1000;
    ck_assert_int_eq(ic_segment_run(&res, net, &a, png, len, &so, NULL), IC_ELIMIT);
    /* A label whose size differs from the image. */
    ic_segment_gt gt;
    ck_assert_int_eq(ic_segment_gt_load(&gt, &a, ic_pdl_get_config(net), png, len, NULL, NULL),
                     IC_EFORMAT); /* RGB without segments */
    ck_assert_int_eq(ic_segment_gt_load(&gt, &a, ic_pdl_get_config(net), png, len, "[{\"id\": 1}]",
                                        NULL),
                     IC_EFORMAT);
    /* The decoder's message behind a single "label: " (the message used to
     * be composed from itself: "label: label: ges are not supported..."). */
    static const unsigned char gif[] = "GIF89a\1\0\1\0\0\0\0;";
    ck_assert_int_eq(ic_segment_gt_load(&gt, &a, ic_pdl_get_config(net), gif, sizeof gif - 1,
                                        NULL, NULL),
                     IC_EUNSUPPORTED);
    ck_assert_str_eq(ic_error_message(), "label: GIF images are not supported; send JPEG or PNG");
    unsigned mask;
    ck_assert_int_eq(ic_segment_parse_outputs("panoptic, rle", &mask), 0);
    ck_assert_uint_eq(mask, IC_OUT_PANOPTIC_PNG | IC_OUT_RLE);
    ck_assert_int_eq(ic_segment_parse_outputs("panoptic,bogus", &mask), IC_EINVAL);
    ic_free(png);
    ic_arena_deinit(&a);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("segment");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_masks_agree_and_self_label_is_perfect);
    tcase_add_test(tc, test_errors);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
