/*
 * Poison messages too large for the dead-letter topic, end to end: the real
 * `vigil run` on a private redis-server and librdkafka's mock cluster.
 * An invalid event of about 1 MB (under the decode limit, its message over
 * the text limit) is dead-lettered whole; a 2 MB message (over the decode
 * limit and the consumer's fetch.message.max.bytes) is dead-lettered cut,
 * with vigil.truncated and vigil.original_bytes. When the broker refuses a
 * dead letter for its size it is sent again cut; refused again, it is
 * skipped with an ERROR line and vigil_dead_letter_failures_total. Valid
 * events after each are applied and page, and vigil keeps running.
 */
#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <librdkafka/rdkafka.h>
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

#define CUT_BYTES 1024 /* ENG_DLQ_CUT_BYTES */
#define ONE_MB_BYTES 1040000
#define TWO_MB_BYTES (2 * 1024 * 1024)

struct env {
    char *dir;
    char *topic;
    char *dlq;
    char *prefix;
    char *config;
    struct vg_redis_child *redis;
    struct vg_mock_kafka *kafka;
    struct vg_http_receiver *rcv;
    struct vg_producer *producer;
    struct vg_state *st;
    pid_t vigil;
    int port;
    int64_t produced; /* next offset of the topic's one partition */
};

static struct env E;

static void produce(const char *key, const char *payload, size_t len)
{
    char errstr[256];

    assert_int_equal(vg_producer_send(E.producer, E.topic, 0, key, key ? strlen(key) : 0, payload,
                                      len, errstr, sizeof(errstr)),
                     VG_OK);
    if (vg_producer_flush(E.producer, vg_test_timeout(10000), errstr, sizeof(errstr)) != VG_OK) {
        fprintf(stderr, "producing %zu bytes: %s\n", len, errstr);
        fail();
    }
    E.produced++;
}

/* A native event of Resource service `name` whose runtime is `runtime` (pages on "failed"). */
static void produce_event(const char *name, const char *runtime)
{
    char *json = vg_asprintf("{\"resource\":{\"type\":\"service\",\"name\":\"%s\",\"workspace\":"
                             "\"w\"},\"runtime\":\"%s\",\"time\":\"2026-11-28T10:00:00Z\"}",
                             name, runtime);
    produce(name, json, strlen(json));
    free(json);
}

static char *vigil_log(void)
{
    char *path = vg_asprintf("%s/vigil.err", E.dir);
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

static bool caught_up(void *arg)
{
    char errstr[256];
    int64_t off = -1;
    (void)arg;

    return vg_state_applied_offset(E.st, E.topic, 0, &off, errstr, sizeof(errstr)) == VG_OK &&
           off + 1 == E.produced;
}

static bool vigil_alive(void)
{
    int status;
    return waitpid(E.vigil, &status, WNOHANG) == 0;
}

static void wait_caught_up(void)
{
    if (!vg_test_wait_for(caught_up, NULL, 60000)) {
        fprintf(stderr, "vigil did not apply offset %lld (%s)\n", (long long)E.produced - 1,
                vigil_alive() ? "still running" : "exited");
        dump_log();
        fail();
    }
    assert_true(vigil_alive());
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

    assert_true(vg_test_wait_for(have_pages, &want, 30000));
    req = vg_http_receiver_request(E.rcv, i);
    body = cJSON_Parse(req->body);
    assert_non_null(body);
    assert_string_equal(
        cJSON_GetObjectItem(cJSON_GetObjectItem(body, "resource"), "id")->valuestring, id);
    cJSON_Delete(body);
    vg_http_request_free(req);
    free(id);
}

/* ---- the DLQ, read back with a plain librdkafka consumer ---------------- */

#define N_HDRS 7
static const char *const hdr_names[N_HDRS] = {
    "vigil.error",  "vigil.topic",     "vigil.partition",     "vigil.offset",
    "vigil.detail", "vigil.truncated", "vigil.original_bytes"};

struct dead {
    size_t len;
    char *payload;
    bool has[N_HDRS];
    char hdr[N_HDRS][256];
};

static size_t read_dlq(struct dead *out, size_t max)
{
    char msg[256];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_t *rk;
    rd_kafka_topic_partition_list_t *parts;
    size_t n = 0;
    int64_t deadline = vg_mono_ms() + vg_test_timeout(20000);

    assert_int_equal(rd_kafka_conf_set(conf, "bootstrap.servers", vg_mock_kafka_bootstraps(E.kafka),
                                       msg, sizeof(msg)),
                     RD_KAFKA_CONF_OK);
    assert_int_equal(rd_kafka_conf_set(conf, "enable.partition.eof", "true", msg, sizeof(msg)),
                     RD_KAFKA_CONF_OK);
    assert_int_equal(rd_kafka_conf_set(conf, "group.id", "dlq-reader", msg, sizeof(msg)),
                     RD_KAFKA_CONF_OK);
    rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, msg, sizeof(msg));
    assert_non_null(rk);
    parts = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(parts, E.dlq, 0)->offset = RD_KAFKA_OFFSET_BEGINNING;
    assert_int_equal(rd_kafka_assign(rk, parts), RD_KAFKA_RESP_ERR_NO_ERROR);
    rd_kafka_topic_partition_list_destroy(parts);
    for (;;) {
        rd_kafka_message_t *rkm = rd_kafka_consumer_poll(rk, 100);
        rd_kafka_headers_t *hdrs = NULL;

        assert_true(vg_mono_ms() < deadline);
        if (!rkm) {
            continue;
        }
        if (rkm->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            rd_kafka_message_destroy(rkm);
            break;
        }
        assert_int_equal(rkm->err, RD_KAFKA_RESP_ERR_NO_ERROR);
        assert_true(n < max);
        memset(&out[n], 0, sizeof(out[n]));
        out[n].len = rkm->len;
        out[n].payload = vg_malloc(rkm->len + 1);
        memcpy(out[n].payload, rkm->payload, rkm->len);
        out[n].payload[rkm->len] = '\0';
        if (rd_kafka_message_headers(rkm, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR) {
            for (int h = 0; h < N_HDRS; h++) {
                const void *v;
                size_t vlen;
                if (rd_kafka_header_get_last(hdrs, hdr_names[h], &v, &vlen) ==
                    RD_KAFKA_RESP_ERR_NO_ERROR) {
                    out[n].has[h] = true;
                    snprintf(out[n].hdr[h], sizeof(out[n].hdr[h]), "%.*s", (int)vlen,
                             (const char *)v);
                }
            }
        }
        n++;
        rd_kafka_message_destroy(rkm);
    }
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    return n;
}

/* The dead letter of topic offset `offset` (exactly one), or a test failure. */
static const struct dead *find_dead(const struct dead *dead, size_t n, int64_t offset)
{
    const struct dead *found = NULL;
    char off[24];

    snprintf(off, sizeof(off), "%lld", (long long)offset);
    for (size_t i = 0; i < n; i++) {
        if (!strcmp(dead[i].hdr[1], E.topic) && !strcmp(dead[i].hdr[3], off)) {
            assert_null(found);
            found = &dead[i];
        }
    }
    if (!found) {
        fprintf(stderr, "offset %s is not in the DLQ (%zu entries)\n", off, n);
    }
    assert_non_null(found);
    assert_string_equal(found->hdr[2], "0");
    return found;
}

static void free_dead(struct dead *dead, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(dead[i].payload);
    }
}

/* ---- /metrics ------------------------------------------------------------- */

/* "listening on http://127.0.0.1:PORT/" in vigil's log. */
static bool have_port(void *arg)
{
    char *text = vigil_log();
    const char *p = strstr(text, "listening on http://127.0.0.1:");
    int64_t port = 0;
    (void)arg;

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

/* ---- setup ---------------------------------------------------------------- */

static int setup(void **state)
{
    static char max_key[] = "message.max.bytes";
    static char max_value[] = "4000000";
    const struct vg_kv big[] = {{max_key, max_value}};
    char errstr[512];
    char *rules;
    char *url;
    char *cfg;
    char *out;
    char *err;
    (void)state;

    memset(&E, 0, sizeof(E));
    E.dir = vg_test_mkdtemp("dlq-large");
    E.topic = vg_asprintf("dlqbig.in.%d", (int)getpid());
    E.dlq = vg_asprintf("dlqbig.dlq.%d", (int)getpid());
    E.prefix = vg_asprintf("dlqbig%d", (int)getpid());
    if (vg_redis_child_start(&E.redis, E.dir, errstr, sizeof(errstr)) != VG_OK) {
        fprintf(stderr, "redis: %s\n", errstr);
        return -1;
    }
    if (vg_mock_kafka_start(&E.kafka, 1, errstr, sizeof(errstr)) != VG_OK ||
        vg_mock_kafka_create_topic(E.kafka, E.topic, 1, errstr, sizeof(errstr)) != VG_OK ||
        vg_mock_kafka_create_topic(E.kafka, E.dlq, 1, errstr, sizeof(errstr)) != VG_OK) {
        fprintf(stderr, "kafka: %s\n", errstr);
        return -1;
    }
    E.rcv = vg_http_receiver_start();
    if (!E.rcv) {
        return -1;
    }
    if (vg_producer_new(&E.producer, vg_mock_kafka_bootstraps(E.kafka), big, 1, errstr,
                        sizeof(errstr)) != VG_OK ||
        vg_state_connect(&E.st, vg_redis_child_url(E.redis), E.prefix, errstr, sizeof(errstr)) !=
            VG_OK) {
        fprintf(stderr, "%s\n", errstr);
        return -1;
    }
    rules = vg_asprintf("%s/k8s/rules.yaml", VG_FIXTURES);
    url = vg_http_receiver_url(E.rcv, "/hook");
    /* Default decode limits (1 MiB) and fetch sizes (fetch.message.max.bytes 1 MiB). */
    cfg = vg_asprintf("kafka:\n"
                      "  brokers: %s\n"
                      "  group: dlqbig-%d\n"
                      "  topics: [%s]\n"
                      "  dlq_topic: %s\n"
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
                      vg_mock_kafka_bootstraps(E.kafka), (int)getpid(), E.topic, E.dlq,
                      vg_redis_child_url(E.redis), E.prefix, rules, url);
    E.config = vg_asprintf("%s/vigil.yaml", E.dir);
    assert_true(vg_test_write_file(E.config, cfg, strlen(cfg)));
    free(rules);
    free(url);
    free(cfg);

    out = vg_asprintf("%s/vigil.out", E.dir);
    err = vg_asprintf("%s/vigil.err", E.dir);
    {
        char *argv[] = {(char *)vg_test_vigil_bin(), (char *)"run", (char *)"-c", E.config, NULL};
        E.vigil = vg_test_spawn(argv, out, err);
    }
    free(out);
    free(err);
    if (E.vigil <= 0 || !vg_test_wait_for(have_port, NULL, 20000)) {
        dump_log();
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    int rc = 0;
    (void)state;

    if (E.vigil > 0 && vg_test_stop(E.vigil, SIGTERM, 20000) != 0) {
        fprintf(stderr, "vigil did not exit cleanly\n");
        dump_log();
        rc = -1;
    }
    vg_producer_destroy(E.producer);
    vg_state_destroy(E.st);
    vg_http_receiver_stop(E.rcv);
    vg_mock_kafka_stop(E.kafka);
    vg_redis_child_stop(E.redis);
    vg_test_rmrf(E.dir);
    free(E.dir);
    free(E.topic);
    free(E.dlq);
    free(E.prefix);
    free(E.config);
    return rc;
}

/* ---- the test --------------------------------------------------------------- */

/* An invalid native event of `bytes` bytes: its message is over the 64 KiB text limit. */
static char *long_message_event(size_t bytes)
{
    static const char head[] = "{\"resource\":{\"type\":\"service\",\"name\":\"big\",\"workspace\":"
                               "\"w\"},\"runtime\":\"failed\",\"message\":\"";
    char *p = vg_malloc(bytes + 1);

    memcpy(p, head, strlen(head));
    memset(p + strlen(head), 'x', bytes - strlen(head) - 2);
    memcpy(p + bytes - 2, "\"}", 2);
    p[bytes] = '\0';
    return p;
}

static void test_too_large_for_the_dlq(void **state)
{
    char *one_mb = long_message_event(ONE_MB_BYTES);
    char *two_mb = vg_malloc(TWO_MB_BYTES);
    struct dead dead[16];
    const struct dead *d;
    size_t n;
    char want[24];
    char *log;
    char *metrics;
    (void)state;

    memset(two_mb, ' ', TWO_MB_BYTES);
    memcpy(two_mb, "{\"x\":1}", 7);

    /* 1. about 1 MB, under the decode limit: whole in the DLQ; then a valid event pages */
    produce("big", one_mb, ONE_MB_BYTES); /* offset 0 */
    produce_event("after-1mb", "failed"); /* offset 1 */
    wait_caught_up();
    assert_page(0, "after-1mb");

    /* 2. 2 MB, over the decode limit and fetch.message.max.bytes: cut in the DLQ */
    produce("huge", two_mb, TWO_MB_BYTES); /* offset 2 */
    produce_event("after-2mb", "failed");  /* offset 3 */
    wait_caught_up();
    assert_page(1, "after-2mb");

    /*
     * 3. the broker refuses a dead letter for its size once: sent again cut, arrives.
     * (The refusal is armed while vigil is stopped, so that it meets vigil's DLQ
     * producer and not this test's.)
     */
    assert_int_equal(kill(E.vigil, SIGSTOP), 0);
    produce("k3", "{\"refused\": once", 16);  /* offset 4 */
    produce_event("after-refusal", "failed"); /* offset 5 */
    vg_mock_kafka_refuse_size(E.kafka, 1);
    assert_int_equal(kill(E.vigil, SIGCONT), 0);
    wait_caught_up();
    assert_page(2, "after-refusal");

    /* 4. refused whole and cut: skipped, counted, an ERROR line; the partition goes on */
    assert_int_equal(kill(E.vigil, SIGSTOP), 0);
    produce("k4", "{\"refused\": twice", 17); /* offset 6 */
    produce_event("after-drop", "failed");    /* offset 7 */
    vg_mock_kafka_refuse_size(E.kafka, 2);
    assert_int_equal(kill(E.vigil, SIGCONT), 0);
    wait_caught_up();
    assert_page(3, "after-drop");

    n = read_dlq(dead, VG_ARRAY_LEN(dead));
    d = find_dead(dead, n, 0);
    assert_string_equal(d->hdr[0], "bad_field");
    assert_int_equal(d->len, ONE_MB_BYTES);
    assert_memory_equal(d->payload, one_mb, ONE_MB_BYTES);
    assert_false(d->has[5]); /* whole: no vigil.truncated */

    d = find_dead(dead, n, 2);
    assert_string_equal(d->hdr[0], "too_large");
    assert_true(d->has[4]);
    assert_string_equal(d->hdr[5], "true");
    snprintf(want, sizeof(want), "%d", TWO_MB_BYTES);
    assert_string_equal(d->hdr[6], want);
    assert_int_equal(d->len, CUT_BYTES);
    assert_memory_equal(d->payload, two_mb, CUT_BYTES);

    d = find_dead(dead, n, 4);
    assert_string_equal(d->hdr[0], "bad_json");
    assert_string_equal(d->hdr[5], "false"); /* sent again, but short enough to be whole */
    assert_string_equal(d->hdr[6], "16");
    assert_int_equal(d->len, 16);

    for (size_t i = 0; i < n; i++) {
        assert_string_not_equal(dead[i].hdr[3], "6"); /* the dropped one */
    }
    free_dead(dead, n);

    log = vigil_log();
    assert_non_null(strstr(log, " ERROR consumer: poison message skipped topic="));
    assert_non_null(strstr(log, " offset=6 reason=bad_json"));
    free(log);
    metrics = get_metrics();
    if (!strstr(metrics, "vigil_dead_letter_failures_total{reason=\"too_large\"} 1")) {
        fprintf(stderr, "metrics:\n%s\n", metrics);
        fail();
    }
    free(metrics);
    assert_true(vigil_alive());
    free(one_mb);
    free(two_mb);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_too_large_for_the_dlq, setup, teardown),
    };
    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
