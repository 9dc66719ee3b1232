/* Metrics registry and Prometheus text exposition 0.0.4 (see metrics.h). */
#include "metrics.h"

#include <dirent.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/err.h"
#include "calib/calib.h"

/* Bucket bounds in seconds. The text form is fixed here so that every
 * scrape prints the same `le` string (the label is part of the series). */
static const double bucket_bounds[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                                       1,     2.5,  5,     10,   30,  60};
static const char *const bucket_text[] = {"0.005", "0.01", "0.025", "0.05", "0.1",
                                          "0.25",  "0.5",  "1",     "2.5",  "5",
                                          "10",    "30",   "60"};
#define N_BUCKETS (sizeof bucket_bounds / sizeof bucket_bounds[0])

/* Drift score buckets (dimensionless): fine where the calibrated modes'
 * alert thresholds lie (0.02 to 0.05), coarse up to the scores of `none`
 * on strong shifts (docs/drift.md). */
static const double drift_bounds[] = {0.005, 0.01, 0.015, 0.02, 0.025, 0.03, 0.035, 0.04,
                                      0.05,  0.075, 0.1,  0.15, 0.2,   0.3,  0.5,   1,
                                      2,     5,     10,   20,   50};
static const char *const drift_text[] = {"0.005", "0.01", "0.015", "0.02", "0.025", "0.03",
                                         "0.035", "0.04", "0.05",  "0.075", "0.1",  "0.15",
                                         "0.2",   "0.3",  "0.5",   "1",    "2",     "5",
                                         "10",    "20",   "50"};
#define N_DRIFT_BUCKETS (sizeof drift_bounds / sizeof drift_bounds[0])
_Static_assert(sizeof drift_text / sizeof drift_text[0] == N_DRIFT_BUCKETS, "drift bucket texts");

typedef struct histogram {
    uint64_t counts[N_BUCKETS + 1]; /* per bucket, not cumulative; last = above all bounds */
    double sum;
    uint64_t count;
} histogram;

typedef struct drift_histogram {
    uint64_t counts[N_DRIFT_BUCKETS + 1];
    double sum;
    uint64_t count;
} drift_histogram;

static const struct {
    const char *name, *help;
} hist_info[SRV_H_COUNT] = {
    {"instcald_queue_wait_seconds", "Time a segmentation job waited in the queue."},
    {"instcald_decode_seconds", "Time to decode and normalise the uploaded image."},
    {"instcald_inference_seconds", "Time of the forward pass with calibration."},
    {"instcald_postprocess_seconds", "Time of panoptic post-processing and encoding."},
    {"instcald_request_duration_seconds",
     "Segmentation request time from headers received to response queued."},
};

static const char *const reject_names[SRV_REJ_COUNT] = {
    "queue_full", "too_large", "draining", "deadline", "client_gone", "out_of_memory"};

static const char *const drop_names[SRV_DROP_COUNT] = {"header_timeout", "slow_body",
                                                       "per_ip_limit"};

#define MAX_REQ_SERIES 256
#define LABEL_MAX 32

typedef struct req_series {
    char route[LABEL_MAX];
    char calibration[LABEL_MAX];
    int status;
    uint64_t n;
} req_series;

struct srv_metrics {
    pthread_mutex_t mu;
    char version[LABEL_MAX];
    char model[256];
    req_series series[MAX_REQ_SERIES];
    int n_series;
    histogram hist[SRV_H_COUNT];
    drift_histogram drift[IC_CALIB_COUNT]; /* by calibration mode */
    uint64_t bytes_received;
    uint64_t rejected[SRV_REJ_COUNT];
    uint64_t dropped[SRV_DROP_COUNT];
    uint64_t reloads_ok, reloads_failed;
};

static void copy_label(char *dst, size_t n, const char *s)
{
    snprintf(dst, n, "%s", s ? s : "");
}

int srv_metrics_create(const char *version, const char *model, srv_metrics **out)
{
    srv_metrics *m = ic_calloc(1, sizeof *m);
    if (!m)
        return ic_error_set(IC_ENOMEM, "out of memory for the metrics registry");
    pthread_mutex_init(&m->mu, NULL);
    copy_label(m->version, sizeof m->version, version);
    copy_label(m->model, sizeof m->model, model);
    *out = m;
    return 0;
}

void srv_metrics_destroy(srv_metrics **m)
{
    if (!m || !*m)
        return;
    pthread_mutex_destroy(&(*m)->mu);
    ic_free(*m);
    *m = NULL;
}

/* Finds or creates the series (route, status, calibration); NULL when the
 * table is full. Called with the lock held. */
static req_series *series_for(srv_metrics *m, const char *r, int status, const char *c,
                              int limit)
{
    for (int i = 0; i < m->n_series; i++) {
        req_series *s = &m->series[i];
        if (s->status == status && strcmp(s->route, r) == 0 && strcmp(s->calibration, c) == 0)
            return s;
    }
    if (m->n_series >= limit)
        return NULL;
    req_series *s = &m->series[m->n_series++];
    copy_label(s->route, sizeof s->route, r);
    copy_label(s->calibration, sizeof s->calibration, c);
    s->status = status;
    s->n = 0;
    return s;
}

void srv_metrics_count_request(srv_metrics *m, const char *route, int status,
                               const char *calibration)
{
    char r[LABEL_MAX], c[LABEL_MAX];
    copy_label(r, sizeof r, route);
    copy_label(c, sizeof c, calibration);
    pthread_mutex_lock(&m->mu);
    /* The last slot is kept for route="other" so that counts stay right even
     * if the (bounded) label sets ever outgrow the table. */
    req_series *s = series_for(m, r, status, c, MAX_REQ_SERIES - 1);
    if (!s)
        s = series_for(m, "other", 0, "", MAX_REQ_SERIES);
    if (s)
        s->n++;
    pthread_mutex_unlock(&m->mu);
}

void srv_metrics_observe(srv_metrics *m, srv_hist_id h, double seconds)
{
    if (h < 0 || h >= SRV_H_COUNT || !(seconds >= 0))
        return;
    size_t b = 0;
    while (b < N_BUCKETS && seconds > bucket_bounds[b])
        b++;
    pthread_mutex_lock(&m->mu);
    m->hist[h].counts[b]++;
    m->hist[h].sum += seconds;
    m->hist[h].count++;
    pthread_mutex_unlock(&m->mu);
}

void srv_metrics_observe_drift(srv_metrics *m, int mode, double score)
{
    if (mode < 0 || mode >= IC_CALIB_COUNT || !(score >= 0) || !isfinite(score))
        return;
    size_t b = 0;
    while (b < N_DRIFT_BUCKETS && score > drift_bounds[b])
        b++;
    pthread_mutex_lock(&m->mu);
    m->drift[mode].counts[b]++;
    m->drift[mode].sum += score;
    m->drift[mode].count++;
    pthread_mutex_unlock(&m->mu);
}

void srv_metrics_add_bytes(srv_metrics *m, uint64_t n)
{
    pthread_mutex_lock(&m->mu);
    m->bytes_received += n;
    pthread_mutex_unlock(&m->mu);
}

void srv_metrics_count_rejected(srv_metrics *m, srv_reject_reason r)
{
    if (r < 0 || r >= SRV_REJ_COUNT)
        return;
    pthread_mutex_lock(&m->mu);
    m->rejected[r]++;
    pthread_mutex_unlock(&m->mu);
}

void srv_metrics_count_dropped(srv_metrics *m, srv_drop_reason r)
{
    if (r < 0 || r >= SRV_DROP_COUNT)
        return;
    pthread_mutex_lock(&m->mu);
    m->dropped[r]++;
    pthread_mutex_unlock(&m->mu);
}

void srv_metrics_count_reload(srv_metrics *m, int ok)
{
    pthread_mutex_lock(&m->mu);
    if (ok)
        m->reloads_ok++;
    else
        m->reloads_failed++;
    pthread_mutex_unlock(&m->mu);
}

void srv_metrics_set_model(srv_metrics *m, const char *model)
{
    pthread_mutex_lock(&m->mu);
    copy_label(m->model, sizeof m->model, model);
    pthread_mutex_unlock(&m->mu);
}

int srv_metrics_escape_label(srv_buf *out, const char *s)
{
    for (const char *p = s; *p; p++) {
        int rc;
        if (*p == '\\')
            rc = srv_buf_append(out, "\\\\", 2);
        else if (*p == '"')
            rc = srv_buf_append(out, "\\\"", 2);
        else if (*p == '\n')
            rc = srv_buf_append(out, "\\n", 2);
        else
            rc = srv_buf_append(out, p, 1);
        if (rc)
            return rc;
    }
    return 0;
}

void srv_metrics_format_double(char *out, size_t n, double v)
{
    if (isnan(v)) {
        snprintf(out, n, "NaN");
        return;
    }
    if (isinf(v)) {
        snprintf(out, n, v > 0 ? "+Inf" : "-Inf");
        return;
    }
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(out, n, "%.*g", prec, v);
        if (strtod(out, NULL) == v)
            return;
    }
}

/* `# HELP` and `# TYPE` lines; help text here never has \ or newlines. */
static int family(srv_buf *b, const char *name, const char *type, const char *help)
{
    return srv_buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static int render_histogram(srv_buf *b, const char *name, const char *help, const histogram *h)
{
    char num[32];
    int rc = family(b, name, "histogram", help);
    uint64_t cum = 0;
    for (size_t i = 0; rc == 0 && i < N_BUCKETS; i++) {
        cum += h->counts[i];
        rc = srv_buf_printf(b, "%s_bucket{le=\"%s\"} %llu\n", name, bucket_text[i],
                            (unsigned long long)cum);
    }
    cum += h->counts[N_BUCKETS];
    srv_metrics_format_double(num, sizeof num, h->sum);
    if (rc == 0)
        rc = srv_buf_printf(b, "%s_bucket{le=\"+Inf\"} %llu\n%s_sum %s\n%s_count %llu\n", name,
                            (unsigned long long)cum, name, num, name,
                            (unsigned long long)h->count);
    return rc;
}

/* instcald_drift_score, one labelled histogram per calibration mode (every
 * mode is always listed, so a dashboard finds the series before traffic). */
static int render_drift(srv_buf *b, const drift_histogram *d)
{
    const char *name = "instcald_drift_score";
    int rc = family(b, name, "histogram",
                    "Drift score of each segmented image (distance of its BatchNorm statistics "
                    "from the stored ones), by calibration mode.");
    for (int mode = 0; rc == 0 && mode < IC_CALIB_COUNT; mode++) {
        const char *cal = ic_calib_mode_name((ic_calib_mode)mode);
        const drift_histogram *h = &d[mode];
        uint64_t cum = 0;
        for (size_t i = 0; rc == 0 && i < N_DRIFT_BUCKETS; i++) {
            cum += h->counts[i];
            rc = srv_buf_printf(b, "%s_bucket{calibration=\"%s\",le=\"%s\"} %llu\n", name, cal,
                                drift_text[i], (unsigned long long)cum);
        }
        cum += h->counts[N_DRIFT_BUCKETS];
        char num[32];
        srv_metrics_format_double(num, sizeof num, h->sum);
        if (rc == 0)
            rc = srv_buf_printf(b,
                                "%s_bucket{calibration=\"%s\",le=\"+Inf\"} %llu\n"
                                "%s_sum{calibration=\"%s\"} %s\n%s_count{calibration=\"%s\"} %llu\n",
                                name, cal, (unsigned long long)cum, name, cal, num, name, cal,
                                (unsigned long long)h->count);
    }
    return rc;
}

static int render_gauges(srv_buf *b, const srv_gauges *g)
{
    static const struct {
        const char *name, *help;
        size_t off;
    } gs[] = {
        {"instcald_queue_depth", "Segmentation jobs waiting for a worker.",
         offsetof(srv_gauges, queue_depth)},
        {"instcald_queue_capacity", "Configured queue length.",
         offsetof(srv_gauges, queue_capacity)},
        {"instcald_in_flight_requests", "Segmentation requests accepted and not yet answered.",
         offsetof(srv_gauges, in_flight)},
        {"instcald_busy_workers", "Workers running a job.", offsetof(srv_gauges, busy_workers)},
        {"instcald_workers", "Configured worker threads.", offsetof(srv_gauges, workers)},
        {"instcald_http_connections", "Open HTTP connections.",
         offsetof(srv_gauges, connections)},
    };
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < sizeof gs / sizeof gs[0]; i++) {
        long v = *(const long *)((const char *)g + gs[i].off);
        rc = family(b, gs[i].name, "gauge", gs[i].help);
        if (rc == 0)
            rc = srv_buf_printf(b, "%s %ld\n", gs[i].name, v);
    }
    if (rc == 0)
        rc = family(b, "instcald_ready", "gauge", "1 when /readyz answers 200.");
    if (rc == 0)
        rc = srv_buf_printf(b, "instcald_ready %d\n", g->ready ? 1 : 0);
    return rc;
}

int srv_metrics_render(srv_metrics *m, const srv_gauges *g, srv_buf *out)
{
    /* Snapshot under the lock, format outside it: a slow scrape must not
     * stall workers that record timings. */
    srv_metrics *snap = ic_malloc(sizeof *snap);
    if (!snap)
        return ic_error_set(IC_ENOMEM, "out of memory rendering metrics");
    pthread_mutex_lock(&m->mu);
    memcpy(snap, m, sizeof *snap);
    pthread_mutex_unlock(&m->mu);

    srv_buf *b = out;
    int rc = family(b, "instcald_http_requests_total", "counter",
                    "HTTP requests answered, by route, status and calibration mode.");
    for (int i = 0; rc == 0 && i < snap->n_series; i++) {
        const req_series *s = &snap->series[i];
        rc = srv_buf_printf(b, "instcald_http_requests_total{route=\"");
        if (rc == 0)
            rc = srv_metrics_escape_label(b, s->route);
        if (rc == 0)
            rc = srv_buf_printf(b, "\",status=\"%d\",calibration=\"", s->status);
        if (rc == 0)
            rc = srv_metrics_escape_label(b, s->calibration);
        if (rc == 0)
            rc = srv_buf_printf(b, "\"} %llu\n", (unsigned long long)s->n);
    }
    for (int h = 0; rc == 0 && h < SRV_H_COUNT; h++)
        rc = render_histogram(b, hist_info[h].name, hist_info[h].help, &snap->hist[h]);
    if (rc == 0)
        rc = render_drift(b, snap->drift);
    if (rc == 0)
        rc = family(b, "instcald_http_request_bytes_total", "counter",
                    "Request body bytes received.");
    if (rc == 0)
        rc = srv_buf_printf(b, "instcald_http_request_bytes_total %llu\n",
                            (unsigned long long)snap->bytes_received);
    if (rc == 0)
        rc = family(b, "instcald_rejected_requests_total", "counter",
                    "Segmentation requests refused without inference, by reason.");
    for (int r = 0; rc == 0 && r < SRV_REJ_COUNT; r++)
        rc = srv_buf_printf(b, "instcald_rejected_requests_total{reason=\"%s\"} %llu\n",
                            reject_names[r], (unsigned long long)snap->rejected[r]);
    if (rc == 0)
        rc = family(b, "instcald_connections_dropped_total", "counter",
                    "Connections the server closed itself, by reason.");
    for (int r = 0; rc == 0 && r < SRV_DROP_COUNT; r++)
        rc = srv_buf_printf(b, "instcald_connections_dropped_total{reason=\"%s\"} %llu\n",
                            drop_names[r], (unsigned long long)snap->dropped[r]);
    if (rc == 0)
        rc = family(b, "instcald_model_reloads_total", "counter",
                    "Model reload attempts (SIGHUP), by result.");
    if (rc == 0)
        rc = srv_buf_printf(b,
                            "instcald_model_reloads_total{result=\"success\"} %llu\n"
                            "instcald_model_reloads_total{result=\"failure\"} %llu\n",
                            (unsigned long long)snap->reloads_ok,
                            (unsigned long long)snap->reloads_failed);
    if (rc == 0)
        rc = family(b, "instcald_build_info", "gauge", "Build version and served model.");
    if (rc == 0)
        rc = srv_buf_printf(b, "instcald_build_info{version=\"");
    if (rc == 0)
        rc = srv_metrics_escape_label(b, snap->version);
    if (rc == 0)
        rc = srv_buf_printf(b, "\",model=\"");
    if (rc == 0)
        rc = srv_metrics_escape_label(b, snap->model);
    if (rc == 0)
        rc = srv_buf_printf(b, "\"} 1\n");
    ic_free(snap);
    if (rc == 0 && g)
        rc = render_gauges(b, g);
    if (rc == 0)
        rc = srv_metrics_render_process(b);
    return rc;
}

// ---- process metrics from /proc ---------------------------------------------

static double boot_time(void)
{
    FILE *f = fopen("/proc/stat", "r");
    if (!f)
        return -1;
    char line[512];
    double bt = -1;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, "btime ", 6) == 0) {
            bt = strtod(line + 6, NULL);
            break;
        }
    fclose(f);
    return bt;
}

static long count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return -1;
    long n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n - 1; /* the directory stream's own fd */
}

int srv_metrics_render_process(srv_buf *b)
{
    int rc = 0;
    char num[32];
    FILE *f = fopen("/proc/self/stat", "r");
    if (f) {
        char line[1024];
        char *ok = fgets(line, sizeof line, f);
        fclose(f);
        /* Fields after the parenthesised command name (which may hold spaces). */
        char *p = ok ? strrchr(line, ')') : NULL;
        unsigned long long v[40] = {0};
        int nf = 0;
        if (p) {
            p += 2;
            while (nf < 40 && *p) {
                if (nf == 0) {
                    p++; /* state is a character */
                } else {
                    char *end;
                    v[nf] = strtoull(p, &end, 10);
                    if (end == p)
                        break;
                    p = end;
                }
                nf++;
                while (*p == ' ')
                    p++;
            }
        }
        /* Index k here is field k+3 of proc(5): utime 14, stime 15,
         * starttime 22, vsize 23, rss 24. */
        if (nf > 21) {
            double tck = (double)sysconf(_SC_CLK_TCK);
            double bt = boot_time();
            srv_metrics_format_double(num, sizeof num, (double)(v[11] + v[12]) / tck);
            rc = family(b, "process_cpu_seconds_total", "counter",
                        "Total user and system CPU time spent in seconds.");
            if (rc == 0)
                rc = srv_buf_printf(b, "process_cpu_seconds_total %s\n", num);
            if (rc == 0)
                rc = family(b, "process_virtual_memory_bytes", "gauge",
                            "Virtual memory size in bytes.");
            if (rc == 0)
                rc = srv_buf_printf(b, "process_virtual_memory_bytes %llu\n", v[20]);
            if (rc == 0)
                rc = family(b, "process_resident_memory_bytes", "gauge",
                            "Resident memory size in bytes.");
            if (rc == 0)
                rc = srv_buf_printf(b, "process_resident_memory_bytes %llu\n",
                                    v[21] * (unsigned long long)sysconf(_SC_PAGESIZE));
            if (rc == 0 && bt >= 0) {
                srv_metrics_format_double(num, sizeof num, bt + (double)v[19] / tck);
                rc = family(b, "process_start_time_seconds", "gauge",
                            "Start time of the process since unix epoch in seconds.");
                if (rc == 0)
                    rc = srv_buf_printf(b, "process_start_time_seconds %s\n", num);
            }
        }
    }
    long fds = count_fds();
    if (rc == 0 && fds >= 0) {
        rc = family(b, "process_open_fds", "gauge", "Number of open file descriptors.");
        if (rc == 0)
            rc = srv_buf_printf(b, "process_open_fds %ld\n", fds);
    }
    struct rlimit rl;
    if (rc == 0 && getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rc = family(b, "process_max_fds", "gauge", "Maximum number of open file descriptors.");
        if (rc == 0)
            rc = srv_buf_printf(b, "process_max_fds %llu\n", (unsigned long long)rl.rlim_cur);
    }
    return rc;
}
