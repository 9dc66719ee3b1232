/* `instcal eval`: runs a model over a dataset in COCO-panoptic layout and
 * reports mIoU (accumulated confusion matrix), PQ/SQ/RQ (panopticapi rules),
 * ECE over all labelled pixels and throughput, as a table and as JSON. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "adapt/adapt.h"
#include "base/err.h"
#include "cli/args.h"
#include "cli/commands.h"
#include "cli/eval_common.h"
#include "infer/eval_coco.h"
#include "infer/evaluate.h"
#include "infer/result_json.h"
#include "infer/segment.h"

static const char usage[] =
    "usage: instcal eval --data DIR [options]\n"
    "  --data DIR            dataset: DIR/panoptic.json, DIR/images/, DIR/panoptic/\n"
    "                        (category ids must be the model's class ids)\n"
    "  --model FILE          weights (default $INSTCAL_MODEL or models/default.safetensors)\n"
    "  --config FILE         model config (default: the one inside the weights)\n"
    "  --calibration MODE    none, manual, tbn, instcal-u, instcal-c, instcal-g, instcal-e, tent\n"
    "                        (default none)\n"
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

void cli_eval_print_table(FILE *f, const char *title, const ic_eval_summary *s, double img_per_s,
                          double ms_forward)
{
    fprintf(f, "%-14s %6s %7s %7s %7s %7s %7s %7s %7s %8s %9s\n", "", "images", "mIoU", "PQ", "SQ",
            "RQ", "PQ_th", "PQ_st", "ECE", "img/s", "fwd ms");
    fprintf(f, "%-14s %6d %7.2f %7.2f %7.2f %7.2f %7.2f %7.2f %7.2f %8.2f %9.1f\n", title,
            s->n_images, 100 * s->miou, 100 * s->pq_all.pq, 100 * s->pq_all.sq, 100 * s->pq_all.rq,
            100 * s->pq_things.pq, 100 * s->pq_stuff.pq, 100 * s->ece, img_per_s, ms_forward);
}

/* The progress line every 20 images. */
static void progress(void *ctx, int done, int total)
{
    (void)ctx;
    if (done % 20 == 0)
        fprintf(stderr, "\r%d/%d images", done, total);
}

int cli_eval_dataset(const ic_forward *fw, const char *dir, const ic_segment_opts *so, int limit,
                     int quiet, ic_eval_summary *sum, double *img_per_s, double *ms_forward)
{
    ic_coco *coco = NULL;
    if (ic_coco_open(&coco, dir)) {
        fprintf(stderr, "%s\n", ic_error_message());
        return 1;
    }
    ic_eval ev;
    int status = ic_eval_init(&ev, ic_pdl_get_config(fw->net)) != 0;
    double t0 = now_s(), fwd = 0;
    if (!status && ic_eval_coco(&ev, fw, coco, limit, so, &fwd, quiet ? NULL : progress, NULL)) {
        fprintf(stderr, "%s\n", ic_error_message());
        status = 1;
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
    ic_coco_free(&coco);
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
