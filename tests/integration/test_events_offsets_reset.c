/*
 * Offsets that start again, end to end: the real `vigil run` with a
 * private redis-server that outlives librdkafka's mock clusters. vigil
 * applies events from cluster A and stops; a fresh cluster B has the topic
 * again with offsets from 0 (as a fresh embedded cluster with Redis kept):
 * its events are applied and page, with one WARN line and
 * vigil_offset_resets_total. Then Redis lacks the cluster id (as state
 * written before it was recorded) and cluster C's topic ends below the
 * applied offset (as a recreated topic): noticed by the high watermark.
 */
#include <hiredis/hiredis.h>
#include <setjmp.h>
#include <signal.h>
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
#include "vigil/state.h"
#include "vigil/util.h"

/* One partition; E.produced is the next offset on the current cluster. */
static struct vg_test_env E;

static void produce_event(const char *name, const char *runtime)
{
    char *key = vg_asprintf("service:v1:%s:w", name);
    char *json = vg_asprintf("{\"resource\":{\"type\":\"service\",\"name\":\"%s\",\"workspace\":"
                             "\"w\"},\"runtime\":\"%s\",\"time\":\"2026-11-28T10:00:00Z\"}",
                             name, runtime);
    long long before = E.produced;

    vg_test_env_produce_raw(&E, 0, key, json, strlen(json));
    assert_int_equal(E.produced, before + 1);
    assert_true(vg_test_env_flush(&E));
    free(key);
    free(json);
}

/* A fresh mock cluster with the topic (one partition) and a producer for it. */
static void new_cluster(void)
{
    assert_true(vg_test_env_new_cluster(&E));
}

/* vigil on the current cluster (same group, Redis and prefix every time). */
static void start_vigil(void)
{
    assert_true(vg_test_env_spawn(&E));
}

static void stop_vigil(void)
{
    assert_int_equal(vg_test_env_kill(&E, SIGTERM), 0);
}

static void wait_caught_up(void)
{
    assert_true(vg_test_env_wait_applied_exact(&E, 30000));
}

/* The page `i` received is about Resource service `name`. */
static void assert_page(size_t i, const char *name)
{
    char *id = vg_asprintf("service:v1:%s:w", name);

    assert_true(vg_test_env_page_is(&E, i, "resource", "id", id, 30000));
    free(id);
}

static void assert_runtime(const char *name, const char *runtime)
{
    char errstr[256];
    struct vg_resource *res = NULL;
    char *id = vg_asprintf("service:v1:%s:w", name);

    assert_int_equal(vg_state_get(E.st, id, &res, errstr, sizeof(errstr)), VG_OK);
    assert_non_null(res);
    assert_string_equal(res->runtime, runtime);
    vg_resource_destroy(res);
    free(id);
}

/* vigil_offset_resets_total{topic} of the running vigil is `want` (-1: not shown). */
static void assert_resets_metric(double want)
{
    struct vg_test_http_reply r = vg_test_env_http(&E, "GET", "/metrics", NULL, NULL);
    char *series = vg_asprintf("vigil_offset_resets_total{topic=\"%s\"}", E.topic);
    double got;

    assert_int_equal(r.status, 200);
    got = vg_test_metric_sample(r.body, series);
    if (got != want) {
        fprintf(stderr, "want %s %g; metrics:\n%s\n", series, want, r.body);
    }
    assert_true(got == want);
    vg_test_http_reply_free(&r);
    free(series);
}

/* Count the WARN lines about offsets that started again in the current vigil's log. */
static int reset_lines(char **first)
{
    char *text = vg_test_env_run_log(&E);
    const char *p = text;
    int n = 0;

    *first = NULL;
    while ((p = strstr(p, " WARN consumer: offsets started again topic=")) != NULL) {
        if (!*first) {
            const char *eol = strchr(p, '\n');
            *first = vg_strndup(p, eol ? (size_t)(eol - p) : strlen(p));
        }
        n++;
        p++;
    }
    free(text);
    return n;
}

/* ---- setup ---------------------------------------------------------------- */

static int setup(void **state)
{
    struct vg_test_env_opts o = {
        .partitions = 1, .http = true, .rules_file = VG_FIXTURES "/k8s/rules.yaml"};

    (void)state;
    return vg_test_env_start(&E, "offsets-reset", &o);
}

static int teardown(void **state)
{
    (void)state;
    return vg_test_env_stop(&E);
}

/* ---- the test --------------------------------------------------------------- */

static void test_offsets_start_again(void **state)
{
    char *line = NULL;
    (void)state;

    /* Cluster A: four events, one page; a plain restart replays nothing and warns nothing. */
    new_cluster();
    produce_event("a1", "running");
    produce_event("a2", "running");
    produce_event("a3", "running");
    produce_event("a-failed", "failed"); /* offset 3 */
    start_vigil();
    wait_caught_up();
    assert_page(0, "a-failed");
    stop_vigil();
    start_vigil();
    produce_event("a4", "running"); /* offset 4: applied, so the restart had its chance */
    wait_caught_up();
    assert_int_equal(reset_lines(&line), 0);
    assert_resets_metric(-1);
    stop_vigil();
    assert_int_equal(vg_http_receiver_count(E.rcv), 1);

    /* Cluster B, fresh: the topic starts again at 0, Redis still says 4 was applied. */
    new_cluster();
    produce_event("b-failed", "failed"); /* offset 0 */
    produce_event("b1", "running");      /* offset 1 */
    start_vigil();
    wait_caught_up(); /* the applied offset went back to 1 */
    assert_page(1, "b-failed");
    assert_runtime("b1", "running");
    assert_int_equal(reset_lines(&line), 1);
    assert_non_null(strstr(line, "topic=" /* the topic */));
    assert_non_null(strstr(line, E.topic));
    assert_non_null(strstr(line, "partition=0 applied_offset=4"));
    assert_non_null(strstr(line, "kafka cluster id is now"));
    free(line);
    assert_resets_metric(1);
    stop_vigil();

    /*
     * Cluster C, and Redis without the cluster id (state written before it was
     * recorded): the partition ends at or below the applied offset, so the topic
     * was recreated.
     */
    {
        redisReply *reply = vg_test_env_redis(&E, "DEL %s:offsets:cluster", E.prefix);

        assert_non_null(reply);
        assert_int_equal(reply->integer, 1);
        freeReplyObject(reply);
    }
    new_cluster();
    produce_event("c-failed", "failed"); /* offset 0 */
    start_vigil();
    wait_caught_up();
    assert_page(2, "c-failed");
    assert_int_equal(reset_lines(&line), 1);
    assert_non_null(strstr(line, "partition=0 applied_offset=1"));
    assert_non_null(strstr(line, "the partition ends at offset 1"));
    free(line);
    assert_resets_metric(1);
    assert_int_equal(vg_http_receiver_count(E.rcv), 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_offsets_start_again, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
