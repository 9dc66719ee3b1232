/* libFuzzer target: the ground-truth path of /v1/segment (the `label` PNG
 * and its `label_segments` JSON) through ic_segment_gt_load. Input layout:
 * byte 0 bit 0 says whether a JSON part follows; then the PNG; the JSON is
 * whatever follows the last "\n--json--\n" separator. The model config is a
 * 19-class Cityscapes-like one (ignore 255), as the shipped model has. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/arena.h"
#include "image/image.h"
#include "infer/segment.h"
#include "model/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char SEP[] = "\n--json--\n";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static ic_pdl_config cfg;
    static int init;
    if (!init) {
        memset(&cfg, 0, sizeof cfg);
        cfg.num_classes = 19;
        cfg.ignore_value = 255;
        for (int c = 11; c < 19; c++)
            cfg.is_thing[c] = 1;
        init = 1;
    }
    if (size < 1)
        return 0;
    int with_json = data[0] & 1;
    const uint8_t *png = data + 1;
    size_t png_len = size - 1;
    char *json = NULL;
    size_t json_len = 0;
    if (with_json) {
        const uint8_t *sep = NULL;
        for (size_t i = 0; i + sizeof SEP - 1 <= png_len; i++)
            if (memcmp(png + i, SEP, sizeof SEP - 1) == 0)
                sep = png + i;
        if (sep) {
            /* Exactly the JSON's bytes, no NUL after them: ASan sees a read
             * past the end, and embedded NULs reach the parser. */
            json_len = png_len - (size_t)(sep - png) - (sizeof SEP - 1);
            json = malloc(json_len ? json_len : 1);
            if (!json)
                return 0;
            memcpy(json, sep + sizeof SEP - 1, json_len);
            png_len = (size_t)(sep - png);
        } else {
            json = strdup("[]");
            json_len = 2;
        }
    }
    ic_image_limits lim = {.max_w = 2048, .max_h = 2048, .max_pixels = 1 << 20};
    ic_arena arena;
    ic_arena_init(&arena, 0, (size_t)64 << 20);
    ic_segment_gt gt;
    if (ic_segment_gt_load(&gt, &arena, &cfg, png, png_len, json, json_len, &lim) == 0) {
        volatile int64_t acc = 0;
        size_t n = (size_t)gt.w * (size_t)gt.h;
        for (size_t i = 0; i < n; i++) {
            if (gt.sem[i] != cfg.ignore_value && (gt.sem[i] < 0 || gt.sem[i] >= cfg.num_classes))
                __builtin_trap(); /* a class outside the model escaped validation */
            acc += gt.sem[i] + (gt.ids ? gt.ids[i] : 0);
        }
        (void)acc;
    }
    ic_arena_deinit(&arena);
    free(json);
    return 0;
}
