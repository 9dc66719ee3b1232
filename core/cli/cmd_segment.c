/* `instcal segment`: segments images with the full service path and writes
 * the masks, an overlay and the JSON result. */
#include <errno.h>
#include <jansson.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "adapt/adapt.h"
#include "base/alloc.h"
#include "base/err.h"
#include "cli/args.h"
#include "cli/commands.h"
#include "infer/result_json.h"
#include "infer/segment.h"
#include "io/safetensors.h"

static const char usage[] =
    "usage: instcal segment [options] IMAGE...\n"
    "  --model FILE          weights (default $INSTCAL_MODEL or models/default.safetensors)\n"
    "  --config FILE         model config (default: the one inside the weights)\n"
    "  --calibration MODE    none, manual, tbn, instcal-u, instcal-c, instcal-g, instcal-e, tent\n"
    "                        (default none)\n"
    "  --m X                 strength for manual calibration, in [0, 1]\n"
    "  --out DIR             write NAME_panoptic.png, NAME_semantic.png, NAME_overlay.png,\n"
    "                        NAME_confidence.png and NAME.json into DIR\n"
    "  --json FILE           write the JSON result (an array for several images)\n"
    "  --outputs LIST        masks to encode: panoptic,semantic,confidence,overlay,rle,all\n"
    "                        (default all with --out, else panoptic,semantic)\n"
    "  --label PNG           ground truth: class-id PNG, or COCO-panoptic PNG with\n"
    "  --label-segments JSON its segments_info (array) -> ECE, mIoU, PQ in the result\n"
    "  --dump-raw FILE       safetensors with sem_logits [C,H,W], center [1,H,W], offset [2,H,W]\n"
    "  --repeat N            run the forward N times and report the median\n"
    "  --size N              network input short side in pixels (default: the model's\n"
    "                        min_size_test; its long-side cap scales with it)\n";

static int write_file(const char *dir, const char *stem, const char *suffix,
                      const unsigned char *data, size_t len)
{
    if (!data)
        return 0;
    char path[4096];
    snprintf(path, sizeof path, "%s/%s%s", dir, stem, suffix);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, len, f) != len) {
        fprintf(stderr, "cannot write %s: %s\n", path, strerror(errno));
        if (f)
            fclose(f);
        return 1;
    }
    return fclose(f) != 0;
}

static int dump_raw(const char *path, const ic_segment_result *res)
{
    ic_st_writer *w = NULL;
    int rc = ic_st_writer_create(&w);
    const ic_tensor *t[3] = {&res->raw.sem, &res->raw.center, &res->raw.offset};
    const char *names[3] = {"sem_logits", "center", "offset"};
    for (int i = 0; !rc && i < 3; i++) {
        int64_t shape[3] = {t[i]->c, t[i]->h, t[i]->w};
        rc = ic_st_writer_add_f32(w, names[i], t[i]->data, 3, shape);
    }
    if (!rc)
        rc = ic_st_writer_save(w, path);
    ic_st_writer_destroy(&w);
    if (rc)
        fprintf(stderr, "--dump-raw: %s\n", ic_error_message());
    return rc != 0;
}

static void stem_of(const char *path, char *out, size_t len)
{
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s", path);
    const char *base = basename(tmp);
    snprintf(out, len, "%s", base);
    char *dot = strrchr(out, '.');
    if (dot && dot != out)
        *dot = '\0';
}

int cmd_segment(int argc, char **argv)
{
    const char *model = NULL, *config = NULL, *mode = NULL, *m = NULL, *out = NULL, *json_path = NULL,
               *outputs = NULL, *label = NULL, *label_seg = NULL, *raw = NULL, *repeat = NULL,
               *size = NULL;
    cli_opt opts[] = {{"model", &model, NULL},   {"config", &config, NULL},
                      {"calibration", &mode, NULL}, {"m", &m, NULL},
                      {"out", &out, NULL},       {"json", &json_path, NULL},
                      {"outputs", &outputs, NULL}, {"label", &label, NULL},
                      {"label-segments", &label_seg, NULL}, {"dump-raw", &raw, NULL},
                      {"repeat", &repeat, NULL}, {"size", &size, NULL}};
    int npos = 0, rc = cli_parse(argc, argv, opts, sizeof opts / sizeof opts[0], &npos, usage);
    if (rc)
        return rc == 1 ? 0 : 2;
    if (npos < 1) {
        fputs(usage, stderr);
        return 2;
    }
    ic_segment_opts so = {.outputs = out ? IC_OUT_ALL : IC_OUT_DEFAULT};
    if (cli_calib_opts(mode, m, &so.calib) || cli_int("repeat", repeat, 1, 1000, &so.repeat) ||
        cli_int("size", size, 1, 65536, &so.size))
        return 2;
    if (outputs && ic_segment_parse_outputs(outputs, &so.outputs)) {
        fprintf(stderr, "%s\n", ic_error_message());
        return 2;
    }
    if (label_seg && !label) {
        fprintf(stderr, "--label-segments needs --label\n");
        return 2;
    }
    if (out && mkdir(out, 0777) != 0 && errno != EEXIST) {
        fprintf(stderr, "cannot create %s: %s\n", out, strerror(errno));
        return 1;
    }
    ic_pdl *net = NULL;
    if (!model)
        model = cli_default_model();
    if (ic_pdl_load(&net, model, config)) {
        fprintf(stderr, "cannot load model %s: %s\n", model, ic_error_message());
        return 1;
    }
    const ic_pdl_config *cfg = ic_pdl_get_config(net);
    ic_tent *tent = NULL; /* --calibration tent: a private trainable copy */
    if (so.calib.mode == IC_CALIB_TENT && ic_tent_create(&tent, model, config)) {
        fprintf(stderr, "cannot load model %s for tent: %s\n", model, ic_error_message());
        ic_pdl_free(&net);
        return 1;
    }
    ic_forward fw;
    if (ic_adapt_forward(&fw, net, tent, so.calib.mode)) {
        fprintf(stderr, "%s\n", ic_error_message());
        ic_tent_free(&tent);
        ic_pdl_free(&net);
        return 1;
    }
    ic_arena arena;
    ic_arena_init(&arena, 0, 0);
    json_t *all = json_array();
    int status = 0;
    for (int i = 0; i < npos && !status; i++) {
        const char *path = argv[1 + i];
        unsigned char *buf = NULL, *lbuf = NULL, *sbuf = NULL;
        size_t len = 0, llen = 0, slen = 0;
        ic_segment_gt gt, *gtp = NULL;
        ic_arena_reset(&arena);
        if (cli_read_file(path, (size_t)1 << 30, &buf, &len)) {
            status = 1;
            break;
        }
        if (label) {
            if (cli_read_file(label, (size_t)1 << 30, &lbuf, &llen) ||
                (label_seg && cli_read_file(label_seg, (size_t)1 << 26, &sbuf, &slen))) {
                status = 1;
            } else {
                if (ic_segment_gt_load(&gt, &arena, cfg, lbuf, llen, (const char *)sbuf, slen,
                                       NULL)) {
                    fprintf(stderr, "%s: %s\n", label, ic_error_message());
                    status = 1;
                }
                gtp = &gt;
            }
        }
        ic_segment_result res;
        if (!status && ic_segment_run(&res, &fw, &arena, buf, len, &so, gtp)) {
            fprintf(stderr, "%s: %s\n", path, ic_error_message());
            status = 1;
        }
        ic_free(buf);
        ic_free(lbuf);
        ic_free(sbuf);
        if (status)
            break;
        json_t *j = ic_segment_result_json(&res, cfg, &so.calib);
        json_object_set_new(j, "file", json_string(path));
        char stem[256];
        stem_of(path, stem, sizeof stem);
        if (out) {
            char *text = json_dumps(j, JSON_INDENT(1) | JSON_REAL_PRECISION(6));
            status |= write_file(out, stem, "_panoptic.png", res.panoptic_png, res.panoptic_png_len);
            status |= write_file(out, stem, "_semantic.png", res.semantic_png, res.semantic_png_len);
            status |= write_file(out, stem, "_confidence.png", res.confidence_png,
                                 res.confidence_png_len);
            status |= write_file(out, stem, "_overlay.png", res.overlay_png, res.overlay_png_len);
            status |= write_file(out, stem, ".json", (const unsigned char *)text, text ? strlen(text) : 0);
            free(text);
        }
        if (raw) {
            char rpath[4096];
            if (npos > 1)
                snprintf(rpath, sizeof rpath, "%s.%d", raw, i);
            else
                snprintf(rpath, sizeof rpath, "%s", raw);
            status |= dump_raw(rpath, &res);
        }
        fprintf(stderr,
                "%s: %dx%d, %d segments, drift %.4g, forward %.1f ms (median %.1f), post %.1f ms\n",
                path, res.width, res.height, res.pano.n_segments, res.drift, res.t.forward * 1e3,
                res.t.forward_median * 1e3, res.t.post * 1e3);
        if (res.has_gt)
            fprintf(stderr, "  ECE %.4f  mIoU %.4f%s%.4f\n", res.metrics.ece, res.metrics.miou,
                    res.metrics.has_pq ? "  PQ " : "", res.metrics.has_pq ? res.metrics.pq_all.pq : 0.0);
        json_array_append_new(all, j);
        ic_segment_result_deinit(&res);
    }
    if (!status && json_path) {
        json_t *doc = json_array_size(all) == 1 ? json_array_get(all, 0) : all;
        if (json_dump_file(doc, json_path, JSON_INDENT(1) | JSON_REAL_PRECISION(6)) != 0) {
            fprintf(stderr, "cannot write %s\n", json_path);
            status = 1;
        }
    } else if (!status && !out) {
        json_t *doc = json_array_size(all) == 1 ? json_array_get(all, 0) : all;
        json_dumpf(doc, stdout, JSON_INDENT(1) | JSON_REAL_PRECISION(6));
        fputc('\n', stdout);
    }
    json_decref(all);
    ic_arena_deinit(&arena);
    ic_tent_free(&tent);
    ic_pdl_free(&net);
    return status;
}
