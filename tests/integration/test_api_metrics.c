/*
 * GET /metrics of a running `vigil run` passes
 * `promtool check metrics` (Debian's prometheus package; a missing
 * promtool fails the test), before and after events flow, and its counters
 * move with what happens: events consumed by outcome, decode errors,
 * dead-lettered input, transitions, batch latency, the firing incident,
 * notifications and their latency, consumer lag, rules loaded.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "env.h"
#include "support.h"
#include "vigil/mem.h"
#include "vigil/util.h"

static struct vg_test_env E;

static char *scrape(void)
{
    struct vg_test_http_reply r = vg_test_env_http(&E, "GET", "/metrics", NULL, NULL);
    char *body;

    assert_int_equal(r.status, 200);
    assert_non_null(strstr(vg_test_http_header(&r, "content-type"), "text/plain; version=0.0.4"));
    body = r.body;
    r.body = NULL;
    vg_test_http_reply_free(&r);
    return body;
}

/* `promtool check metrics` on the text: exit 0 and nothing to say. */
static void promtool_check(const char *text)
{
    char *file = vg_asprintf("%s/metrics.txt", E.dir);
    char *cmd = vg_asprintf("promtool check metrics < '%s'", file);
    char *argv[] = {(char *)"/bin/sh", (char *)"-c", cmd, NULL};
    char *out = NULL;
    char *err = NULL;
    int rc;

    assert_true(vg_test_write_file(file, text, strlen(text)));
    rc = vg_test_run(argv, &out, &err);
    if (rc != 0 || (out && out[0]) || (err && err[0])) {
        fprintf(stderr, "promtool check metrics: exit %d\n%s%s\n--- the text ---\n%s\n", rc,
                out ? out : "", err ? err : "", text);
    }
    assert_int_equal(rc, 0);
    assert_true(!err || !err[0]);
    free(out);
    free(err);
    free(cmd);
    free(file);
}

static int setup(void **state)
{
    struct vg_test_env_opts o = {0};

    (void)state;
    vg_test_env_opts_secured(&o);
    return vg_test_env_up(&E, "api-metrics", &o) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    return vg_test_env_stop(&E);
}

struct want {
    const char *series;
    double min;
};

static bool counters_moved(void *arg)
{
    const struct want *w = arg;
    char *text = scrape();
    bool ok = true;

    for (; w->series; w++) {
        ok = ok && vg_test_metric_sample(text, w->series) >= w->min;
    }
    free(text);
    return ok;
}

static void test_metrics(void **state)
{
    static const char not_json[] = "{\"this is\": not json";
    char *text;
    char *s;
    (void)state;

    text = scrape();
    promtool_check(text);
    assert_non_null(strstr(text, "# TYPE vigil_events_consumed_total counter"));
    assert_non_null(strstr(text, "# TYPE vigil_batch_apply_duration_seconds histogram"));
    assert_int_equal(vg_test_metric_sample(text, "vigil_rules_loaded{kind=\"monitor\"}"), 1);
    assert_int_equal(vg_test_metric_sample(text, "vigil_rules_loaded{kind=\"pager\"}"), 1);
    assert_int_equal(vg_test_metric_sample(text, "vigil_outbox_depth"), 0);
    free(text);

    vg_test_env_produce(&E, "workflow", "m-a", "public", "active", "running",
                        "2026-11-28T10:00:00Z", NULL);
    vg_test_env_produce(&E, "workflow", "m-a", "public", NULL, "failed", "2026-11-28T10:01:00Z",
                        NULL);
    vg_test_env_produce(&E, "service", "m-b", "sandbox", "active", "running",
                        "2026-11-28T10:00:00Z", NULL);
    vg_test_env_produce_raw(&E, 0, NULL, not_json, strlen(not_json));
    assert_true(vg_test_env_wait_applied_exact(&E, 30000));
    assert_true(vg_http_receiver_wait(E.rcv, 1, 30000));
    {
        char *applied =
            vg_asprintf("vigil_events_consumed_total{topic=\"%s\",outcome=\"applied\"}", E.topic);
        char *invalid =
            vg_asprintf("vigil_events_consumed_total{topic=\"%s\",outcome=\"invalid\"}", E.topic);
        const struct want want[] = {
            {applied, 3},
            {invalid, 1},
            {"vigil_decode_errors_total{reason=\"bad_json\"}", 1},
            {"vigil_dlq_produced_total", 1},
            {"vigil_transitions_total{field=\"runtime\",value=\"failed\"}", 1},
            {"vigil_transitions_total{field=\"health\",value=\"unhealthy\"}", 1},
            {"vigil_transitions_total{field=\"status\",value=\"active\"}", 2},
            {"vigil_batch_apply_duration_seconds_count", 1},
            {"vigil_incidents_firing{monitor=\"workflow-failed\",severity=\"high\"}", 1},
            {"vigil_notifications_total{sink=\"ops\",outcome=\"delivered\"}", 1},
            {"vigil_delivery_duration_seconds_count{sink=\"ops\"}", 1},
            {NULL, 0},
        };
        if (!vg_test_wait_for(counters_moved, (void *)want, 20000)) {
            text = scrape();
            fprintf(stderr, "counters did not move as expected:\n%s\n", text);
            free(text);
            fail();
        }
        text = scrape();
        promtool_check(text);
        assert_int_equal(vg_test_metric_sample(text, applied), 3);
        assert_int_equal(vg_test_metric_sample(text, invalid), 1);
        assert_true(vg_test_metric_sample(
                        text, "vigil_batch_apply_duration_seconds_bucket{le=\"+Inf\"}") >= 1);
        assert_int_equal(vg_test_metric_sample(text, "vigil_outbox_depth"), 0);
        assert_int_equal(vg_test_metric_sample(text, "vigil_dead_letter_depth"), 0);
        /* partitions that have seen messages have a known lag (0: caught up) */
        s = vg_asprintf("vigil_consumer_lag_messages{topic=\"%s\",partition=\"0\"}", E.topic);
        assert_int_equal(vg_test_metric_sample(text, s), 0);
        free(s);
        free(text);
        free(applied);
        free(invalid);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_metrics, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
