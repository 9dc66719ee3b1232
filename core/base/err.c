/* Error names and the per-thread message buffer (see err.h). */
#include "base/err.h"

#include <stdarg.h>
#include <stdio.h>

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

int ic_error_set(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(tls_msg, sizeof tls_msg, fmt, ap);
    va_end(ap);
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
