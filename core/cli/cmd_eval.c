/* `instcal eval`: runs a model over a dataset in COCO-panoptic layout and
 * reports mIoU (accumulated confusion matrix), PQ/SQ/RQ (panopticapi rules),
 * ECE over all labelled pixels and throughput, as a table and as JSON. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "adapt/adapt.h"
#include "base/alloc.h"
#include "base/err.h"
#include "cli/args.h"
#include "cli/commands.h"
#include "cli/eval_common.h"
#include "infer/evaluate.h"
#include "infer/result_json.h"
#include "infer/segment.h"

static const char usage[] =
    "usage: instcal eval --data DIR [options]\n"
    "  --data DIR            dataset: DIR/panoptic.json, DIR/images/, DIR/panoptic/\n"
    "                        (category ids must be the model's class ids)\n"
    "  --model FILE          weights (default $INSTCAL_MODEL or models/default.safetensors)\n"
    "  --config FILE         model config (default: the one inside the weights)\n"
    "  --calibration MODE    none, manual, tbn, instcal-u, instcal-c, instcal-g (default none)\n"
    "  --m X                 strength for manual calibration\n"
    "  --limit N             evaluate only the first N images\n"
    "  --json FILE           write the numbers as JSON\n"
    "  --quiet               no per-image progress\n"
    "or: instcal eval --suite synthcity|robust [options]   (see instcal eval --suite synthcity --help)\n";

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static const char *image_file(json_t *images, json_int_t id)
{
    size_t i;
    json_t *im;
    json_array_foreach(images, i, im)
    {
        json_t *jid = json_object_get(im, "id");
        if (json_is_integer(jid) && json_integer_value(jid) == id)
            return json_string_value(json_object_get(im, "file_name"));
    }
    return NULL;
}

/* One image: run, load its ground truth, accumulate. Returns 0 or 1. */
static int eval_one(const ic_forward *fw, ic_arena *arena, ic_eval *ev, const char *dir, json_t *ann,
                    json_t *images, const ic_segment_opts *so, double *fwd_s)
{
    const ic_pdl_config *cfg = ic_pdl_get_config(fw->net);
    json_t *segs = json_object_get(ann, "segments_info");
    const char *label_name = json_string_value(json_object_get(ann, "file_name"));
    json_t *jid = json_object_get(ann, "image_id");
    const char *img_name = json_is_integer(jid) ? image_file(images, json_integer_value(jid)) : NULL;
    if (!json_is_array(segs) || !label_name || !img_name) {
        fprintf(stderr, "annotation without image_id/file_name/segments_info or image entry\n");
        return 1;
    }
    char path[4096];
    unsigned char *img = NULL, *lbl = NULL;
    size_t ilen, llen;
    snprintf(path, sizeof path, "%s/images/%s", dir, img_name);
    if (cli_read_file(path, (size_t)1 << 30, &img, &ilen))
        return 1;
    snprintf(path, sizeof path, "%s/panoptic/%s", dir, label_name);
    if (cli_read_file(path, (size_t)1 << 30, &lbl, &llen)) {
        ic_free(img);
        return 1;
    }
    char *segtext = json_dumps(segs, JSON_COMPACT);
    ic_segment_gt gt;
    ic_segment_result res;
    int rc = segtext ? ic_segment_gt_load(&gt, arena, cfg, lbl, llen, segtext, strlen(segtext), NULL)
                     : IC_ENOMEM;
    if (!rc)
        rc = ic_segment_run(&res, fw, arena, img, ilen, so, NULL);
    if (!rc) {
        *fwd_s += res.t.forward;
        if (gt.w != res.width || gt.h != res.height)
            rc = ic_error_set(IC_ESHAPE, "label is %dx%d, image %dx%d", gt.w, gt.h, res.width,
                              res.height);
        else
            rc = ic_eval_add(ev, arena, (size_t)res.width * (size_t)res.height, res.sem, res.maxprob,
                             &res.pano, gt.sem, gt.ids, gt.segments, gt.n_segments);
        ic_segment_result_deinit(&res);
    }
    if (rc)
        fprintf(stderr, "%s: %s\n", img_name, ic_error_message());
    free(segtext);
    ic_free(img);
    ic_free(lbl);
    return rc != 0;
}

void cli_eval_print_table(FILE *f, const char *title, const ic_eval_summary *s, double img_per_s,
                          double ms_forward)
{
    fprintf(f, "%-14s %6s %7s %7s %7s %7s %7s %7s %7s %8s %9s\n", "", "images", "mIoU", "PQ", "SQ",
            "RQ", "PQ_th", "PQ_st", "ECE", "img/s", "fwd ms");
    fprintf(f, "%-14s %6d %7.2f %7.2f %7.2f %7.2f %7.2f %7.2f %7.2f %8.2f %9.1f\n", title,
            s->n_images, 100 * s->miou, 100 * s->pq_all.pq, 100 * s->pq_all.sq, 100 * s->pq_all.rq,
            100 * s->pq_things.pq, 100 * s->pq_stuff.pq, 100 * s->ece, img_per_s, ms_forward);
}

int cli_eval_dataset(const ic_forward *fw, const char *dir, const ic_segment_opts *so, int limit,
                     int quiet, ic_eval_summary *sum, double *img_per_s, double *ms_forward)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/panoptic.json", dir);
    json_error_t jerr;
    json_t *root = json_load_file(path, 0, &jerr);
    if (!root) {
        fprintf(stderr, "%s: %s (line %d)\n", path, jerr.text, jerr.line);
        return 1;
    }
    json_t *anns = json_object_get(root, "annotations"), *images = json_object_get(root, "images");
    if (!json_is_array(anns) || !json_is_array(images)) {
        fprintf(stderr, "%s: needs \"images\" and \"annotations\" arrays\n", path);
        json_decref(root);
        return 1;
    }
    ic_eval ev;
    ic_arena arena;
    ic_arena_init(&arena, 0, 0);
    int status = ic_eval_init(&ev, ic_pdl_get_config(fw->net)) != 0;
    double t0 = now_s(), fwd = 0;
    size_t n = json_array_size(anns);
    for (size_t i = 0; !status && i < n && (int)i < limit; i++) {
        ic_arena_reset(&arena);
        status = eval_one(fw, &arena, &ev, dir, json_array_get(anns, i), images, so, &fwd);
        if (!quiet && (i + 1) % 20 == 0)
            fprintf(stderr, "\r%zu/%zu images", i + 1, n);
    }
    if (!quiet)
        fprintf(stderr, "\n");
    double elapsed = now_s() - t0;
    if (!status) {
        ic_eval_summarize(&ev, sum);
        *img_per_s = sum->n_images / (elapsed > 0 ? elapsed : 1);
        *ms_forward = sum->n_images ? 1e3 * fwd / sum->n_images : 0;
    }
    ic_eval_deinit(&ev);
    ic_arena_deinit(&arena);
    json_decref(root);
    return status;
}

int cmd_eval(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--suite") || !strncmp(argv[i], "--suite=", 8))
            return cmd_eval_suite(argc, argv);
    const char *model = NULL, *config = NULL, *mode = NULL, *m = NULL, *data = NULL, *limit = NULL,
               *json_path = NULL;
    int quiet = 0;
    cli_opt opts[] = {{"model", &model, NULL}, {"config", &config, NULL},
                      {"calibration", &mode, NULL}, {"m", &m, NULL},
                      {"data", &data, NULL}, {"limit", &limit, NULL},
                      {"json", &json_path, NULL}, {"quiet", NULL, &quiet}};
    int npos = 0, rc = cli_parse(argc, argv, opts, sizeof opts / sizeof opts[0], &npos, usage);
    if (rc)
        return rc == 1 ? 0 : 2;
    ic_segment_opts so = {.outputs = 0};
    int max_images = 1 << 30;
    if (!data || npos || cli_calib_opts(mode, m, &so.calib) ||
        cli_int("limit", limit, 1, 1 << 30, &max_images)) {
        if (!data || npos)
            fputs(usage, stderr);
        return 2;
    }
    ic_pdl *net = NULL;
    if (!model)
        model = cli_default_model();
    if (ic_pdl_load(&net, model, config)) {
        fprintf(stderr, "cannot load model %s: %s\n", model, ic_error_message());
        return 1;
    }
    ic_tent *tent = NULL;
    if (so.calib.mode == IC_CALIB_TENT && ic_tent_create(&tent, model, config)) {
        fprintf(stderr, "cannot set up tent: %s\n", ic_error_message());
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
    const ic_pdl_config *cfg = ic_pdl_get_config(net);
    ic_eval_summary s;
    double ips = 0, fms = 0;
    int status = cli_eval_dataset(&fw, data, &so, max_images, quiet, &s, &ips, &fms);
    if (!status) {
        cli_eval_print_table(stdout, ic_calib_mode_name(so.calib.mode), &s, ips, fms);
        if (json_path) {
            json_t *j = ic_eval_summary_json(&s, cfg);
            json_object_set_new(j, "model", json_string(cfg->name));
            json_object_set_new(j, "calibration", json_string(ic_calib_mode_name(so.calib.mode)));
            json_object_set_new(j, "images_per_second", json_real(ips));
            json_object_set_new(j, "forward_ms", json_real(fms));
            if (json_dump_file(j, json_path, JSON_INDENT(1) | JSON_REAL_PRECISION(6)) != 0) {
                fprintf(stderr, "cannot write %s\n", json_path);
                status = 1;
            }
            json_decref(j);
        }
    }
    ic_tent_free(&tent);
    ic_pdl_free(&net);
    return status;
}
