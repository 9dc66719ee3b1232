/* `instcal train`: trains a Panoptic-DeepLab from scratch (detectron2's
 * initialisation) on a COCO-panoptic directory or on SynthCity rendered on
 * the fly, with BN in training mode and every weight learning; checkpoints
 * that resume bit for bit; a refolded final model (docs/training.md). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/err.h"
#include "cli/args.h"
#include "cli/commands.h"
#include "train/checkpoint.h"
#include "train/dataset.h"
#include "train/trainer.h"
#include "train/validate.h"

static const char usage[] =
    "usage: instcal train --config CFG.json (--data DIR | --synth N) [options]\n"
    "  --config FILE          model config (architecture, classes, training losses)\n"
    "  --data DIR             COCO-panoptic training set: DIR/panoptic.json, images/, panoptic/\n"
    "  --synth N              N SynthCity source scenes rendered on the fly (no disk)\n"
    "  --synth-seed S         scene seed of --synth (default 0)\n"
    "  --render HxW           SynthCity render size (default: --size)\n"
    "  --size HxW             training crop, multiples of 16 (default: config train_crop,\n"
    "                         else 256x512)\n"
    "  --batch B              images per micro-batch (default 8)\n"
    "  --accum A              micro-batches per optimiser step (default 1)\n"
    "  --iters N              iterations (default 1000)\n"
    "  --lr X                 Adam base learning rate (default 1e-3)\n"
    "  --warmup N             linear warm-up iterations (default min(1000, iters))\n"
    "  --clip X               clip the global gradient norm at X (default off)\n"
    "  --seed S               initialisation, shuffling and augmentation seed (default 0)\n"
    "  --init FILE            start from this model's weights and BN statistics instead of\n"
    "                         a fresh initialisation (fine-tuning; --resume takes precedence)\n"
    "  --class-weights LIST   semantic loss factors per class, e.g. pole=3,person=2\n"
    "                         (class names of the config; the rest keep 1)\n"
    "  --scale MIN,MAX        random scale range of the crops (default 0.5,2)\n"
    "  --augment light|strong geometric only, or core/augment's strong policy (default light)\n"
    "  --out FILE             final model (default model.safetensors)\n"
    "  --checkpoint-dir D     write checkpoints to D\n"
    "  --checkpoint-every K   iterations between checkpoints (default 1000)\n"
    "  --resume               continue from the latest checkpoint in --checkpoint-dir\n"
    "  --stop-at N            stop after iteration N (< --iters) with a checkpoint and no\n"
    "                         --out, to go on later with --resume (the schedule is --iters')\n"
    "  --val DIR              COCO-panoptic validation set (mIoU / PQ / ECE)\n"
    "  --val-every K          validate every K iterations (default: only at the end)\n"
    "  --val-limit N          validate on the first N images only\n"
    "  --log-every K          progress line every K iterations (default 20)\n";

/* "name=w,name=w": factors for the named classes, 1 for the others. */
static int parse_class_weights(const char *list, const ic_pdl_config *cfg, float *cw)
{
    for (int c = 0; c < cfg->num_classes; c++)
        cw[c] = 1.0f;
    const char *p = list;
    while (*p) {
        const char *eq = strchr(p, '='), *end = strchr(p, ',');
        if (!end)
            end = p + strlen(p);
        if (!eq || eq > end) {
            fprintf(stderr, "--class-weights: expected name=weight, got '%.*s'\n", (int)(end - p), p);
            return 1;
        }
        int c = 0;
        while (c < cfg->num_classes &&
               (strlen(cfg->class_names[c]) != (size_t)(eq - p) ||
                strncmp(cfg->class_names[c], p, (size_t)(eq - p))))
            c++;
        char *num_end;
        double v = strtod(eq + 1, &num_end);
        if (c == cfg->num_classes || num_end != end || !(v >= 0 && v <= 1e6)) {
            fprintf(stderr, "--class-weights: '%.*s' is not a class of the config with a weight "
                    "in [0, 1e6]\n", (int)(end - p), p);
            return 1;
        }
        cw[c] = (float)v;
        p = *end ? end + 1 : end;
    }
    return 0;
}

int cmd_train(int argc, char **argv)
{
    const char *config = NULL, *data = NULL, *synth = NULL, *synth_seed = NULL, *render = NULL,
               *size = NULL, *batch = NULL, *accum = NULL, *iters = NULL, *lr = NULL,
               *warmup = NULL, *clip = NULL, *seed = NULL, *augment = NULL,
               *out = "model.safetensors", *ckdir = NULL, *ckevery = NULL, *val = NULL,
               *val_every = NULL, *val_limit = NULL, *log_every = NULL, *stop_at = NULL,
               *init = NULL, *class_weights = NULL, *scale = NULL;
    int resume = 0;
    cli_opt opts[] = {
        {"config", &config, NULL}, {"data", &data, NULL}, {"synth", &synth, NULL},
        {"synth-seed", &synth_seed, NULL}, {"render", &render, NULL}, {"size", &size, NULL},
        {"batch", &batch, NULL}, {"accum", &accum, NULL}, {"iters", &iters, NULL},
        {"lr", &lr, NULL}, {"warmup", &warmup, NULL}, {"clip", &clip, NULL},
        {"seed", &seed, NULL}, {"augment", &augment, NULL}, {"out", &out, NULL},
        {"checkpoint-dir", &ckdir, NULL}, {"checkpoint-every", &ckevery, NULL},
        {"resume", NULL, &resume}, {"val", &val, NULL}, {"val-every", &val_every, NULL},
        {"val-limit", &val_limit, NULL}, {"log-every", &log_every, NULL},
        {"stop-at", &stop_at, NULL}, {"init", &init, NULL},
        {"class-weights", &class_weights, NULL}, {"scale", &scale, NULL}};
    int npos = 0, rc = cli_parse(argc, argv, opts, sizeof opts / sizeof opts[0], &npos, usage);
    if (rc)
        return rc == 1 ? 0 : 2;
    int n_iters = 1000, n_stop = 0, n_synth = 0, warm = -1, ck_every = 1000, v_every = 0, v_limit = 0;
    double base_lr = 1e-3, clip_norm = 0;
    uint64_t sd = 0, sseed = 0;
    ic_trainer_opts to = ic_trainer_opts_default(1);
    int h = 0, w = 0, rh = 0, rw = 0, strong = 0;
    if (npos || !config || (!data == !synth) || (resume && !ckdir)) {
        fputs(usage, stderr);
        return 2;
    }
    if (cli_int("iters", iters, 1, 1 << 30, &n_iters) || cli_int("synth", synth, 1, 1 << 30, &n_synth) ||
        cli_int("batch", batch, 1, 4096, &to.batch) || cli_int("accum", accum, 1, 4096, &to.accum) ||
        cli_int("warmup", warmup, 0, 1 << 30, &warm) ||
        cli_int("checkpoint-every", ckevery, 1, 1 << 30, &ck_every) ||
        cli_int("val-every", val_every, 1, 1 << 30, &v_every) ||
        cli_int("val-limit", val_limit, 1, 1 << 30, &v_limit) ||
        cli_int("log-every", log_every, 1, 1 << 30, &to.log_every) ||
        cli_double("lr", lr, 0, 10, &base_lr) || cli_double("clip", clip, 0, 1e9, &clip_norm) ||
        cli_u64("seed", seed, &sd) || cli_u64("synth-seed", synth_seed, &sseed) ||
        cli_size(size, &h, &w) || cli_size(render, &rh, &rw) ||
        cli_int("stop-at", stop_at, 1, 1 << 30, &n_stop))
        return 2;
    if (n_stop && (n_stop >= n_iters || !ckdir)) {
        fprintf(stderr, "--stop-at needs --checkpoint-dir and a value below --iters (%d)\n",
                n_iters);
        return 2;
    }
    if (augment && strcmp(augment, "light") && strcmp(augment, "strong")) {
        fprintf(stderr, "--augment must be light or strong\n");
        return 2;
    }
    strong = augment && !strcmp(augment, "strong");
    float smin = 0, smax = 0;
    if (scale && (sscanf(scale, "%f,%f", &smin, &smax) != 2 || !(smin > 0) || !(smax >= smin) ||
                  smax > 16)) {
        fprintf(stderr, "--scale must be MIN,MAX with 0 < MIN <= MAX <= 16, not '%s'\n", scale);
        return 2;
    }

    unsigned char *text = NULL;
    size_t len = 0;
    ic_pdl_config cfg;
    if (cli_read_file(config, (size_t)1 << 24, &text, &len))
        return 1;
    char *cfg_text = ic_malloc(len + 1);
    if (!cfg_text) {
        ic_free(text);
        return 1;
    }
    memcpy(cfg_text, text, len);
    cfg_text[len] = 0;
    ic_free(text);
    if (ic_pdl_config_parse(&cfg, cfg_text, len) || ic_train_config_parse(&to.loss, cfg_text)) {
        fprintf(stderr, "%s: %s\n", config, ic_error_message());
        ic_free(cfg_text);
        return 1;
    }
    if (!h) {
        h = cfg.train_crop[0] > 0 ? cfg.train_crop[0] : 256;
        w = cfg.train_crop[1] > 0 ? cfg.train_crop[1] : 512;
    }
    if (h % 16 || w % 16) {
        fprintf(stderr, "training size %dx%d: both sides must be multiples of 16\n", h, w);
        ic_free(cfg_text);
        return 2;
    }
    if (!rh) {
        rh = h;
        rw = w;
    }
    float cw[IC_PDL_MAX_CLASSES];
    if (class_weights && parse_class_weights(class_weights, &cfg, cw)) {
        ic_free(cfg_text);
        return 2;
    }

    ic_pdl *net = NULL;
    ic_dataset *ds = NULL;
    ic_trainer *tr = NULL;
    int status = 1;
    char ckmodel[4096];
    int64_t ckiter = -1;
    int have_ck = resume && !ic_checkpoint_latest(ckdir, &ckiter, ckmodel, sizeof ckmodel);
    if (resume && !have_ck)
        fprintf(stderr, "no checkpoint in %s (%s): starting from scratch\n", ckdir,
                ic_error_message());
    if (have_ck || init)
        rc = ic_pdl_load(&net, have_ck ? ckmodel : init, config);
    else
        rc = ic_pdl_create(&net, &cfg, cfg_text, sd);
    if (rc) {
        fprintf(stderr, "cannot %s the model: %s\n", have_ck || init ? "load" : "create",
                ic_error_message());
        goto out;
    }
    /* calibration tensors of an --init model were learned for its old weights */
    if (init && !have_ck && (ic_pdl_make_trainable(net) || ic_pdl_drop_calibration(net))) {
        fprintf(stderr, "--init: %s\n", ic_error_message());
        goto out;
    }
    rc = data ? ic_dataset_open_dir(&ds, data, &cfg)
              : ic_dataset_open_synth(&ds, sseed, n_synth, rh, rw, &cfg);
    if (rc) {
        fprintf(stderr, "dataset: %s\n", ic_error_message());
        goto out;
    }
    ic_loader_opts lo = ic_loader_opts_default(&cfg, h, w, strong, to.loss.sigma);
    lo.targets.small_instance_area =
        (long)((double)to.loss.small_instance_area * h * w / (512.0 * 1024.0) + 0.5);
    if (lo.targets.small_instance_area < 1)
        lo.targets.small_instance_area = 1;
    lo.targets.small_instance_weight = to.loss.small_instance_weight;
    if (class_weights) {
        lo.targets.class_weights = cw;
        lo.targets.n_class_weights = cfg.num_classes;
    }
    if (scale) {
        lo.geom.scale_min = smin;
        lo.geom.scale_max = smax;
    }
    to.iters = n_iters;
    to.sched = ic_lr_schedule_default(base_lr, n_iters);
    if (warm >= 0)
        to.sched.warmup_iters = warm;
    to.seed = sd;
    to.adam.clip_norm = (float)clip_norm;
    to.log = stderr;
    to.checkpoint_dir = ckdir;
    to.checkpoint_every = ckdir ? ck_every : 0;
    to.val_dir = val;
    to.val_every = v_every;
    to.val_limit = v_limit;
    if (ic_trainer_create(&tr, net, ds, &lo, &to) || (have_ck && ic_trainer_resume(tr, ckdir))) {
        fprintf(stderr, "trainer: %s\n", ic_error_message());
        goto out;
    }
    fprintf(stderr, "training %s at %dx%d, batch %d x %d, %d iterations from %lld, %s augmentation, "
            "%d %s images\n", cfg.name, h, w, to.batch, to.accum, n_iters,
            (long long)ic_trainer_iter(tr), strong ? "strong" : "light", ic_dataset_size(ds),
            data ? "dataset" : "SynthCity");
    if (n_stop && ic_trainer_iter(tr) >= n_stop) {
        printf("already at iteration %lld (--stop-at %d): nothing to do\n",
               (long long)ic_trainer_iter(tr), n_stop);
        status = 0;
        goto out;
    }
    if (ic_trainer_run(tr, n_stop)) {
        fprintf(stderr, "training failed: %s\n", ic_error_message());
        goto out;
    }
    if (n_stop) {
        printf("stopped at iteration %d with a checkpoint in %s; continue with --resume\n",
               n_stop, ckdir);
        status = 0;
        goto out;
    }
    double ips = ic_trainer_images_per_second(tr);
    char s_ips[32], s_it[32];
    snprintf(s_ips, sizeof s_ips, "%.3f", ips);
    snprintf(s_it, sizeof s_it, "%d", n_iters);
    const char *meta[] = {"train_iters", s_it, "train_images_per_second", s_ips, NULL};
    if (ic_pdl_refold(net) || ic_pdl_save(net, out, meta)) {
        fprintf(stderr, "cannot write %s: %s\n", out, ic_error_message());
        goto out;
    }
    printf("wrote %s; %.2f images/s\n", out, ips);
    if (val) {
        ic_val_summary vs;
        ic_calib_opts none = {.mode = IC_CALIB_NONE};
        if (ic_train_validate(net, val, &none, v_limit, &vs)) {
            fprintf(stderr, "validation: %s\n", ic_error_message());
            goto out;
        }
        ic_val_summary_print(stdout, "val none", &vs);
    }
    status = 0;
out:
    ic_trainer_free(&tr);
    ic_dataset_free(&ds);
    ic_pdl_free(&net);
    ic_free(cfg_text);
    return status;
}
