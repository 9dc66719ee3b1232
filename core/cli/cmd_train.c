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
#include "cli/train_args.h"
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
    cli_train_args a = {.out = "model.safetensors"};
    const char *clip = NULL, *stop_at = NULL, *init = NULL, *class_weights = NULL;
    cli_opt opts[CLI_TRAIN_N_OPTS + 4] = {
        {"clip", &clip, NULL}, {"stop-at", &stop_at, NULL}, {"init", &init, NULL},
        {"class-weights", &class_weights, NULL}};
    cli_train_opts(&a, opts + 4);
    int npos = 0, rc = cli_parse(argc, argv, opts, sizeof opts / sizeof opts[0], &npos, usage);
    if (rc)
        return rc == 1 ? 0 : 2;
    int n_stop = 0;
    double clip_norm = 0;
    ic_trainer_opts to = ic_trainer_opts_default(1);
    if (npos || !a.config || (!a.data == !a.synth) || (a.resume && !a.ckdir)) {
        fputs(usage, stderr);
        return 2;
    }
    if (cli_train_parse(&a, &to, 1e-3, 0) || cli_double("clip", clip, 0, 1e9, &clip_norm) ||
        cli_int("stop-at", stop_at, 1, 1 << 30, &n_stop))
        return 2;
    if (n_stop && (n_stop >= a.n_iters || !a.ckdir)) {
        fprintf(stderr, "--stop-at needs --checkpoint-dir and a value below --iters (%d)\n",
                a.n_iters);
        return 2;
    }
    ic_pdl_config cfg;
    char *cfg_text = cli_train_config_text(a.config, NULL);
    if (!cfg_text)
        return 1;
    if (ic_pdl_config_parse(&cfg, cfg_text, strlen(cfg_text)) ||
        ic_train_config_parse(&to.loss, cfg_text)) {
        fprintf(stderr, "%s: %s\n", a.config, ic_error_message());
        ic_free(cfg_text);
        return 1;
    }
    if (cli_train_size(&a, &cfg)) {
        ic_free(cfg_text);
        return 2;
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
    int have_ck = a.resume && !ic_checkpoint_latest(a.ckdir, &ckiter, ckmodel, sizeof ckmodel);
    if (a.resume && !have_ck)
        fprintf(stderr, "no checkpoint in %s (%s): starting from scratch\n", a.ckdir,
                ic_error_message());
    if (have_ck || init)
        rc = ic_pdl_load(&net, have_ck ? ckmodel : init, a.config);
    else
        rc = ic_pdl_create(&net, &cfg, cfg_text, a.seed_v);
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
    if (cli_train_dataset(&a, &cfg, &ds))
        goto out;
    ic_loader_opts lo = cli_train_loader(&a, &cfg, &to);
    if (class_weights) {
        lo.targets.class_weights = cw;
        lo.targets.n_class_weights = cfg.num_classes;
    }
    cli_train_trainer(&a, &to);
    to.adam.clip_norm = (float)clip_norm;
    if (ic_trainer_create(&tr, net, ds, &lo, &to) || (have_ck && ic_trainer_resume(tr, a.ckdir))) {
        fprintf(stderr, "trainer: %s\n", ic_error_message());
        goto out;
    }
    fprintf(stderr, "training %s at %dx%d, batch %d x %d, %d iterations from %lld, %s augmentation, "
            "%d %s images\n", cfg.name, a.h, a.w, to.batch, to.accum, a.n_iters,
            (long long)ic_trainer_iter(tr), a.strong ? "strong" : "light", ic_dataset_size(ds),
            a.data ? "dataset" : "SynthCity");
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
               n_stop, a.ckdir);
        status = 0;
        goto out;
    }
    double ips = ic_trainer_images_per_second(tr);
    char s_ips[32], s_it[32];
    snprintf(s_ips, sizeof s_ips, "%.3f", ips);
    snprintf(s_it, sizeof s_it, "%d", a.n_iters);
    const char *meta[] = {"train_iters", s_it, "train_images_per_second", s_ips, NULL};
    if (ic_pdl_refold(net) || ic_pdl_save(net, a.out, meta)) {
        fprintf(stderr, "cannot write %s: %s\n", a.out, ic_error_message());
        goto out;
    }
    printf("wrote %s; %.2f images/s\n", a.out, ips);
    if (a.val) {
        ic_val_summary vs;
        ic_calib_opts none = {.mode = IC_CALIB_NONE};
        if (ic_train_validate(net, a.val, &none, a.v_limit, &vs)) {
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
