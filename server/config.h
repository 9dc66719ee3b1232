/* instcald configuration: every setting from a file, the environment and
 * the command line.
 *
 * Precedence, lowest to highest: built-in default < config file (`key =
 * value` lines, `#` comments) < environment (INSTCALD_<KEY>, upper case) <
 * command-line flag (`--key value` or `--key=value`; dashes and underscores
 * in keys are interchangeable). The file comes from --config FILE or
 * INSTCALD_CONFIG. Unknown keys and bad values are errors with a message
 * that names the key and where it came from, so a typo never silently does
 * nothing. */
#ifndef SRV_CONFIG_H
#define SRV_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

/* The effective settings. Strings are NUL-terminated and bounded. */
typedef struct srv_config {
    char bind[64];             /* IPv4 or IPv6 literal to listen on */
    int port;                  /* 0 = pick a free port (logged) */
    int workers;               /* inference threads; 0 = cores / blas_threads */
    int blas_threads;          /* BLAS threads per worker */
    int queue_length;          /* jobs waiting for a worker, at most */
    int64_t deadline_ms;       /* per request, from arrival to response */
    int64_t max_upload_bytes;  /* request body cap */
    int64_t max_pixels;        /* decoded width * height cap */
    int min_request_size, max_request_size; /* bounds of a request's `size` (network short side) */
    int max_connections;       /* libmicrohttpd connection limit */
    int max_connections_per_ip; /* open connections one client address may hold; 0 = no cap */
    int connection_timeout_s;  /* idle connection timeout */
    int header_timeout_s;      /* deadline for a request's line and headers */
    int64_t min_body_rate;     /* bytes/s a body must keep up after its first second; 0 = off */
    int admin_port;            /* health/metrics-only listener; -1 = none, 0 = a free port */
    int drain_timeout_s;       /* SIGTERM: longest wait for queued work */
    int retry_after_s;         /* Retry-After on 503 */
    char model[4096];          /* model file for the backend ("" = built-in) */
    char calibration[16];      /* default calibration mode (a name of calib/calib.h) */
    char static_dir[4096];     /* demo page root ("" = none) */
    char log_level[8];         /* error, warn, info, debug */
    char backend[16];          /* "pdl" (the model) or "test" (no model) */
    int tent;                  /* offer calibration=tent (per-worker trainable copy) */
    int64_t worker_memory;     /* per-worker arena cap in bytes; 0 = none */
    int64_t worker_memory_keep; /* arena bytes a worker keeps between requests */
    int test_sleep_ms;         /* test backend: simulated work per request and reload */
} srv_config;

/* Fills c with the built-in defaults (safe for a 2-core laptop). */
void srv_config_defaults(srv_config *c);

/* Sets one key from its text value. `origin` ("file x:3", "env", "flag")
 * is only used in the message. Returns 0, or IC_EINVAL with a message in
 * err (size errlen) naming the key, the value and what is allowed. */
int srv_config_set(srv_config *c, const char *key, const char *value, const char *origin,
                   char *err, size_t errlen);

/* Applies a config file. Returns 0, IC_EIO if it cannot be read, or
 * IC_EINVAL for a syntax error, unknown key or bad value (message in err). */
int srv_config_load_file(srv_config *c, const char *path, char *err, size_t errlen);

/* The whole precedence chain: defaults, the file named by --config or
 * INSTCALD_CONFIG, INSTCALD_* variables of envp (NULL-terminated), then the
 * flags of argv[1..argc). Returns 0 or a negative code with err set. */
int srv_config_load(srv_config *c, int argc, char **argv, char **envp, char *err,
                    size_t errlen);

/* Appends the effective settings as logfmt `key=value` pairs to out.
 * Returns 0 or IC_ENOMEM. */
int srv_config_format(const srv_config *c, srv_buf *out);

/* Appends a usage text listing every key with its default and meaning. */
int srv_config_usage(srv_buf *out);

#endif
