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
#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "http_receiver.h"
#include "support.h"
#include "vigil/consumer.h"
#include "vigil/mem.h"
#include "vigil/state.h"
#include "vigil/util.h"

struct env {
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
    int runs;
    int port;
    int64_t produced; /* next offset of the topic's one partition on the current cluster */
};

static struct env E;

static void produce_event(const char *name, const char *runtime)
{
    char errstr[256];
    char *key = vg_asprintf("service:v1:%s:w", name);
    char *json = vg_asprintf("{\"resource\":{\"type\":\"service\",\"name\":\"%s\",\"workspace\":"
                             "\"w\"},\"runtime\":\"%s\",\"time\":\"2026-11-28T10:00:00Z\"}",
                             name, runtime);

    assert_int_equal(vg_producer_send(E.producer, E.topic, 0, key, strlen(key), json, strlen(json),
                                      errstr, sizeof(errstr)),
                     VG_OK);
    assert_int_equal(vg_producer_flush(E.producer, vg_test_timeout(10000), errstr, sizeof(errstr)),
                     VG_OK);
    E.produced++;
    free(key);
    free(json);
}

static char *vigil_log(void)
{
    char *path = vg_asprintf("%s/vigil-%d.err", E.dir, E.runs - 1);
    char *text = vg_test_read_file(path, NULL);

    free(path);
    return text ? text : vg_strdup("");
}

static void dump_log(void)
{
    char *text = vigil_log();
    fprintf(stderr, "vigil's log:\n%s\n", text);
    free(text);
}

/* A fresh mock cluster with the topic (one partition) and a producer for it. */
static void new_cluster(void)
{
    char errstr[512];

    vg_producer_destroy(E.producer);
    E.producer = NULL;
    vg_mock_kafka_stop(E.kafka);
    E.kafka = NULL;
    assert_int_equal(vg_mock_kafka_start(&E.kafka, 1, errstr, sizeof(errstr)), VG_OK);
    assert_int_equal(vg_mock_kafka_create_topic(E.kafka, E.topic, 1, errstr, sizeof(errstr)),
                     VG_OK);
    assert_int_equal(vg_producer_new(&E.producer, vg_mock_kafka_bootstraps(E.kafka), NULL, 0,
                                     errstr, sizeof(errstr)),
                     VG_OK);
    E.produced = 0;
}

/* "listening on http://127.0.0.1:PORT/" in vigil's log. */
static bool have_port(void *arg)
{
    char *text = vigil_log();
    const char *p = strstr(text, "listening on http://127.0.0.1:");
    int64_t port = 0;
    (void)arg;

    E.port = 0;
    if (p) {
        char num[8] = {0};
        p += strlen("listening on http://127.0.0.1:");
        for (size_t i = 0; i + 1 < sizeof(num) && p[i] >= '0' && p[i] <= '9'; i++) {
            num[i] = p[i];
        }
        if (vg_parse_i64(num, &port)) {
            E.port = (int)port;
        }
    }
    free(text);
    return E.port > 0;
}

/* vigil on the current cluster (same group, Redis and prefix every time). */
static void start_vigil(void)
{
    char *rules = vg_asprintf("%s/k8s/rules.yaml", VG_FIXTURES);
    char *url = vg_http_receiver_url(E.rcv, "/hook");
    char *cfg = vg_asprintf("kafka:\n"
                            "  brokers: %s\n"
                            "  group: reset-%d\n"
                            "  topics: [%s]\n"
                            "  batch_ms: 20\n"
                            "  properties: {session.timeout.ms: \"6000\", heartbeat.interval.ms: "
                            "\"500\"}\n"
                            "redis:\n"
                            "  url: %s\n"
                            "  prefix: %s\n"
                            "http:\n"
                            "  listen: 127.0.0.1:0\n"
                            "rules: [%s]\n"
                            "sinks:\n"
                            "  ops: {type: webhook, url: \"%s\", max_attempts: 20}\n",
                            vg_mock_kafka_bootstraps(E.kafka), (int)getpid(), E.topic,
                            vg_redis_child_url(E.redis), E.prefix, rules, url);
    char *out = vg_asprintf("%s/vigil-%d.out", E.dir, E.runs);
    char *err = vg_asprintf("%s/vigil-%d.err", E.dir, E.runs);
    char *argv[] = {(char *)vg_test_vigil_bin(), (char *)"run", (char *)"-c", E.config, NULL};

    assert_true(vg_test_write_file(E.config, cfg, strlen(cfg)));
    E.vigil = vg_test_spawn(argv, out, err);
    assert_true(E.vigil > 0);
    E.runs++;
    free(rules);
    free(url);
    free(cfg);
    free(out);
    free(err);
    if (!vg_test_wait_for(have_port, NULL, 20000)) {
        dump_log();
        fail();
    }
}

static void stop_vigil(void)
{
    int rc = vg_test_stop(E.vigil, SIGTERM, 20000);

    E.vigil = 0;
    if (rc != 0) {
        dump_log();
    }
    assert_int_equal(rc, 0);
}

static bool caught_up(void *arg)
{
    char errstr[256];
    int64_t off = -1;
    (void)arg;

    return vg_state_applied_offset(E.st, E.topic, 0, &off, errstr, sizeof(errstr)) == VG_OK &&
           off + 1 == E.produced;
}

static void wait_caught_up(void)
{
    if (!vg_test_wait_for(caught_up, NULL, 30000)) {
        char errstr[256];
        int64_t off = -1;
        (void)vg_state_applied_offset(E.st, E.topic, 0, &off, errstr, sizeof(errstr));
        fprintf(stderr, "applied offset %lld, want %lld\n", (long long)off,
                (long long)E.produced - 1);
        dump_log();
        fail();
    }
}

static bool have_pages(void *arg)
{
    return vg_http_receiver_count(E.rcv) >= *(size_t *)arg;
}

/* The page `i` received is about Resource service `name`. */
static void assert_page(size_t i, const char *name)
{
    size_t want = i + 1;
    struct vg_http_request *req;
    cJSON *body;
    char *id = vg_asprintf("service:v1:%s:w", name);

    if (!vg_test_wait_for(have_pages, &want, 30000)) {
        fprintf(stderr, "no page %zu (%s)\n", i, name);
        dump_log();
        fail();
    }
    req = vg_http_receiver_request(E.rcv, i);
    body = cJSON_Parse(req->body);
    assert_non_null(body);
    assert_string_equal(
        cJSON_GetObjectItem(cJSON_GetObjectItem(body, "resource"), "id")->valuestring, id);
    cJSON_Delete(body);
    vg_http_request_free(req);
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

/* GET /metrics: the body (heap). */
static char *get_metrics(void)
{
    struct sockaddr_in sa;
    struct timeval tv = {.tv_sec = 20, .tv_usec = 0};
    struct vg_buf resp = {0};
    char req[128];
    char chunk[8192];
    ssize_t got;
    char *body;
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    assert_true(fd >= 0);
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)E.port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    snprintf(req, sizeof(req), "GET /metrics HTTP/1.0\r\nHost: 127.0.0.1:%d\r\n\r\n", E.port);
    assert_true(send(fd, req, strlen(req), MSG_NOSIGNAL) == (ssize_t)strlen(req));
    while ((got = recv(fd, chunk, sizeof(chunk), 0)) > 0) {
        vg_buf_append(&resp, chunk, (size_t)got);
    }
    close(fd);
    assert_non_null(resp.data);
    assert_non_null(strstr(resp.data, " 200 "));
    body = vg_strdup(resp.data);
    vg_buf_fini(&resp);
    return body;
}

/* vigil_offset_resets_total{topic} of the running vigil is `want` ("absent": not shown). */
static void assert_resets_metric(const char *want)
{
    char *metrics = get_metrics();
    char *line = vg_asprintf("vigil_offset_resets_total{topic=\"%s\"} %s", E.topic, want);
    char *prefix = vg_asprintf("vigil_offset_resets_total{topic=\"%s\"}", E.topic);
    bool ok = !strcmp(want, "absent") ? !strstr(metrics, prefix) : !!strstr(metrics, line);

    if (!ok) {
        fprintf(stderr, "want %s; metrics:\n%s\n", line, metrics);
    }
    assert_true(ok);
    free(metrics);
    free(line);
    free(prefix);
}

/* Count the WARN lines about offsets that started again in the current vigil's log. */
static int reset_lines(char **first)
{
    char *text = vigil_log();
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
    char errstr[512];
    (void)state;

    memset(&E, 0, sizeof(E));
    E.dir = vg_test_mkdtemp("offsets-reset");
    E.topic = vg_asprintf("reset.in.%d", (int)getpid());
    E.prefix = vg_asprintf("reset%d", (int)getpid());
    E.config = vg_asprintf("%s/vigil.yaml", E.dir);
    if (vg_redis_child_start(&E.redis, E.dir, errstr, sizeof(errstr)) != VG_OK ||
        vg_state_connect(&E.st, vg_redis_child_url(E.redis), E.prefix, errstr, sizeof(errstr)) !=
            VG_OK) {
        fprintf(stderr, "redis: %s\n", errstr);
        return -1;
    }
    E.rcv = vg_http_receiver_start();
    return E.rcv ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    if (E.vigil > 0) {
        vg_test_stop(E.vigil, SIGTERM, 20000);
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
    return 0;
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
    assert_resets_metric("absent");
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
    assert_resets_metric("1");
    stop_vigil();

    /*
     * Cluster C, and Redis without the cluster id (state written before it was
     * recorded): the partition ends at or below the applied offset, so the topic
     * was recreated.
     */
    {
        const char *url = vg_redis_child_url(E.redis);
        redisContext *ctx;

        assert_true(strncmp(url, "unix://", strlen("unix://")) == 0);
        ctx = redisConnectUnix(url + strlen("unix://"));
        redisReply *reply;

        assert_non_null(ctx);
        assert_int_equal(ctx->err, 0);
        reply = redisCommand(ctx, "DEL %s:offsets:cluster", E.prefix);
        assert_non_null(reply);
        assert_int_equal(reply->integer, 1);
        freeReplyObject(reply);
        redisFree(ctx);
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
    assert_resets_metric("1");
    assert_int_equal(vg_http_receiver_count(E.rcv), 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_offsets_start_again, setup, teardown),
    };
    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
