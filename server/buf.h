/* A growable byte buffer with an optional hard size limit.
 *
 * The server streams request bodies into these buffers (the limit is the
 * upload cap, so a client can never make us allocate more than that) and
 * renders text such as the Prometheus exposition into them. */
#ifndef SRV_BUF_H
#define SRV_BUF_H

#include <stddef.h>

/* A byte string: data[0..len) is valid and data[len] is always '\0' once
 * anything was appended, so text can be used as a C string. limit == 0 means
 * unlimited. Zero-initialise (or srv_buf_init) before use. */
typedef struct srv_buf {
    char *data;
    size_t len;
    size_t cap;
    size_t limit;
} srv_buf;

/* Empties b and sets its size limit (0 = none). Allocates nothing. */
void srv_buf_init(srv_buf *b, size_t limit);

/* Frees the storage; b becomes an empty buffer with the same limit. */
void srv_buf_free(srv_buf *b);

/* Appends n bytes. Returns 0, IC_ELIMIT if len + n would exceed the limit
 * (nothing is appended), or IC_ENOMEM. */
int srv_buf_append(srv_buf *b, const void *p, size_t n);

/* Appends printf-formatted text. Same returns as srv_buf_append. */
int srv_buf_printf(srv_buf *b, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* Hands the storage to the caller (who frees it with ic_free) and leaves b
 * empty. *len receives the length. Returns NULL for an empty buffer. */
char *srv_buf_steal(srv_buf *b, size_t *len);

#endif
