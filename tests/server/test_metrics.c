/* Prometheus exposition: cumulative histogram buckets ending in +Inf,
 * _sum/_count, label escaping, float formatting and family structure. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "calib/calib.h"
#include "metrics.h"

static char *render(srv_metrics *m)
{
    srv_buf b;
    srv_buf_init(&b, 0);
    srv_gauges g = {.queue_depth = 3, .queue_capacity = 16, .workers = 2, .ready = 1};
    ck_assert_int_eq(srv_metrics_render(m, &g, &b), 0);
    ck_assert_ptr_nonnull(b.data);
    ck_assert(b.len > 0 && b.data[b.len - 1] == '\n');
    return srv_buf_steal(&b, NULL);
}

START_TEST(test_histogram_cumulative)
{
    srv_metrics *m;
    ck_assert_int_eq(srv_metrics_create("1.0", "test", &m), 0);
    double obs[] = {0.003, 0.02, 0.02, 0.5, 100};
    for (int i = 0; i < 5; i++)
        srv_metrics_observe(m, SRV_H_QUEUE_WAIT, obs[i]);
    srv_metrics_observe(m, SRV_H_QUEUE_WAIT, -1); /* ignored */
    srv_metrics_observe(m, SRV_H_QUEUE_WAIT, NAN); /* ignored */
    char *t = render(m);
    ck_assert_ptr_nonnull(strstr(t, "# TYPE instcald_queue_wait_seconds histogram\n"));
    ck_assert_ptr_nonnull(strstr(t, "instcald_queue_wait_seconds_bucket{le=\"0.005\"} 1\n"));
    ck_assert_ptr_nonnull(strstr(t, "instcald_queue_wait_seconds_bucket{le=\"0.01\"} 1\n"));
    ck_assert_ptr_nonnull(strstr(t, "instcald_queue_wait_seconds_bucket{le=\"0.025\"} 3\n"));
    ck_assert_ptr_nonnull(strstr(t, "instcald_queue_wait_seconds_bucket{le=\"0.5\"} 4\n"));
    ck_assert_ptr_nonnull(strstr(t, "instcald_queue_wait_seconds_bucket{le=\"60\"} 4\n"));
    ck_assert_ptr_nonnull(strstr(t, "instcald_queue_wait_seconds_bucket{le=\"+Inf\"} 5\n"));
    ck_assert_ptr_nonnull(strstr(t, "instcald_queue_wait_seconds_sum 100.543\n"));
    ck_assert_ptr_nonnull(strstr(t, "instcald_queue_wait_seconds_count 5\n"));
    /* Buckets never decrease. */
    unsigned long long prev = 0;
    for (char *p = strstr(t, "instcald_queue_wait_seconds_bucket"); p;
         p = strstr(p + 1, "instcald_queue_wait_seconds_bucket")) {
        unsigned long long v = strtoull(strchr(p, '}') + 2, NULL, 10);
        ck_assert_uint_ge(v, prev);
        prev = v;
    }
    /* An empty histogram still has every line. */
    ck_assert_ptr_nonnull(strstr(t, "instcald_inference_seconds_bucket{le=\"+Inf\"} 0\n"));
    ck_assert_ptr_nonnull(strstr(t, "instcald_inference_seconds_count 0\n"));
    free(t);
    srv_metrics_destroy(&m);
    ck_assert_ptr_null(m);
}
END_TEST

START_TEST(test_label_escaping_and_counters)
{
    srv_metrics *m;
    ck_assert_int_eq(srv_metrics_create("1.0", "we\"ird\\model\nname", &m), 0);
    srv_metrics_count_request(m, "segment", 200, "tbn");
    srv_metrics_count_request(m, "segment", 200, "tbn");
    srv_metrics_count_request(m, "segment", 503, "tbn");
    srv_metrics_count_request(m, "healthz", 200, "");
    srv_metrics_add_bytes(m, 1234);
    srv_metrics_count_rejected(m, SRV_REJ_QUEUE_FULL);
    srv_metrics_count_dropped(m, SRV_DROP_SLOW_BODY);
    srv_metrics_count_dropped(m, SRV_DROP_SLOW_BODY);
    srv_metrics_count_dropped(m, SRV_DROP_COUNT); /* out of range: ignored */
    srv_metrics_count_reload(m, 0);
    char *t = render(m);
    ck_assert_ptr_nonnull(strstr(
        t, "instcald_http_requests_total{route=\"segment\",status=\"200\",calibration=\"tbn\"} 2\n"));
    ck_assert_ptr_nonnull(strstr(
        t, "instcald_http_requests_total{route=\"segment\",status=\"503\",calibration=\"tbn\"} 1\n"));
    ck_assert_ptr_nonnull(strstr(
        t, "instcald_http_requests_total{route=\"healthz\",status=\"200\",calibration=\"\"} 1\n"));
    ck_assert_ptr_nonnull(strstr(t, "instcald_http_request_bytes_total 1234\n"));
    ck_assert_ptr_nonnull(strstr(t, "instcald_rejected_requests_total{reason=\"queue_full\"} 1\n"));
    ck_assert_ptr_nonnull(strstr(t, "instcald_connections_dropped_total{reason=\"slow_body\"} 2\n"));
    ck_assert_ptr_nonnull(
        strstr(t, "instcald_connections_dropped_total{reason=\"header_timeout\"} 0\n"));
    ck_assert_ptr_nonnull(strstr(t, "instcald_model_reloads_total{result=\"failure\"} 1\n"));
    ck_assert_ptr_nonnull(
        strstr(t, "instcald_build_info{version=\"1.0\",model=\"we\\\"ird\\\\model\\nname\"} 1\n"));
    ck_assert_ptr_nonnull(strstr(t, "instcald_queue_depth 3\n"));
    ck_assert_ptr_nonnull(strstr(t, "process_resident_memory_bytes "));
    ck_assert_ptr_nonnull(strstr(t, "process_cpu_seconds_total "));
    ck_assert_ptr_nonnull(strstr(t, "process_open_fds "));
    ck_assert_ptr_nonnull(strstr(t, "process_start_time_seconds "));
    free(t);
    srv_metrics_destroy(&m);
}
END_TEST

/* instcald_drift_score: one cumulative histogram per calibration mode,
 * every mode listed before any traffic; bad modes and scores ignored. */
START_TEST(test_drift_histogram)
{
    srv_metrics *m;
    ck_assert_int_eq(srv_metrics_create("1.0", "test", &m), 0);
    char *t = render(m);
    ck_assert_ptr_nonnull(strstr(t, "# TYPE instcald_drift_score histogram\n"));
    ck_assert_ptr_nonnull(strstr(t, "instcald_drift_score_count{calibration=\"instcal-c\"} 0\n"));
    ck_assert_ptr_nonnull(strstr(t, "instcald_drift_score_count{calibration=\"tent\"} 0\n"));
    free(t);
    srv_metrics_observe_drift(m, IC_CALIB_NONE, 0.02);
    srv_metrics_observe_drift(m, IC_CALIB_NONE, 0.1);  /* on a bound: counted in le="0.1" */
    srv_metrics_observe_drift(m, IC_CALIB_NONE, 3.0);
    srv_metrics_observe_drift(m, IC_CALIB_NONE, 75.0); /* above every bound */
    srv_metrics_observe_drift(m, IC_CALIB_INSTCAL_C, 0.024);
    srv_metrics_observe_drift(m, IC_CALIB_COUNT, 0.5); /* ignored */
    srv_metrics_observe_drift(m, -1, 0.5);
    srv_metrics_observe_drift(m, IC_CALIB_TBN, NAN);
    srv_metrics_observe_drift(m, IC_CALIB_TBN, -1);
    srv_metrics_observe_drift(m, IC_CALIB_TBN, INFINITY);
    t = render(m);
    const char *want[] = {
        "instcald_drift_score_bucket{calibration=\"none\",le=\"0.015\"} 0\n",
        "instcald_drift_score_bucket{calibration=\"none\",le=\"0.02\"} 1\n",
        "instcald_drift_score_bucket{calibration=\"none\",le=\"0.1\"} 2\n",
        "instcald_drift_score_bucket{calibration=\"none\",le=\"5\"} 3\n",
        "instcald_drift_score_bucket{calibration=\"none\",le=\"50\"} 3\n",
        "instcald_drift_score_bucket{calibration=\"none\",le=\"+Inf\"} 4\n",
        "instcald_drift_score_sum{calibration=\"none\"} 78.12\n",
        "instcald_drift_score_count{calibration=\"none\"} 4\n",
        "instcald_drift_score_bucket{calibration=\"instcal-c\",le=\"0.02\"} 0\n",
        "instcald_drift_score_bucket{calibration=\"instcal-c\",le=\"0.025\"} 1\n",
        "instcald_drift_score_count{calibration=\"instcal-c\"} 1\n",
        "instcald_drift_score_count{calibration=\"tbn\"} 0\n",
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        ck_assert_msg(strstr(t, want[i]), "missing: %s", want[i]);
    free(t);
    srv_metrics_destroy(&m);
}
END_TEST

START_TEST(test_family_structure)
{
    srv_metrics *m;
    ck_assert_int_eq(srv_metrics_create("1.0", "x", &m), 0);
    srv_metrics_count_request(m, "segment", 200, "none");
    char *t = render(m);
    /* Each sample's family was declared by a TYPE line before it, and no
     * TYPE appears twice. */
    char declared[64][96];
    int nd = 0;
    for (char *line = strtok(t, "\n"); line; line = strtok(NULL, "\n")) {
        if (strncmp(line, "# TYPE ", 7) == 0) {
            char name[96];
            ck_assert_int_eq(sscanf(line + 7, "%95s", name), 1);
            for (int i = 0; i < nd; i++)
                ck_assert_str_ne(declared[i], name);
            ck_assert_int_lt(nd, 64);
            snprintf(declared[nd++], sizeof declared[0], "%s", name);
            continue;
        }
        if (line[0] == '#')
            continue;
        ck_assert_int_gt(nd, 0);
        const char *fam = declared[nd - 1];
        ck_assert_msg(strncmp(line, fam, strlen(fam)) == 0, "sample '%s' outside family %s",
                      line, fam);
    }
    free(t);
    srv_metrics_destroy(&m);
}
END_TEST

START_TEST(test_format_double)
{
    char b[32];
    srv_metrics_format_double(b, sizeof b, 0.1);
    ck_assert_str_eq(b, "0.1");
    srv_metrics_format_double(b, sizeof b, 1.0 / 3.0);
    ck_assert(strtod(b, NULL) == 1.0 / 3.0);
    srv_metrics_format_double(b, sizeof b, INFINITY);
    ck_assert_str_eq(b, "+Inf");
    srv_metrics_format_double(b, sizeof b, -INFINITY);
    ck_assert_str_eq(b, "-Inf");
    srv_metrics_format_double(b, sizeof b, NAN);
    ck_assert_str_eq(b, "NaN");
    srv_metrics_format_double(b, sizeof b, 0);
    ck_assert_str_eq(b, "0");
}
END_TEST

START_TEST(test_escape_label)
{
    srv_buf b;
    srv_buf_init(&b, 0);
    ck_assert_int_eq(srv_metrics_escape_label(&b, "a\\b\"c\nd"), 0);
    ck_assert_str_eq(b.data, "a\\\\b\\\"c\\nd");
    srv_buf_free(&b);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("server/metrics");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_histogram_cumulative);
    tcase_add_test(tc, test_label_escaping_and_counters);
    tcase_add_test(tc, test_drift_histogram);
    tcase_add_test(tc, test_family_structure);
    tcase_add_test(tc, test_format_double);
    tcase_add_test(tc, test_escape_label);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
