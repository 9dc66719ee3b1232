/* Subcommands of the `instcal` command line tool. Each returns the process
 * exit status (0 success, 1 failure, 2 usage error). */
#ifndef IC_CLI_COMMANDS_H
#define IC_CLI_COMMANDS_H

#include <stdint.h>

#include "corrupt/corrupt.h"

int cmd_bench(int argc, char **argv);
int cmd_bench_model(int argc, char **argv);
int cmd_segment(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_convert(int argc, char **argv);
int cmd_synth(int argc, char **argv);
int cmd_train(int argc, char **argv);
int cmd_calibrate(int argc, char **argv);
int cmd_corrupt(int argc, char **argv);

/* A corrupted copy of the COCO-panoptic set `in` in `out` (cmd_corrupt.c):
 * corruption c, or when family >= 0 the family's (i mod size)-th corruption
 * for image i. Returns 0 or 1 after printing what went wrong. */
int cli_corrupt_set(const char *in, const char *out, ic_corruption c, int family, int severity,
                    uint64_t seed);
int cmd_drift(int argc, char **argv);

#endif
