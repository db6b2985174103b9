/*
 * Issue 6, webhooks as receivers see them, from the real `vigil run`:
 * Standard Webhooks signatures (two secrets at once, for rotation)
 * verified by the reference `standardwebhooks` npm package under node;
 * every body valid against docs/webhook.schema.json (ajv); custom headers;
 * `format: alertmanager` (payload version 4) and a body template. Then the
 * secrets test: the URL token, the signing secrets (one from ${ENV}, one
 * from file:) and the Authorization token never appear in anything vigil
 * prints: `vigil run` logs through retries, failures and dead letters,
 * `vigil check`, `vigil dlq list`, `vigil incidents show`.
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

#include "sinks6_common.h"
#include "support.h"
#include "vigil/mem.h"
#include "vigil/util.h"

/* "first-secret-key-1234" and "second-secret-key-5678", base64 */
#define SECRET_A "whsec_Zmlyc3Qtc2VjcmV0LWtleS0xMjM0"
#define SECRET_B "whsec_c2Vjb25kLXNlY3JldC1rZXktNTY3OA=="
#define WRONG "whsec_d3Jvbmctc2VjcmV0LWtleS0wMDAw"
#define URL_TOKEN "PATHTOKEN-4c1d9e77aa"
#define API_TOKEN "tok-SECRET-99xx-b7e1"
#define DEAD_TOKEN "DEADPORT-TOKEN-31f2"

static struct vg_http_receiver *SIG; /* signed */
static struct vg_http_receiver *AM;  /* format: alertmanager */
static struct vg_http_receiver *TPL; /* template */

static int setup(void **state)
{
    (void)state;
    if (s6_setup("s6-signing") != 0) {
        return -1;
    }
    SIG = vg_http_receiver_start();
    AM = vg_http_receiver_start();
    TPL = vg_http_receiver_start();
    return SIG && AM && TPL ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    s6_teardown();
    vg_http_receiver_stop(SIG);
    vg_http_receiver_stop(AM);
    vg_http_receiver_stop(TPL);
    return 0;
}

/* The received requests of `r` as [{"headers": {...}, "body": "..."}] in a file; tamper: alter
 * bodies. */
static char *dump_requests(struct vg_http_receiver *r, const char *name, bool tamper)
{
    cJSON *arr = cJSON_CreateArray();
    char *path = vg_asprintf("%s/%s.json", S6.dir, name);
    char *text;

    for (size_t i = 0; i < vg_http_receiver_count(r); i++) {
        struct vg_http_request *q = vg_http_receiver_request(r, i);
        cJSON *o = cJSON_CreateObject();
        cJSON *h = cJSON_CreateObject();

        for (size_t k = 0; k < q->n_headers; k++) {
            cJSON_AddStringToObject(h, q->header_names[k], q->header_values[k]);
        }
        cJSON_AddItemToObject(o, "headers", h);
        if (tamper) {
            char *b = vg_asprintf("%s ", q->body);
            cJSON_AddStringToObject(o, "body", b);
            vg_free(b);
        } else {
            cJSON_AddStringToObject(o, "body", q->body);
        }
        cJSON_AddItemToArray(arr, o);
        vg_http_request_free(q);
    }
    text = cJSON_PrintUnformatted(arr);
    assert_true(vg_test_write_file(path, text, strlen(text)));
    free(text);
    cJSON_Delete(arr);
    return path;
}

static void node(const char *mode, const char *file, const char *a, const char *b)
{
    char *script = vg_asprintf("%s/tests/node/verify.js", VG_SOURCE_DIR);
    char *mods = vg_asprintf("%s/tests/node/node_modules/standardwebhooks", VG_SOURCE_DIR);
    char *argv[] = {(char *)"/usr/bin/env", (char *)"node", script,    (char *)mode,
                    (char *)file,           (char *)a,      (char *)b, NULL};
    char *out = NULL;
    char *err = NULL;
    int rc;

    if (access(mods, R_OK) != 0) {
        fail_msg("%s is missing: run scripts/deps.sh (npm ci in tests/node)", mods);
    }
    rc = vg_test_run(argv, &out, &err);
    if (rc != 0) {
        fail_msg("node verify.js %s: exit %d\n%s%s", mode, rc, out, err);
    }
    vg_free(out);
    vg_free(err);
    vg_free(script);
    vg_free(mods);
}

static void test_signed_schema_formats_and_secrets(void **state)
{
    struct vg_http_behaviour e500 = {.action = VG_HTTP_ANSWER, .status = 500};
    struct vg_http_behaviour e401 = {.action = VG_HTTP_ANSWER, .status = 401, .body = "bad token"};
    char *head = s6_config_head();
    char *hook = vg_http_receiver_url(SIG, "/hook/" URL_TOKEN);
    char *am = vg_http_receiver_url(AM, "/am");
    char *tpl = vg_http_receiver_url(TPL, "/tpl");
    char *dead_url;
    char *secret_file = vg_asprintf("%s/secret-b.txt", S6.dir);
    char *rules = vg_asprintf("%s/rules.yaml", S6.dir);
    static const char rules_yaml[] = "monitors:\n"
                                     "  - name: workflow-failed\n"
                                     "    when: {runtime: {to: failed}}\n"
                                     "    severity: high\n";
    char *yaml;
    char *path;
    char *all;
    char *out = NULL;
    char *err = NULL;
    struct vg_http_request *q;
    cJSON *j;

    (void)state;
    {
        struct vg_http_receiver *gone = vg_http_receiver_start();
        dead_url = vg_http_receiver_url(gone, "/x/" DEAD_TOKEN);
        vg_http_receiver_stop(gone); /* nothing listens there any more */
    }
    assert_true(vg_test_write_file(secret_file, SECRET_B "\n", strlen(SECRET_B) + 1));
    assert_true(vg_test_write_file(rules, rules_yaml, strlen(rules_yaml)));
    setenv("S6_HOOK_URL", hook, 1);
    setenv("S6_SECRET_A", SECRET_A, 1);
    setenv("S6_API_TOKEN", API_TOKEN, 1);
    setenv("S6_DEAD_URL", dead_url, 1);
    yaml = vg_asprintf("%srules: [%s]\n"
                       "sinks:\n"
                       "  signed:\n"
                       "    type: webhook\n"
                       "    url: \"${S6_HOOK_URL}\"\n"
                       "    secret: [\"${S6_SECRET_A}\", \"file:secret-b.txt\"]\n"
                       "    headers: {Authorization: \"Bearer ${S6_API_TOKEN}\", X-Team: data}\n"
                       "  amfmt: {type: webhook, url: \"%s\", format: alertmanager, console_url: "
                       "\"https://console.example\"}\n"
                       "  tpl:\n"
                       "    type: webhook\n"
                       "    url: \"%s\"\n"
                       "    template: '{\"text\": \"{{incident.summary}} ({{status}}, {{id}})\"}'\n"
                       "  deadport: {type: webhook, url: \"${S6_DEAD_URL}\", max_attempts: 2, "
                       "connect_timeout: 1s}\n",
                       head, rules, am, tpl);
    vg_http_receiver_push(SIG, &e500); /* a retry: more log lines */
    s6_start_vigil(yaml);
    {
        char *b1 = s6_body("1111111111111111", "firing", "alpha");
        char *b2 = s6_body("2222222222222222", "firing", "na\xc3\xafve-\xe2\x98\x83 \"q\"");
        char *b3 = s6_body("1111111111111111", "resolved", "alpha");
        vg_free(s6_put("1111111111111111-1", "signed", "p", b1));
        vg_free(s6_put("2222222222222222-1", "signed", "p", b2));
        vg_free(s6_put("1111111111111111-2", "signed", "p", b3));
        vg_free(s6_put("1111111111111111-1", "amfmt", "p", b1));
        vg_free(s6_put("1111111111111111-2", "amfmt", "p", b3));
        vg_free(s6_put("2222222222222222-1", "tpl", "p", b2));
        vg_free(s6_put("2222222222222222-1", "deadport", "p", b2));
        vg_free(b1);
        vg_free(b2);
        vg_free(b3);
    }
    if (!s6_wait_drained(30000)) {
        s6_dump_logs();
        fail();
    }
    assert_int_equal(vg_http_receiver_count(SIG), 4);

    /* headers */
    q = vg_http_receiver_request(SIG, 3);
    assert_non_null(vg_http_request_header(q, "webhook-id"));
    assert_string_equal(vg_http_request_header(q, "webhook-id"),
                        vg_http_request_header(q, "idempotency-key"));
    assert_non_null(vg_http_request_header(q, "webhook-timestamp"));
    assert_int_equal(strncmp(vg_http_request_header(q, "webhook-signature"), "v1,", 3), 0);
    assert_non_null(strstr(vg_http_request_header(q, "webhook-signature"), " v1,"));
    assert_string_equal(vg_http_request_header(q, "authorization"), "Bearer " API_TOKEN);
    assert_string_equal(vg_http_request_header(q, "x-team"), "data");
    vg_http_request_free(q);

    /* the reference verifier accepts every request with either secret ... */
    path = dump_requests(SIG, "signed", false);
    node("signatures", path, SECRET_A, SECRET_B);
    /* ... and rejects a wrong secret and a tampered body */
    node("reject", path, WRONG, NULL);
    node("schema", path, VG_WEBHOOK_SCHEMA, NULL);
    vg_free(path);
    path = dump_requests(SIG, "tampered", true);
    node("reject", path, SECRET_A, NULL);
    vg_free(path);

    /* format: alertmanager: the Alertmanager webhook payload, version 4 */
    assert_int_equal(vg_http_receiver_count(AM), 2);
    q = vg_http_receiver_request(AM, 0);
    j = cJSON_Parse(q->body);
    assert_string_equal(cJSON_GetObjectItem(j, "version")->valuestring, "4");
    assert_string_equal(cJSON_GetObjectItem(j, "receiver")->valuestring, "amfmt");
    assert_string_equal(cJSON_GetObjectItem(j, "status")->valuestring, "firing");
    assert_string_equal(cJSON_GetObjectItem(j, "externalURL")->valuestring,
                        "https://console.example");
    {
        cJSON *a = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "alerts"), 0);
        cJSON *l = cJSON_GetObjectItem(a, "labels");
        assert_string_equal(cJSON_GetObjectItem(l, "alertname")->valuestring, "workflow-failed");
        assert_string_equal(cJSON_GetObjectItem(l, "resource")->valuestring,
                            "workflow:v1:alpha:public");
        assert_string_equal(cJSON_GetObjectItem(a, "startsAt")->valuestring,
                            "2026-11-28T10:00:00.123Z");
        assert_non_null(cJSON_GetObjectItem(a, "fingerprint"));
        assert_non_null(cJSON_GetObjectItem(j, "groupLabels"));
        assert_non_null(cJSON_GetObjectItem(j, "commonLabels"));
    }
    cJSON_Delete(j);
    vg_http_request_free(q);
    q = vg_http_receiver_request(AM, 1);
    j = cJSON_Parse(q->body);
    assert_string_equal(cJSON_GetObjectItem(j, "status")->valuestring, "resolved");
    assert_string_equal(
        cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(j, "alerts"), 0), "endsAt")
            ->valuestring,
        "2026-11-28T10:05:00Z");
    cJSON_Delete(j);
    vg_http_request_free(q);

    /* the template */
    q = vg_http_receiver_request(TPL, 0);
    assert_string_equal(q->body, "{\"text\": \"na\xc3\xafve-\xe2\x98\x83 \\\"q\\\" failed in "
                                 "public (firing, 2222222222222222-1)\"}");
    vg_http_request_free(q);

    /* a dead letter with a reason that would tempt a leak */
    vg_http_receiver_push(SIG, &e401);
    {
        char *b = s6_body("3333333333333333", "firing", "gamma");
        vg_free(s6_put("3333333333333333-1", "signed", "p", b));
        vg_free(b);
    }
    assert_true(s6_wait_drained(20000));

    /* secrets: nothing vigil prints holds one */
    {
        static const char *const secrets[] = {URL_TOKEN, API_TOKEN, DEAD_TOKEN,
                                              "Zmlyc3Qtc2VjcmV0LWtleS0xMjM0",
                                              "c2Vjb25kLXNlY3JldC1rZXktNTY3OA"};
        struct vg_buf b = {0};
        char *argv[] = {(char *)vg_test_vigil_bin(), (char *)"check", (char *)"-c", S6.config,
                        NULL};

        s6_stop_vigil(SIGTERM);
        all = s6_all_logs();
        vg_buf_puts(&b, all);
        vg_free(all);
        assert_int_equal(vg_test_run(argv, &out, &err), 0);
        vg_buf_puts(&b, out);
        vg_buf_puts(&b, err);
        vg_free(out);
        vg_free(err);
        assert_int_equal(s6_vigil(&out, &err, "dlq", "list", NULL, NULL), 0);
        vg_buf_puts(&b, out);
        vg_buf_puts(&b, err);
        /* the dead letters are there: deadport (connection) and signed (401) */
        assert_non_null(strstr(out, "deadport"));
        assert_non_null(strstr(out, "HTTP 401"));
        vg_free(out);
        vg_free(err);
        assert_int_equal(s6_vigil(&out, &err, "dlq", "list", "-o", "json"), 0);
        vg_buf_puts(&b, out);
        vg_buf_puts(&b, err);
        vg_free(out);
        vg_free(err);
        assert_int_equal(s6_vigil(&out, &err, "incidents", "show", "2222222222222222", NULL), 0);
        vg_buf_puts(&b, out);
        vg_buf_puts(&b, err);
        assert_non_null(strstr(out, "deadport"));
        vg_free(out);
        vg_free(err);
        /* the logs do say what happened, with the url redacted */
        assert_non_null(strstr(b.data, "sink signed: HTTP 500"));
        assert_non_null(strstr(b.data, "sink deadport"));
        for (size_t i = 0; i < VG_ARRAY_LEN(secrets); i++) {
            if (strstr(b.data, secrets[i])) {
                fail_msg("secret %zu printed:\n%s", i, b.data);
            }
        }
        vg_buf_fini(&b);
    }
    vg_free(head);
    vg_free(hook);
    vg_free(am);
    vg_free(tpl);
    vg_free(dead_url);
    vg_free(secret_file);
    vg_free(rules);
    vg_free(yaml);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_signed_schema_formats_and_secrets, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
