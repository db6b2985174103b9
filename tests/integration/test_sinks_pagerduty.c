/*
 * The pagerduty sink end to end against a receiver standing in for the
 * Events API v2 (url pointed at 127.0.0.1): every request is checked
 * against the documented event schema. A failing workflow triggers with
 * dedup_key = incident id, severity high -> error, custom_details with the
 * resource; its recovery resolves the same dedup_key. A grouped page is
 * one event per incident, and a 500 in the middle resumes at the incident
 * that failed. 429 with Retry-After is waited out; 400 is dead-lettered.
 * The routing key (a secret) appears nowhere but in the request.
 */
#include <cjson/cJSON.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "env.h"
#include "sinks_more_common.h"
#include "support.h"
#include "vigil/mem.h"
#include "vigil/util.h"

#define KEY "R0UT1NGKEY0123456789abcdefABCDEF"
#define OK_BODY "{\"status\":\"success\",\"message\":\"Event processed\",\"dedup_key\":\"x\"}"

static struct vg_test_env E;
static char *RULES;

static int start(bool grouped)
{
    struct vg_test_env_opts o = {
        .sinks =
            "  pd: {type: pagerduty, routing_key: \"${VIGIL_TEST_PD_KEY}\", "
            "url: \"${VIGIL_TEST_PD_URL}\", rate: 50/s, console_url: \"https://vigil.example\"}\n",
        .http = true,
    };
    struct vg_http_behaviour accepted = {.action = VG_HTTP_ANSWER, .status = 202, .body = OK_BODY};
    char *url;

    RULES = grouped ? sm_rules_grouped("pd") : sm_rules("pd");
    o.rules = RULES;
    if (vg_test_env_start(&E, "sinks-pd", &o) != 0) {
        return -1;
    }
    url = vg_http_receiver_url(E.rcv, "/v2/enqueue");
    setenv("VIGIL_TEST_PD_URL", url, 1);
    setenv("VIGIL_TEST_PD_KEY", KEY, 1);
    vg_free(url);
    vg_http_receiver_set_default(E.rcv, &accepted);
    return 0;
}

static int setup(void **state)
{
    (void)state;
    return start(false);
}

static int setup_grouped(void **state)
{
    (void)state;
    return start(true);
}

static int teardown(void **state)
{
    int rc;

    (void)state;
    rc = vg_test_env_stop(&E);
    vg_free(RULES);
    return rc;
}

static bool one_of(const char *s, const char *const *set)
{
    for (; *set; set++) {
        if (!strcmp(s, *set)) {
            return true;
        }
    }
    return false;
}

/*
 * The Events API v2 alert event as documented: the top-level keys it
 * knows, routing_key and event_action always, dedup_key (at most 255
 * characters), and for a trigger a payload with summary (at most 1024),
 * source, severity (critical, error, warning, info) and the optional
 * timestamp, component, group, class, custom_details.
 */
static cJSON *check_event(const struct vg_http_request *q)
{
    static const char *const top[] = {"routing_key", "event_action", "dedup_key",
                                      "payload",     "images",       "links",
                                      "client",      "client_url",   NULL};
    static const char *const in_payload[] = {"summary",   "source",         "severity",
                                             "timestamp", "component",      "group",
                                             "class",     "custom_details", NULL};
    static const char *const actions[] = {"trigger", "acknowledge", "resolve", NULL};
    static const char *const severities[] = {"critical", "error", "warning", "info", NULL};
    cJSON *j = cJSON_Parse(q->body);
    const cJSON *kv;
    const cJSON *action;
    const cJSON *dedup;
    const cJSON *payload;

    assert_string_equal(q->method, "POST");
    assert_string_equal(q->path, "/v2/enqueue");
    assert_non_null(strstr(vg_http_request_header(q, "content-type"), "application/json"));
    assert_true(cJSON_IsObject(j));
    cJSON_ArrayForEach(kv, j)
    {
        if (!one_of(kv->string, top)) {
            fail_msg("unknown top-level key \"%s\"", kv->string);
        }
    }
    assert_string_equal(cJSON_GetObjectItem(j, "routing_key")->valuestring, KEY);
    action = cJSON_GetObjectItem(j, "event_action");
    assert_true(cJSON_IsString(action) && one_of(action->valuestring, actions));
    dedup = cJSON_GetObjectItem(j, "dedup_key");
    assert_true(cJSON_IsString(dedup) && dedup->valuestring[0] &&
                strlen(dedup->valuestring) <= 255);
    payload = cJSON_GetObjectItem(j, "payload");
    if (strcmp(action->valuestring, "trigger") != 0) {
        assert_null(payload);
        return j;
    }
    assert_true(cJSON_IsObject(payload));
    cJSON_ArrayForEach(kv, payload)
    {
        if (!one_of(kv->string, in_payload)) {
            fail_msg("unknown payload key \"%s\"", kv->string);
        }
    }
    assert_true(cJSON_IsString(cJSON_GetObjectItem(payload, "summary")));
    assert_true(strlen(cJSON_GetObjectItem(payload, "summary")->valuestring) <= 1024);
    assert_true(cJSON_GetObjectItem(payload, "source")->valuestring[0]);
    assert_true(one_of(cJSON_GetObjectItem(payload, "severity")->valuestring, severities));
    if (cJSON_GetObjectItem(payload, "timestamp")) {
        const char *ts = cJSON_GetObjectItem(payload, "timestamp")->valuestring;
        int64_t ms;
        assert_true(vg_time_parse_rfc3339(ts, strlen(ts), &ms));
    }
    assert_true(cJSON_IsObject(cJSON_GetObjectItem(payload, "custom_details")));
    return j;
}

static const char *str_at(const cJSON *j, const char *a, const char *b, const char *c)
{
    const cJSON *v = cJSON_GetObjectItem(j, a);

    v = b ? cJSON_GetObjectItem(v, b) : v;
    v = c ? cJSON_GetObjectItem(v, c) : v;
    assert_true(cJSON_IsString(v));
    return v->valuestring;
}

static void test_trigger_and_resolve(void **state)
{
    struct vg_http_request *q;
    cJSON *j;
    cJSON *inc;
    char *out = NULL;
    char dedup[64];

    (void)state;
    assert_true(vg_test_env_spawn(&E));
    vg_test_env_produce(&E, "workflow", "ingestion-payments", "public", "active", "failed", NULL,
                        NULL);
    assert_true(vg_test_env_wait_requests(&E, 1, 60000));
    q = vg_http_receiver_request(E.rcv, 0);
    j = check_event(q);
    assert_string_equal(str_at(j, "event_action", NULL, NULL), "trigger");
    assert_string_equal(str_at(j, "payload", "severity", NULL), "error");
    assert_string_equal(str_at(j, "payload", "source", NULL),
                        "workflow:v1:ingestion-payments:public");
    assert_non_null(strstr(str_at(j, "payload", "summary", NULL), "ingestion-payments failed"));
    assert_string_equal(
        cJSON_GetObjectItem(
            cJSON_GetObjectItem(
                cJSON_GetObjectItem(cJSON_GetObjectItem(j, "payload"), "custom_details"),
                "resource"),
            "name")
            ->valuestring,
        "ingestion-payments");
    assert_string_equal(str_at(j, "client_url", NULL, NULL),
                        "https://vigil.example/resources/workflow:v1:ingestion-payments:public");
    snprintf(dedup, sizeof(dedup), "%s", str_at(j, "dedup_key", NULL, NULL));
    cJSON_Delete(j);
    vg_http_request_free(q);
    /* dedup_key is the incident id */
    assert_int_equal(
        vg_test_env_cli(&E, &out, NULL, (const char *const[]){"incidents", "-o", "json", NULL}), 0);
    j = cJSON_Parse(out);
    free(out);
    inc = cJSON_GetArrayItem(j, 0);
    assert_string_equal(cJSON_GetObjectItem(inc, "id")->valuestring, dedup);
    cJSON_Delete(j);

    vg_test_env_produce(&E, "workflow", "ingestion-payments", "public", "active", "succeeded", NULL,
                        NULL);
    assert_true(vg_test_env_wait_requests(&E, 2, 60000));
    q = vg_http_receiver_request(E.rcv, 1);
    j = check_event(q);
    assert_string_equal(str_at(j, "event_action", NULL, NULL), "resolve");
    assert_string_equal(str_at(j, "dedup_key", NULL, NULL), dedup);
    cJSON_Delete(j);
    vg_http_request_free(q);
    assert_true(vg_test_env_wait_quiet(&E, 30000));
    assert_int_equal(vg_http_receiver_count(E.rcv), 2);
    sm_assert_hidden(&E, KEY);
}

static void test_grouped_one_event_per_incident(void **state)
{
    struct vg_http_behaviour down = {.action = VG_HTTP_ANSWER, .status = 500};
    struct vg_http_behaviour accepted = {.action = VG_HTTP_ANSWER, .status = 202, .body = OK_BODY};
    char keys[4][64];

    (void)state;
    /* the second event of the group fails once */
    vg_http_receiver_push(E.rcv, &accepted);
    vg_http_receiver_push(E.rcv, &down);
    assert_true(vg_test_env_spawn(&E));
    vg_test_env_produce(&E, "workflow", "wf-a", "public", "active", "failed", NULL, NULL);
    vg_test_env_produce(&E, "workflow", "wf-b", "public", "active", "failed", NULL, NULL);
    vg_test_env_produce(&E, "workflow", "wf-c", "public", "active", "failed", NULL, NULL);
    assert_true(vg_test_env_wait_applied(&E, 60000));
    assert_true(vg_test_env_wait_requests(&E, 4, 60000));
    assert_true(vg_test_env_wait_quiet(&E, 30000));
    assert_int_equal(vg_http_receiver_count(E.rcv), 4);
    for (size_t i = 0; i < 4; i++) {
        struct vg_http_request *q = vg_http_receiver_request(E.rcv, i);
        cJSON *j = check_event(q);

        assert_string_equal(str_at(j, "event_action", NULL, NULL), "trigger");
        snprintf(keys[i], sizeof(keys[i]), "%s", str_at(j, "dedup_key", NULL, NULL));
        cJSON_Delete(j);
        vg_http_request_free(q);
    }
    /* one event per incident; the retry resumed at the incident that failed */
    assert_string_not_equal(keys[0], keys[1]);
    assert_string_equal(keys[1], keys[2]);
    assert_string_not_equal(keys[2], keys[3]);
    assert_string_not_equal(keys[0], keys[3]);
    sm_assert_hidden(&E, KEY);
}

static void test_rate_limit_and_rejection(void **state)
{
    struct vg_http_behaviour busy = {
        .action = VG_HTTP_ANSWER,
        .status = 429,
        .retry_after_s = 1,
        .body =
            "{\"status\":\"throttle event\",\"message\":\"Requests for this service are arriving "
            "too quickly.\"}"};
    struct vg_http_behaviour invalid = {
        .action = VG_HTTP_ANSWER,
        .status = 400,
        .body = "{\"status\":\"invalid event\",\"message\":\"Event object is invalid\","
                "\"errors\":[\"'routing_key' is invalid\"]}"};
    struct vg_http_request *a;
    struct vg_http_request *b;
    cJSON *dlq;

    (void)state;
    vg_http_receiver_push(E.rcv, &busy);
    assert_true(vg_test_env_spawn(&E));
    vg_test_env_produce(&E, "workflow", "wf-throttled", "public", "active", "failed", NULL, NULL);
    assert_true(vg_test_env_wait_requests(&E, 2, 60000));
    assert_true(vg_test_env_wait_quiet(&E, 30000));
    a = vg_http_receiver_request(E.rcv, 0);
    b = vg_http_receiver_request(E.rcv, 1);
    if (b->at_mono_ms - a->at_mono_ms < 990) {
        fail_msg("retried %lld ms after a 429 with Retry-After: 1",
                 (long long)(b->at_mono_ms - a->at_mono_ms));
    }
    assert_string_equal(a->body, b->body);
    vg_http_request_free(a);
    vg_http_request_free(b);

    vg_http_receiver_push(E.rcv, &invalid);
    vg_test_env_produce(&E, "workflow", "wf-invalid", "public", "active", "failed", NULL, NULL);
    assert_true(sm_wait_dlq(&E, 1, 60000));
    assert_int_equal(vg_http_receiver_count(E.rcv), 3);
    dlq = sm_dlq(&E);
    assert_int_equal(cJSON_GetArraySize(dlq), 1);
    assert_non_null(strstr(str_at(cJSON_GetArrayItem(dlq, 0), "reason", NULL, NULL), "HTTP 400"));
    assert_non_null(
        strstr(str_at(cJSON_GetArrayItem(dlq, 0), "response", NULL, NULL), "invalid event"));
    cJSON_Delete(dlq);
    sm_assert_hidden(&E, KEY);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_trigger_and_resolve, setup, teardown),
        cmocka_unit_test_setup_teardown(test_grouped_one_event_per_incident, setup_grouped,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_rate_limit_and_rejection, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
