/*
 * Events in, end to end: the real `vigil run` on a private redis-server and
 * librdkafka's mock cluster. A mixed topic (format auto) of native events,
 * Kubernetes pod watch events and Events, and one poison message of every
 * class, plus a native-format topic: the state is exactly right (runtime
 * from pods with its reason and pod, the Event as a log line, a late event
 * marked late), the page names reason and pod, and every poison message is
 * in the DLQ topic unchanged with its reason header, none missing, nothing
 * else. Then the DLQ refuses produces for a while: the batch is retried,
 * the poison message still arrives, nothing after it is lost. Also: a
 * native event dated far in the future is dead-lettered (future_time) and
 * does not freeze its Resource.
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
#include <unistd.h>

#include <cmocka.h>

#include "http_receiver.h"
#include "support.h"
#include "vigil/consumer.h"
#include "vigil/mem.h"
#include "vigil/state.h"
#include "vigil/util.h"

#define MIXED_PARTS 2
#define MAX_MSGS 64
#define POD_ID "workflow:v1:ingestion-delivery-events:public"
#define POD_NAME "ingestion-delivery-events-7d9f-x2"

struct sent {
    const char *topic;
    int32_t partition;
    int64_t offset;
    char *payload;
    size_t len;
    char *key;
    const char *reason; /* NULL: not poison */
};

struct env {
    char *dir;
    char *mixed;  /* format auto */
    char *native; /* format native */
    char *dlq;
    char *prefix;
    char *config;
    struct vg_redis_child *redis;
    struct vg_mock_kafka *kafka;
    struct vg_http_receiver *rcv;
    struct vg_producer *producer;
    struct vg_state *st;
    pid_t vigil;
    int runs;
    struct sent sent[MAX_MSGS];
    size_t n_sent;
    int64_t next_offset[3]; /* mixed p0, mixed p1, native p0 */
};

static struct env E;

static char *fixture(const char *name, size_t *len)
{
    char *path = vg_asprintf("%s/k8s/%s", VG_FIXTURES, name);
    char *text = vg_test_read_file(path, len);

    assert_non_null(text);
    free(path);
    return text;
}

static void send_raw(const char *topic, int32_t partition, const char *key, const char *payload,
                     size_t len, const char *reason)
{
    char errstr[256];
    struct sent *s = &E.sent[E.n_sent++];
    int slot = topic == E.native ? 2 : partition;

    assert_true(E.n_sent <= MAX_MSGS);
    assert_int_equal(vg_producer_send(E.producer, topic, partition, key, key ? strlen(key) : 0,
                                      payload, len, errstr, sizeof(errstr)),
                     VG_OK);
    s->topic = topic;
    s->partition = partition;
    s->offset = E.next_offset[slot]++;
    s->payload = vg_malloc(len + 1);
    memcpy(s->payload, payload, len);
    s->payload[len] = '\0';
    s->len = len;
    s->key = key ? vg_strdup(key) : NULL;
    s->reason = reason;
}

static void send_str(const char *topic, int32_t partition, const char *key, const char *payload,
                     const char *reason)
{
    send_raw(topic, partition, key, payload, strlen(payload), reason);
}

static void send_fixture(int32_t partition, const char *name)
{
    size_t len;
    char *text = fixture(name, &len);

    send_raw(E.mixed, partition, POD_NAME, text, len, NULL);
    free(text);
}

static void flush(void)
{
    char errstr[256];
    assert_int_equal(vg_producer_flush(E.producer, 10000, errstr, sizeof(errstr)), VG_OK);
}

static void start_vigil(void)
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

static bool caught_up(void *arg)
{
    char errstr[256];
    int64_t off = -1;
    (void)arg;

    for (int p = 0; p < MIXED_PARTS; p++) {
        if (vg_state_applied_offset(E.st, E.mixed, p, &off, errstr, sizeof(errstr)) != VG_OK ||
            off + 1 != E.next_offset[p]) {
            return false;
        }
    }
    return vg_state_applied_offset(E.st, E.native, 0, &off, errstr, sizeof(errstr)) == VG_OK &&
           off + 1 == E.next_offset[2];
}

static void wait_caught_up(void)
{
    if (!vg_test_wait_for(caught_up, NULL, 60000)) {
        char *log = vg_asprintf("%s/vigil-%d.err", E.dir, E.runs - 1);
        char *text = vg_test_read_file(log, NULL);
        fprintf(stderr, "vigil did not catch up; its log:\n%s\n", text ? text : "(none)");
        free(text);
        free(log);
        fail();
    }
}

/* ---- the DLQ, read back with a plain librdkafka consumer ---------------- */

struct dead {
    char *payload;
    size_t len;
    char *key;
    char hdr[4][256]; /* vigil.error, vigil.topic, vigil.partition, vigil.offset */
};

static size_t read_dlq(struct dead *out, size_t max)
{
    static const char *const names[4] = {"vigil.error", "vigil.topic", "vigil.partition",
                                         "vigil.offset"};
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
        out[n].payload = vg_malloc(rkm->len + 1);
        memcpy(out[n].payload, rkm->payload, rkm->len);
        out[n].payload[rkm->len] = '\0';
        out[n].len = rkm->len;
        if (rkm->key) {
            out[n].key = vg_strndup(rkm->key, rkm->key_len);
        }
        if (rd_kafka_message_headers(rkm, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR) {
            for (int h = 0; h < 4; h++) {
                const void *v;
                size_t vlen;
                if (rd_kafka_header_get_last(hdrs, names[h], &v, &vlen) ==
                    RD_KAFKA_RESP_ERR_NO_ERROR) {
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

/* Every poison message sent is in the DLQ (at least once: duplicates are allowed), nothing else. */
static void assert_dlq(size_t want_poison)
{
    struct dead dead[MAX_MSGS * 2];
    size_t n = read_dlq(dead, VG_ARRAY_LEN(dead));
    size_t poison = 0;

    for (size_t i = 0; i < E.n_sent; i++) {
        const struct sent *s = &E.sent[i];
        char part[16];
        char off[24];
        int hits = 0;

        snprintf(part, sizeof(part), "%d", (int)s->partition);
        snprintf(off, sizeof(off), "%lld", (long long)s->offset);
        for (size_t d = 0; d < n; d++) {
            if (!strcmp(dead[d].hdr[1], s->topic) && !strcmp(dead[d].hdr[2], part) &&
                !strcmp(dead[d].hdr[3], off)) {
                hits++;
                if (!s->reason || strcmp(dead[d].hdr[0], s->reason) != 0 || dead[d].len != s->len ||
                    memcmp(dead[d].payload, s->payload, s->len) != 0 ||
                    (s->key ? !dead[d].key || strcmp(dead[d].key, s->key) != 0 : !!dead[d].key)) {
                    fprintf(stderr, "DLQ entry for %s/%s/%s: reason %s (want %s), len %zu/%zu\n",
                            s->topic, part, off, dead[d].hdr[0], s->reason ? s->reason : "none",
                            dead[d].len, s->len);
                    fail();
                }
            }
        }
        if (s->reason) {
            poison++;
            if (hits < 1) {
                fprintf(stderr, "poison message %s/%s/%s (%s) missing from the DLQ\n", s->topic,
                        part, off, s->reason);
            }
            assert_true(hits >= 1);
        }
    }
    assert_int_equal(poison, want_poison);
    for (size_t d = 0; d < n; d++) {
        free(dead[d].payload);
        free(dead[d].key);
    }
    assert_true(n >= want_poison);
}

/* ---- setup ---------------------------------------------------------------- */

static int setup(void **state)
{
    char errstr[512];
    char *rules;
    char *url;
    char *cfg;
    (void)state;

    memset(&E, 0, sizeof(E));
    E.dir = vg_test_mkdtemp("events4");
    E.mixed = vg_asprintf("ev4.mixed.%d", (int)getpid());
    E.native = vg_asprintf("ev4.native.%d", (int)getpid());
    E.dlq = vg_asprintf("ev4.dlq.%d", (int)getpid());
    E.prefix = vg_asprintf("ev4%d", (int)getpid());
    if (vg_redis_child_start(&E.redis, E.dir, errstr, sizeof(errstr)) != VG_OK) {
        fprintf(stderr, "redis: %s\n", errstr);
        return -1;
    }
    if (vg_mock_kafka_start(&E.kafka, 1, errstr, sizeof(errstr)) != VG_OK ||
        vg_mock_kafka_create_topic(E.kafka, E.mixed, MIXED_PARTS, errstr, sizeof(errstr)) !=
            VG_OK ||
        vg_mock_kafka_create_topic(E.kafka, E.native, 1, errstr, sizeof(errstr)) != VG_OK ||
        vg_mock_kafka_create_topic(E.kafka, E.dlq, 1, errstr, sizeof(errstr)) != VG_OK) {
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
    rules = vg_asprintf("%s/k8s/rules.yaml", VG_FIXTURES);
    url = vg_http_receiver_url(E.rcv, "/hook");
    cfg = vg_asprintf("kafka:\n"
                      "  brokers: %s\n"
                      "  group: ev4-%d\n"
                      "  topics:\n"
                      "    - {name: %s, format: auto}\n"
                      "    - {name: %s, format: native}\n"
                      "  dlq_topic: %s\n"
                      "  batch_ms: 20\n"
                      "  properties: {session.timeout.ms: \"6000\", heartbeat.interval.ms: "
                      "\"500\"}\n"
                      "redis:\n"
                      "  url: %s\n"
                      "  prefix: %s\n"
                      "rules: [%s]\n"
                      "sinks:\n"
                      "  ops: {type: webhook, url: \"%s\", max_attempts: 20}\n"
                      "decode:\n"
                      "  limits: {max_message_bytes: 16384, max_labels: 16}\n",
                      vg_mock_kafka_bootstraps(E.kafka), (int)getpid(), E.mixed, E.native, E.dlq,
                      vg_redis_child_url(E.redis), E.prefix, rules, url);
    E.config = vg_asprintf("%s/vigil.yaml", E.dir);
    assert_true(vg_test_write_file(E.config, cfg, strlen(cfg)));
    free(rules);
    free(url);
    free(cfg);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    if (E.vigil > 0) {
        vg_test_stop(E.vigil, SIGTERM, 15000);
    }
    vg_producer_destroy(E.producer);
    vg_state_destroy(E.st);
    vg_http_receiver_stop(E.rcv);
    vg_mock_kafka_stop(E.kafka);
    vg_redis_child_stop(E.redis);
    vg_test_rmrf(E.dir);
    for (size_t i = 0; i < E.n_sent; i++) {
        free(E.sent[i].payload);
        free(E.sent[i].key);
    }
    free(E.dir);
    free(E.mixed);
    free(E.native);
    free(E.dlq);
    free(E.prefix);
    free(E.config);
    return 0;
}

/* ---- the test --------------------------------------------------------------- */

static char *many_labels(void)
{
    struct vg_buf b = {0};

    vg_buf_puts(&b, "{\"kind\":\"Pod\",\"metadata\":{\"name\":\"p-1\",\"labels\":{");
    for (int i = 0; i < 17; i++) {
        vg_buf_printf(&b, "%s\"l%d\":\"v\"", i ? "," : "", i);
    }
    vg_buf_puts(&b, "}}}");
    return vg_buf_steal(&b);
}

static struct vg_resource *get(const char *id)
{
    char errstr[256];
    struct vg_resource *res = NULL;

    assert_int_equal(vg_state_get(E.st, id, &res, errstr, sizeof(errstr)), VG_OK);
    if (!res) {
        fprintf(stderr, "resource %s not in redis\n", id);
    }
    assert_non_null(res);
    return res;
}

static const char *extra(const struct vg_history_entry *e, const char *name)
{
    for (size_t i = 0; i < e->n_extra; i++) {
        if (!strcmp(e->extra[2 * i], name)) {
            return e->extra[2 * i + 1];
        }
    }
    return NULL;
}

static bool have_pages(void *arg)
{
    return vg_http_receiver_count(E.rcv) >= *(size_t *)arg;
}

static void test_mixed_topic(void **state)
{
    static const char *const native_a_pending =
        "{\"resource\":{\"type\":\"workflow\",\"name\":\"ingest-a\",\"workspace\":\"public\","
        "\"owner\":\"iamgroot\"},\"status\":\"active\",\"runtime\":\"pending\","
        "\"time\":\"2026-11-28T10:00:00Z\"}";
    static const char *const native_a_running =
        "{\"resource\":{\"type\":\"workflow\",\"name\":\"ingest-a\",\"workspace\":\"public\"},"
        "\"runtime\":\"running\",\"time\":\"2026-11-28T10:01:00Z\"}";
    static const char *const native_api =
        "{\"resource\":{\"type\":\"service\",\"name\":\"api\",\"workspace\":\"sandbox\"},"
        "\"status\":\"active\",\"runtime\":\"running\",\"time\":\"2026-11-28T10:05:00Z\"}";
    static const char *const native_api_late =
        "{\"resource\":{\"type\":\"service\",\"name\":\"api\",\"workspace\":\"sandbox\"},"
        "\"runtime\":\"failed\",\"time\":\"2026-11-28T10:04:00Z\",\"message\":\"stale\"}";
    static const char *const native_b = "{\"resource\":{\"type\":\"job\",\"name\":\"b\","
                                        "\"workspace\":\"w\"},\"runtime\":\"succeeded\"}";
    static const char *const unknown_pod_event =
        "{\"kind\":\"Event\",\"involvedObject\":{\"kind\":\"Pod\",\"name\":\"ghost-1\","
        "\"namespace\":\"public\"},\"reason\":\"Pulled\",\"message\":\"pulled\"}";
    char *too_large = vg_malloc(20000);
    char *labels = many_labels();
    struct vg_resource *res;
    struct vg_history_entry *hist = NULL;
    size_t n_hist = 0;
    char errstr[256];
    size_t want_pages = 1;
    size_t poison = 0;
    bool saw_log = false;
    bool saw_late = false;
    (void)state;

    memset(too_large, ' ', 20000);
    memcpy(too_large, "{\"x\":1}", 7);

    /* partition 0: the pod's life, native events and poison interleaved */
    send_str(E.mixed, 0, "workflow:v1:ingest-a:public", native_a_pending, NULL);
    send_fixture(0, "watch-added-pending.json");
    send_str(E.mixed, 0, "k1", "{\"this is\": not json", "bad_json");
    send_fixture(0, "pod-running-multi.json");
    send_fixture(0, "event-backoff.json");     /* no labels: mapped through the pod link */
    send_fixture(0, "pod-no-name-label.json"); /* skipped, not dead-lettered */
    send_fixture(0, "event-node.json");        /* ignored */
    send_str(E.mixed, 0, NULL, unknown_pod_event, NULL); /* unknown pod: skipped */
    send_str(E.mixed, 0, "k2", "{\"kind\":\"Pod\",\"metadata\":{\"name\":\"p:1\"}}", "bad_field");
    send_fixture(0, "watch-modified-oomkilled.json");
    send_str(E.mixed, 0, "workflow:v1:ingest-a:public", native_a_running, NULL);
    send_str(E.mixed, 0, "k3",
             "{\"resource\":{\"type\":\"w\",\"name\":\"x\",\"workspace\":"
             "\"w\"},\"runtime\":\"exploded\"}",
             "bad_runtime");
    /* partition 1: more native events and the other poison classes */
    send_str(E.mixed, 1, "service:v1:api:sandbox", native_api, NULL);
    send_raw(E.mixed, 1, "k4", "{\"a\":\"\xc3\x28\"}", 10, "not_utf8");
    send_raw(E.mixed, 1, "k5", too_large, 20000, "too_large");
    send_str(E.mixed, 1, "k6", "[1,2,3]", "not_object");
    send_str(E.mixed, 1, "k7", "{\"status\":\"active\"}", "no_resource");
    send_str(E.mixed, 1, "k8", "{\"type\":\"ADDED\",\"object\":{\"kind\":\"Service\"}}",
             "bad_kind");
    send_str(E.mixed, 1, "k9", labels, "too_many_labels");
    send_str(E.mixed, 1, NULL,
             "{\"resource\":{\"type\":\"w\",\"name\":\"x\",\"workspace\":\"w\"},\"status\":"
             "\"active\",\"time\":\"noon\"}",
             "bad_time");
    send_str(E.mixed, 1, "service:v1:api:sandbox", native_api_late, NULL); /* late */
    send_str(E.mixed, 1, "k10",
             "{\"resource\":{\"type\":\"w\",\"name\":\"x\",\"workspace\":"
             "\"w\"},\"status\":\"paused\"}",
             "bad_status");
    send_str(E.mixed, 1, "k11",
             "{\"resource\":{\"type\":\"w\",\"name\":\"x\",\"workspace\":"
             "\"w\"}}",
             "no_signal");
    /* the native-format topic: a pod there is not an event */
    send_str(E.native, 0, "job:v1:b:w", native_b, NULL);

    {
        size_t len;
        char *text = fixture("pod-running-multi.json", &len);
        send_raw(E.native, 0, "pod", text, len, "no_resource");
        free(text);
    }
    flush();
    for (size_t i = 0; i < E.n_sent; i++) {
        poison += E.sent[i].reason ? 1 : 0;
    }

    start_vigil();
    wait_caught_up();

    /* runtime from pods, with the deciding pod and reason */
    res = get(POD_ID);
    assert_string_equal(res->runtime, "failed");
    assert_string_equal(res->status, "");
    assert_string_equal(res->owner, "iamgroot");
    assert_string_equal(res->runtime_reason, "OOMKilled");
    assert_string_equal(res->runtime_pod, POD_NAME);
    assert_int_equal(res->n_pods, 1);
    assert_string_equal(res->pods[0].name, POD_NAME);
    assert_string_equal(res->pods[0].phase, "Running");
    assert_int_equal(res->pods[0].n_containers, 2);
    assert_int_equal(res->pods[0].restarts, 1);
    vg_resource_destroy(res);
    res = get("workflow:v1:ingest-a:public");
    assert_string_equal(res->status, "active");
    assert_string_equal(res->runtime, "running");
    assert_string_equal(res->runtime_reason, "");
    vg_resource_destroy(res);
    res = get("service:v1:api:sandbox"); /* the late event moved nothing */
    assert_string_equal(res->runtime, "running");
    assert_null(res->message);
    vg_resource_destroy(res);
    res = get("job:v1:b:w");
    assert_string_equal(res->runtime, "succeeded");
    vg_resource_destroy(res);

    /* `vigil get ID -o json` shows the pods and what decided the runtime */
    {
        char *out = NULL;
        char *err = NULL;
        char *argv[] = {(char *)vg_test_vigil_bin(),
                        (char *)"get",
                        (char *)"-c",
                        E.config,
                        (char *)"-o",
                        (char *)"json",
                        (char *)POD_ID,
                        NULL};
        cJSON *obj;
        cJSON *pods;
        int rc = vg_test_run(argv, &out, &err);

        if (rc != 0) {
            fprintf(stderr, "vigil get %s: %d: %s\n", POD_ID, rc, err);
        }
        assert_int_equal(rc, 0);
        obj = cJSON_Parse(out);
        assert_non_null(obj);
        pods = cJSON_GetObjectItem(obj, "pods");
        assert_int_equal(cJSON_GetArraySize(pods), 1);
        assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(pods, 0), "name")->valuestring,
                            POD_NAME);
        assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(pods, 0), "reason")->valuestring,
                            "OOMKilled");
        assert_string_equal(cJSON_GetObjectItem(obj, "runtime_reason")->valuestring, "OOMKilled");
        assert_string_equal(cJSON_GetObjectItem(obj, "runtime_pod")->valuestring, POD_NAME);
        cJSON_Delete(obj);
        free(out);
        free(err);
    }

    /* the Event is a log line in the pod's Resource's history */
    assert_int_equal(vg_state_history(E.st, POD_ID, 0, &hist, &n_hist, errstr, sizeof(errstr)),
                     VG_OK);
    for (size_t i = 0; i < n_hist; i++) {
        if (!hist[i].field) {
            saw_log = true;
            assert_string_equal(extra(&hist[i], "reason"), "BackOff");
            assert_string_equal(extra(&hist[i], "count"), "5");
            assert_string_equal(extra(&hist[i], "pod"), POD_NAME);
            assert_non_null(strstr(hist[i].message, "Back-off restarting failed container"));
        } else if (!strcmp(hist[i].field, "runtime") && !strcmp(hist[i].to, "failed")) {
            assert_string_equal(extra(&hist[i], "reason"), "OOMKilled");
            assert_string_equal(extra(&hist[i], "pod"), POD_NAME);
        }
    }
    assert_true(saw_log);
    vg_history_free(hist, n_hist);
    /* the late event is in history, marked late */
    assert_int_equal(
        vg_state_history(E.st, "service:v1:api:sandbox", 0, &hist, &n_hist, errstr, sizeof(errstr)),
        VG_OK);
    for (size_t i = 0; i < n_hist; i++) {
        const char *late = extra(&hist[i], "late");
        if (late) {
            saw_late = true;
            assert_string_equal(late, "1");
            assert_string_equal(hist[i].field, "runtime");
            assert_string_equal(hist[i].from, "running");
            assert_string_equal(hist[i].to, "failed");
            assert_string_equal(hist[i].message, "stale");
        }
    }
    assert_true(saw_late);
    vg_history_free(hist, n_hist);

    /* the page says why and where */
    assert_true(vg_test_wait_for(have_pages, &want_pages, 30000));
    {
        struct vg_http_request *req = vg_http_receiver_request(E.rcv, 0);
        cJSON *body = cJSON_Parse(req->body);
        cJSON *tr = cJSON_GetObjectItem(body, "transition");

        assert_non_null(tr);
        assert_string_equal(
            cJSON_GetObjectItem(cJSON_GetObjectItem(body, "incident"), "summary")->valuestring,
            "OOMKilled in pod " POD_NAME);
        assert_string_equal(cJSON_GetObjectItem(tr, "reason")->valuestring, "OOMKilled");
        assert_string_equal(cJSON_GetObjectItem(tr, "pod")->valuestring, POD_NAME);
        cJSON_Delete(body);
        vg_http_request_free(req);
    }

    /* the DLQ: every poison message with its reason, unchanged, nothing else */
    assert_dlq(poison);
    {
        char *log = vg_asprintf("%s/vigil-0.err", E.dir);
        char *text = vg_test_read_file(log, NULL);
        assert_non_null(strstr(text, "reason=bad_json"));
        assert_non_null(strstr(text, "reason=too_many_labels"));
        free(text);
        free(log);
    }

    /* Phase 2: the DLQ refuses the next produces: the batch is retried, nothing lost. */
    assert_int_equal(vg_test_stop(E.vigil, SIGTERM, 20000), 0);
    E.vigil = 0;
    send_str(E.mixed, 1, "k12", "{\"poison\":", "bad_json");
    send_str(E.mixed, 1, "service:v1:api:sandbox",
             "{\"resource\":{\"type\":\"service\",\"name\":\"api\",\"workspace\":\"sandbox\"},"
             "\"status\":\"error\",\"time\":\"2026-11-28T10:10:00Z\"}",
             NULL);
    flush();
    vg_mock_kafka_fail_produce(E.kafka, 2);
    start_vigil();
    wait_caught_up();
    res = get("service:v1:api:sandbox");
    assert_string_equal(res->status, "error");
    vg_resource_destroy(res);
    assert_dlq(poison + 1);
    free(too_large);
    free(labels);
}

/* ---- event times are bounded ------------------------------------------------ */

/* "listening on http://127.0.0.1:PORT" in vigil's log, once the server is up. */
static bool have_port(void *arg)
{
    int *port = arg;
    char *log = vg_asprintf("%s/vigil-%d.err", E.dir, E.runs - 1);
    char *text = vg_test_read_file(log, NULL);
    const char *p = text ? strstr(text, "listening on http://127.0.0.1:") : NULL;
    int64_t v = 0;

    if (p) {
        char num[8] = "";
        p += strlen("listening on http://127.0.0.1:");
        snprintf(num, sizeof(num), "%.*s", (int)strspn(p, "0123456789"), p);
        if (vg_parse_i64(num, &v)) {
            *port = (int)v;
        }
    }
    free(text);
    free(log);
    return *port > 0;
}

/* GET /metrics on 127.0.0.1:port over a plain socket; the whole reply (NULL on failure). */
static char *get_metrics(int port)
{
    static const char req[] = "GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    struct vg_buf b = {0};
    char chunk[4096];
    ssize_t n;
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    assert_true(fd >= 0);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
        write(fd, req, sizeof(req) - 1) != (ssize_t)(sizeof(req) - 1)) {
        close(fd);
        return NULL;
    }
    while ((n = read(fd, chunk, sizeof(chunk))) > 0) {
        vg_buf_append(&b, chunk, (size_t)n);
    }
    close(fd);
    return vg_buf_steal(&b);
}

struct metric_want {
    int port;
    const char *line;
};

static bool metrics_have(void *arg)
{
    const struct metric_want *w = arg;
    char *text = get_metrics(w->port);
    bool ok = text && strstr(text, w->line);

    free(text);
    return ok;
}

/*
 * A native event dated 2999 is dead-lettered (vigil.error future_time),
 * counted in /metrics, and changes nothing: the real `runtime: failed`
 * after it is applied and pages. Before the bound, the 2999 event was
 * applied and every later real event was late: the Resource froze and
 * the failure never paged.
 */
static void test_future_event(void **state)
{
    char now_s[40];
    char before_s[40];
    char *running;
    char *future;
    char *failed;
    char *cfg;
    size_t cfg_len;
    struct vg_resource *res;
    struct vg_http_request *req;
    cJSON *body;
    size_t want_pages = 1;
    struct metric_want mw = {0, "vigil_decode_errors_total{reason=\"future_time\"} 1"};
    (void)state;

    /* the HTTP server on a free port, for /metrics */
    cfg = vg_test_read_file(E.config, &cfg_len);
    assert_non_null(cfg);
    {
        char *more = vg_asprintf("%shttp:\n  listen: 127.0.0.1:0\n", cfg);
        assert_true(vg_test_write_file(E.config, more, strlen(more)));
        free(more);
    }
    free(cfg);

    vg_time_format_rfc3339(vg_now_ms() - 60000, before_s, sizeof(before_s));
    vg_time_format_rfc3339(vg_now_ms(), now_s, sizeof(now_s));
    running = vg_asprintf("{\"resource\":{\"type\":\"service\",\"name\":\"clock\",\"workspace\":"
                          "\"w\"},\"status\":\"active\",\"runtime\":\"running\",\"time\":\"%s\"}",
                          before_s);
    future = vg_strdup("{\"resource\":{\"type\":\"service\",\"name\":\"clock\",\"workspace\":"
                       "\"w\"},\"runtime\":\"running\",\"time\":\"2999-01-01T00:00:00Z\"}");
    failed = vg_asprintf("{\"resource\":{\"type\":\"service\",\"name\":\"clock\",\"workspace\":"
                         "\"w\"},\"runtime\":\"failed\",\"time\":\"%s\",\"message\":\"exit 1\"}",
                         now_s);
    send_str(E.native, 0, "service:v1:clock:w", running, NULL);
    send_str(E.native, 0, "service:v1:clock:w", future, "future_time");
    send_str(E.native, 0, "service:v1:clock:w", failed, NULL);
    flush();

    start_vigil();
    wait_caught_up();

    /* the failure after the event from the future was applied... */
    res = get("service:v1:clock:w");
    assert_string_equal(res->runtime, "failed");
    assert_string_equal(res->message, "exit 1");
    assert_true(res->event_time_ms < vg_now_ms());
    vg_resource_destroy(res);
    /* ...and paged */
    assert_true(vg_test_wait_for(have_pages, &want_pages, 30000));
    req = vg_http_receiver_request(E.rcv, 0);
    body = cJSON_Parse(req->body);
    assert_non_null(body);
    assert_string_equal(
        cJSON_GetObjectItem(cJSON_GetObjectItem(body, "resource"), "id")->valuestring,
        "service:v1:clock:w");
    assert_string_equal(
        cJSON_GetObjectItem(cJSON_GetObjectItem(body, "transition"), "to")->valuestring, "failed");
    cJSON_Delete(body);
    vg_http_request_free(req);

    /* the event from the future is in the DLQ, unchanged, with its reason; nothing else is */
    assert_dlq(1);
    /* counted by reason in /metrics */
    assert_true(vg_test_wait_for(have_port, &mw.port, 20000));
    if (!vg_test_wait_for(metrics_have, &mw, 20000)) {
        char *text = get_metrics(mw.port);
        fprintf(stderr, "/metrics has no \"%s\":\n%s\n", mw.line, text ? text : "(none)");
        free(text);
        fail();
    }
    free(running);
    free(future);
    free(failed);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_mixed_topic, setup, teardown),
        cmocka_unit_test_setup_teardown(test_future_event, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
