/*
 * The teams sink end to end: the real vigil binary pages a failing
 * workflow to a receiver standing in for a Teams Workflows webhook. The
 * request is the documented message (one Adaptive Card attachment, under
 * 28 KB) with the Slack message's content, and the resolved notice is its
 * own card. 500 and 429 (Retry-After waited out) are retried, as is a
 * legacy connector's 2xx that carries "returned HTTP error 429"; a 400 is
 * dead-lettered at once. The webhook URL (a secret) appears nowhere.
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

#define SECRET "SECRETSIG0123456789"
#define PATH "/workflows/5a1b/triggers/manual/paths/invoke?api-version=2016-06-01&sig=" SECRET

static struct vg_test_env E;
static char *RULES;

static int setup(void **state)
{
    struct vg_test_env_opts o = {
        .sinks = "  teams: {type: teams, url: \"${VIGIL_TEST_TEAMS_URL}\", rate: 50/s, "
                 "console_url: \"https://vigil.example\"}\n",
        .http = true,
    };
    char *url;

    (void)state;
    RULES = sm_rules("teams");
    o.rules = RULES;
    if (vg_test_env_start(&E, "sinks-teams", &o) != 0) {
        return -1;
    }
    url = vg_http_receiver_url(E.rcv, PATH);
    setenv("VIGIL_TEST_TEAMS_URL", url, 1);
    vg_free(url);
    return 0;
}

static int teardown(void **state)
{
    int rc;

    (void)state;
    rc = vg_test_env_stop(&E);
    vg_free(RULES);
    return rc;
}

static cJSON *get(const cJSON *o, const char *key)
{
    cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

    if (!v) {
        fail_msg("missing \"%s\"", key);
    }
    return v;
}

/* The documented shape of a Workflows webhook message with one Adaptive Card; returns the card. */
static const cJSON *check_message(const cJSON *msg)
{
    const cJSON *atts = get(msg, "attachments");
    const cJSON *att;
    const cJSON *card;
    const cJSON *el;

    assert_string_equal(get(msg, "type")->valuestring, "message");
    assert_true(cJSON_IsArray(atts));
    assert_int_equal(cJSON_GetArraySize(atts), 1);
    att = cJSON_GetArrayItem(atts, 0);
    assert_string_equal(get(att, "contentType")->valuestring,
                        "application/vnd.microsoft.card.adaptive");
    assert_true(cJSON_IsNull(get(att, "contentUrl")));
    card = get(att, "content");
    assert_string_equal(get(card, "type")->valuestring, "AdaptiveCard");
    assert_string_equal(get(card, "$schema")->valuestring,
                        "http://adaptivecards.io/schemas/adaptive-card.json");
    assert_string_equal(get(card, "version")->valuestring, "1.4");
    assert_true(cJSON_GetArraySize(get(card, "body")) > 0);
    cJSON_ArrayForEach(el, get(card, "body"))
    {
        const char *type = get(el, "type")->valuestring;

        if (!strcmp(type, "TextBlock")) {
            assert_true(cJSON_IsString(get(el, "text")));
        } else if (!strcmp(type, "FactSet")) {
            const cJSON *f;
            cJSON_ArrayForEach(f, get(el, "facts"))
            {
                assert_true(cJSON_IsString(get(f, "title")));
                assert_true(cJSON_IsString(get(f, "value")));
            }
        } else {
            assert_string_equal(type, "Container");
            assert_true(cJSON_IsArray(get(el, "items")));
        }
    }
    return card;
}

static const char *fact(const cJSON *card, const char *title)
{
    const cJSON *el;

    cJSON_ArrayForEach(el, get(card, "body"))
    {
        const cJSON *f;
        if (strcmp(get(el, "type")->valuestring, "FactSet") != 0) {
            continue;
        }
        cJSON_ArrayForEach(f, get(el, "facts"))
        {
            if (!strcmp(get(f, "title")->valuestring, title)) {
                return get(f, "value")->valuestring;
            }
        }
    }
    return NULL;
}

/* The title band: style and text. */
static void check_title(const cJSON *card, const char *style, const char *text)
{
    const cJSON *band = cJSON_GetArrayItem(get(card, "body"), 0);

    assert_string_equal(get(band, "type")->valuestring, "Container");
    assert_string_equal(get(band, "style")->valuestring, style);
    assert_string_equal(get(cJSON_GetArrayItem(get(band, "items"), 0), "text")->valuestring, text);
}

static void test_firing_and_resolved_cards(void **state)
{
    struct vg_http_behaviour accepted = {.action = VG_HTTP_ANSWER, .status = 202};
    struct vg_http_request *q;
    const cJSON *card;
    cJSON *j;

    (void)state;
    vg_http_receiver_set_default(E.rcv, &accepted);
    assert_true(vg_test_env_spawn(&E));
    vg_test_env_produce(&E, "workflow", "ingestion-payments", "public", "active", "running", NULL,
                        NULL);
    vg_test_env_produce(&E, "workflow", "ingestion-payments", "public", "active", "failed", NULL,
                        NULL);
    assert_true(vg_test_env_wait_requests(&E, 1, 60000));
    q = vg_http_receiver_request(E.rcv, 0);
    assert_string_equal(q->method, "POST");
    assert_string_equal(q->path, PATH);
    assert_non_null(strstr(vg_http_request_header(q, "content-type"), "application/json"));
    assert_true(q->body_len < 28 * 1024);
    j = cJSON_Parse(q->body);
    assert_non_null(j);
    card = check_message(j);
    check_title(card, "attention", "HIGH: workflow-failed");
    assert_non_null(strstr(q->body, "ingestion-payments failed in public"));
    assert_string_equal(fact(card, "Resource"), "ingestion-payments");
    assert_string_equal(fact(card, "Workspace"), "public");
    assert_string_equal(fact(card, "Transition"), "runtime: running \xe2\x86\x92 failed");
    assert_non_null(fact(card, "Since"));
    assert_null(fact(card, "Resolved at"));
    assert_string_equal(get(cJSON_GetArrayItem(get(card, "actions"), 0), "url")->valuestring,
                        "https://vigil.example/resources/workflow:v1:ingestion-payments:public");
    cJSON_Delete(j);
    vg_http_request_free(q);

    vg_test_env_produce(&E, "workflow", "ingestion-payments", "public", "active", "succeeded", NULL,
                        NULL);
    assert_true(vg_test_env_wait_requests(&E, 2, 60000));
    q = vg_http_receiver_request(E.rcv, 1);
    j = cJSON_Parse(q->body);
    card = check_message(j);
    check_title(card, "good", "RESOLVED: workflow-failed");
    assert_string_equal(fact(card, "Transition"), "runtime: failed \xe2\x86\x92 succeeded");
    assert_non_null(fact(card, "Resolved at"));
    cJSON_Delete(j);
    vg_http_request_free(q);
    assert_true(vg_test_env_wait_quiet(&E, 30000));
    assert_int_equal(vg_http_receiver_count(E.rcv), 2);
    sm_assert_hidden(&E, SECRET);
}

static void test_retries_and_dead_letter(void **state)
{
    struct vg_http_behaviour accepted = {.action = VG_HTTP_ANSWER, .status = 202};
    struct vg_http_behaviour down = {.action = VG_HTTP_ANSWER, .status = 500};
    struct vg_http_behaviour busy = {.action = VG_HTTP_ANSWER, .status = 429, .retry_after_s = 1};
    struct vg_http_behaviour legacy = {
        .action = VG_HTTP_ANSWER,
        .status = 200,
        .body = "Microsoft Teams endpoint returned HTTP error 429 with ContextId tcid=0,server=x"};
    struct vg_http_behaviour bad = {.action = VG_HTTP_ANSWER, .status = 400, .body = "Bad payload"};
    struct vg_http_request *a;
    struct vg_http_request *b;
    cJSON *dlq;
    cJSON *dead;

    (void)state;
    vg_http_receiver_set_default(E.rcv, &accepted);
    vg_http_receiver_push(E.rcv, &down);
    vg_http_receiver_push(E.rcv, &busy);
    vg_http_receiver_push(E.rcv, &legacy);
    assert_true(vg_test_env_spawn(&E));
    vg_test_env_produce(&E, "workflow", "wf-retried", "public", "active", "failed", NULL, NULL);
    assert_true(vg_test_env_wait_requests(&E, 4, 60000));
    assert_true(vg_test_env_wait_quiet(&E, 30000));
    assert_int_equal(vg_http_receiver_count(E.rcv), 4);
    a = vg_http_receiver_request(E.rcv, 1);
    b = vg_http_receiver_request(E.rcv, 2);
    assert_int_equal(a->answer_status, 429);
    if (b->at_mono_ms - a->at_mono_ms < 990) {
        fail_msg("retried %lld ms after a 429 with Retry-After: 1",
                 (long long)(b->at_mono_ms - a->at_mono_ms));
    }
    /* the same card every time */
    for (size_t i = 0; i < 4; i++) {
        struct vg_http_request *q = vg_http_receiver_request(E.rcv, i);
        assert_string_equal(q->body, a->body);
        vg_http_request_free(q);
    }
    vg_http_request_free(a);
    vg_http_request_free(b);
    assert_int_equal(cJSON_GetArraySize(dlq = sm_dlq(&E)), 0);
    cJSON_Delete(dlq);

    /* a 400 is final: one attempt, then the dead letters */
    vg_http_receiver_push(E.rcv, &bad);
    vg_test_env_produce(&E, "workflow", "wf-refused", "public", "active", "failed", NULL, NULL);
    assert_true(sm_wait_dlq(&E, 1, 60000));
    assert_int_equal(vg_http_receiver_count(E.rcv), 5);
    dlq = sm_dlq(&E);
    assert_int_equal(cJSON_GetArraySize(dlq), 1);
    dead = cJSON_GetArrayItem(dlq, 0);
    assert_string_equal(get(dead, "sink")->valuestring, "teams");
    assert_non_null(strstr(get(dead, "reason")->valuestring, "HTTP 400"));
    assert_int_equal(get(dead, "attempts")->valueint, 1);
    cJSON_Delete(dlq);
    sm_assert_hidden(&E, SECRET);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_firing_and_resolved_cards, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retries_and_dead_letter, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
