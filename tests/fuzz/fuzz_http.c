/* libFuzzer target: instcald's HTTP handling (framing, multipart, headers,
 * routes), in process over a real loopback socket, since that part lives
 * in libmicrohttpd's callbacks. The option parser itself is also fuzzed
 * directly, without a socket, by fuzz_request.c. The harness starts the daemon once
 * (test backend, or FUZZ_HTTP_BACKEND=pdl with FUZZ_HTTP_MODEL=<file>), then
 * sends one request per input and reads the answer to EOF.
 *
 * Byte 0 picks the shape of the request; the rest is:
 *   0  a multipart/form-data body (boundary "fuzzbnd"): multipart framing,
 *      field names, option values (calibration, m, outputs, rle, ...)
 *   1  first line = the Content-Type header value (boundary parsing,
 *      CVE-2023-27371 territory), the rest = body
 *   2  first line = query string of a raw image/png upload, the rest = body
 *   3  the raw request bytes (request line, headers, framing), then a
 *      half-close so an incomplete request ends at once
 * Modes 0-2 send a correct Content-Length and Connection: close, so the
 * daemon must answer each: no answer within 20 s is reported as a hang. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "log.h"
#include "server.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static srv_server srv;
static int started;

static void start(void)
{
    srv_server *s = &srv;
    srv_config_defaults(&s->cfg);
    const char *be = getenv("FUZZ_HTTP_BACKEND");
    const char *model = getenv("FUZZ_HTTP_MODEL");
    snprintf(s->cfg.backend, sizeof s->cfg.backend, "%s", be ? be : "test");
    snprintf(s->cfg.model, sizeof s->cfg.model, "%s", model ? model : "");
    s->cfg.port = 0;
    s->cfg.workers = 1;
    s->cfg.queue_length = 4;
    s->cfg.max_upload_bytes = 1 << 20;
    s->cfg.max_pixels = 1 << 16;
    s->cfg.connection_timeout_s = 5;
    s->cfg.max_connections = 512;
    s->cfg.static_dir[0] = '\0';
    s->cfg.tent = 0;
    srv_log_set_level(SRV_LOG_ERROR);
    signal(SIGPIPE, SIG_IGN);
    s->ops = srv_backend_find(s->cfg.backend);
    if (!s->ops || s->ops->create(&s->cfg, &s->backend) != 0 ||
        srv_metrics_create("fuzz", "fuzz", &s->metrics) != 0 ||
        srv_queue_create(s->cfg.queue_length, &s->queue) != 0 ||
        srv_pool_create(s->cfg.workers, s->queue, s->ops, s->backend, s->metrics, &s->pool) != 0 ||
        srv_http_start(s) != 0) {
        fprintf(stderr, "fuzz_http: cannot start the daemon\n");
        abort();
    }
    started = 1;
}

static int connect_daemon(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        abort();
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)srv.port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        /* libFuzzer's once-a-second timeout alarm can interrupt connect();
         * the connection then completes on its own: wait for it. */
        int err = errno;
        if (err == EINTR) {
            struct pollfd p = {.fd = fd, .events = POLLOUT};
            socklen_t len = sizeof err;
            while (poll(&p, 1, 20000) < 0 && errno == EINTR) {
            }
            if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
                err = errno;
        }
        if (err) {
            fprintf(stderr, "fuzz_http: connect: %s\n", strerror(err));
            abort();
        }
    }
    int one = 1; /* no Nagle: head and body would wait for a delayed ACK */
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct timeval tv = {.tv_sec = 20};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    return fd;
}

static void send_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n) {
        ssize_t w = send(fd, c, n, MSG_NOSIGNAL);
        if (w <= 0)
            return; /* the daemon may close early (413, 400): fine */
        c += w;
        n -= (size_t)w;
    }
}

/* Reads one response: the headers, then Content-Length body bytes (not to
 * EOF: libmicrohttpd 0.9.75 with epoll may notice a peer's close only at the
 * connection timeout). Copies the first bytes to `first`. Returns the bytes
 * read, 0 if the daemon closed without answering, -1 on a receive timeout. */
static long read_response(int fd, char *first, size_t first_cap)
{
    static char buf[1 << 20];
    size_t total = 0, need = (size_t)-1;
    while (total < need && total < sizeof buf) {
        ssize_t r = recv(fd, buf + total, sizeof buf - total, 0);
        if (r == 0)
            break;
        if (r < 0)
            return (errno == EAGAIN || errno == EWOULDBLOCK) && total == 0 ? -1 : (long)total;
        total += (size_t)r;
        if (need == (size_t)-1) {
            char *end = memmem(buf, total, "\r\n\r\n", 4);
            if (end) {
                size_t hl = (size_t)(end - buf) + 4, cl = 0;
                for (char *h = buf; h < end; h++)
                    if ((h == buf || h[-1] == '\n') && strncasecmp(h, "Content-Length:", 15) == 0)
                        cl = strtoull(h + 15, NULL, 10);
                need = hl + cl;
            }
        }
    }
    size_t k = total < first_cap ? total : first_cap;
    memcpy(first, buf, k);
    return (long)total;
}

/* Copies the first line of [p, p+n) with control characters replaced. */
static size_t first_line(const uint8_t *p, size_t n, char *out, size_t cap)
{
    size_t i = 0, k = 0;
    while (i < n && p[i] != '\n') {
        if (k + 1 < cap)
            out[k++] = (p[i] < 0x20 || p[i] == 0x7f) ? '_' : (char)p[i];
        i++;
    }
    out[k] = '\0';
    return i < n ? i + 1 : i;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!started)
        start();
    if (size < 1)
        return 0;
    int mode = data[0] & 3;
    const uint8_t *p = data + 1;
    size_t n = size - 1;
    char head[4096], line[1024], status[64] = "";
    int fd = connect_daemon();
    if (mode == 3) {
        send_all(fd, p, n);
        shutdown(fd, SHUT_WR);
        char first[16];
        struct timeval tv = {.tv_usec = 250000};
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        (void)read_response(fd, first, sizeof first); /* incomplete requests may get no answer */
        /* Abortive close (RST): libmicrohttpd 0.9.75 with epoll notices a
         * plain close only at connection_timeout_s, so thousands of
         * lingering connections would hit max_connections and later inputs
         * would be refused without an answer (a false "no status line"). */
        struct linger lg = {.l_onoff = 1, .l_linger = 0};
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
        close(fd);
        return 0;
    }
    const char *ctype = "multipart/form-data; boundary=fuzzbnd", *query = "";
    if (mode == 1) {
        size_t used = first_line(p, n, line, sizeof line);
        p += used;
        n -= used;
        ctype = line;
    } else if (mode == 2) {
        size_t used = first_line(p, n, line, sizeof line);
        /* A request target holds visible ASCII only; a CR, control byte or
         * 8-bit byte there makes a malformed request line, which
         * libmicrohttpd may answer by closing the connection (not a daemon
         * fault), so those bytes are mapped like spaces. */
        for (char *c = line; *c; c++)
            if (*c == ' ' || *c == '#' || (unsigned char)*c < 0x21 || (unsigned char)*c > 0x7e)
                *c = '_';
        p += used;
        n -= used;
        query = line;
        ctype = "image/png";
    }
    int hl = snprintf(head, sizeof head,
                      "POST /v1/segment%s%s HTTP/1.1\r\nHost: fuzz\r\nConnection: close\r\n"
                      "Content-Type: %s\r\nContent-Length: %zu\r\n\r\n",
                      query[0] ? "?" : "", query, ctype, n);
    char *msg = malloc((size_t)hl + n);
    if (!msg)
        abort();
    memcpy(msg, head, (size_t)hl);
    if (n)
        memcpy(msg + hl, p, n);
    send_all(fd, msg, (size_t)hl + n);
    long got = read_response(fd, status, sizeof status - 1);
    close(fd);
    if (got == 0) {
        /* One retry after a pause: on a loaded machine a burst of earlier
         * connections can still count against max_connections, and
         * libmicrohttpd closes a connection over the limit without an
         * answer. A request the daemon really leaves unanswered fails twice. */
        usleep(200000);
        fd = connect_daemon();
        send_all(fd, msg, (size_t)hl + n);
        got = read_response(fd, status, sizeof status - 1);
        close(fd);
    }
    free(msg);
    if (got < 0) {
        fprintf(stderr, "fuzz_http: no answer within 20 s (mode %d, %zu body bytes)\n", mode, n);
        abort();
    }
    /* Connection: close with a complete request must get an HTTP answer;
     * a bare close (got == 0) is acceptable only for a refused body the
     * daemon dropped past its discard slack, which 1 MiB bodies never reach. */
    if (got == 0 || strncmp(status, "HTTP/1.1 ", 9) != 0) {
        fprintf(stderr, "fuzz_http: no HTTP status line (mode %d, got %ld bytes)\n", mode, got);
        abort();
    }
    if (status[9] == '5' && status[10] == '0' && status[11] == '0') {
        fprintf(stderr, "fuzz_http: 500 Internal Server Error (mode %d)\n", mode);
        abort();
    }
    return 0;
}
