/* Responses written straight to a connection's socket, for the answers
 * libmicrohttpd 0.9.75 cannot send itself: it queues responses only before
 * the body or after all of it (so a chunked upload that passes the limit
 * could only be dropped), it has nothing for the connection guard's
 * timeouts (server/guard.c), and it closes a connection as soon as it reads
 * the client's end of stream, so a client that half-closes after its
 * request would never get the answer (server/late.c sends it).
 *
 * Only call these where libmicrohttpd is not writing to the socket itself:
 * before it queued a response for the connection, or after it let go. */
#ifndef SRV_RAWHTTP_H
#define SRV_RAWHTTP_H

#include <stddef.h>

#include "api_error.h"
#include "buf.h"

struct srv_reply;

/* Appends the whole HTTP/1.1 message of r (status line, Content-Type,
 * Content-Length, X-Request-Id when id is non-empty, Retry-After, Allow,
 * `Connection: close`, then the body) to out. A reply that names a file
 * (file_fd) is not supported. Returns 0, IC_EINVAL or IC_ENOMEM. */
int srv_raw_format(srv_buf *out, const struct srv_reply *r, const char *id);

/* The same for the JSON error e with message. */
int srv_raw_format_error(srv_buf *out, srv_err e, const char *message, const char *id,
                         int retry_after);

/* Sends what the socket takes now (non-blocking, no SIGPIPE). Returns the
 * number of bytes sent, 0 when none could be. */
size_t srv_raw_send(int fd, const void *data, size_t len);

/* Formats the error and sends it at once, as far as the socket buffer
 * takes it (an error is a few hundred bytes). Returns 1 if all went out. */
int srv_raw_send_error(int fd, srv_err e, const char *message, const char *id, int retry_after);

#endif
