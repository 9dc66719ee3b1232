/* Dataset evaluation shared by `instcal eval` and its --suite mode. */
#ifndef IC_CLI_EVAL_COMMON_H
#define IC_CLI_EVAL_COMMON_H

#include <stdint.h>
#include <stdio.h>

#include "infer/evaluate.h"
#include "infer/segment.h"

/* Runs the forward strategy fw with `so` over the COCO-panoptic dataset in `dir` (at most
 * `limit` images) and summarises mIoU, PQ and ECE. Returns 0, or 1 after
 * printing what went wrong. */
int cli_eval_dataset(const ic_forward *fw, const char *dir, const ic_segment_opts *so, int limit,
                     int quiet, ic_eval_summary *sum, double *img_per_s, double *ms_forward);

/* One table row (with a header line) of a summary. */
void cli_eval_print_table(FILE *f, const char *title, const ic_eval_summary *s, double img_per_s,
                          double ms_forward);

/* Renders `count` SynthCity images of `domain` (seed, h x w) into dir
 * unless it already holds a set; refuses a set of another size or with fewer
 * than `count` images (a larger one is kept: callers score its first count). Returns 0,
 * or 1 after printing what went wrong. */
int cli_suite_render_set(const char *dir, const char *domain, uint64_t seed, int count, int h,
                         int w);

/* `instcal eval --suite NAME ...`. */
int cmd_eval_suite(int argc, char **argv);

#endif
