/* The admin listener: /healthz, /readyz, /v2/health/live, /v2/health/ready
 * and /metrics on their own port (admin_port), answered by their own
 * libmicrohttpd daemon and thread, so that probes and scrapes never wait
 * behind uploads, however many or however slow, on the main listener. The
 * answers are the main listener's (routes.c); nothing else is served here. */
#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <string.h>

#include "base/err.h"
#include "log.h"
#include "server.h"

/* Small: probes and scrapes only. */
#define ADMIN_CONNECTIONS 64
#define ADMIN_TIMEOUT_S 10

static int admin_route(const char *path)
{
    static const char *const ok[] = {"/healthz", "/readyz", "/v2/health/live",
                                     "/v2/health/ready", "/metrics"};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
        if (strcmp(path, ok[i]) == 0)
            return 1;
    return 0;
}

static enum MHD_Result on_admin(void *cls, struct MHD_Connection *conn, const char *url,
                                const char *method, const char *version,
                                const char *upload_data, size_t *upload_data_size, void **con_cls)
{
    srv_server *s = cls;
    (void)version;
    (void)upload_data;
    if (!*con_cls) { /* first call: answer on the next one, so the connection stays alive */
        *con_cls = s;
        return MHD_YES;
    }
    if (*upload_data_size) { /* a body on a probe: ignored */
        *upload_data_size = 0;
        return MHD_YES;
    }
    srv_reply r = {.file_fd = -1};
    if (!admin_route(url)) {
        srv_reply_error(&r, SRV_ERR_NOT_FOUND,
                        "the admin port serves /healthz, /readyz, /v2/health/live, "
                        "/v2/health/ready and /metrics");
        r.route = "not_found";
    } else {
        srv_routes_handle(s, method, url, &r);
    }
    int status = r.status;
    const char *route = r.route ? r.route : "unknown";
    enum MHD_Result ret = srv_http_queue(conn, &r, "", atomic_load(&s->draining));
    srv_metrics_count_request(s->metrics, route, status, "");
    srv_log(SRV_LOG_DEBUG, "event=request listener=admin method=%s path=%s status=%d", method,
            strcmp(route, "not_found") ? url : "-", status);
    return ret;
}

int srv_admin_start(srv_server *s)
{
    s->admin_port = -1;
    if (s->cfg.admin_port < 0)
        return 0;
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    unsigned flags = MHD_USE_POLL_INTERNAL_THREAD | MHD_USE_ERROR_LOG;
    struct sockaddr_in *v4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, s->cfg.bind, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons((uint16_t)s->cfg.admin_port);
    } else if (inet_pton(AF_INET6, s->cfg.bind, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons((uint16_t)s->cfg.admin_port);
        flags |= MHD_USE_IPv6;
    } else {
        return ic_error_set(IC_EINVAL, "bind = '%s' is not an IPv4 or IPv6 address",
                            s->cfg.bind);
    }
    s->admin = MHD_start_daemon(flags, (uint16_t)s->cfg.admin_port, NULL, NULL, on_admin, s,
                                MHD_OPTION_EXTERNAL_LOGGER, srv_http_mhd_log, s,
                                MHD_OPTION_SOCK_ADDR, &ss, MHD_OPTION_CONNECTION_LIMIT,
                                (unsigned)ADMIN_CONNECTIONS, MHD_OPTION_CONNECTION_TIMEOUT,
                                (unsigned)ADMIN_TIMEOUT_S, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
                                (size_t)32 * 1024, MHD_OPTION_END);
    if (!s->admin)
        return ic_error_set(IC_EIO, "cannot listen on %s admin_port %d", s->cfg.bind,
                            s->cfg.admin_port);
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(s->admin, MHD_DAEMON_INFO_BIND_PORT);
    s->admin_port = di ? di->port : s->cfg.admin_port;
    return 0;
}

void srv_admin_stop(srv_server *s)
{
    if (s->admin)
        MHD_stop_daemon(s->admin);
    s->admin = NULL;
}
