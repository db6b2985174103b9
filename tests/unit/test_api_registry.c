/*
 * The metrics registry (api/api_metrics.c): the Prometheus text
 * format (HELP/TYPE once per family, label escaping, cumulative histogram
 * buckets), series created on first use, and the tally that counts a
 * batch only when flushed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "vigil/api.h"
#include "vigil/mem.h"

static void test_text_format(void **state)
{
    static const char *const labels[] = {"topic", "outcome"};
    static const double bounds[] = {0.1, 1};
    struct vg_metrics *m = vg_metrics_new();
    struct vg_buf b = {0};
    (void)state;

    vg_metrics_declare(m, "vigil_x_total", VG_METRIC_COUNTER, "Things.\nSecond line \\ too.",
                       labels, 2, NULL, 0);
    vg_metrics_declare(m, "vigil_h_seconds", VG_METRIC_HISTOGRAM, "Latency.", NULL, 0, bounds, 2);
    vg_metrics_declare(m, "vigil_g", VG_METRIC_GAUGE, "A gauge.", NULL, 0, NULL, 0);
    vg_metrics_add(m, "vigil_x_total", (const char *const[]){"t\"1\\\n", "applied"}, 2);
    vg_metrics_add(m, "vigil_x_total", (const char *const[]){"a", "applied"}, 1);
    vg_metrics_add(m, "vigil_x_total", (const char *const[]){"a", "applied"}, 1.5);
    vg_metrics_observe(m, "vigil_h_seconds", NULL, 0.05);
    vg_metrics_observe(m, "vigil_h_seconds", NULL, 0.5);
    vg_metrics_observe(m, "vigil_h_seconds", NULL, 7);
    vg_metrics_set(m, "vigil_g", NULL, 42);
    vg_metrics_render(m, &b);
    assert_string_equal(b.data, "# HELP vigil_x_total Things.\\nSecond line \\\\ too.\n"
                                "# TYPE vigil_x_total counter\n"
                                "vigil_x_total{topic=\"a\",outcome=\"applied\"} 2.5\n"
                                "vigil_x_total{topic=\"t\\\"1\\\\\\n\",outcome=\"applied\"} 2\n"
                                "# HELP vigil_h_seconds Latency.\n"
                                "# TYPE vigil_h_seconds histogram\n"
                                "vigil_h_seconds_bucket{le=\"0.1\"} 1\n"
                                "vigil_h_seconds_bucket{le=\"1\"} 2\n"
                                "vigil_h_seconds_bucket{le=\"+Inf\"} 3\n"
                                "vigil_h_seconds_sum 7.5499999999999998\n"
                                "vigil_h_seconds_count 3\n"
                                "# HELP vigil_g A gauge.\n"
                                "# TYPE vigil_g gauge\n"
                                "vigil_g 42\n");
    assert_true(vg_metrics_value(m, "vigil_x_total", (const char *const[]){"a", "applied"}) == 2.5);
    assert_true(vg_metrics_value(m, "vigil_h_seconds", NULL) == 3);
    vg_metrics_clear(m, "vigil_x_total");
    assert_true(vg_metrics_value(m, "vigil_x_total", (const char *const[]){"a", "applied"}) == 0);
    vg_buf_fini(&b);
    vg_metrics_destroy(m);
    /* NULL registry: every call is a no-op */
    vg_metrics_add(NULL, "vigil_x_total", NULL, 1);
    vg_metrics_render(NULL, &b);
    assert_null(b.data);
}

static void test_tally(void **state)
{
    static const char *const labels[] = {"topic", "outcome"};
    struct vg_metrics *m = vg_metrics_new();
    struct vg_metrics_tally *t = vg_metrics_tally_new();
    const char *const applied[] = {"events", "applied"};
    const char *const late[] = {"events", "late"};
    (void)state;

    vg_metrics_declare(m, "vigil_x_total", VG_METRIC_COUNTER, "x", labels, 2, NULL, 0);
    vg_metrics_tally_add(t, "vigil_x_total", applied, 2, 1);
    vg_metrics_tally_add(t, "vigil_x_total", applied, 2, 1);
    vg_metrics_tally_flush(t, NULL); /* the batch failed: nothing counts */
    assert_true(vg_metrics_value(m, "vigil_x_total", applied) == 0);
    vg_metrics_tally_add(t, "vigil_x_total", applied, 2, 1);
    vg_metrics_tally_add(t, "vigil_x_total", applied, 2, 1);
    vg_metrics_tally_add(t, "vigil_x_total", applied, 2, -1);
    vg_metrics_tally_add(t, "vigil_x_total", late, 2, 1);
    vg_metrics_tally_flush(t, m);
    assert_true(vg_metrics_value(m, "vigil_x_total", applied) == 1);
    assert_true(vg_metrics_value(m, "vigil_x_total", late) == 1);
    vg_metrics_tally_flush(t, m); /* flushed increments are gone */
    assert_true(vg_metrics_value(m, "vigil_x_total", applied) == 1);
    vg_metrics_tally_destroy(t);
    vg_metrics_destroy(m);
}

static void test_vigil_families(void **state)
{
    struct vg_metrics *m = vg_metrics_new();
    struct vg_buf b = {0};
    (void)state;

    vg_metrics_declare_vigil(m);
    vg_metrics_declare_vigil(m); /* idempotent */
    vg_metrics_render(m, &b);
    assert_non_null(strstr(b.data, "# TYPE vigil_events_consumed_total counter\n"));
    assert_non_null(strstr(b.data, "# TYPE vigil_consumer_lag_messages gauge\n"));
    assert_non_null(strstr(b.data, "vigil_build_info{version=\"" VIGIL_VERSION "\"} 1\n"));
    assert_null(strstr(strstr(b.data, "vigil_events_consumed_total") + 1,
                       "# HELP vigil_events_consumed_total"));
    vg_buf_fini(&b);
    vg_metrics_destroy(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_text_format),
        cmocka_unit_test(test_tally),
        cmocka_unit_test(test_vigil_families),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
