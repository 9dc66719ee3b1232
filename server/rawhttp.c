/* Raw HTTP/1.1 responses on a socket (see rawhttp.h). */
#include "rawhttp.h"

#include <errno.h>
#include <microhttpd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "base/err.h"
#include "server.h"

int srv_raw_format(srv_buf *out, const srv_reply *r, const char *id)
{
    if (r->file_fd >= 0)
        return ic_error_set(IC_EINVAL, "raw replies cannot send files");
    const char *reason = MHD_get_reason_phrase_for((unsigned)r->status);
    char date[64];
    time_t now = time(NULL);
    struct tm tm;
    strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", gmtime_r(&now, &tm));
    int rc = srv_buf_printf(out, "HTTP/1.1 %d %s\r\nDate: %s\r\nConnection: close\r\n"
                                 "Content-Length: %zu\r\n",
                            r->status, reason && reason[0] ? reason : "Unknown", date, r->len);
    if (rc == 0 && r->content_type)
        rc = srv_buf_printf(out, "Content-Type: %s\r\n", r->content_type);
    if (rc == 0 && id && id[0])
        rc = srv_buf_printf(out, "X-Request-Id: %s\r\n", id);
    if (rc == 0 && r->allow)
        rc = srv_buf_printf(out, "Allow: %s\r\n", r->allow);
    if (rc == 0 && r->retry_after > 0)
        rc = srv_buf_printf(out, "Retry-After: %d\r\n", r->retry_after);
    if (rc == 0 && r->infer_header_len)
        rc = srv_buf_printf(out, SRV_OIP_HEADER_LENGTH ": %zu\r\n", r->infer_header_len);
    if (rc == 0)
        rc = srv_buf_append(out, "\r\n", 2);
    if (rc == 0 && r->len)
        rc = srv_buf_append(out, r->body, r->len);
    return rc;
}

int srv_raw_format_error(srv_buf *out, srv_err e, const char *message, const char *id,
                         int retry_after)
{
    srv_reply r = {.file_fd = -1};
    srv_reply_error(&r, e, message);
    if (retry_after > 0)
        r.retry_after = retry_after;
    int rc = srv_raw_format(out, &r, id);
    free(r.body);
    return rc;
}

size_t srv_raw_send(int fd, const void *data, size_t len)
{
    size_t off = 0;
    while (off < len) {
        ssize_t n = send(fd, (const char *)data + off, len - off, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n > 0)
            off += (size_t)n;
        else if (n < 0 && errno == EINTR)
            continue;
        else
            break;
    }
    return off;
}

int srv_raw_send_error(int fd, srv_err e, const char *message, const char *id, int retry_after)
{
    srv_buf b;
    srv_buf_init(&b, 0);
    int ok = srv_raw_format_error(&b, e, message, id, retry_after) == 0 &&
             srv_raw_send(fd, b.data, b.len) == b.len;
    srv_buf_free(&b);
    return ok;
}
