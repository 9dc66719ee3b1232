/* Finding the close delimiter of a multipart body (see multipart_end.h). */
#include "multipart_end.h"

#include <ctype.h>
#include <string.h>
#include <strings.h>

int srv_mp_end_init(srv_mp_end *st, const char *ct)
{
    memset(st, 0, sizeof *st);
    const char *p = ct;
    while (p && (p = strchr(p, ';'))) {
        p++;
        while (*p == ' ' || *p == '\t')
            p++;
        if (strncasecmp(p, "boundary=", 9) != 0)
            continue;
        p += 9;
        size_t n;
        if (*p == '"') {
            p++;
            n = strcspn(p, "\"");
        } else {
            n = strcspn(p, "; \t");
        }
        if (n == 0 || n > SRV_MP_BOUNDARY_MAX)
            return -1;
        memcpy(st->delim, "\r\n--", 4);
        memcpy(st->delim + 4, p, n);
        memcpy(st->delim + 4 + n, "--", 2);
        st->len = n + 6;
        /* KMP failure function, so that a partial match survives chunk ends. */
        for (size_t i = 1, k = 0; i < st->len; i++) {
            while (k && st->delim[i] != st->delim[k])
                k = st->fail[k - 1];
            if (st->delim[i] == st->delim[k])
                k++;
            st->fail[i] = k;
        }
        st->matched = 2; /* the body starts as if after a CRLF */
        return 0;
    }
    return -1;
}

size_t srv_mp_end_feed(srv_mp_end *st, const char *data, size_t n)
{
    if (st->done)
        return 0;
    if (!st->len)
        return n;
    size_t k = st->matched;
    for (size_t i = 0; i < n; i++) {
        while (k && data[i] != st->delim[k])
            k = st->fail[k - 1];
        if (data[i] == st->delim[k])
            k++;
        if (k == st->len) {
            st->done = 1;
            return i + 1;
        }
    }
    st->matched = k;
    return n;
}
