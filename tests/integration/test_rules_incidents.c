/*
 * Incidents and silences through the CLI against a running `vigil run`:
 * `resolve: never` stays firing until `vigil incidents resolve ID`, which
 * sends the resolved page; `vigil incidents -o json` shows the records; a
 * silenced incident is recorded but not paged, and pages once `vigil
 * silence expire` ends the silence.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <cmocka.h>

#include "env.h"
#include "support.h"
#include "vigil/mem.h"
#include "vigil/state.h"

static struct vg_test_env E;

static const char rules[] = "monitors:\n"
                            "  - name: cluster-error\n"
                            "    match: {type: cluster}\n"
                            "    when: {status: {to: error}}\n"
                            "    severity: critical\n"
                            "    resolve: never\n"
                            "  - name: job-failed\n"
                            "    match: {type: job}\n"
                            "    when: {runtime: {to: failed}}\n"
                            "    severity: high\n"
                            "pagers:\n"
                            "  - name: ops\n"
                            "    sinks: [ops]\n";

static struct vg_test_env_case C = {&E, "rules-incidents", {.rules = rules}};

/* The record of `monitor` from `vigil incidents -o json` (caller deletes the array). */
static cJSON *incident_of(cJSON **arr, const char *monitor)
{
    char *out = NULL;
    cJSON *it;

    assert_int_equal(
        vg_test_env_cli(&E, &out, NULL, (const char *const[]){"incidents", "-o", "json", NULL}), 0);
    *arr = cJSON_Parse(out);
    assert_true(cJSON_IsArray(*arr));
    free(out);
    cJSON_ArrayForEach(it, *arr)
    {
        if (!strcmp(cJSON_GetObjectItem(it, "monitor")->valuestring, monitor)) {
            return it;
        }
    }
    return NULL;
}

static void test_resolve_and_silence(void **state)
{
    size_t want = 1;
    cJSON *arr;
    cJSON *rec;
    cJSON *body;
    char id[64];
    char sid[64];
    char *out = NULL;

    (void)state;
    assert_true(vg_test_env_spawn(&E));
    vg_test_env_produce(&E, "cluster", "c1", "prod", "error", "running", NULL, NULL);
    assert_true(vg_test_env_wait_requests(&E, want, 60000));

    rec = incident_of(&arr, "cluster-error");
    assert_non_null(rec);
    assert_string_equal(cJSON_GetObjectItem(rec, "state")->valuestring, "firing");
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(rec, "resolve_never")));
    snprintf(id, sizeof(id), "%s", cJSON_GetObjectItem(rec, "id")->valuestring);
    cJSON_Delete(arr);

    /* It recovers: still firing (resolve: never). */
    vg_test_env_produce(&E, "cluster", "c1", "prod", "active", "running", NULL, NULL);
    assert_true(vg_test_env_wait_applied(&E, 60000));
    rec = incident_of(&arr, "cluster-error");
    assert_string_equal(cJSON_GetObjectItem(rec, "state")->valuestring, "firing");
    cJSON_Delete(arr);

    /* A human resolves it. */
    assert_int_equal(
        vg_test_env_cli(&E, &out, NULL, (const char *const[]){"incidents", "resolve", id, NULL}),
        0);
    free(out);
    want = 2;
    assert_true(vg_test_env_wait_requests(&E, want, 30000));
    body = vg_test_env_request_json(&E, 1);
    assert_non_null(body);
    assert_string_equal(cJSON_GetObjectItem(body, "status")->valuestring, "resolved");
    assert_string_equal(
        cJSON_GetObjectItem(cJSON_GetObjectItem(body, "incident"), "id")->valuestring, id);
    cJSON_Delete(body);
    rec = incident_of(&arr, "cluster-error");
    assert_string_equal(cJSON_GetObjectItem(rec, "state")->valuestring, "resolved");
    assert_true(cJSON_IsString(cJSON_GetObjectItem(rec, "ended_at")));
    cJSON_Delete(arr);
    /* An unknown id is an error. */
    assert_int_not_equal(
        vg_test_env_cli(&E, &out, NULL,
                        (const char *const[]){"incidents", "resolve", "0000000000000000", NULL}),
        0);
    free(out);

    /* A silence: the failure is recorded, not paged. */
    assert_int_equal(
        vg_test_env_cli(&E, &out, NULL,
                        (const char *const[]){"silence", "add", "--match=monitor=job-failed",
                                              "--match=resource=job:*:nightly:*", NULL}),
        2); /* --for and --comment are required */
    free(out);
    assert_int_equal(
        vg_test_env_cli(&E, &out, NULL,
                        (const char *const[]){"silence", "add", "--match", "monitor=job-failed",
                                              "--match", "resource=job:*:nightly:*", "--for", "2h",
                                              "--comment", "maintenance window", NULL}),
        0);
    assert_int_equal(sscanf(out, "%63s", sid), 1);
    free(out);
    vg_test_env_produce(&E, "job", "nightly", "prod", "active", "failed", NULL, NULL);
    assert_true(vg_test_env_wait_applied(&E, 60000));
    rec = incident_of(&arr, "job-failed");
    assert_non_null(rec);
    assert_string_equal(cJSON_GetObjectItem(rec, "state")->valuestring, "firing");
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(rec, "silenced")));
    cJSON_Delete(arr);
    assert_int_equal(vg_http_receiver_count(E.rcv), 2);
    assert_int_equal(
        vg_test_env_cli(&E, &out, NULL,
                        (const char *const[]){"silence", "list", "--output=json", NULL}),
        0);
    assert_non_null(strstr(out, sid));
    assert_non_null(strstr(out, "\"state\":\"active\""));
    free(out);

    /* The silence ends early: the still-firing incident pages now. */
    assert_int_equal(
        vg_test_env_cli(&E, &out, NULL, (const char *const[]){"silence", "expire", sid, NULL}), 0);
    free(out);
    want = 3;
    assert_true(vg_test_env_wait_requests(&E, want, 30000));
    body = vg_test_env_request_json(&E, 2);
    assert_non_null(body);
    assert_string_equal(cJSON_GetObjectItem(body, "status")->valuestring, "firing");
    assert_string_equal(
        cJSON_GetObjectItem(cJSON_GetObjectItem(body, "incident"), "monitor")->valuestring,
        "job-failed");
    cJSON_Delete(body);
    assert_int_equal(
        vg_test_env_cli(&E, &out, NULL,
                        (const char *const[]){"silence", "list", "--all", "--output=json", NULL}),
        0);
    assert_non_null(strstr(out, "\"state\":\"expired\""));
    free(out);
    assert_true(vg_test_env_wait_quiet(&E, 30000));
    assert_int_equal(vg_http_receiver_count(E.rcv), 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_prestate_setup_teardown(test_resolve_and_silence, vg_test_env_setup,
                                                 vg_test_env_teardown, &C),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
