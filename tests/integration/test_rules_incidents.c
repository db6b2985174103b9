/*
 * Incidents and silences through the CLI against a running `vigil run`:
 * `resolve: never` stays firing until `vigil incidents resolve ID`, which
 * sends the resolved page; `vigil incidents -o json` shows the records; a
 * silenced incident is recorded but not paged, and pages once `vigil
 * silence expire` ends the silence.
 */
#include "test_rules5_env.h"

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

static int setup(void **state)
{
    (void)state;
    return r5_setup("r5inc", rules);
}

static int teardown(void **state)
{
    (void)state;
    r5_teardown();
    return 0;
}

/* The record of `monitor` from `vigil incidents -o json` (caller deletes the array). */
static cJSON *incident_of(cJSON **arr, const char *monitor)
{
    char *out = NULL;
    cJSON *it;

    assert_int_equal(r5_cli(&out, "incidents", "-o", "json", NULL), 0);
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
    struct r5_count want = {1};
    cJSON *arr;
    cJSON *rec;
    cJSON *body;
    char id[64];
    char sid[64];
    char *out = NULL;

    (void)state;
    r5_start_vigil();
    r5_produce("cluster", "c1", "prod", "error", "running");
    r5_flush();
    r5_wait(r5_have_requests, &want, 60000, "the cluster-error page");

    rec = incident_of(&arr, "cluster-error");
    assert_non_null(rec);
    assert_string_equal(cJSON_GetObjectItem(rec, "state")->valuestring, "firing");
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(rec, "resolve_never")));
    snprintf(id, sizeof(id), "%s", cJSON_GetObjectItem(rec, "id")->valuestring);
    cJSON_Delete(arr);

    /* It recovers: still firing (resolve: never). */
    r5_produce("cluster", "c1", "prod", "active", "running");
    r5_flush();
    r5_wait(r5_applied, NULL, 60000, "the recovery to be applied");
    rec = incident_of(&arr, "cluster-error");
    assert_string_equal(cJSON_GetObjectItem(rec, "state")->valuestring, "firing");
    cJSON_Delete(arr);

    /* A human resolves it. */
    assert_int_equal(r5_cli(&out, "incidents", "resolve", id, NULL), 0);
    free(out);
    want.want = 2;
    r5_wait(r5_have_requests, &want, 30000, "the resolved page");
    body = r5_body(1);
    assert_string_equal(cJSON_GetObjectItem(body, "status")->valuestring, "resolved");
    assert_string_equal(
        cJSON_GetObjectItem(cJSON_GetObjectItem(body, "incident"), "id")->valuestring, id);
    cJSON_Delete(body);
    rec = incident_of(&arr, "cluster-error");
    assert_string_equal(cJSON_GetObjectItem(rec, "state")->valuestring, "resolved");
    assert_true(cJSON_IsString(cJSON_GetObjectItem(rec, "ended_at")));
    cJSON_Delete(arr);
    /* An unknown id is an error. */
    assert_int_not_equal(r5_cli(&out, "incidents", "resolve", "0000000000000000", NULL), 0);
    free(out);

    /* A silence: the failure is recorded, not paged. */
    assert_int_equal(r5_cli(&out, "silence", "add", "--match=monitor=job-failed",
                            "--match=resource=job:*:nightly:*"),
                     2); /* --for and --comment are required */
    free(out);
    {
        char *err = NULL;
        char *argv[] = {(char *)vg_test_vigil_bin(),
                        (char *)"silence",
                        (char *)"add",
                        (char *)"--match",
                        (char *)"monitor=job-failed",
                        (char *)"--match",
                        (char *)"resource=job:*:nightly:*",
                        (char *)"--for",
                        (char *)"2h",
                        (char *)"--comment",
                        (char *)"maintenance window",
                        (char *)"-c",
                        E.config,
                        NULL};

        assert_int_equal(vg_test_run(argv, &out, &err), 0);
        assert_int_equal(sscanf(out, "%63s", sid), 1);
        free(out);
        free(err);
    }
    r5_produce("job", "nightly", "prod", "active", "failed");
    r5_flush();
    r5_wait(r5_applied, NULL, 60000, "the job failure to be applied");
    rec = incident_of(&arr, "job-failed");
    assert_non_null(rec);
    assert_string_equal(cJSON_GetObjectItem(rec, "state")->valuestring, "firing");
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(rec, "silenced")));
    cJSON_Delete(arr);
    assert_int_equal(vg_http_receiver_count(E.rcv), 2);
    assert_int_equal(r5_cli(&out, "silence", "list", "--output=json", NULL), 0);
    assert_non_null(strstr(out, sid));
    assert_non_null(strstr(out, "\"state\":\"active\""));
    free(out);

    /* The silence ends early: the still-firing incident pages now. */
    assert_int_equal(r5_cli(&out, "silence", "expire", sid, NULL), 0);
    free(out);
    want.want = 3;
    r5_wait(r5_have_requests, &want, 30000, "the page after the silence");
    body = r5_body(2);
    assert_string_equal(cJSON_GetObjectItem(body, "status")->valuestring, "firing");
    assert_string_equal(
        cJSON_GetObjectItem(cJSON_GetObjectItem(body, "incident"), "monitor")->valuestring,
        "job-failed");
    cJSON_Delete(body);
    assert_int_equal(r5_cli(&out, "silence", "list", "--all", "--output=json"), 0);
    assert_non_null(strstr(out, "\"state\":\"expired\""));
    free(out);
    r5_wait(r5_no_timers_no_backlog, NULL, 30000, "quiet");
    assert_int_equal(vg_http_receiver_count(E.rcv), 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_resolve_and_silence, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
