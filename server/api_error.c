/* The API error table (see api_error.h) and the results built from it. */
#include "api_error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "backend.h"
#include "base/err.h"

static const struct {
    int status;
    const char *code, *when;
} rows[SRV_ERR_COUNT] = {
    [SRV_ERR_NONE] = {200, "", "result"},
#define SRV_ERR_ROW(id, status, code, when) [SRV_ERR_##id] = {status, code, when},
    SRV_API_ERRORS(SRV_ERR_ROW)
#undef SRV_ERR_ROW
};

int srv_err_status(srv_err e)
{
    return (unsigned)e < SRV_ERR_COUNT ? rows[e].status : 500;
}

const char *srv_err_code(srv_err e)
{
    return (unsigned)e < SRV_ERR_COUNT ? rows[e].code : "internal";
}

srv_err srv_err_from_engine(int rc, int label)
{
    switch (rc) {
    case IC_EFORMAT:
    case IC_ESHAPE:
        return label ? SRV_ERR_BAD_LABEL : SRV_ERR_BAD_IMAGE;
    case IC_EUNSUPPORTED:
        return label ? SRV_ERR_BAD_LABEL : SRV_ERR_UNSUPPORTED_IMAGE;
    case IC_ELIMIT:
        return SRV_ERR_TOO_LARGE;
    case IC_EINVAL:
        return SRV_ERR_BAD_PARAMETER;
    case IC_ENOMEM:
        return SRV_ERR_OUT_OF_MEMORY;
    default:
        return SRV_ERR_INTERNAL;
    }
}

int srv_api_error_table_md(srv_buf *out)
{
    int rc = srv_buf_printf(out, "| status | `error.code` | when |\n|---|---|---|\n");
    for (int e = 0; e < SRV_ERR_COUNT && !rc; e++)
        rc = e == SRV_ERR_NONE ? srv_buf_printf(out, "| 200 | | result |\n")
                               : srv_buf_printf(out, "| %d | `%s` | %s |\n", rows[e].status,
                                                rows[e].code, rows[e].when);
    return rc;
}

void srv_result_error(srv_result *res, srv_err e, const char *fmt, ...)
{
    res->err = e;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(res->message, sizeof res->message, fmt, ap);
    va_end(ap);
}

void srv_result_engine_error(srv_result *res, int rc, const char *what)
{
    const char *msg = ic_error_message();
    srv_err e = srv_err_from_engine(rc, strcmp(what, "label") == 0);
    if (e == SRV_ERR_OUT_OF_MEMORY)
        srv_result_error(res, e, "not enough memory for this %s%s%s", what, msg[0] ? ": " : "",
                         msg);
    else if (e == SRV_ERR_INTERNAL)
        srv_result_error(res, e, "%s", msg[0] ? msg : "inference failed");
    else
        srv_result_error(res, e, "%s", msg);
}

srv_err srv_err_fail(srv_err e, const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    ic_error_set(IC_EINVAL, "%s", msg);
    return e;
}
