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

#include "env.h"
#include "outbox.h"
#include "support.h"
#include "vigil/mem.h"
#include "vigil/util.h"

#define PARTITIONS 4
#define HOOK_SECRET "s3cr3t-t0ken"

static struct vg_test_env E;

static void produce(const char *type, const char *name, const char *ws, const char *status,
                    const char *runtime, const char *time)
{
    vg_test_env_produce(&E, type, name, ws, status, runtime, time, NULL);
}

static void produce_raw(const char *payload)
{
    vg_test_env_produce_raw(&E, 0, NULL, payload, strlen(payload));
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
static void assert_get(const char *id, const char *status, const char *runtime, const char *health)
{
    static const char *const args[] = {"get", "-o", "json", NULL};
    char *out = NULL;
    char *err = NULL;
    cJSON *arr;
    cJSON *it;
    bool seen = false;
    int rc = vg_test_env_cli(&E, &out, &err, args);

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

/* Everything produced is applied in Redis and the outbox is empty. */
static void wait_caught_up(void)
{
    assert_true(vg_test_env_wait_applied_exact(&E, 60000));
    assert_true(vg_test_outbox_wait_drained(&E, 60000));
}

static int setup(void **state)
{
    static const char *const secrets[] = {HOOK_SECRET, NULL};
    struct vg_test_env_opts o = {.partitions = PARTITIONS,
                                 .hook_path = "/hook/" HOOK_SECRET,
                                 .secrets = secrets,
                                 .rules_file = VG_FIXTURES "/e2e/rules.yaml"};

    (void)state;
    return vg_test_env_start(&E, "e2e", &o);
}

static int teardown(void **state)
{
    (void)state;
    return vg_test_env_stop(&E);
}

static void test_pages_and_restarts(void **state)
{
    cJSON *page;
    char *log;
    char *text;
    (void)state;

    /* Phase 1: a workflow fails, a service turns error, another workflow succeeds. */
    assert_true(vg_test_env_spawn(&E));
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
    assert_true(vg_test_env_flush(&E));
    assert_true(vg_test_env_wait_requests(&E, 2, 60000));
    wait_caught_up();
    assert_int_equal(vg_http_receiver_count(E.rcv), 2);

    page = find_page("firing", "workflow-failed", "workflow:v1:ingest-a:public");
    assert_transition(page, "runtime", "running", "failed");
    assert_string_equal(
        cJSON_GetObjectItem(cJSON_GetObjectItem(page, "incident"), "summary")->valuestring,
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
    assert_int_equal(vg_test_env_kill(&E, SIGTERM), 0);
    produce("workflow", "ingest-a", "public", NULL, "running", "2026-11-28T10:10:00Z");
    produce("workflow", "ingest-c", "public", "active", "failed", "2026-11-28T10:11:00Z");
    assert_true(vg_test_env_flush(&E));
    assert_true(vg_test_env_spawn(&E));
    assert_true(vg_test_env_wait_requests(&E, 4, 60000));
    wait_caught_up();
    assert_int_equal(vg_http_receiver_count(E.rcv), 4);
    page = find_page("resolved", "workflow-failed", "workflow:v1:ingest-a:public");
    assert_transition(page, "runtime", "failed", "running");
    assert_true(
        cJSON_IsString(cJSON_GetObjectItem(cJSON_GetObjectItem(page, "incident"), "resolved_at")));
    cJSON_Delete(page);
    page = find_page("firing", "workflow-failed", "workflow:v1:ingest-c:public");
    assert_transition(page, "runtime", NULL, "failed");
    cJSON_Delete(page);

    /* Phase 3: SIGKILL (no clean shutdown, no final commit), more events, restart. */
    assert_int_equal(vg_test_env_kill(&E, SIGKILL), 128 + SIGKILL);
    produce("workflow", "ingest-a", "public", NULL, "failed", "2026-11-28T10:20:00Z");
    produce("service", "api", "sandbox", "active", NULL, "2026-11-28T10:21:00Z");
    assert_true(vg_test_env_flush(&E));
    assert_true(vg_test_env_spawn(&E));
    assert_true(vg_test_env_wait_requests(&E, 6, 60000));
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
                !strcmp(
                    cJSON_GetObjectItem(cJSON_GetObjectItem(body, "resource"), "id")->valuestring,
                    "workflow:v1:ingest-a:public")) {
                if (firing_a++ == 0) {
                    snprintf(first_id, sizeof(first_id), "%s",
                             cJSON_GetObjectItem(inc, "id")->valuestring);
                } else {
                    assert_string_not_equal(first_id, cJSON_GetObjectItem(inc, "id")->valuestring);
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
    for (int r = 1; r <= E.runs; r++) {
        log = vg_test_env_log_path(&E, r);
        text = vg_test_read_file(log, NULL);
        assert_non_null(text);
        assert_false(vg_test_env_leaks(&E, text, log));
        /* invalid events were counted and logged with their position, not fatal */
        if (r == 1) {
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
