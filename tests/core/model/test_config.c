/* Config parser: the shipped configs parse to the documented geometry, and
 * each kind of bad value is refused with the key named. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "model/config.h"
#include "testutil.h"

START_TEST(test_shipped_configs)
{
    ic_pdl_config cfg;
    int rc = ic_pdl_config_load(&cfg, tu_path("../models/configs/cityscapes-r52-dsconv.json"));
    ck_assert_msg(rc == 0, "%s", ic_error_message());
    ck_assert_int_eq(cfg.num_classes, 19);
    ck_assert_str_eq(cfg.class_names[13], "car");
    ck_assert(cfg.is_thing[11] && cfg.is_thing[18] && !cfg.is_thing[10]);
    ck_assert(cfg.sem.dsconv && cfg.ins.dsconv);
    ck_assert_int_eq(cfg.sem.aspp_pool_kernel[0], 32);
    ck_assert_int_eq(cfg.sem.aspp_pool_kernel[1], 64);
    ic_pdl_stage st[4];
    ic_pdl_config_stages(&cfg, st);
    ck_assert_int_eq(st[0].cout, 256);
    ck_assert_int_eq(st[1].stride, 2);
    ck_assert_int_eq(st[2].cout, 1024);
    ck_assert_int_eq(st[3].stride, 1); /* dilated res5 keeps stride 16 */
    ck_assert_int_eq(st[3].dilation[0], 2);
    ck_assert_int_eq(st[3].dilation[1], 4);
    ck_assert_int_eq(st[3].dilation[2], 8);
    ck_assert_int_eq(st[3].bottleneck, 512);
    rc = ic_pdl_config_load(&cfg, tu_path("../models/configs/cityscapes-r52.json"));
    ck_assert_msg(rc == 0, "%s", ic_error_message());
    ck_assert(!cfg.sem.dsconv);
    ck_assert_int_eq(cfg.stuff_area, 2048);
}
END_TEST

static int parse_modified(const char *from, const char *to)
{
    static char text[1 << 16];
    FILE *f = fopen(tu_path("../models/configs/tiny-test.json"), "rb");
    ck_assert_ptr_nonnull(f);
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = 0;
    char *p = strstr(text, from);
    ck_assert_msg(p != NULL, "'%s' not in tiny-test.json", from);
    static char out[1 << 16];
    size_t pre = (size_t)(p - text);
    memcpy(out, text, pre);
    strcpy(out + pre, to);
    strcat(out, p + strlen(from));
    ic_pdl_config cfg;
    return ic_pdl_config_parse(&cfg, out, strlen(out));
}

START_TEST(test_bad_configs)
{
    ck_assert_int_eq(parse_modified("\"version\": 1", "\"version\": 1"), 0);
    struct {
        const char *from, *to, *key;
    } cases[] = {
        {"\"version\": 1", "\"version\": 2", "version"},
        {"\"format\": \"instcal-pdl\"", "\"format\": \"onnx\"", "format"},
        {"\"num_classes\": 4", "\"num_classes\": 0", "num_classes"},
        {"\"num_classes\": 4", "\"num_classes\": 5", "classes.names"},
        {"\"thing_ids\": [2, 3]", "\"thing_ids\": [2, 9]", "thing_ids"},
        {"\"nms_kernel\": 3", "\"nms_kernel\": 4", "nms_kernel"},
        {"\"blocks_per_stage\": [1, 2, 1, 2]", "\"blocks_per_stage\": [1, 2, 1]", "blocks_per_stage"},
        {"\"pixel_std\": [58.395, 57.12, 57.375]", "\"pixel_std\": [0, 57.12, 57.375]", "pixel_std"},
        {"\"type\": \"global\"", "\"type\": \"max\"", "aspp_pooling"},
        {"\"stride_in_1x1\": false", "\"stride_in_1x1\": true", "stride_in_1x1"},
        {"\"format\": \"instcal-pdl\",", "\"format\": \"instcal-pdl\",,", "JSON"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int rc = parse_modified(cases[i].from, cases[i].to);
        ck_assert_msg(rc == IC_EFORMAT, "case %zu: rc %d", i, rc);
        ck_assert_msg(strstr(ic_error_message(), cases[i].key) != NULL, "case %zu: '%s' lacks '%s'", i,
                      ic_error_message(), cases[i].key);
    }
    ic_pdl_config cfg;
    ck_assert_int_eq(ic_pdl_config_load(&cfg, "/nonexistent.json"), IC_EIO);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("config");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_shipped_configs);
    tcase_add_test(tc, test_bad_configs);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
