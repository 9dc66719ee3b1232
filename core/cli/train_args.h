/* The options `instcal train` and `instcal calibrate` share (data, sizes,
 * schedule, checkpoints, validation, augmentation) and what both do with
 * them: parse and check the values, settle the training size, open the
 * dataset and fill the loader and trainer options. Each command adds its
 * own options beside these and keeps its own usage text. */
#ifndef IC_CLI_TRAIN_ARGS_H
#define IC_CLI_TRAIN_ARGS_H

#include <stddef.h>
#include <stdint.h>

#include "cli/args.h"
#include "model/config.h"
#include "train/dataset.h"
#include "train/trainer.h"

/* The shared options: a pointer table of these is in cli_train_opts. */
#define CLI_TRAIN_N_OPTS 22

typedef struct cli_train_args {
    /* the option values as given (NULL when absent) */
    const char *config, *data, *synth, *synth_seed, *render, *size, *batch, *accum, *iters, *lr,
        *warmup, *seed, *augment, *out, *ckdir, *ckevery, *val, *val_every, *val_limit,
        *log_every, *scale;
    int resume;
    /* parsed by cli_train_parse (sizes by cli_train_size) */
    int n_iters, n_synth, warm, ck_every, v_every, v_limit;
    int h, w, rh, rw; /* crop and SynthCity render size (0: not given) */
    int strong;       /* strong augmentation */
    double base_lr;
    uint64_t seed_v, synth_seed_v;
    float smin, smax; /* --scale, when given */
} cli_train_args;

/* The config text of the run (NUL-terminated, ic_malloc'd): the file
 * `config`, else the "config" metadata of the weights `model`. NULL (with
 * a message for an unreadable file) on failure. */
char *cli_train_config_text(const char *config, const char *model);

/* Writes the CLI_TRAIN_N_OPTS shared options into opts, bound to a. */
void cli_train_opts(cli_train_args *a, cli_opt *opts);

/* Parses the shared values; base_lr and strong start from the command's
 * defaults, to->batch from the caller's. Prints the message and returns
 * nonzero (exit status 2) on a bad value. */
int cli_train_parse(cli_train_args *a, ic_trainer_opts *to, double default_lr,
                    int default_strong);

/* The training crop: --size, else the config's train_crop, else 256x512,
 * checked to be multiples of 16; the render size defaults to it. Prints and
 * returns nonzero on a bad size. */
int cli_train_size(cli_train_args *a, const ic_pdl_config *cfg);

/* Opens --data or --synth. Prints "dataset: <message>" and returns nonzero
 * on failure. */
int cli_train_dataset(const cli_train_args *a, const ic_pdl_config *cfg, ic_dataset **ret);

/* The loader options of the run: cfg's defaults at the crop, the config
 * losses' small-instance rule scaled to the crop, --scale. */
ic_loader_opts cli_train_loader(const cli_train_args *a, const ic_pdl_config *cfg,
                                const ic_trainer_opts *to);

/* The schedule, seed, log, checkpoint and validation fields of `to`. */
void cli_train_trainer(const cli_train_args *a, ic_trainer_opts *to);

#endif
