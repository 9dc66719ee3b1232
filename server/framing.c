/* Request framing checks (see framing.h). */
#include "framing.h"

#include <ctype.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

static const char *skip_ows(const char *p)
{
    while (*p == ' ' || *p == '\t')
        p++;
    return p;
}

/* Parses a Content-Length field value, a list of 1*DIGIT separated by
 * commas (RFC 9110 8.6), into *out; all members must be equal. */
static int parse_length(const char *v, uint64_t *out, int *have)
{
    for (const char *p = skip_ows(v);;) {
        if (!isdigit((unsigned char)*p))
            return -1;
        uint64_t x = 0;
        for (; isdigit((unsigned char)*p); p++) {
            if (x > (UINT64_MAX - 9) / 10)
                return -1;
            x = x * 10 + (uint64_t)(*p - '0');
        }
        if (*have && x != *out)
            return -1;
        *out = x;
        *have = 1;
        p = skip_ows(p);
        if (!*p)
            return 0;
        if (*p != ',')
            return -1;
        p = skip_ows(p + 1);
    }
}

/* Walks the codings of one Transfer-Encoding value; counts them, notes
 * where chunked is and whether anything else is there. */
static void scan_codings(const char *v, int *n, int *chunked_at, int *chunked_count)
{
    for (const char *p = v; *p;) {
        p = skip_ows(p);
        const char *e = p;
        while (*e && *e != ',' && *e != ';' && *e != ' ' && *e != '\t')
            e++;
        if (e > p) {
            if ((size_t)(e - p) == 7 && strncasecmp(p, "chunked", 7) == 0) {
                *chunked_at = *n;
                (*chunked_count)++;
            }
            (*n)++;
        }
        p = e;
        while (*p && *p != ',')
            p++; /* coding parameters (;q=...) */
        if (*p == ',')
            p++;
    }
}

srv_err srv_framing_check(const srv_header *h, size_t n, const char **why)
{
    uint64_t len = 0;
    int have_len = 0, n_cl = 0, n_codings = 0, chunked_at = -1, n_chunked = 0, n_te = 0;
    for (size_t i = 0; i < n; i++) {
        if (strcasecmp(h[i].name, "Content-Length") == 0) {
            n_cl++;
            if (parse_length(h[i].value, &len, &have_len) != 0) {
                *why = "Content-Length must be one decimal number (two different lengths "
                       "make the message ambiguous)";
                return SRV_ERR_BAD_FRAMING;
            }
        } else if (strcasecmp(h[i].name, "Transfer-Encoding") == 0) {
            n_te++;
            scan_codings(h[i].value, &n_codings, &chunked_at, &n_chunked);
        }
    }
    if (n_te && n_cl) {
        *why = "a message may not have both Content-Length and Transfer-Encoding";
        return SRV_ERR_BAD_FRAMING;
    }
    if (!n_te)
        return SRV_ERR_NONE;
    if (n_chunked != 1 || chunked_at != n_codings - 1) {
        /* RFC 9112 6.3: without chunked as the final coding the body's
         * length cannot be known. */
        *why = "Transfer-Encoding must end with chunked, applied once";
        return SRV_ERR_BAD_FRAMING;
    }
    if (n_codings > 1) {
        *why = "the only transfer coding accepted is chunked";
        return SRV_ERR_NOT_IMPLEMENTED;
    }
    return SRV_ERR_NONE;
}

int srv_query_too_big(const char *uri)
{
    const char *q = uri ? strchr(uri, '?') : NULL;
    if (!q)
        return 0;
    size_t params = 1, len = 0;
    for (const char *p = q + 1; *p; p++, len++) {
        if (*p == '&' || *p == ';')
            params++;
        if (len >= SRV_QUERY_MAX_BYTES || params > SRV_QUERY_MAX_PARAMS)
            return 1;
    }
    return 0;
}
