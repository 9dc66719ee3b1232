/* Answers that outlive libmicrohttpd's hold on a connection.
 *
 * libmicrohttpd 0.9.75 closes a connection as soon as it reads the
 * client's end of stream, even when the request was complete: a client
 * that half-closes after its request (shutdown(SHUT_WR), which HTTP allows)
 * would never see its answer. The completion callback still has the
 * socket (with MHD_USE_TURBO libmicrohttpd does not shut it down first), so
 * the HTTP layer formats the answer there (server/rawhttp.h) and hands it
 * here: what the socket takes at once goes out at once, the rest is sent
 * from a duplicate of the descriptor by this module's thread within a
 * deadline, after which the duplicate is closed. */
#ifndef SRV_LATE_H
#define SRV_LATE_H

#include <stdint.h>

#include "buf.h"

typedef struct srv_late srv_late;

/* Starts the sender; each answer gets timeout_ns to go out. 0 or IC_EIO. */
int srv_late_create(int64_t timeout_ns, srv_late **out);

/* Stops the thread, closing what is still pending. Accepts NULL. */
void srv_late_destroy(srv_late **l);

/* Sends msg on fd (a connection socket the caller keeps owning): what fits
 * now is sent now; the rest from a dup of fd. Takes msg's storage (leaves
 * it empty) in every case. Returns 1 if all went out at once, 0 if the
 * rest is pending, or a negative IC_E* if it could not be queued. */
int srv_late_send(srv_late *l, int fd, srv_buf *msg);

/* Answers still being sent (for tests and the drain). */
int srv_late_pending(srv_late *l);

#endif
