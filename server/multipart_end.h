/* Where a multipart body ends. RFC 2046 5.1.1 allows an epilogue after the
 * close delimiter (`--boundary--`), to be ignored, but libmicrohttpd's
 * post-processor reports any byte after it as an error. So instcald finds
 * the close delimiter itself in the streamed body and hands the
 * post-processor only the bytes up to it. */
#ifndef SRV_MULTIPART_END_H
#define SRV_MULTIPART_END_H

#include <stddef.h>

/* RFC 2046: a boundary is 1 to 70 characters. */
#define SRV_MP_BOUNDARY_MAX 70

typedef struct srv_mp_end {
    char delim[SRV_MP_BOUNDARY_MAX + 7]; /* CRLF "--" boundary "--" */
    size_t len;                          /* of delim */
    size_t fail[SRV_MP_BOUNDARY_MAX + 7]; /* KMP failure function */
    size_t matched;                      /* delimiter bytes matched so far */
    int done;                            /* the close delimiter was seen */
} srv_mp_end;

/* Takes the boundary from a multipart Content-Type value (quoted or not).
 * Returns 0, or -1 when there is none or it is over 70 characters (the
 * post-processor then refuses the body by itself). */
int srv_mp_end_init(srv_mp_end *st, const char *content_type);

/* The number of the n bytes of data that belong to the body proper: all
 * of them until the close delimiter is complete, then up to its end, and 0
 * once it was seen. The body is matched as if a CRLF preceded it, so a
 * close delimiter at the very start counts too. */
size_t srv_mp_end_feed(srv_mp_end *st, const char *data, size_t n);

#endif
