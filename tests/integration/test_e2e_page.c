/*
 * End to end on real servers: a private redis-server, librdkafka's mock
 * cluster (in this process), a real HTTP receiver, and the real `vigil run`
 * binary as a child process. Asserts the exact pages received and the
 * state `vigil get -o json` shows; then stops vigil (SIGTERM, and later
 * SIGKILL), produces more, restarts it: nothing paged twice, nothing missed.
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

#include "http_receiver.h"
#include "support.h"
#include "vigil/consumer.h"
#include "vigil/mem.h"
#include "vigil/state.h"
#include "vigil/util.h"

#define PARTITIONS 4

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
    long long produced;
    int runs;
};

static struct env E;

static void produce(const char *type, const char *name, const char *ws, const char *status,
                    const char *runtime, const char *time)
{
    char errstr[256];
    char *key = vg_asprintf("%s:v1:%s:%s", type, name, ws);
    char *json = vg_asprintf("{\"resource\":{\"type\":\"%s\",\"name\":\"%s\",\"workspace\":\"%s\","
                             "\"owner\":\"iamgroot\"}%s%s%s%s%s%s,\"time\":\"%s\"}",
                             type, name, ws, status ? ",\"status\":\"" : "", status ? status : "",
                             status ? "\"" : "", runtime ? ",\"runtime\":\"" : "",
                             runtime ? runtime : "", runtime ? "\"" : "", time);
    assert_int_equal(vg_producer_send(E.producer, E.topic, -1, key, strlen(key), json,
                                      strlen(json), errstr, sizeof(errstr)),
                     VG_OK);
    E.produced++;
    free(key);
    free(json);
}

static void produce_raw(const char *payload)
{
    char errstr[256];
    assert_int_equal(vg_producer_send(E.producer, E.topic, 0, NULL, 0, payload, strlen(payload),
                                      errstr, sizeof(errstr)),
                     VG_OK);
    E.produced++;
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

/* Everything produced is applied in Redis and the outbox is empty. */
static bool caught_up(void *arg)
{
    char errstr[256];
    int64_t total = 0;
    int64_t backlog = -1;
    (void)arg;
    for (int p = 0; p < PARTITIONS; p++) {
        int64_t off = -1;
        if (vg_state_applied_offset(E.st, E.topic, p, &off, errstr, sizeof(errstr)) != VG_OK) {
            return false;
        }
        total += off + 1;
    }
    if (total != E.produced) {
        return false;
    }
    return vg_state_outbox_backlog(E.st, &backlog, errstr, sizeof(errstr)) == VG_OK &&
           backlog == 0;
}

struct count_arg {
    size_t want;
};

static bool have_requests(void *arg)
{
    struct count_arg *c = arg;
    return vg_http_receiver_count(E.rcv) >= c->want;
}

/* Find the received page for (status, monitor, resource id); asserts there is exactly one. */
static cJSON *find_page(const char *status, const char *monitor, const char *resource_id)
{
    cJSON *found = NULL;
    size_t n = vg_http_receiver_count(E.rcv);
    int hits = 0;
    for (size_t i = 0; i < n; i++) {
        struct vg_http_request *req = vg_http_receiver_request(E.rcv, i);
        cJSON *body = cJSON_Parse(req->body);
        cJSON *inc = cJSON_GetObjectItem(body, "incident");
        cJSON *res = cJSON_GetObjectItem(body, "resource");
        assert_non_null(body);
        if (!strcmp(cJSON_GetObjectItem(body, "status")->valuestring, status) &&
            !strcmp(cJSON_GetObjectItem(inc, "monitor")->valuestring, monitor) &&
            !strcmp(cJSON_GetObjectItem(res, "id")->valuestring, resource_id)) {
            /* the idempotency key is the page id */
            const char *key = vg_http_request_header(req, "idempotency-key");
            assert_non_null(key);
            assert_non_null(strstr(key, cJSON_GetObjectItem(inc, "id")->valuestring));
            hits++;
            cJSON_Delete(found);
            found = body;
        } else {
            cJSON_Delete(body);
        }
        vg_http_request_free(req);
    }
    if (hits != 1) {
        fprintf(stderr, "expected exactly one %s page of %s for %s, got %d\n", status, monitor,
                resource_id, hits);
    }
    assert_int_equal(hits, 1);
    return found;
}

static void assert_transition(cJSON *page, const char *field, const char *from, const char *to)
{
    cJSON *t = cJSON_GetObjectItem(page, "transition");
    assert_string_equal(cJSON_GetObjectItem(page, "version")->valuestring, "1");
    assert_string_equal(cJSON_GetObjectItem(t, "field")->valuestring, field);
    if (from) {
        assert_string_equal(cJSON_GetObjectItem(t, "from")->valuestring, from);
    } else {
        assert_true(cJSON_IsNull(cJSON_GetObjectItem(t, "from")));
    }
    assert_string_equal(cJSON_GetObjectItem(t, "to")->valuestring, to);
}

/* `vigil get -o json` -> the entry for `id` must have these status/runtime/health. */
static void assert_get(const char *id, const char *status, const char *runtime,
                       const char *health)
{
    char *out = NULL;
    char *err = NULL;
    char *argv[] = {(char *)vg_test_vigil_bin(), (char *)"get", (char *)"-c", E.config,
                    (char *)"-o", (char *)"json", NULL};
    cJSON *arr;
    cJSON *it;
    bool seen = false;
    int rc = vg_test_run(argv, &out, &err);
    if (rc != 0) {
        fprintf(stderr, "vigil get failed (%d): %s\n", rc, err);
    }
    assert_int_equal(rc, 0);
    arr = cJSON_Parse(out);
    assert_true(cJSON_IsArray(arr));
    cJSON_ArrayForEach(it, arr)
    {
        if (!strcmp(cJSON_GetObjectItem(it, "id")->valuestring, id)) {
            seen = true;
            assert_string_equal(cJSON_GetObjectItem(it, "status")->valuestring, status);
            assert_string_equal(cJSON_GetObjectItem(it, "runtime")->valuestring, runtime);
            assert_string_equal(cJSON_GetObjectItem(it, "health")->valuestring, health);
            assert_string_equal(cJSON_GetObjectItem(it, "owner")->valuestring, "iamgroot");
            assert_true(cJSON_IsString(cJSON_GetObjectItem(it, "updated_at")));
        }
    }
    if (!seen) {
        fprintf(stderr, "%s not in vigil get output:\n%s\n", id, out);
    }
    assert_true(seen);
    cJSON_Delete(arr);
    free(out);
    free(err);
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

static int setup(void **state)
{
    char errstr[512];
    char *rules;
    char *url;
    char *cfg;
    (void)state;
    memset(&E, 0, sizeof(E));
    E.dir = vg_test_mkdtemp("e2e");
    E.topic = vg_asprintf("e2e.events.%d", (int)getpid());
    E.prefix = vg_asprintf("e2e%d", (int)getpid());
    if (vg_redis_child_start(&E.redis, E.dir, errstr, sizeof(errstr)) != VG_OK) {
        fprintf(stderr, "redis: %s\n", errstr);
        return -1;
    }
    if (vg_mock_kafka_start(&E.kafka, 1, errstr, sizeof(errstr)) != VG_OK ||
        vg_mock_kafka_create_topic(E.kafka, E.topic, PARTITIONS, errstr, sizeof(errstr)) !=
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
    rules = vg_asprintf("%s/e2e/rules.yaml", VG_FIXTURES);
    url = vg_http_receiver_url(E.rcv, "/hook/s3cr3t-t0ken");
    cfg = vg_asprintf("kafka:\n"
                      "  brokers: %s\n"
                      "  group: e2e-%d\n"
                      "  topics: [%s]\n"
                      "  batch_ms: 20\n"
                      "  properties: {session.timeout.ms: \"6000\", heartbeat.interval.ms: "
                      "\"500\"}\n"
                      "redis:\n"
                      "  url: %s\n"
                      "  prefix: %s\n"
                      "rules: [%s]\n"
                      "sinks:\n"
                      "  ops: {type: webhook, url: \"${E2E_HOOK_URL}\", max_attempts: 20}\n",
                      vg_mock_kafka_bootstraps(E.kafka), (int)getpid(), E.topic,
                      vg_redis_child_url(E.redis), E.prefix, rules);
    setenv("E2E_HOOK_URL", url, 1);
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
    free(E.dir);
    free(E.topic);
    free(E.prefix);
    free(E.config);
    return 0;
}

static void test_pages_and_restarts(void **state)
{
    struct count_arg want;
    cJSON *page;
    char *log;
    char *text;
    (void)state;

    /* Phase 1: a workflow fails, a service turns error, another workflow succeeds. */
    start_vigil();
    produce("workflow", "ingest-a", "public", "active", "pending", "2026-11-28T10:00:00Z");
    produce("workflow", "ingest-b", "public", "active", "pending", "2026-11-28T10:00:00Z");
    produce("service", "api", "sandbox", "active", "running", "2026-11-28T10:00:00Z");
    produce("workflow", "ingest-a", "public", NULL, "running", "2026-11-28T10:01:00Z");
    produce("workflow", "ingest-b", "public", NULL, "running", "2026-11-28T10:01:00Z");
    produce_raw("{\"this is\": not json");
    produce_raw("{\"resource\":{\"type\":\"workflow\",\"name\":\"x\",\"workspace\":\"w\"},"
                "\"runtime\":\"exploded\"}");
    produce("workflow", "ingest-a", "public", NULL, "failed", "2026-11-28T10:02:00Z");
    produce("workflow", "ingest-b", "public", NULL, "succeeded", "2026-11-28T10:03:00Z");
    produce("service", "api", "sandbox", "error", NULL, "2026-11-28T10:04:00Z");
    flush();
    want.want = 2;
    assert_true(vg_test_wait_for(have_requests, &want, 60000));
    wait_caught_up();
    assert_int_equal(vg_http_receiver_count(E.rcv), 2);

    page = find_page("firing", "workflow-failed", "workflow:v1:ingest-a:public");
    assert_transition(page, "runtime", "running", "failed");
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(page, "incident"), "summary")
                            ->valuestring,
                        "ingest-a failed in public");
    assert_string_equal(
        cJSON_GetObjectItem(cJSON_GetObjectItem(page, "resource"), "health")->valuestring,
        "unhealthy");
    cJSON_Delete(page);
    page = find_page("firing", "resource-error", "service:v1:api:sandbox");
    assert_transition(page, "status", "active", "error");
    cJSON_Delete(page);

    assert_get("workflow:v1:ingest-a:public", "active", "failed", "unhealthy");
    assert_get("workflow:v1:ingest-b:public", "active", "succeeded", "healthy");
    assert_get("service:v1:api:sandbox", "error", "running", "unhealthy");

    /* Phase 2: clean stop; events arrive while vigil is down; restart. */
    assert_int_equal(vg_test_stop(E.vigil, SIGTERM, 20000), 0);
    E.vigil = 0;
    produce("workflow", "ingest-a", "public", NULL, "running", "2026-11-28T10:10:00Z");
    produce("workflow", "ingest-c", "public", "active", "failed", "2026-11-28T10:11:00Z");
    flush();
    start_vigil();
    want.want = 4;
    assert_true(vg_test_wait_for(have_requests, &want, 60000));
    wait_caught_up();
    assert_int_equal(vg_http_receiver_count(E.rcv), 4);
    page = find_page("resolved", "workflow-failed", "workflow:v1:ingest-a:public");
    assert_transition(page, "runtime", "failed", "running");
    assert_true(cJSON_IsString(
        cJSON_GetObjectItem(cJSON_GetObjectItem(page, "incident"), "resolved_at")));
    cJSON_Delete(page);
    page = find_page("firing", "workflow-failed", "workflow:v1:ingest-c:public");
    assert_transition(page, "runtime", NULL, "failed");
    cJSON_Delete(page);

    /* Phase 3: SIGKILL (no clean shutdown, no final commit), more events, restart. */
    assert_int_equal(vg_test_stop(E.vigil, SIGKILL, 5000), 128 + SIGKILL);
    E.vigil = 0;
    produce("workflow", "ingest-a", "public", NULL, "failed", "2026-11-28T10:20:00Z");
    produce("service", "api", "sandbox", "active", NULL, "2026-11-28T10:21:00Z");
    flush();
    start_vigil();
    want.want = 6;
    assert_true(vg_test_wait_for(have_requests, &want, 60000));
    wait_caught_up();
    assert_int_equal(vg_http_receiver_count(E.rcv), 6);
    /* a new episode of the same monitor on the same Resource: a new incident id */
    {
        size_t n = vg_http_receiver_count(E.rcv);
        int firing_a = 0;
        char first_id[64] = "";
        for (size_t i = 0; i < n; i++) {
            struct vg_http_request *req = vg_http_receiver_request(E.rcv, i);
            cJSON *body = cJSON_Parse(req->body);
            cJSON *inc = cJSON_GetObjectItem(body, "incident");
            if (!strcmp(cJSON_GetObjectItem(body, "status")->valuestring, "firing") &&
                !strcmp(cJSON_GetObjectItem(cJSON_GetObjectItem(body, "resource"), "id")
                            ->valuestring,
                        "workflow:v1:ingest-a:public")) {
                if (firing_a++ == 0) {
                    snprintf(first_id, sizeof(first_id), "%s",
                             cJSON_GetObjectItem(inc, "id")->valuestring);
                } else {
                    assert_string_not_equal(first_id,
                                            cJSON_GetObjectItem(inc, "id")->valuestring);
                }
            }
            cJSON_Delete(body);
            vg_http_request_free(req);
        }
        assert_int_equal(firing_a, 2);
    }
    page = find_page("resolved", "resource-error", "service:v1:api:sandbox");
    assert_transition(page, "status", "error", "active");
    cJSON_Delete(page);
    assert_get("workflow:v1:ingest-c:public", "active", "failed", "unhealthy");
    assert_get("service:v1:api:sandbox", "active", "running", "healthy");

    /* The webhook URL is a secret: it never appears in vigil's output. */
    for (int r = 0; r < E.runs; r++) {
        log = vg_asprintf("%s/vigil-%d.err", E.dir, r);
        text = vg_test_read_file(log, NULL);
        assert_non_null(text);
        assert_null(strstr(text, "s3cr3t-t0ken"));
        /* invalid events were counted and logged with their position, not fatal */
        if (r == 0) {
            assert_non_null(strstr(text, "reason=bad_json"));
            assert_non_null(strstr(text, "reason=bad_runtime"));
        }
        free(text);
        free(log);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_pages_and_restarts, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
