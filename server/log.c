/* logfmt lines on stderr (see log.h). */
#include "log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "base/err.h"

static atomic_int g_level = SRV_LOG_INFO;

static const char *const level_names[] = {"error", "warn", "info", "debug"};

int srv_log_level_parse(const char *s, srv_log_level *out)
{
    for (int i = 0; i < 4; i++) {
        if (strcmp(s, level_names[i]) == 0) {
            *out = (srv_log_level)i;
            return 0;
        }
    }
    return ic_error_set(IC_EINVAL, "log level '%s' is not error, warn, info or debug", s);
}

const char *srv_log_level_name(srv_log_level l)
{
    return (l >= SRV_LOG_ERROR && l <= SRV_LOG_DEBUG) ? level_names[l] : "unknown";
}

void srv_log_set_level(srv_log_level l)
{
    atomic_store(&g_level, (int)l);
}

int srv_log_enabled(srv_log_level l)
{
    return (int)l <= atomic_load(&g_level);
}

void srv_log(srv_log_level l, const char *fmt, ...)
{
    if (!srv_log_enabled(l))
        return;
    char line[2048];
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    int n = snprintf(line, sizeof line, "ts=%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ level=%s ",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                     tm.tm_sec, ts.tv_nsec / 1000000, srv_log_level_name(l));
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
    va_end(ap);
    size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
    if (len > sizeof line - 2)
        len = sizeof line - 2; /* an over-long line is cut, never split */
    line[len++] = '\n';
    fwrite(line, 1, len, stderr);
}

static int is_bare(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           strchr("-._/:%+,@", c) != NULL;
}

const char *srv_log_quote(char *out, size_t n, const char *s)
{
    if (!s)
        s = "";
    int bare = *s != '\0';
    for (const char *p = s; *p && bare; p++)
        bare = is_bare((unsigned char)*p);
    if (bare && strlen(s) < n) {
        memcpy(out, s, strlen(s) + 1);
        return out;
    }
    size_t o = 0;
    if (n < 3) {
        out[0] = '\0';
        return out;
    }
    out[o++] = '"';
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        char esc[8];
        size_t k;
        if (*p == '"' || *p == '\\')
            k = (size_t)snprintf(esc, sizeof esc, "\\%c", *p);
        else if (*p == '\n')
            k = (size_t)snprintf(esc, sizeof esc, "\\n");
        else if (*p < 0x20 || *p == 0x7f)
            k = (size_t)snprintf(esc, sizeof esc, "\\x%02x", *p);
        else {
            esc[0] = (char)*p;
            k = 1;
        }
        if (o + k + 2 > n)
            break;
        memcpy(out + o, esc, k);
        o += k;
    }
    out[o++] = '"';
    out[o] = '\0';
    return out;
}
