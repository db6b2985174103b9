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
#include <cjson/cJSON.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "dlq_reader.h"
#include "env.h"
#include "support.h"
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

static struct vg_test_env E; /* the event topic is the mixed one (format auto) */
static const char *native;   /* format native: E.more_topic[0] */
static struct sent sent[MAX_MSGS];
static size_t n_sent;
static int64_t next_offset[3]; /* mixed p0, mixed p1, native p0 */

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
    struct sent *s = &sent[n_sent++];
    int slot = topic == native ? 2 : partition;

    assert_true(n_sent <= MAX_MSGS);
    vg_test_env_produce_to(&E, topic, partition, key, payload, len);
    s->topic = topic;
    s->partition = partition;
    s->offset = next_offset[slot]++;
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

    send_raw(E.topic, partition, POD_NAME, text, len, NULL);
    free(text);
}

static void wait_caught_up(void)
{
    assert_true(vg_test_env_wait_applied_exact(&E, 60000));
}

/* Every poison message sent is in the DLQ (at least once: duplicates are allowed), nothing else. */
static void assert_dlq(size_t want_poison)
{
    struct vg_test_dead_letter *dead;
    size_t n;
    size_t poison = 0;

    assert_true(vg_test_env_read_dlq(&E, &dead, &n));
    for (size_t i = 0; i < n_sent; i++) {
        const struct sent *s = &sent[i];
        char part[16];
        char off[24];
        int hits = 0;

        snprintf(part, sizeof(part), "%d", (int)s->partition);
        snprintf(off, sizeof(off), "%lld", (long long)s->offset);
        for (size_t d = 0; d < n; d++) {
            const char *reason = vg_test_dead_letter_header(&dead[d], "vigil.error");

            if (vg_test_dead_letter_header_is(&dead[d], "vigil.topic", s->topic) &&
                vg_test_dead_letter_header_is(&dead[d], "vigil.partition", part) &&
                vg_test_dead_letter_header_is(&dead[d], "vigil.offset", off)) {
                hits++;
                if (!s->reason || !reason || strcmp(reason, s->reason) != 0 ||
                    dead[d].len != s->len || memcmp(dead[d].payload, s->payload, s->len) != 0 ||
                    (s->key ? !dead[d].key || strcmp(dead[d].key, s->key) != 0 : !!dead[d].key)) {
                    fprintf(stderr, "DLQ entry for %s/%s/%s: reason %s (want %s), len %zu/%zu\n",
                            s->topic, part, off, reason ? reason : "none",
                            s->reason ? s->reason : "none", dead[d].len, s->len);
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
    vg_test_dead_letters_free(dead, n);
    assert_true(n >= want_poison);
}

/* ---- setup ---------------------------------------------------------------- */

static int setup(void **state)
{
    struct vg_test_env_opts o = {
        .partitions = MIXED_PARTS,
        .topic_format = "auto",
        .more_topics = {{.suffix = "native", .partitions = 1, .format = "native"}},
        .extra = "decode:\n  limits: {max_message_bytes: 16384, max_labels: 16}\n",
        .rules_file = VG_FIXTURES "/k8s/rules.yaml",
    };
    int rc;

    (void)state;
    n_sent = 0;
    memset(next_offset, 0, sizeof(next_offset));
    rc = vg_test_env_start(&E, "events-dlq", &o);
    native = E.more_topic[0];
    return rc;
}

static int teardown(void **state)
{
    (void)state;
    for (size_t i = 0; i < n_sent; i++) {
        free(sent[i].payload);
        free(sent[i].key);
    }
    return vg_test_env_stop(&E);
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
    size_t poison = 0;
    bool saw_log = false;
    bool saw_late = false;
    (void)state;

    memset(too_large, ' ', 20000);
    memcpy(too_large, "{\"x\":1}", 7);

    /* partition 0: the pod's life, native events and poison interleaved */
    send_str(E.topic, 0, "workflow:v1:ingest-a:public", native_a_pending, NULL);
    send_fixture(0, "watch-added-pending.json");
    send_str(E.topic, 0, "k1", "{\"this is\": not json", "bad_json");
    send_fixture(0, "pod-running-multi.json");
    send_fixture(0, "event-backoff.json");     /* no labels: mapped through the pod link */
    send_fixture(0, "pod-no-name-label.json"); /* skipped, not dead-lettered */
    send_fixture(0, "event-node.json");        /* ignored */
    send_str(E.topic, 0, NULL, unknown_pod_event, NULL); /* unknown pod: skipped */
    send_str(E.topic, 0, "k2", "{\"kind\":\"Pod\",\"metadata\":{\"name\":\"p:1\"}}", "bad_field");
    send_fixture(0, "watch-modified-oomkilled.json");
    send_str(E.topic, 0, "workflow:v1:ingest-a:public", native_a_running, NULL);
    send_str(E.topic, 0, "k3",
             "{\"resource\":{\"type\":\"w\",\"name\":\"x\",\"workspace\":"
             "\"w\"},\"runtime\":\"exploded\"}",
             "bad_runtime");
    /* partition 1: more native events and the other poison classes */
    send_str(E.topic, 1, "service:v1:api:sandbox", native_api, NULL);
    send_raw(E.topic, 1, "k4", "{\"a\":\"\xc3\x28\"}", 10, "not_utf8");
    send_raw(E.topic, 1, "k5", too_large, 20000, "too_large");
    send_str(E.topic, 1, "k6", "[1,2,3]", "not_object");
    send_str(E.topic, 1, "k7", "{\"status\":\"active\"}", "no_resource");
    send_str(E.topic, 1, "k8", "{\"type\":\"ADDED\",\"object\":{\"kind\":\"Service\"}}",
             "bad_kind");
    send_str(E.topic, 1, "k9", labels, "too_many_labels");
    send_str(E.topic, 1, NULL,
             "{\"resource\":{\"type\":\"w\",\"name\":\"x\",\"workspace\":\"w\"},\"status\":"
             "\"active\",\"time\":\"noon\"}",
             "bad_time");
    send_str(E.topic, 1, "service:v1:api:sandbox", native_api_late, NULL); /* late */
    send_str(E.topic, 1, "k10",
             "{\"resource\":{\"type\":\"w\",\"name\":\"x\",\"workspace\":"
             "\"w\"},\"status\":\"paused\"}",
             "bad_status");
    send_str(E.topic, 1, "k11",
             "{\"resource\":{\"type\":\"w\",\"name\":\"x\",\"workspace\":"
             "\"w\"}}",
             "no_signal");
    /* the native-format topic: a pod there is not an event */
    send_str(native, 0, "job:v1:b:w", native_b, NULL);

    {
        size_t len;
        char *text = fixture("pod-running-multi.json", &len);
        send_raw(native, 0, "pod", text, len, "no_resource");
        free(text);
    }
    assert_true(vg_test_env_flush(&E));
    for (size_t i = 0; i < n_sent; i++) {
        poison += sent[i].reason ? 1 : 0;
    }

    assert_true(vg_test_env_spawn(&E));
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
    assert_null(res->runtime_reason);
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
        static const char *const args[] = {"get", "-o", "json", POD_ID, NULL};
        cJSON *obj;
        cJSON *pods;
        int rc = vg_test_env_cli(&E, &out, &err, args);

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
    assert_true(vg_test_env_wait_requests(&E, 1, 30000));
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
        char *log = vg_test_env_log_path(&E, 1);
        char *text = vg_test_read_file(log, NULL);
        assert_non_null(strstr(text, "reason=bad_json"));
        assert_non_null(strstr(text, "reason=too_many_labels"));
        free(text);
        free(log);
    }

    /* Phase 2: the DLQ refuses the next produces: the batch is retried, nothing lost. */
    assert_int_equal(vg_test_env_kill(&E, SIGTERM), 0);
    send_str(E.topic, 1, "k12", "{\"poison\":", "bad_json");
    send_str(E.topic, 1, "service:v1:api:sandbox",
             "{\"resource\":{\"type\":\"service\",\"name\":\"api\",\"workspace\":\"sandbox\"},"
             "\"status\":\"error\",\"time\":\"2026-11-28T10:10:00Z\"}",
             NULL);
    assert_true(vg_test_env_flush(&E));
    vg_mock_kafka_fail_produce(E.kafka, 2);
    assert_true(vg_test_env_spawn(&E));
    wait_caught_up();
    res = get("service:v1:api:sandbox");
    assert_string_equal(res->status, "error");
    vg_resource_destroy(res);
    assert_dlq(poison + 1);
    free(too_large);
    free(labels);
}

/* ---- event times are bounded ------------------------------------------------ */

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
    struct vg_resource *res;
    struct vg_http_request *req;
    cJSON *body;
    static const char series[] = "vigil_decode_errors_total{reason=\"future_time\"}";
    (void)state;

    /* the HTTP server on a free port, for /metrics */
    E.opts.http = true;
    vg_test_env_write_config(&E);

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
    send_str(native, 0, "service:v1:clock:w", running, NULL);
    send_str(native, 0, "service:v1:clock:w", future, "future_time");
    send_str(native, 0, "service:v1:clock:w", failed, NULL);
    assert_true(vg_test_env_flush(&E));

    assert_true(vg_test_env_spawn(&E));
    wait_caught_up();

    /* the failure after the event from the future was applied... */
    res = get("service:v1:clock:w");
    assert_string_equal(res->runtime, "failed");
    assert_string_equal(res->message, "exit 1");
    assert_true(res->event_time_ms < vg_now_ms());
    vg_resource_destroy(res);
    /* ...and paged */
    assert_true(vg_test_env_wait_requests(&E, 1, 30000));
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
    assert_true(vg_test_env_wait_metric(&E, series, 1, 20000));
    assert_int_equal(vg_test_env_metric(&E, series), 1);
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
