/* One segmentation job: the request handed from the HTTP thread to a
 * worker, and the result handed back.
 *
 * Life cycle (the part libmicrohttpd makes delicate): the HTTP thread
 * creates the job with two references (its own and the queue's), pushes it
 * and suspends the connection while holding job->mu, so no worker can
 * resume a connection that is not suspended yet. Whoever finishes the job
 * (a worker, the deadline reaper or shutdown) calls srv_job_finish(), which
 * under job->mu stores the result and resumes the connection exactly once;
 * after that nobody but the HTTP thread touches the connection. Each side
 * drops its reference with srv_job_unref(); the last one frees. */
#ifndef SRV_JOB_H
#define SRV_JOB_H

#include <microhttpd.h>
#include <pthread.h>
#include <stdint.h>

#include "backend.h"
#include "request.h"

/* Where a job is in its life. */
typedef enum srv_job_state {
    SRV_JOB_NEW = 0,   /* built, not yet suspended */
    SRV_JOB_QUEUED,    /* connection suspended, waiting or running */
    SRV_JOB_FINISHED,  /* result stored, connection resumed */
} srv_job_state;

/* A job. Fields under "owned by the worker" are written only by whoever
 * holds the job between pop and finish; the rest are set before the push. */
typedef struct srv_job {
    pthread_mutex_t mu;
    int refs;
    srv_job_state state;

    /* set by the HTTP thread before the push, then read-only */
    srv_request req;             /* the parsed request, uploads included */
    struct MHD_Connection *conn; /* valid while state == SRV_JOB_QUEUED */
    int fd;                      /* the connection's socket, for disconnect checks */
    int http11;                  /* HTTP/1.1 request: may get an interim 100 (the probe) */
    int probed;                  /* the probe was sent (srv_job_client_gone) */

    /* owned by the worker, read by the HTTP thread after FINISHED */
    srv_result res;
    int client_gone;
    double queue_wait_s;
} srv_job;

/* Allocates a job with refs = 2 and an empty request. Returns NULL on OOM. */
srv_job *srv_job_new(void);

/* Drops one reference; the last one frees the job and its request.
 * Accepts NULL. */
void srv_job_unref(srv_job *job);

/* Stores the outcome and resumes the connection if it is suspended; only
 * the first call per job has an effect (later ones return 0 and ignore
 * res). Takes ownership of res->json. Returns 1 if this call finished it. */
int srv_job_finish(srv_job *job, srv_result *res);

/* Shortcut for srv_job_finish with the error e. */
int srv_job_fail(srv_job *job, srv_err e, const char *message);

/* Whether the client of a suspended connection is gone (libmicrohttpd does
 * not notice while a connection is suspended). Only valid while the job is
 * queued, from the thread that holds it.
 *
 * A reset or error is gone. An end of stream alone is not: a client may
 * half-close once its request is sent (HTTP allows it) and still read the
 * answer. To tell that client from one that closed for good, an HTTP/1.1
 * client gets an interim `100 Continue` (RFC 9110 15.2: clients accept
 * unexpected 1xx answers): a socket that was closed answers it with a
 * reset, which arrives within a round trip; the call waits up to
 * SRV_JOB_PROBE_MS for it, once per job. */
int srv_job_client_gone(srv_job *job);

#define SRV_JOB_PROBE_MS 20

#endif
