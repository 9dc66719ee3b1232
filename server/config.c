/* Configuration parsing with file < env < flag precedence (see config.h).
 *
 * One table describes every key (type, bounds, help), so the parser, the
 * startup log and the --help text cannot drift apart. */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "calib/calib.h"
#include "log.h"

enum key_type { K_INT, K_I64, K_BYTES, K_STR, K_CALIB, K_LEVEL, K_BACKEND, K_BOOL };

typedef struct key_desc {
    const char *name;
    enum key_type type;
    size_t offset;
    size_t size; /* K_INT: sizeof(int); strings: buffer size */
    int64_t min, max;
    const char *help;
} key_desc;

#define F(field) offsetof(srv_config, field), sizeof(((srv_config *)0)->field)

static const key_desc keys[] = {
    {"bind", K_STR, F(bind), 0, 0, "address to listen on (IPv4 or IPv6 literal)"},
    {"port", K_INT, F(port), 0, 65535, "TCP port; 0 picks a free one and logs it"},
    {"workers", K_INT, F(workers), 0, 256, "inference threads; 0 = cores / blas_threads"},
    {"blas_threads", K_INT, F(blas_threads), 1, 64, "BLAS threads per worker"},
    {"queue_length", K_INT, F(queue_length), 1, 100000, "jobs waiting for a worker"},
    {"deadline_ms", K_I64, F(deadline_ms), 1, 3600000, "per-request deadline"},
    {"max_upload_bytes", K_BYTES, F(max_upload_bytes), 1024, (int64_t)1 << 32,
     "request body cap (suffix K, M, G = KiB, MiB, GiB)"},
    {"max_pixels", K_I64, F(max_pixels), 1, (int64_t)1 << 31, "decoded width*height cap"},
    {"min_request_size", K_INT, F(min_request_size), 1, 65536,
     "smallest network input short side a request may ask for (`size`)"},
    {"max_request_size", K_INT, F(max_request_size), 1, 65536,
     "largest network input short side a request may ask for (`size`)"},
    {"max_connections", K_INT, F(max_connections), 1, 60000, "open connection limit"},
    {"max_connections_per_ip", K_INT, F(max_connections_per_ip), 0, 60000,
     "open connections one client address may hold (0 = no cap); over it: 503 and close"},
    {"connection_timeout_s", K_INT, F(connection_timeout_s), 1, 3600,
     "idle connection timeout"},
    {"header_timeout_s", K_INT, F(header_timeout_s), 1, 3600,
     "deadline for a request line and headers (and for a kept-alive connection's next request)"},
    {"min_body_rate", K_BYTES, F(min_body_rate), 0, (int64_t)1 << 30,
     "bytes/s a request body must keep up after its first second (0 = no minimum)"},
    {"admin_port", K_INT, F(admin_port), -1, 65535,
     "second listener for health and metrics only (-1 = none, 0 = a free port)"},
    {"drain_timeout_s", K_INT, F(drain_timeout_s), 1, 3600,
     "on SIGTERM, longest wait for queued and running work"},
    {"retry_after_s", K_INT, F(retry_after_s), 1, 3600, "Retry-After sent with 503"},
    {"model", K_STR, F(model), 0, 0, "model file the backend loads (empty = built-in)"},
    {"calibration", K_CALIB, F(calibration), 0, 0, "default calibration mode"},
    {"static_dir", K_STR, F(static_dir), 0, 0, "directory served at / (empty = none)"},
    {"log_level", K_LEVEL, F(log_level), 0, 0, "error, warn, info or debug"},
    {"backend", K_BACKEND, F(backend), 0, 0,
     "inference backend: pdl (Panoptic-DeepLab) or test (no model; overload tests)"},
    {"worker_memory", K_BYTES, F(worker_memory), 0, (int64_t)1 << 40,
     "pdl: scratch memory cap per worker (0 = none); over it: 503 out_of_memory"},
    {"worker_memory_keep", K_BYTES, F(worker_memory_keep), 0, (int64_t)1 << 40,
     "pdl: scratch memory a worker keeps after a request; the rest goes back to the system"},
    {"tent", K_BOOL, F(tent), 0, 1,
     "offer calibration=tent (each worker keeps a trainable model copy, ~3x the weights)"},
    {"test_sleep_ms", K_INT, F(test_sleep_ms), 0, 600000,
     "test backend: simulated work per request and per SIGHUP reload"},
};
#define N_KEYS (sizeof keys / sizeof keys[0])

void srv_config_defaults(srv_config *c)
{
    memset(c, 0, sizeof *c);
    snprintf(c->bind, sizeof c->bind, "127.0.0.1");
    c->port = 8080;
    c->workers = 0;
    c->blas_threads = 1;
    c->queue_length = 16;
    c->deadline_ms = 30000;
    c->max_upload_bytes = 20 << 20;
    c->max_pixels = 16000000;
    c->min_request_size = 32;
    c->max_request_size = 1024;
    c->max_connections = 256;
    c->max_connections_per_ip = 64;
    c->connection_timeout_s = 30;
    c->header_timeout_s = 10;
    c->min_body_rate = 1024;
    c->admin_port = -1;
    c->drain_timeout_s = 60;
    c->retry_after_s = 1;
    snprintf(c->calibration, sizeof c->calibration, "instcal-c");
    snprintf(c->static_dir, sizeof c->static_dir, "static");
    snprintf(c->log_level, sizeof c->log_level, "info");
    snprintf(c->backend, sizeof c->backend, "pdl");
    c->tent = 1;
    c->worker_memory_keep = (int64_t)256 << 20;
}

static int fail(char *err, size_t errlen, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

static int fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return ic_error_set(IC_EINVAL, "%s", errlen ? err : "invalid configuration");
}

/* Keys compare with '-' and '_' treated alike, so `--max-upload-bytes` and
 * `max_upload_bytes` both work. */
static const key_desc *find_key(const char *name, size_t len)
{
    for (size_t i = 0; i < N_KEYS; i++) {
        const char *k = keys[i].name;
        if (strlen(k) != len)
            continue;
        size_t j = 0;
        for (; j < len; j++) {
            char a = name[j] == '-' ? '_' : name[j];
            if (a != k[j])
                break;
        }
        if (j == len)
            return &keys[i];
    }
    return NULL;
}

static int parse_int(const char *v, int64_t *out, int allow_suffix)
{
    errno = 0;
    char *end;
    long long x = strtoll(v, &end, 10);
    if (end == v || errno == ERANGE)
        return -1;
    int64_t mult = 1;
    if (allow_suffix && *end) {
        switch (toupper((unsigned char)*end)) {
        case 'K': mult = 1024; break;
        case 'M': mult = 1024 * 1024; break;
        case 'G': mult = 1024 * 1024 * 1024; break;
        default: return -1;
        }
        end++;
        if (toupper((unsigned char)*end) == 'I')
            end++;
        if (toupper((unsigned char)*end) == 'B')
            end++;
    }
    if (*end != '\0')
        return -1;
    if (x > INT64_MAX / mult || x < INT64_MIN / mult)
        return -1;
    *out = (int64_t)x * mult;
    return 0;
}

int srv_config_set(srv_config *c, const char *key, const char *value, const char *origin,
                   char *err, size_t errlen)
{
    const key_desc *k = find_key(key, strlen(key));
    if (!k)
        return fail(err, errlen, "%s: unknown setting '%s' (see --help)", origin, key);
    char *field = (char *)c + k->offset;
    int64_t x;
    switch (k->type) {
    case K_INT:
    case K_I64:
    case K_BYTES:
        if (parse_int(value, &x, k->type == K_BYTES) != 0)
            return fail(err, errlen, "%s: %s = '%s' is not %s", origin, k->name, value,
                        k->type == K_BYTES ? "a byte count (e.g. 20M)" : "an integer");
        if (x < k->min || x > k->max)
            return fail(err, errlen, "%s: %s = %s is out of range [%lld, %lld]", origin,
                        k->name, value, (long long)k->min, (long long)k->max);
        if (k->type == K_INT)
            *(int *)field = (int)x;
        else
            *(int64_t *)field = x;
        return 0;
    case K_CALIB:
        if (ic_calib_mode_parse(value, &(ic_calib_mode){0}) != 0)
            return fail(err, errlen, "%s: calibration = '%s' is not one of %s", origin, value,
                        ic_calib_mode_list());
        break;
    case K_LEVEL: {
        srv_log_level l;
        if (srv_log_level_parse(value, &l) != 0)
            return fail(err, errlen, "%s: log_level = '%s' is not one of error, warn, info, debug",
                        origin, value);
        break;
    }
    case K_BACKEND:
        if (strcmp(value, "pdl") != 0 && strcmp(value, "test") != 0)
            return fail(err, errlen, "%s: backend = '%s' is not one of: pdl, test", origin, value);
        break;
    case K_BOOL:
        if (!strcmp(value, "1") || !strcmp(value, "true") || !strcmp(value, "on") ||
            !strcmp(value, "yes"))
            *(int *)field = 1;
        else if (!strcmp(value, "0") || !strcmp(value, "false") || !strcmp(value, "off") ||
                 !strcmp(value, "no"))
            *(int *)field = 0;
        else
            return fail(err, errlen, "%s: %s = '%s' is not on/off (true/false, 1/0)", origin,
                        k->name, value);
        return 0;
    case K_STR:
        break;
    }
    if (strlen(value) >= k->size)
        return fail(err, errlen, "%s: %s is longer than %zu characters", origin, k->name,
                    k->size - 1);
    memcpy(field, value, strlen(value) + 1);
    return 0;
}

static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1]))
        *--e = '\0';
    return s;
}

int srv_config_load_file(srv_config *c, const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "cannot read config file %s: %s", path, strerror(errno));
        return ic_error_set(IC_EIO, "%s", errlen ? err : "cannot read config file");
    }
    char line[8192];
    int lineno = 0, rc = 0;
    while (rc == 0 && fgets(line, sizeof line, f)) {
        lineno++;
        char origin[512];
        snprintf(origin, sizeof origin, "%s:%d", path, lineno);
        if (!strchr(line, '\n') && !feof(f)) {
            rc = fail(err, errlen, "%s: line too long", origin);
            break;
        }
        char *hash = strchr(line, '#');
        if (hash)
            *hash = '\0';
        char *s = trim(line);
        if (!*s)
            continue;
        char *eq = strchr(s, '=');
        if (!eq) {
            rc = fail(err, errlen, "%s: expected 'key = value', got '%s'", origin, s);
            break;
        }
        *eq = '\0';
        char *key = trim(s), *value = trim(eq + 1);
        size_t vl = strlen(value);
        if (vl >= 2 && value[0] == '"' && value[vl - 1] == '"') {
            value[vl - 1] = '\0';
            value++;
        }
        rc = srv_config_set(c, key, value, origin, err, errlen);
    }
    fclose(f);
    return rc;
}

/* Finds the config file path: --config wins over INSTCALD_CONFIG. */
static const char *config_path(int argc, char **argv, char **envp)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--config") == 0 && i + 1 < argc)
            return argv[i + 1];
        if (strncmp(argv[i], "--config=", 9) == 0)
            return argv[i] + 9;
    }
    for (char **e = envp; e && *e; e++)
        if (strncmp(*e, "INSTCALD_CONFIG=", 16) == 0)
            return *e + 16;
    return NULL;
}

static int apply_env(srv_config *c, char **envp, char *err, size_t errlen)
{
    for (char **e = envp; e && *e; e++) {
        if (strncmp(*e, "INSTCALD_", 9) != 0)
            continue;
        const char *eq = strchr(*e, '=');
        if (!eq)
            continue;
        char key[64];
        size_t n = (size_t)(eq - (*e + 9));
        if (n == 0 || n >= sizeof key)
            return fail(err, errlen, "environment: unknown variable %.*s", (int)(eq - *e), *e);
        for (size_t i = 0; i < n; i++)
            key[i] = (char)tolower((unsigned char)(*e)[9 + i]);
        key[n] = '\0';
        if (strcmp(key, "config") == 0)
            continue;
        char origin[96];
        snprintf(origin, sizeof origin, "environment INSTCALD_%.*s", (int)n, *e + 9);
        int rc = srv_config_set(c, key, eq + 1, origin, err, errlen);
        if (rc)
            return rc;
    }
    return 0;
}

static int apply_flags(srv_config *c, int argc, char **argv, char *err, size_t errlen)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strncmp(a, "--", 2) != 0)
            return fail(err, errlen, "command line: unexpected argument '%s'", a);
        const char *name = a + 2, *eq = strchr(name, '=');
        char key[64];
        size_t n = eq ? (size_t)(eq - name) : strlen(name);
        if (n == 0 || n >= sizeof key)
            return fail(err, errlen, "command line: bad flag '%s'", a);
        memcpy(key, name, n);
        key[n] = '\0';
        const char *value;
        if (eq) {
            value = eq + 1;
        } else {
            if (i + 1 >= argc)
                return fail(err, errlen, "command line: --%s needs a value", key);
            value = argv[++i];
        }
        if (strcmp(key, "config") == 0)
            continue;
        char origin[96];
        snprintf(origin, sizeof origin, "flag --%s", key);
        int rc = srv_config_set(c, key, value, origin, err, errlen);
        if (rc)
            return rc;
    }
    return 0;
}

int srv_config_load(srv_config *c, int argc, char **argv, char **envp, char *err,
                    size_t errlen)
{
    srv_config_defaults(c);
    const char *path = config_path(argc, argv, envp);
    int rc = path ? srv_config_load_file(c, path, err, errlen) : 0;
    if (rc == 0)
        rc = apply_env(c, envp, err, errlen);
    if (rc == 0)
        rc = apply_flags(c, argc, argv, err, errlen);
    /* Each key is checked alone as it is set; a pair that only makes sense together is checked
     * once all sources are in (the file may set one bound and a flag the other). */
    if (rc == 0 && c->min_request_size > c->max_request_size)
        rc = fail(err, errlen, "min_request_size %d is above max_request_size %d",
                  c->min_request_size, c->max_request_size);
    return rc;
}

int srv_config_format(const srv_config *c, srv_buf *out)
{
    for (size_t i = 0; i < N_KEYS; i++) {
        const key_desc *k = &keys[i];
        const char *field = (const char *)c + k->offset;
        int rc;
        if (k->type == K_INT) {
            rc = srv_buf_printf(out, "%s%s=%d", i ? " " : "", k->name, *(const int *)field);
        } else if (k->type == K_BOOL) {
            rc = srv_buf_printf(out, "%s%s=%s", i ? " " : "", k->name,
                                *(const int *)field ? "on" : "off");
        } else if (k->type == K_I64 || k->type == K_BYTES) {
            rc = srv_buf_printf(out, "%s%s=%lld", i ? " " : "", k->name,
                                (long long)*(const int64_t *)field);
        } else {
            char q[4200];
            rc = srv_buf_printf(out, "%s%s=%s", i ? " " : "", k->name,
                                srv_log_quote(q, sizeof q, field));
        }
        if (rc)
            return rc;
    }
    return 0;
}

int srv_config_usage(srv_buf *out)
{
    srv_config d;
    srv_config_defaults(&d);
    int rc = srv_buf_printf(out,
                            "usage: instcald [--config FILE] [--KEY VALUE | --KEY=VALUE]...\n"
                            "Every KEY may also be set in the config file (KEY = VALUE) or\n"
                            "as INSTCALD_<KEY> in the environment; flags win over the\n"
                            "environment, which wins over the file.\n\n");
    for (size_t i = 0; rc == 0 && i < N_KEYS; i++) {
        const key_desc *k = &keys[i];
        const char *field = (const char *)&d + k->offset;
        char def[64];
        if (k->type == K_INT)
            snprintf(def, sizeof def, "%d", *(const int *)field);
        else if (k->type == K_BOOL)
            snprintf(def, sizeof def, "%s", *(const int *)field ? "on" : "off");
        else if (k->type == K_I64 || k->type == K_BYTES)
            snprintf(def, sizeof def, "%lld", (long long)*(const int64_t *)field);
        else
            snprintf(def, sizeof def, "\"%s\"", field);
        rc = srv_buf_printf(out, "  --%-22s %s (default %s)\n", k->name, k->help, def);
    }
    return rc;
}
