/* Growable byte buffer with a hard limit (see buf.h). */
#include "buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "base/alloc.h"
#include "base/err.h"

void srv_buf_init(srv_buf *b, size_t limit)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->limit = limit;
}

void srv_buf_free(srv_buf *b)
{
    ic_free(b->data);
    srv_buf_init(b, b->limit);
}

/* Makes room for `extra` more bytes plus the terminating NUL. Growth is
 * geometric but never beyond limit + 1, so a capped upload allocates at most
 * its cap. */
static int reserve(srv_buf *b, size_t extra)
{
    size_t need;
    if (ic_size_add(&need, b->len, extra) != 0)
        return ic_error_set(IC_ELIMIT, "buffer size overflow");
    if (b->limit && need > b->limit)
        return ic_error_set(IC_ELIMIT, "more than %zu bytes", b->limit);
    if (need + 1 <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need + 1)
        cap = cap > ((size_t)-1) / 2 ? need + 1 : cap * 2;
    if (b->limit && cap > b->limit + 1)
        cap = b->limit + 1;
    char *p = ic_realloc(b->data, cap);
    if (!p)
        return ic_error_set(IC_ENOMEM, "out of memory growing a buffer to %zu bytes", cap);
    b->data = p;
    b->cap = cap;
    return 0;
}

int srv_buf_append(srv_buf *b, const void *p, size_t n)
{
    int rc = reserve(b, n);
    if (rc)
        return rc;
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

int srv_buf_printf(srv_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return ic_error_set(IC_EINVAL, "bad format");
    int rc = reserve(b, (size_t)n);
    if (rc)
        return rc;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return 0;
}

char *srv_buf_steal(srv_buf *b, size_t *len)
{
    char *p = b->data;
    if (len)
        *len = b->len;
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    return p;
}
