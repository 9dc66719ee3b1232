/* Strict HTTP/1.1 message framing, checked from the request head before any
 * body is read (RFC 9112 6.1-6.3). libmicrohttpd 0.9.75 takes the first of
 * two Content-Length headers, lets Transfer-Encoding win over
 * Content-Length, and reads a body with an unknown transfer coding until
 * the client closes; a proxy in front that frames the same bytes
 * differently is the classic request-smuggling set-up. So instcald refuses
 * all of these itself:
 *   - Content-Length together with Transfer-Encoding: 400 bad_framing
 *   - Content-Length values that differ (two headers, or a list): 400
 *   - a Content-Length that is not a plain decimal number: 400
 *   - Transfer-Encoding whose final coding is not chunked, or with chunked
 *     twice: 400 bad_framing (the body's length cannot be known)
 *   - another coding before chunked (`gzip, chunked`): 501 not_implemented
 * Malformed chunk sizes are libmicrohttpd's (400 from its chunk parser).
 *
 * And the query string: libmicrohttpd keeps each query parameter in its
 * per-connection memory, and when that runs out (about 2000 parameters in
 * 128 KiB) it decides on 431 but has no memory left to send it. instcald
 * refuses long queries itself (414 uri_too_long) before that happens. */
#ifndef SRV_FRAMING_H
#define SRV_FRAMING_H

#include <stddef.h>

#include "api_error.h"

/* Limits of a query string (instcald's options need a few dozen bytes). */
#define SRV_QUERY_MAX_BYTES 8192
#define SRV_QUERY_MAX_PARAMS 256

/* One request header as received. */
typedef struct srv_header {
    const char *name, *value;
} srv_header;

/* Checks the framing headers among h[0..n). Returns SRV_ERR_NONE, or the
 * error with a message in *why (a static string). */
srv_err srv_framing_check(const srv_header *h, size_t n, const char **why);

/* Whether the query string of uri (after '?', if any) is over the limits. */
int srv_query_too_big(const char *uri);

#endif
