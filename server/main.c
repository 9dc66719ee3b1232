/* instcald: the InstCal segmentation daemon.
 *
 * main() wires config, backend, queue, workers, metrics and HTTP together
 * and then only waits for signals on a signalfd (so no work ever runs in a
 * signal handler): SIGTERM/SIGINT drain and exit 0, SIGHUP reloads the
 * model on the reload thread. Its 100 ms tick also answers queued jobs whose
 * deadline passed, because suspended connections never time out by
 * themselves; so nothing slow may run on it. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "base/err.h"
#include "log.h"
#include "server.h"

extern char **environ;

/* Write end of the self-pipe that the signal handler feeds (see main). */
static int sig_pipe[2] = {-1, -1};

static void on_signal(int signo)
{
    unsigned char b = (unsigned char)signo;
    int saved = errno;
    if (write(sig_pipe[1], &b, 1) < 0) {
        /* the pipe is full: a signal is already pending */
    }
    errno = saved;
}

static int cpu_count(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

static void reload(srv_server *s)
{
    char before[256], after[256], q[600];
    s->ops->model_name(s->backend, before, sizeof before);
    int rc = s->ops->reload(s->backend, &s->cfg);
    srv_metrics_count_reload(s->metrics, rc == 0);
    if (rc != 0) {
        srv_log(SRV_LOG_ERROR, "event=reload result=failure model=%s error=%s", before,
                srv_log_quote(q, sizeof q, ic_error_message()));
        return;
    }
    s->ops->model_name(s->backend, after, sizeof after);
    srv_metrics_set_model(s->metrics, after);
    srv_log(SRV_LOG_INFO, "event=reload result=success previous=%s model=%s", before, after);
}

/* SIGHUP reloads run here, off the main thread: loading and smoke-testing
 * a model takes seconds when the workers keep the cores busy (18 s with 16
 * of them), and on the main thread it held up the deadline reaper, so a
 * queued request with a 500 ms deadline got its 504 after the reload. One
 * reload at a time; SIGHUPs during one ask for one more after it. */
typedef struct reloader {
    srv_server *s;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int pending, stop;
} reloader;

static void *reloader_main(void *arg)
{
    reloader *r = arg;
    pthread_mutex_lock(&r->mu);
    for (;;) {
        while (!r->pending && !r->stop)
            pthread_cond_wait(&r->cv, &r->mu);
        if (r->stop)
            break;
        r->pending = 0;
        pthread_mutex_unlock(&r->mu);
        reload(r->s);
        pthread_mutex_lock(&r->mu);
    }
    pthread_mutex_unlock(&r->mu);
    return NULL;
}

static int reloader_start(reloader *r, srv_server *s)
{
    memset(r, 0, sizeof *r);
    r->s = s;
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->cv, NULL);
    return pthread_create(&r->thread, NULL, reloader_main, r);
}

static void reloader_request(reloader *r)
{
    pthread_mutex_lock(&r->mu);
    r->pending = 1;
    pthread_cond_signal(&r->cv);
    pthread_mutex_unlock(&r->mu);
}

/* Waits for a reload under way to finish (a pending one is dropped). */
static void reloader_stop(reloader *r)
{
    pthread_mutex_lock(&r->mu);
    r->stop = 1;
    pthread_cond_signal(&r->cv);
    pthread_mutex_unlock(&r->mu);
    pthread_join(r->thread, NULL);
    pthread_cond_destroy(&r->cv);
    pthread_mutex_destroy(&r->mu);
}

/* Drain: refuse new work, let queued and running jobs finish (up to
 * drain_timeout_s), answer leftovers with 503, wait for responses to go out. */
static void drain(srv_server *s)
{
    atomic_store(&s->draining, 1);
    srv_log(SRV_LOG_INFO, "event=drain queued=%d in_flight=%ld", srv_queue_size(s->queue),
            atomic_load(&s->in_flight));
    int64_t until = srv_clock_ns() + (int64_t)s->cfg.drain_timeout_s * 1000000000;
    while (srv_clock_ns() < until &&
           (srv_queue_size(s->queue) > 0 || srv_pool_busy(s->pool) > 0 ||
            atomic_load(&s->in_flight) > 0)) {
        srv_http_reap_expired(s);
        poll(NULL, 0, 20);
    }
    srv_http_fail_queued(s);
    srv_pool_destroy(&s->pool);
    /* Every job is finished and its connection resumed; give libmicrohttpd a
     * moment to send those responses before stopping it. */
    int64_t grace = srv_clock_ns() + 2000000000;
    while (atomic_load(&s->in_flight) > 0 && srv_clock_ns() < grace)
        poll(NULL, 0, 10);
    srv_log(SRV_LOG_INFO, "event=drained in_flight=%ld", atomic_load(&s->in_flight));
}

static int usage(void)
{
    srv_buf b;
    srv_buf_init(&b, 0);
    if (srv_config_usage(&b) == 0)
        fputs(b.data, stdout);
    srv_buf_free(&b);
    return 0;
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
            return usage();
        if (strcmp(argv[i], "--version") == 0) {
            printf("instcald %s\n", SRV_VERSION);
            return 0;
        }
    }
    static srv_server srv; /* large (paths); static keeps it off the stack */
    srv_server *s = &srv;
    char err[1024];
    if (srv_config_load(&s->cfg, argc, argv, environ, err, sizeof err) != 0) {
        fprintf(stderr, "instcald: %s\n", err);
        return 2;
    }
    srv_log_level lvl = SRV_LOG_INFO;
    srv_log_level_parse(s->cfg.log_level, &lvl);
    srv_log_set_level(lvl);
    if (s->cfg.workers == 0) {
        s->cfg.workers = cpu_count() / s->cfg.blas_threads;
        if (s->cfg.workers < 1)
            s->cfg.workers = 1;
    }

    /* Block the signals so that threads started from here on inherit the
     * mask and the signalfd sees them. Threads that exist already (OpenBLAS
     * starts its pool in a library constructor, before main) do not block
     * them, and the kernel may deliver SIGTERM to one of those: the
     * default action would kill the process without draining. So the
     * signals also get a handler that forwards them through a self-pipe
     * that the main loop polls beside the signalfd. */
    if (pipe2(sig_pipe, O_CLOEXEC | O_NONBLOCK) != 0) {
        srv_log(SRV_LOG_ERROR, "event=startup error=\"pipe: %s\"", strerror(errno));
        return 1;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigfillset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &mask, NULL);
    signal(SIGPIPE, SIG_IGN);
    /* Non-blocking: a signal that poll() saw pending may be delivered to a
     * thread's handler (and so to the pipe) before read() takes it. */
    int sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
    if (sfd < 0) {
        srv_log(SRV_LOG_ERROR, "event=startup error=\"signalfd: %s\"", strerror(errno));
        return 1;
    }

    srv_buf cfgline;
    srv_buf_init(&cfgline, 0);
    srv_config_format(&s->cfg, &cfgline);
    srv_log(SRV_LOG_INFO, "event=config %s", cfgline.data ? cfgline.data : "");
    srv_buf_free(&cfgline);

    char q[1200];
    s->ops = srv_backend_find(s->cfg.backend);
    if (!s->ops || s->ops->create(&s->cfg, &s->backend) != 0) {
        srv_log(SRV_LOG_ERROR, "event=startup error=%s",
                srv_log_quote(q, sizeof q, s->ops ? ic_error_message() : "unknown backend"));
        return 1;
    }
    char model[256];
    s->ops->model_name(s->backend, model, sizeof model);
    if (s->cfg.static_dir[0] && !realpath(s->cfg.static_dir, s->static_root)) {
        srv_log(SRV_LOG_WARN, "event=static_dir dir=%s error=%s; GET / will answer 404",
                srv_log_quote(q, sizeof q, s->cfg.static_dir), strerror(errno));
        s->static_root[0] = '\0';
    }
    int rc = srv_metrics_create(SRV_VERSION, model, &s->metrics);
    if (rc == 0)
        rc = srv_queue_create(s->cfg.queue_length, &s->queue);
    if (rc == 0)
        rc = srv_pool_create(s->cfg.workers, s->queue, s->ops, s->backend, s->metrics, &s->pool);
    if (rc == 0)
        rc = srv_http_start(s);
    if (rc == 0)
        rc = srv_admin_start(s);
    static reloader rl;
    if (rc == 0 && reloader_start(&rl, s) != 0)
        rc = ic_error_set(IC_ENOMEM, "cannot start the reload thread");
    if (rc != 0) {
        srv_log(SRV_LOG_ERROR, "event=startup error=%s",
                srv_log_quote(q, sizeof q, ic_error_message()));
        return 1;
    }
    const char *host = s->cfg.bind;
    int v6 = strchr(host, ':') != NULL;
    srv_log(SRV_LOG_INFO,
            "event=listening address=%s port=%d url=http://%s%s%s:%d/ admin_port=%d version=%s "
            "backend=%s model=%s workers=%d blas_threads=%d queue_length=%d",
            host, s->port, v6 ? "[" : "", host, v6 ? "]" : "", s->port, s->admin_port,
            SRV_VERSION, s->ops->name, srv_log_quote(q, sizeof q, model), s->cfg.workers,
            s->cfg.blas_threads, s->cfg.queue_length);

    for (;;) {
        struct pollfd p[2] = {{.fd = sfd, .events = POLLIN}, {.fd = sig_pipe[0], .events = POLLIN}};
        int n = poll(p, 2, 100);
        srv_http_reap_expired(s);
        if (n <= 0)
            continue;
        int signo = 0;
        struct signalfd_siginfo si;
        unsigned char b;
        if ((p[0].revents & POLLIN) && read(sfd, &si, sizeof si) == (ssize_t)sizeof si)
            signo = (int)si.ssi_signo;
        else if ((p[1].revents & POLLIN) && read(sig_pipe[0], &b, 1) == 1)
            signo = b;
        if (!signo)
            continue;
        if (signo == SIGHUP) {
            reloader_request(&rl);
            continue;
        }
        srv_log(SRV_LOG_INFO, "event=signal signal=%s", signo == SIGINT ? "SIGINT" : "SIGTERM");
        break;
    }
    drain(s);
    reloader_stop(&rl); /* before the backend goes */
    srv_http_stop(s);
    srv_admin_stop(s); /* liveness answered to the end */
    s->ops->destroy(s->backend);
    srv_queue_destroy(&s->queue);
    srv_metrics_destroy(&s->metrics);
    close(sfd);
    srv_log(SRV_LOG_INFO, "event=exit status=0");
    return 0;
}
