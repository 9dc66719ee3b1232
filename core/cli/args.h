/* A small option parser shared by the `instcal` subcommands: long options
 * `--name value`, `--name=value` and boolean `--flag`; everything else is a
 * positional argument. Also the helpers every command needs (default model
 * path, reading files, mode parsing). */
#ifndef IC_CLI_ARGS_H
#define IC_CLI_ARGS_H

#include <stddef.h>
#include <stdint.h>

#include "calib/calib.h"

typedef struct cli_opt {
    const char *name;    /* without the leading "--" */
    const char **value;  /* receives the argument (has an argument), or NULL */
    int *flag;           /* set to 1 when present (boolean option), or NULL */
} cli_opt;

/* Parses argv[1..] against opts. Positional arguments are moved to the
 * front of argv+1 and counted in *npos. Prints a message and returns 2 on
 * an unknown option or a missing value, 1 when --help was given (after
 * printing `usage`), 0 otherwise. */
int cli_parse(int argc, char **argv, const cli_opt *opts, size_t n_opts, int *npos,
              const char *usage);

/* The model used when --model is not given: $INSTCAL_MODEL, else the
 * shipped default (models/default.safetensors in the source tree). */
const char *cli_default_model(void);

/* Reads a whole file (at most max_bytes) into an ic_malloc'd buffer. Prints
 * a message and returns nonzero on failure. */
int cli_read_file(const char *path, size_t max_bytes, unsigned char **ret, size_t *ret_len);

/* FNV-1a 64 of a file's bytes: the identity of a model file in the keys of
 * cached results (a replaced model never reuses the old one's). Prints a
 * message and returns nonzero when the file cannot be read. */
int cli_file_hash(const char *path, unsigned long long *ret);

/* Parses --calibration and --m into opts (NULL mode: "none"). Prints a
 * message and returns nonzero on a bad value. */
int cli_calib_opts(const char *mode, const char *m, ic_calib_opts *opts);

/* Parses a positive integer option (NULL keeps *out). Returns nonzero on error. */
int cli_int(const char *name, const char *value, int lo, int hi, int *out);

/* Parses an optional number in [lo, hi] (NULL keeps *out). Prints and
 * returns nonzero on a bad value. */
int cli_double(const char *name, const char *value, double lo, double hi, double *out);

/* Parses an optional non-negative 64-bit integer (NULL keeps *out). */
int cli_u64(const char *name, const char *value, uint64_t *out);

/* Parses an optional "HxW" (16..8192 each; NULL keeps *h, *w). */
int cli_size(const char *value, int *h, int *w);

#endif
