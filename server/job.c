/* Job life cycle and the single resume point (see job.h). */
#include "job.h"

#include <errno.h>
#include <poll.h>
#include <sys/socket.h>
#include <stdio.h>
#include <string.h>

#include "base/alloc.h"

srv_job *srv_job_new(void)
{
    srv_job *job = ic_calloc(1, sizeof *job);
    if (!job)
        return NULL;
    pthread_mutex_init(&job->mu, NULL);
    job->refs = 2;
    job->fd = -1;
    srv_request_init(&job->req, 0);
    return job;
}

void srv_job_unref(srv_job *job)
{
    if (!job)
        return;
    pthread_mutex_lock(&job->mu);
    int left = --job->refs;
    pthread_mutex_unlock(&job->mu);
    if (left > 0)
        return;
    json_decref(job->res.json);
    srv_buf_free(&job->res.oip);
    srv_request_free(&job->req);
    pthread_mutex_destroy(&job->mu);
    ic_free(job);
}

int srv_job_finish(srv_job *job, srv_result *res)
{
    pthread_mutex_lock(&job->mu);
    if (job->state == SRV_JOB_FINISHED) {
        pthread_mutex_unlock(&job->mu);
        json_decref(res->json);
        srv_buf_free(&res->oip);
        return 0;
    }
    job->res = *res;
    res->json = NULL;
    srv_buf_init(&res->oip, 0);
    /* NEW means the HTTP thread has not suspended yet (push failed or is
     * racing); it reads the result itself instead of being resumed. */
    int resume = job->state == SRV_JOB_QUEUED;
    job->state = SRV_JOB_FINISHED;
    if (resume)
        MHD_resume_connection(job->conn);
    job->conn = NULL;
    pthread_mutex_unlock(&job->mu);
    return 1;
}

int srv_job_fail(srv_job *job, srv_err e, const char *message)
{
    srv_result res;
    memset(&res, 0, sizeof res);
    srv_result_error(&res, e, "%s", message);
    return srv_job_finish(job, &res);
}

int srv_job_client_gone(srv_job *job)
{
    if (job->fd < 0)
        return 0;
    struct pollfd p = {.fd = job->fd, .events = POLLRDHUP};
    if (poll(&p, 1, 0) <= 0)
        return 0;
    if (p.revents & (POLLHUP | POLLERR))
        return 1;
    if (!(p.revents & POLLRDHUP) || !job->http11 || job->probed)
        return 0; /* half-closed, and we cannot (or did) ask: serve it */
    job->probed = 1;
    static const char probe[] = "HTTP/1.1 100 Continue\r\n\r\n";
    if (send(job->fd, probe, sizeof probe - 1, MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
        return errno != EAGAIN && errno != EWOULDBLOCK;
    p.events = 0; /* POLLHUP and POLLERR are always reported */
    return poll(&p, 1, SRV_JOB_PROBE_MS) > 0 && (p.revents & (POLLHUP | POLLERR));
}
