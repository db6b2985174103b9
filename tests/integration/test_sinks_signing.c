/*
 * Webhooks as receivers see them, from the real `vigil run`:
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

#include "env.h"
#include "outbox.h"
#include "page_body.h"
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

/* Nothing vigil prints may hold one: its logs (the env checks them) and its CLI's output. */
static const char *const secrets[] = {URL_TOKEN,
                                      API_TOKEN,
                                      DEAD_TOKEN,
                                      "Zmlyc3Qtc2VjcmV0LWtleS0xMjM0",
                                      "c2Vjb25kLXNlY3JldC1rZXktNTY3OA",
                                      NULL};

static struct vg_test_env E;
static struct vg_http_receiver *SIG; /* signed: E.rcv */
static struct vg_http_receiver *AM;  /* format: alertmanager */
static struct vg_http_receiver *TPL; /* template */

static int setup(void **state)
{
    struct vg_test_env_opts o = {.hook_path = "/hook/" URL_TOKEN, .secrets = secrets};

    (void)state;
    vg_test_no_proxy();
    if (vg_test_env_start(&E, "sinks-signing", &o) != 0) {
        return -1;
    }
    SIG = E.rcv;
    AM = vg_http_receiver_start();
    TPL = vg_http_receiver_start();
    return AM && TPL ? 0 : -1;
}

static int teardown(void **state)
{
    int rc;

    (void)state;
    rc = vg_test_env_stop(&E);
    vg_http_receiver_stop(AM);
    vg_http_receiver_stop(TPL);
    return rc;
}

/* Put notification `id` to `sink`. */
static void put(const char *id, const char *sink, const char *body)
{
    char *sid = vg_test_outbox_put(&E, id, sink, "p", body);

    assert_non_null(sid);
    vg_free(sid);
}

/* `vigil ARGS -c config` exits 0; its stdout and stderr are appended to `b`; stdout returned. */
static char *cli_into(struct vg_buf *b, const char *a1, const char *a2, const char *a3,
                      const char *a4)
{
    char *out = NULL;
    char *err = NULL;

    assert_int_equal(vg_test_env_run_cli(&E, &out, &err, a1, a2, a3, a4, NULL), 0);
    vg_buf_puts(b, out);
    vg_buf_puts(b, err);
    vg_free(err);
    return out;
}

/* The received requests of `r` as [{"headers": {...}, "body": "..."}] in a file; tamper: alter
 * bodies. */
static char *dump_requests(struct vg_http_receiver *r, const char *name, bool tamper)
{
    cJSON *arr = cJSON_CreateArray();
    char *path = vg_asprintf("%s/%s.json", E.dir, name);
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
    char *am = vg_http_receiver_url(AM, "/am");
    char *tpl = vg_http_receiver_url(TPL, "/tpl");
    char *dead_url;
    char *secret_file = vg_asprintf("%s/secret-b.txt", E.dir);
    static const char rules_yaml[] = "monitors:\n"
                                     "  - name: workflow-failed\n"
                                     "    when: {runtime: {to: failed}}\n"
                                     "    severity: high\n";
    char *sinks;
    char *path;
    struct vg_http_request *q;
    cJSON *j;

    (void)state;
    {
        struct vg_http_receiver *gone = vg_http_receiver_start();
        dead_url = vg_http_receiver_url(gone, "/x/" DEAD_TOKEN);
        vg_http_receiver_stop(gone); /* nothing listens there any more */
    }
    assert_true(vg_test_write_file(secret_file, SECRET_B "\n", strlen(SECRET_B) + 1));
    /* The hook URL (E.hook_url, with its token) reaches vigil through the environment. */
    setenv("VIGIL_TEST_SIGNING_SECRET", SECRET_A, 1);
    setenv("VIGIL_TEST_API_TOKEN", API_TOKEN, 1);
    setenv("VIGIL_TEST_DEAD_URL", dead_url, 1);
    sinks = vg_asprintf(
        "  signed:\n"
        "    type: webhook\n"
        "    url: \"${VIGIL_TEST_HOOK_URL}\"\n"
        "    secret: [\"${VIGIL_TEST_SIGNING_SECRET}\", \"file:secret-b.txt\"]\n"
        "    headers: {Authorization: \"Bearer ${VIGIL_TEST_API_TOKEN}\", X-Team: data}\n"
        "  amfmt: {type: webhook, url: \"%s\", format: alertmanager, console_url: "
        "\"https://console.example\"}\n"
        "  tpl:\n"
        "    type: webhook\n"
        "    url: \"%s\"\n"
        "    template: '{\"text\": \"{{incident.summary}} ({{status}}, {{id}})\"}'\n"
        "  deadport: {type: webhook, url: \"${VIGIL_TEST_DEAD_URL}\", max_attempts: 2, "
        "connect_timeout: 1s}\n",
        am, tpl);
    vg_http_receiver_push(SIG, &e500); /* a retry: more log lines */
    assert_true(vg_test_env_spawn_with(&E, rules_yaml, sinks));
    {
        char *b1 = vg_test_page_body("1111111111111111", "firing", "alpha");
        char *b2 =
            vg_test_page_body("2222222222222222", "firing", "na\xc3\xafve-\xe2\x98\x83 \"q\"");
        char *b3 = vg_test_page_body("1111111111111111", "resolved", "alpha");
        put("1111111111111111-1", "signed", b1);
        put("2222222222222222-1", "signed", b2);
        put("1111111111111111-2", "signed", b3);
        put("1111111111111111-1", "amfmt", b1);
        put("1111111111111111-2", "amfmt", b3);
        put("2222222222222222-1", "tpl", b2);
        put("2222222222222222-1", "deadport", b2);
        vg_free(b1);
        vg_free(b2);
        vg_free(b3);
    }
    assert_true(vg_test_outbox_wait_drained(&E, 30000));
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
        char *b = vg_test_page_body("3333333333333333", "firing", "gamma");
        put("3333333333333333-1", "signed", b);
        vg_free(b);
    }
    assert_true(vg_test_outbox_wait_drained(&E, 20000));

    /* secrets: nothing vigil prints holds one */
    {
        struct vg_buf b = {0};
        char *logs;
        char *out;

        assert_int_equal(vg_test_env_kill(&E, SIGTERM), 0);
        logs = vg_test_env_logs(&E);
        vg_buf_puts(&b, logs);
        vg_free(logs);
        vg_free(cli_into(&b, "check", NULL, NULL, NULL));
        out = cli_into(&b, "dlq", "list", NULL, NULL);
        /* the dead letters are there: deadport (connection) and signed (401) */
        assert_non_null(strstr(out, "deadport"));
        assert_non_null(strstr(out, "HTTP 401"));
        vg_free(out);
        vg_free(cli_into(&b, "dlq", "list", "-o", "json"));
        out = cli_into(&b, "incidents", "show", "2222222222222222", NULL);
        assert_non_null(strstr(out, "deadport"));
        vg_free(out);
        /* the logs do say what happened, with the url redacted */
        assert_non_null(strstr(b.data, "sink signed: HTTP 500"));
        assert_non_null(strstr(b.data, "sink deadport"));
        assert_false(vg_test_env_leaks(&E, b.data, "what vigil printed"));
        vg_buf_fini(&b);
    }
    vg_free(am);
    vg_free(tpl);
    vg_free(dead_url);
    vg_free(secret_file);
    vg_free(sinks);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_signed_schema_formats_and_secrets, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
