/* `instcal calibrate`: learns InstCal-U or InstCal-C on a frozen model, as
 * the official InstCal-Pano recipe does: only the calibration tensors get
 * gradients, BN runs with the calibrated statistics, the data is strongly
 * augmented source images, Adam with WarmupPolyLR at 2.5e-3. Writes a model
 * that carries the learned tensors (and any calibration of the other kind
 * the input had); every other tensor is left bit-identical. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/err.h"
#include "cli/args.h"
#include "cli/commands.h"
#include "cli/train_args.h"
#include "image/preprocess.h"
#include "train/checkpoint.h"
#include "train/dataset.h"
#include "train/trainer.h"
#include "train/validate.h"

static const char usage[] =
    "usage: instcal calibrate --method u|c|g (--data DIR | --synth N) --out FILE [options]\n"
    "  --model FILE           trained model (default $INSTCAL_MODEL or models/default.safetensors)\n"
    "  --config FILE          model config (default: the one inside the weights)\n"
    "  --method u|c|g         InstCal-U (per-channel strengths), InstCal-C (conditional) or\n"
    "                         InstCal-G (strengths gated by this image's drift, mixture variance)\n"
    "  --data DIR             COCO-panoptic source-domain training set\n"
    "  --synth N              N SynthCity source scenes rendered on the fly\n"
    "  --synth-seed S         scene seed of --synth (default 0)\n"
    "  --render HxW           SynthCity render size (default: --size)\n"
    "  --size HxW             training crop, multiples of 16 (default: config train_crop,\n"
    "                         else 256x512)\n"
    "  --init X               InstCal-U / -G initial strength (default: the config's, 0.1\n"
    "                         officially)\n"
    "  --gate-images N        InstCal-G: clean source images that set the gates (default 32)\n"
    "  --gate-slope X         InstCal-G: initial gate slope per std of the log drift (default 2)\n"
    "  --gate-margin X        InstCal-G: half open X std above clean images (default 2)\n"
    "  --clean-fraction P     share of training images left clean (default 0.1; the gate of\n"
    "                         InstCal-G learns from them not to move)\n"
    "  --scale MIN,MAX        random scale range of the crops (default 0.5,2)\n"
    "  --prior X              InstCal-C prior strength (default: the config's, 0.1 officially)\n"
    "  --batch B              images per micro-batch (default 4, as the official recipe)\n"
    "  --accum A              micro-batches per step (default 1)\n"
    "  --iters N              iterations (default 1000)\n"
    "  --lr X                 Adam learning rate (default 2.5e-3, official)\n"
    "  --warmup N             warm-up iterations (default min(1000, iters))\n"
    "  --seed S               initialisation, shuffling and augmentation seed (default 0)\n"
    "  --augment light|strong augmentation (default strong: simulated domain shift)\n"
    "  --out FILE             model with the calibration tensors (required)\n"
    "  --checkpoint-dir D     write checkpoints to D\n"
    "  --checkpoint-every K   iterations between checkpoints (default 1000)\n"
    "  --resume               continue from the latest checkpoint in --checkpoint-dir\n"
    "  --val DIR              validation set: mIoU / PQ / ECE with the learned calibration\n"
    "  --val-every K          validate every K iterations (default: only at the end)\n"
    "  --val-limit N          validate on the first N images only\n"
    "  --log-every K          progress line every K iterations (default 20)\n";

/* InstCal-G's gates from the first n clean (unaugmented) images of the
 * training set, rendered at h x w (ic_pdl_fit_gate). */
static int fit_gate(ic_pdl *net, ic_dataset *ds, const ic_pdl_config *cfg, int h, int w, int n,
                    double slope, double margin)
{
    if (n > ic_dataset_size(ds))
        n = ic_dataset_size(ds);
    float *buf = ic_malloc((size_t)n * 3 * (size_t)h * (size_t)w * sizeof(float));
    if (!buf) {
        fprintf(stderr, "no memory for %d gate images\n", n);
        return 1;
    }
    ic_tensor x = ic_tensor_wrap(buf, n, 3, h, w);
    int rc = 0;
    for (int i = 0; i < n && !rc; i++) {
        ic_train_item it = {0};
        rc = ic_dataset_get(ds, i, &it);
        if (!rc && (it.img.h != h || it.img.w != w))
            rc = ic_error_set(IC_ESHAPE, "gate image %d is %dx%d, not %dx%d (use --render)", i,
                              it.img.h, it.img.w, h, w);
        if (!rc)
            rc = ic_image_to_tensor(&it.img, cfg->pixel_mean, cfg->pixel_std, &x, i);
        ic_train_item_deinit(&it);
    }
    if (!rc)
        rc = ic_pdl_fit_gate(net, &x, (float)slope, (float)margin);
    ic_free(buf);
    if (rc)
        fprintf(stderr, "fitting the InstCal-G gates: %s\n", ic_error_message());
    else
        fprintf(stderr, "InstCal-G gates set on %d clean source images (slope %g, margin %g)\n", n,
                slope, margin);
    return rc != 0;
}

int cmd_calibrate(int argc, char **argv)
{
    cli_train_args a = {0};
    const char *model = NULL, *method = NULL, *init = NULL, *prior = NULL, *gate_images = NULL,
               *gate_slope = NULL, *gate_margin = NULL, *clean = NULL;
    cli_opt opts[CLI_TRAIN_N_OPTS + 8] = {
        {"model", &model, NULL}, {"method", &method, NULL}, {"init", &init, NULL},
        {"prior", &prior, NULL}, {"gate-images", &gate_images, NULL},
        {"gate-slope", &gate_slope, NULL}, {"gate-margin", &gate_margin, NULL},
        {"clean-fraction", &clean, NULL}};
    cli_train_opts(&a, opts + 8);
    int npos = 0, rc = cli_parse(argc, argv, opts, sizeof opts / sizeof opts[0], &npos, usage);
    if (rc)
        return rc == 1 ? 0 : 2;
    if (npos || !method || !a.out || (!a.data == !a.synth) || (a.resume && !a.ckdir) ||
        (strcmp(method, "u") && strcmp(method, "c") && strcmp(method, "g"))) {
        fputs(usage, stderr);
        return 2;
    }
    const int is_u = !strcmp(method, "u"), is_g = !strcmp(method, "g");
    int n_gate = 32;
    double g_slope = 2, g_margin = 2, clean_frac = -1, u_init = -1, c_prior = -1;
    ic_trainer_opts to = ic_trainer_opts_default(1);
    to.batch = 4;
    if (cli_int("gate-images", gate_images, 1, 100000, &n_gate) ||
        cli_double("gate-slope", gate_slope, 1e-3, 100, &g_slope) ||
        cli_double("gate-margin", gate_margin, -100, 100, &g_margin) ||
        cli_double("clean-fraction", clean, 0, 1, &clean_frac) ||
        cli_double("init", init, 0, 1, &u_init) || cli_double("prior", prior, 0, 1, &c_prior) ||
        cli_train_parse(&a, &to, 2.5e-3, 1))
        return 2;
    if (!model)
        model = cli_default_model();

    ic_pdl *net = NULL;
    ic_dataset *ds = NULL;
    ic_trainer *tr = NULL;
    int status = 1;
    char *cfg_text = cli_train_config_text(a.config, model);
    char ckmodel[4096];
    int64_t ckiter = -1;
    int have_ck = a.resume && !ic_checkpoint_latest(a.ckdir, &ckiter, ckmodel, sizeof ckmodel);
    if (a.resume && !have_ck)
        fprintf(stderr, "no checkpoint in %s (%s): starting from scratch\n", a.ckdir,
                ic_error_message());
    if (ic_train_config_parse(&to.loss, cfg_text)) {
        fprintf(stderr, "config: %s\n", ic_error_message());
        goto out;
    }
    if (ic_pdl_load(&net, have_ck ? ckmodel : model, a.config) || ic_pdl_make_trainable(net)) {
        fprintf(stderr, "cannot load %s: %s\n", have_ck ? ckmodel : model, ic_error_message());
        goto out;
    }
    const ic_pdl_config *cfg = ic_pdl_get_config(net);
    ic_calib_mode mode = is_u ? IC_CALIB_INSTCAL_U : is_g ? IC_CALIB_INSTCAL_G : IC_CALIB_INSTCAL_C;
    if (!have_ck && !is_u && c_prior >= 0 && ic_pdl_set_calib_prior(net, (float)c_prior)) {
        fprintf(stderr, "--prior: %s\n", ic_error_message());
        goto out;
    }
    if (!have_ck &&
        ic_pdl_add_calibration(net, mode, u_init >= 0 ? (float)u_init : cfg->u_init, a.seed_v)) {
        fprintf(stderr, "cannot add calibration tensors: %s\n", ic_error_message());
        goto out;
    }
    if (cli_train_size(&a, cfg)) {
        status = 2;
        goto out;
    }
    if (cli_train_dataset(&a, cfg, &ds))
        goto out;
    ic_loader_opts lo = cli_train_loader(&a, cfg, &to);
    if (clean_frac >= 0)
        lo.strong_p.p_identity = (float)clean_frac;
    if (is_g && !have_ck && fit_gate(net, ds, cfg, a.rh, a.rw, n_gate, g_slope, g_margin))
        goto out;
    cli_train_trainer(&a, &to);
    to.grads = is_u ? IC_PARAM_CALIB_U
               : is_g ? IC_PARAM_CALIB_G | IC_PARAM_CALIB_G_GATE
                      : IC_PARAM_CALIB_C;
    to.fwd.bn = IC_PDL_BN_CALIBRATED;
    to.fwd.calib.mode = mode;
    to.val_calib.mode = mode;
    if (ic_trainer_create(&tr, net, ds, &lo, &to) || (have_ck && ic_trainer_resume(tr, a.ckdir))) {
        fprintf(stderr, "trainer: %s\n", ic_error_message());
        goto out;
    }
    fprintf(stderr, "learning %s on %s at %dx%d, batch %d x %d, %d iterations from %lld, lr %g, "
            "%s augmentation\n", ic_calib_mode_name(mode), cfg->name, a.h, a.w, to.batch, to.accum,
            a.n_iters, (long long)ic_trainer_iter(tr), a.base_lr, a.strong ? "strong" : "light");
    if (ic_trainer_run(tr, 0)) {
        fprintf(stderr, "calibration learning failed: %s\n", ic_error_message());
        goto out;
    }
    double ips = ic_trainer_images_per_second(tr);
    char s_ips[32], s_it[32];
    snprintf(s_ips, sizeof s_ips, "%.3f", ips);
    snprintf(s_it, sizeof s_it, "%d", a.n_iters);
    const char *meta[] = {"calibrate_method", ic_calib_mode_name(mode), "calibrate_iters", s_it,
                          "calibrate_images_per_second", s_ips, NULL};
    if (ic_pdl_save(net, a.out, meta)) {
        fprintf(stderr, "cannot write %s: %s\n", a.out, ic_error_message());
        goto out;
    }
    printf("wrote %s; %.2f images/s\n", a.out, ips);
    if (a.val) {
        ic_val_summary vs;
        ic_calib_opts co = {.mode = mode};
        if (ic_train_validate(net, a.val, &co, a.v_limit, &vs)) {
            fprintf(stderr, "validation: %s\n", ic_error_message());
            goto out;
        }
        char title[32];
        snprintf(title, sizeof title, "val %s", ic_calib_mode_name(mode));
        ic_val_summary_print(stdout, title, &vs);
    }
    status = 0;
out:
    ic_trainer_free(&tr);
    ic_dataset_free(&ds);
    ic_pdl_free(&net);
    ic_free(cfg_text);
    return status;
}
