/* Error names and the per-thread message buffer (see err.h). */
#include "base/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static _Thread_local char tls_msg[512];
static _Thread_local int tls_code;

const char *ic_err_name(int code)
{
    switch (code) {
#define IC_ERR_NAME(name, value, text) \
    case value:                        \
        return #name;
        IC_ERR_MAP(IC_ERR_NAME)
#undef IC_ERR_NAME
    }
    return "EUNKNOWN";
}

const char *ic_strerror(int code)
{
    switch (code) {
#define IC_ERR_TEXT(name, value, text) \
    case value:                        \
        return text;
        IC_ERR_MAP(IC_ERR_TEXT)
#undef IC_ERR_TEXT
    }
    return "unknown error";
}

/* Both setters format into a local buffer and copy it in afterwards: an
 * argument may be ic_error_message() itself, and vsnprintf into the buffer
 * it reads from is undefined (glibc overwrote the start of the old message
 * before copying it). */
int ic_error_set(int code, const char *fmt, ...)
{
    char msg[sizeof tls_msg];
    va_list ap;
    va_start(ap, fmt);
    if (vsnprintf(msg, sizeof msg, fmt, ap) < 0)
        msg[0] = '\0';
    va_end(ap);
    memcpy(tls_msg, msg, strlen(msg) + 1);
    tls_code = code;
    return code;
}

int ic_error_prefix(int code, const char *fmt, ...)
{
    char msg[sizeof tls_msg];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (n < 0) {
        n = 0;
        msg[0] = '\0';
    }
    /* Append ": " and the old message, cut at the buffer's end. */
    size_t at = (size_t)n < sizeof msg ? (size_t)n : sizeof msg - 1;
    if (tls_msg[0]) {
        const char *parts[2] = {": ", tls_msg};
        for (int k = 0; k < 2; k++) {
            size_t len = strlen(parts[k]), room = sizeof msg - 1 - at;
            if (len > room)
                len = room;
            memcpy(msg + at, parts[k], len);
            at += len;
        }
        msg[at] = '\0';
    }
    memcpy(tls_msg, msg, strlen(msg) + 1);
    tls_code = code;
    return code;
}

const char *ic_error_message(void)
{
    return tls_msg;
}

int ic_error_code(void)
{
    return tls_code;
}

void ic_error_clear(void)
{
    tls_msg[0] = '\0';
    tls_code = 0;
}
