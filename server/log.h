/* Structured logging to stderr: one logfmt line per event.
 *
 * Each line is `ts=<UTC ISO-8601> level=<level> <key=value ...>`, written
 * with a single stdio call so lines from different threads never
 * interleave. Values that may contain spaces or quotes (paths, messages)
 * must go through srv_log_quote(). */
#ifndef SRV_LOG_H
#define SRV_LOG_H

#include <stddef.h>

/* Severity, most severe first; a message is printed when its level is <=
 * the configured level. */
typedef enum srv_log_level {
    SRV_LOG_ERROR = 0,
    SRV_LOG_WARN = 1,
    SRV_LOG_INFO = 2,
    SRV_LOG_DEBUG = 3,
} srv_log_level;

/* Parses "error", "warn", "info" or "debug". Returns 0 or IC_EINVAL. */
int srv_log_level_parse(const char *s, srv_log_level *out);

/* Name of a level ("info", ...). */
const char *srv_log_level_name(srv_log_level l);

/* Sets the process-wide threshold (default info). Thread-safe. */
void srv_log_set_level(srv_log_level l);

/* Whether a message at level l would be printed. */
int srv_log_enabled(srv_log_level l);

/* Prints one line: the timestamp and level, then the formatted text, which
 * should be logfmt `key=value` pairs. */
void srv_log(srv_log_level l, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* Writes s into out (size n > 0) as a logfmt value: bare when it has only
 * safe characters, else double-quoted with \" \\ \n and control characters
 * escaped. Truncates (keeping the quotes balanced) when out is too small.
 * Returns out, so it can be used inline in srv_log arguments. */
const char *srv_log_quote(char *out, size_t n, const char *s);

#endif
