/* Options shared by `instcal train` and `instcal calibrate` (see
 * train_args.h). */
#include "cli/train_args.h"

#include <stdio.h>
#include <string.h>

#include "base/alloc.h"
#include "base/err.h"
#include "io/safetensors.h"

/* The config text of the run: --config's file, else the model's metadata. */
char *cli_train_config_text(const char *config, const char *model)
{
    if (config) {
        unsigned char *t = NULL;
        size_t len = 0;
        if (cli_read_file(config, (size_t)1 << 24, &t, &len))
            return NULL;
        char *r = ic_malloc(len + 1);
        if (r) {
            memcpy(r, t, len);
            r[len] = 0;
        }
        ic_free(t);
        return r;
    }
    ic_safetensors *st = NULL;
    if (ic_st_open(&st, model))
        return NULL;
    const char *c = ic_st_metadata(st, "config");
    char *r = c ? ic_malloc(strlen(c) + 1) : NULL;
    if (r)
        strcpy(r, c);
    ic_st_close(&st);
    return r;
}

void cli_train_opts(cli_train_args *a, cli_opt *opts)
{
    const cli_opt o[CLI_TRAIN_N_OPTS] = {
        {"config", &a->config, NULL}, {"data", &a->data, NULL}, {"synth", &a->synth, NULL},
        {"synth-seed", &a->synth_seed, NULL}, {"render", &a->render, NULL},
        {"size", &a->size, NULL}, {"batch", &a->batch, NULL}, {"accum", &a->accum, NULL},
        {"iters", &a->iters, NULL}, {"lr", &a->lr, NULL}, {"warmup", &a->warmup, NULL},
        {"seed", &a->seed, NULL}, {"augment", &a->augment, NULL}, {"out", &a->out, NULL},
        {"checkpoint-dir", &a->ckdir, NULL}, {"checkpoint-every", &a->ckevery, NULL},
        {"resume", NULL, &a->resume}, {"val", &a->val, NULL}, {"val-every", &a->val_every, NULL},
        {"val-limit", &a->val_limit, NULL}, {"log-every", &a->log_every, NULL},
        {"scale", &a->scale, NULL}};
    memcpy(opts, o, sizeof o);
}

int cli_train_parse(cli_train_args *a, ic_trainer_opts *to, double default_lr, int default_strong)
{
    a->n_iters = 1000;
    a->warm = -1;
    a->ck_every = 1000;
    a->base_lr = default_lr;
    if (cli_int("iters", a->iters, 1, 1 << 30, &a->n_iters) ||
        cli_int("synth", a->synth, 1, 1 << 30, &a->n_synth) ||
        cli_int("batch", a->batch, 1, 4096, &to->batch) ||
        cli_int("accum", a->accum, 1, 4096, &to->accum) ||
        cli_int("warmup", a->warmup, 0, 1 << 30, &a->warm) ||
        cli_int("checkpoint-every", a->ckevery, 1, 1 << 30, &a->ck_every) ||
        cli_int("val-every", a->val_every, 1, 1 << 30, &a->v_every) ||
        cli_int("val-limit", a->val_limit, 1, 1 << 30, &a->v_limit) ||
        cli_int("log-every", a->log_every, 1, 1 << 30, &to->log_every) ||
        cli_double("lr", a->lr, 0, 10, &a->base_lr) || cli_u64("seed", a->seed, &a->seed_v) ||
        cli_u64("synth-seed", a->synth_seed, &a->synth_seed_v) ||
        cli_size(a->size, &a->h, &a->w) || cli_size(a->render, &a->rh, &a->rw))
        return 1;
    if (a->augment && strcmp(a->augment, "light") && strcmp(a->augment, "strong")) {
        fprintf(stderr, "--augment must be light or strong\n");
        return 1;
    }
    a->strong = a->augment ? !strcmp(a->augment, "strong") : default_strong;
    if (a->scale && (sscanf(a->scale, "%f,%f", &a->smin, &a->smax) != 2 || !(a->smin > 0) ||
                     !(a->smax >= a->smin) || a->smax > 16)) {
        fprintf(stderr, "--scale must be MIN,MAX with 0 < MIN <= MAX <= 16, not '%s'\n", a->scale);
        return 1;
    }
    return 0;
}

int cli_train_size(cli_train_args *a, const ic_pdl_config *cfg)
{
    if (!a->h) {
        a->h = cfg->train_crop[0] > 0 ? cfg->train_crop[0] : 256;
        a->w = cfg->train_crop[1] > 0 ? cfg->train_crop[1] : 512;
    }
    if (a->h % 16 || a->w % 16) {
        fprintf(stderr, "training size %dx%d: both sides must be multiples of 16\n", a->h, a->w);
        return 1;
    }
    if (!a->rh) {
        a->rh = a->h;
        a->rw = a->w;
    }
    return 0;
}

int cli_train_dataset(const cli_train_args *a, const ic_pdl_config *cfg, ic_dataset **ret)
{
    int rc = a->data ? ic_dataset_open_dir(ret, a->data, cfg)
                     : ic_dataset_open_synth(ret, a->synth_seed_v, a->n_synth, a->rh, a->rw, cfg);
    if (rc)
        fprintf(stderr, "dataset: %s\n", ic_error_message());
    return rc;
}

ic_loader_opts cli_train_loader(const cli_train_args *a, const ic_pdl_config *cfg,
                                const ic_trainer_opts *to)
{
    ic_loader_opts lo = ic_loader_opts_default(cfg, a->h, a->w, a->strong, to->loss.sigma);
    lo.targets.small_instance_area =
        (long)((double)to->loss.small_instance_area * a->h * a->w / (512.0 * 1024.0) + 0.5);
    if (lo.targets.small_instance_area < 1)
        lo.targets.small_instance_area = 1;
    lo.targets.small_instance_weight = to->loss.small_instance_weight;
    if (a->scale) {
        lo.geom.scale_min = a->smin;
        lo.geom.scale_max = a->smax;
    }
    return lo;
}

void cli_train_trainer(const cli_train_args *a, ic_trainer_opts *to)
{
    to->iters = a->n_iters;
    to->sched = ic_lr_schedule_default(a->base_lr, a->n_iters);
    if (a->warm >= 0)
        to->sched.warmup_iters = a->warm;
    to->seed = a->seed_v;
    to->log = stderr;
    to->checkpoint_dir = a->ckdir;
    to->checkpoint_every = a->ckdir ? a->ck_every : 0;
    to->val_dir = a->val;
    to->val_every = a->v_every;
    to->val_limit = a->v_limit;
}
