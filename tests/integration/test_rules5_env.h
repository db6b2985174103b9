/*
 * Shared setup of the rules integration tests (issue 5), header-only: a
 * private redis-server, librdkafka's mock cluster, a real HTTP receiver,
 * a vigil.yaml naming `rules` (a YAML string written next to it), and the
 * real `vigil run` binary (VIGIL_BIN) as a child process.
 */
#ifndef TEST_RULES5_ENV_H
#define TEST_RULES5_ENV_H

#include <cjson/cJSON.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "http_receiver.h"
#include "support.h"
#include "vigil/consumer.h"
#include "vigil/mem.h"
#include "vigil/state.h"
#include "vigil/util.h"

#define R5_PARTITIONS 2

/* Not every test uses every helper. */
#define R5_FN __attribute__((unused)) static

struct r5_env {
    char *dir;
    char *topic;
    char *prefix;
    char *config;
    struct vg_redis_child *redis;
    struct vg_mock_kafka *kafka;
    struct vg_http_receiver *rcv;
    struct vg_producer *producer;
    struct vg_state *st;
    pid_t vigil;
    long long produced;
    int runs;
};

static struct r5_env E;

R5_FN int r5_setup(const char *name, const char *rules_yaml)
{
    char errstr[512];
    char *rules;
    char *url;
    char *cfg;

    memset(&E, 0, sizeof(E));
    signal(SIGPIPE, SIG_IGN);
    E.dir = vg_test_mkdtemp(name);
    E.topic = vg_asprintf("%s.events.%d", name, (int)getpid());
    E.prefix = vg_asprintf("%s%d", name, (int)getpid());
    if (vg_redis_child_start(&E.redis, E.dir, errstr, sizeof(errstr)) != VG_OK) {
        fprintf(stderr, "redis: %s\n", errstr);
        return -1;
    }
    if (vg_mock_kafka_start(&E.kafka, 1, errstr, sizeof(errstr)) != VG_OK ||
        vg_mock_kafka_create_topic(E.kafka, E.topic, R5_PARTITIONS, errstr, sizeof(errstr)) !=
            VG_OK ||
        vg_mock_kafka_create_topic(E.kafka, "vigil.dlq", 1, errstr, sizeof(errstr)) != VG_OK) {
        fprintf(stderr, "kafka: %s\n", errstr);
        return -1;
    }
    E.rcv = vg_http_receiver_start();
    if (!E.rcv) {
        return -1;
    }
    if (vg_producer_new(&E.producer, vg_mock_kafka_bootstraps(E.kafka), NULL, 0, errstr,
                        sizeof(errstr)) != VG_OK ||
        vg_state_connect(&E.st, vg_redis_child_url(E.redis), E.prefix, errstr, sizeof(errstr)) !=
            VG_OK) {
        fprintf(stderr, "%s\n", errstr);
        return -1;
    }
    rules = vg_asprintf("%s/rules.yaml", E.dir);
    if (!vg_test_write_file(rules, rules_yaml, strlen(rules_yaml))) {
        return -1;
    }
    url = vg_http_receiver_url(E.rcv, "/hook");
    cfg = vg_asprintf("kafka:\n"
                      "  brokers: %s\n"
                      "  group: %s-%d\n"
                      "  topics: [%s]\n"
                      "  batch_ms: 20\n"
                      "  properties: {session.timeout.ms: \"6000\", heartbeat.interval.ms: "
                      "\"500\"}\n"
                      "redis:\n"
                      "  url: %s\n"
                      "  prefix: %s\n"
                      "rules: [%s]\n"
                      "sinks:\n"
                      "  ops: {type: webhook, url: \"%s\", max_attempts: 20}\n",
                      vg_mock_kafka_bootstraps(E.kafka), name, (int)getpid(), E.topic,
                      vg_redis_child_url(E.redis), E.prefix, rules, url);
    E.config = vg_asprintf("%s/vigil.yaml", E.dir);
    if (!vg_test_write_file(E.config, cfg, strlen(cfg))) {
        return -1;
    }
    free(rules);
    free(url);
    free(cfg);
    return 0;
}

R5_FN void r5_teardown(void)
{
    if (E.vigil > 0) {
        vg_test_stop(E.vigil, SIGTERM, 15000);
    }
    vg_producer_destroy(E.producer);
    vg_state_destroy(E.st);
    vg_http_receiver_stop(E.rcv);
    vg_mock_kafka_stop(E.kafka);
    vg_redis_child_stop(E.redis);
    vg_test_rmrf(E.dir);
    free(E.dir);
    free(E.topic);
    free(E.prefix);
    free(E.config);
}

R5_FN void r5_start_vigil(void)
{
    char *out = vg_asprintf("%s/vigil-%d.out", E.dir, E.runs);
    char *err = vg_asprintf("%s/vigil-%d.err", E.dir, E.runs);
    char *argv[] = {(char *)vg_test_vigil_bin(), (char *)"run", (char *)"-c", E.config, NULL};

    E.vigil = vg_test_spawn(argv, out, err);
    assert_true(E.vigil > 0);
    E.runs++;
    free(out);
    free(err);
}

R5_FN void r5_dump_log(void)
{
    for (int r = 0; r < E.runs; r++) {
        char *log = vg_asprintf("%s/vigil-%d.err", E.dir, r);
        char *text = vg_test_read_file(log, NULL);

        fprintf(stderr, "--- vigil run %d log:\n%s\n", r, text ? text : "(none)");
        free(text);
        free(log);
    }
}

/* A native event for workflow `name` in `ws` (status may be NULL), keyed by Resource id. */
R5_FN void r5_produce(const char *type, const char *name, const char *ws, const char *status,
                      const char *runtime)
{
    char errstr[256];
    char *key = vg_asprintf("%s:v1:%s:%s", type, name, ws);
    char *json = vg_asprintf("{\"resource\":{\"type\":\"%s\",\"name\":\"%s\",\"workspace\":\"%s\"}"
                             "%s%s%s,\"runtime\":\"%s\"}",
                             type, name, ws, status ? ",\"status\":\"" : "", status ? status : "",
                             status ? "\"" : "", runtime);

    assert_int_equal(vg_producer_send(E.producer, E.topic, -1, key, strlen(key), json, strlen(json),
                                      errstr, sizeof(errstr)),
                     VG_OK);
    E.produced++;
    free(key);
    free(json);
}

R5_FN void r5_flush(void)
{
    char errstr[256];

    assert_int_equal(vg_producer_flush(E.producer, 20000, errstr, sizeof(errstr)), VG_OK);
}

/* Everything produced is applied in Redis. */
R5_FN bool r5_applied(void *arg)
{
    char errstr[256];
    int64_t total = 0;

    (void)arg;
    for (int p = 0; p < R5_PARTITIONS; p++) {
        int64_t off = -1;

        if (vg_state_applied_offset(E.st, E.topic, p, &off, errstr, sizeof(errstr)) != VG_OK) {
            return false;
        }
        total += off + 1;
    }
    return total == E.produced;
}

/* Timers of every partition and group timers, whatever their due time. */
R5_FN size_t r5_timers(void)
{
    struct vg_offset parts[R5_PARTITIONS];
    struct vg_due_timer *v = NULL;
    size_t n = 0;
    char errstr[256];

    for (int p = 0; p < R5_PARTITIONS; p++) {
        parts[p].topic = E.topic;
        parts[p].partition = p;
        parts[p].offset = 0;
    }
    assert_int_equal(vg_state_timers_due(E.st, parts, R5_PARTITIONS, true, INT64_MAX / 2, 100000,
                                         &v, &n, errstr, sizeof(errstr)),
                     VG_OK);
    vg_due_timers_free(v, n);
    return n;
}

R5_FN bool r5_no_timers_no_backlog(void *arg)
{
    char errstr[256];
    int64_t backlog = -1;

    (void)arg;
    return r5_timers() == 0 &&
           vg_state_outbox_backlog(E.st, &backlog, errstr, sizeof(errstr)) == VG_OK && backlog == 0;
}

struct r5_count {
    size_t want;
};

R5_FN bool r5_have_requests(void *arg)
{
    struct r5_count *c = arg;

    return vg_http_receiver_count(E.rcv) >= c->want;
}

R5_FN void r5_wait(bool (*pred)(void *), void *arg, int timeout_ms, const char *what)
{
    if (!vg_test_wait_for(pred, arg, timeout_ms)) {
        fprintf(stderr, "timed out waiting for %s\n", what);
        r5_dump_log();
        fail();
    }
}

/* Request i's body, parsed (caller deletes). */
R5_FN cJSON *r5_body(size_t i)
{
    struct vg_http_request *req = vg_http_receiver_request(E.rcv, i);
    cJSON *body;

    assert_non_null(req);
    body = cJSON_Parse(req->body);
    assert_non_null(body);
    vg_http_request_free(req);
    return body;
}

/* Run `vigil ARGS... -c CONFIG` to completion; stdout into *out (caller frees). */
R5_FN int r5_cli(char **out, const char *a1, const char *a2, const char *a3, const char *a4)
{
    char *err = NULL;
    char *argv[10];
    int n = 0;
    int rc;

    argv[n++] = (char *)vg_test_vigil_bin();
    argv[n++] = (char *)a1;
    if (a2) {
        argv[n++] = (char *)a2;
    }
    if (a3) {
        argv[n++] = (char *)a3;
    }
    if (a4) {
        argv[n++] = (char *)a4;
    }
    argv[n++] = (char *)"-c";
    argv[n++] = E.config;
    argv[n] = NULL;
    rc = vg_test_run(argv, out, &err);
    if (rc != 0) {
        fprintf(stderr, "vigil %s %s: exit %d: %s\n", a1, a2 ? a2 : "", rc, err ? err : "");
    }
    free(err);
    return rc;
}

#endif
