/* Option parsing and helpers for the CLI (see args.h). */
#include "cli/args.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/err.h"

#ifndef IC_SOURCE_ROOT
#define IC_SOURCE_ROOT "."
#endif

int cli_parse(int argc, char **argv, const cli_opt *opts, size_t n_opts, int *npos,
              const char *usage)
{
    int pos = 0;
    for (int i = 1; i < argc; i++) {
        char *a = argv[i];
        if (strncmp(a, "--", 2) || !a[2]) {
            argv[1 + pos++] = a;
            continue;
        }
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(usage, stdout);
            return 1;
        }
        const char *name = a + 2, *eq = strchr(name, '=');
        size_t len = eq ? (size_t)(eq - name) : strlen(name);
        const cli_opt *o = NULL;
        for (size_t k = 0; k < n_opts; k++)
            if (strlen(opts[k].name) == len && !strncmp(opts[k].name, name, len))
                o = &opts[k];
        if (!o) {
            fprintf(stderr, "unknown option --%.*s\n\n%s", (int)len, name, usage);
            return 2;
        }
        if (o->flag) {
            *o->flag = 1;
            continue;
        }
        if (eq) {
            *o->value = eq + 1;
        } else if (i + 1 < argc) {
            *o->value = argv[++i];
        } else {
            fprintf(stderr, "option --%s needs a value\n", o->name);
            return 2;
        }
    }
    *npos = pos;
    return 0;
}

const char *cli_default_model(void)
{
    const char *e = getenv("INSTCAL_MODEL");
    return e && *e ? e : IC_SOURCE_ROOT "/models/default.safetensors";
}

int cli_read_file(const char *path, size_t max_bytes, unsigned char **ret, size_t *ret_len)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "cannot open %s: %s\n", path, strerror(errno));
        return 1;
    }
    size_t cap = 1 << 16, len = 0;
    unsigned char *buf = ic_malloc(cap);
    while (buf) {
        if (len == cap) {
            if (cap >= max_bytes) {
                fprintf(stderr, "%s is larger than %zu bytes\n", path, max_bytes);
                ic_free(buf);
                fclose(f);
                return 1;
            }
            cap *= 2;
            unsigned char *nb = ic_realloc(buf, cap);
            if (!nb) {
                ic_free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
        }
        size_t got = fread(buf + len, 1, cap - len, f);
        len += got;
        if (!got)
            break;
    }
    fclose(f);
    if (!buf) {
        fprintf(stderr, "out of memory reading %s\n", path);
        return 1;
    }
    *ret = buf;
    *ret_len = len;
    return 0;
}

int cli_int(const char *name, const char *value, int lo, int hi, int *out)
{
    if (!value)
        return 0;
    char *end;
    errno = 0;
    long v = strtol(value, &end, 10);
    if (errno || *end || end == value || v < lo || v > hi) {
        fprintf(stderr, "--%s must be an integer in [%d, %d], got '%s'\n", name, lo, hi, value);
        return 1;
    }
    *out = (int)v;
    return 0;
}

int cli_calib_opts(const char *mode, const char *m, ic_calib_opts *opts)
{
    memset(opts, 0, sizeof *opts);
    opts->tent_steps = 1;
    if (mode && ic_calib_mode_parse(mode, &opts->mode)) {
        fprintf(stderr, "%s\n", ic_error_message());
        return 1;
    }
    if (m) {
        char *end;
        double v = strtod(m, &end);
        if (*end || end == m || !(v >= 0 && v <= 1)) {
            fprintf(stderr, "--m must be a number in [0, 1], got '%s'\n", m);
            return 1;
        }
        opts->m = (float)v;
        if (!mode)
            opts->mode = IC_CALIB_MANUAL;
    } else if (opts->mode == IC_CALIB_MANUAL) {
        fprintf(stderr, "--calibration manual needs --m\n");
        return 1;
    }
    return 0;
}

int cli_double(const char *name, const char *value, double lo, double hi, double *out)
{
    if (!value)
        return 0;
    char *end;
    errno = 0;
    double v = strtod(value, &end);
    if (errno || *end || end == value || !(v >= lo && v <= hi)) {
        fprintf(stderr, "--%s must be a number in [%g, %g], got '%s'\n", name, lo, hi, value);
        return 1;
    }
    *out = v;
    return 0;
}

int cli_u64(const char *name, const char *value, uint64_t *out)
{
    if (!value)
        return 0;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(value, &end, 10);
    if (errno || *end || end == value || value[0] == '-') {
        fprintf(stderr, "--%s must be a non-negative integer, got '%s'\n", name, value);
        return 1;
    }
    *out = v;
    return 0;
}

int cli_size(const char *value, int *h, int *w)
{
    if (!value)
        return 0;
    int a, b;
    char x;
    if (sscanf(value, "%d%c%d", &a, &x, &b) != 3 || (x != 'x' && x != 'X') || a < 16 || b < 16 ||
        a > 8192 || b > 8192) {
        fprintf(stderr, "size '%s': expected HxW, e.g. 256x512\n", value);
        return 1;
    }
    *h = a;
    *w = b;
    return 0;
}

int cli_file_hash(const char *path, unsigned long long *ret)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "cannot read %s: %s\n", path, strerror(errno));
        return 1;
    }
    unsigned long long h = 1469598103934665603ull;
    unsigned char buf[1 << 16];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0)
        for (size_t i = 0; i < n; i++)
            h = (h ^ buf[i]) * 1099511628211ull;
    int err = ferror(f);
    fclose(f);
    if (err) {
        fprintf(stderr, "cannot read %s\n", path);
        return 1;
    }
    *ret = h;
    return 0;
}
