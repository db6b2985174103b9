/*
 * The slack sink against a local stand-in for Slack's Web API
 * (api_url points at a receiver on 127.0.0.1): with a bot token the
 * firing is chat.postMessage (Block Kit, Bearer token), its ts is kept in
 * Redis, and the resolved notice updates that message (chat.update) and
 * replies in its thread. 429 + Retry-After is waited out; ok:false
 * channel_not_found and an incoming webhook's 400 invalid_payload go to
 * the dead letters with the reason.
 */
#include <cjson/cJSON.h>
#include <hiredis/hiredis.h>
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

#define TOKEN "xoxb-test-1234-SECRET"
#define OK_BODY "{\"ok\":true,\"channel\":\"C024BE91L\",\"ts\":\"1700000000.000100\"}"

static struct vg_test_env E;
static struct vg_http_receiver *API;  /* the Web API: E.rcv */
static struct vg_http_receiver *HOOK; /* an incoming webhook */

static int setup(void **state)
{
    struct vg_http_behaviour ok = {.action = VG_HTTP_ANSWER, .status = 200, .body = OK_BODY};
    struct vg_http_behaviour hook_ok = {.action = VG_HTTP_ANSWER, .status = 200, .body = "ok"};

    (void)state;
    vg_test_no_proxy();
    if (vg_test_env_start(&E, "sinks-slack", NULL) != 0) {
        return -1;
    }
    API = E.rcv;
    HOOK = vg_http_receiver_start();
    if (!HOOK) {
        return -1;
    }
    vg_http_receiver_set_default(API, &ok);
    vg_http_receiver_set_default(HOOK, &hook_ok);
    return 0;
}

static int teardown(void **state)
{
    int rc;

    (void)state;
    rc = vg_test_env_stop(&E);
    vg_http_receiver_stop(HOOK);
    return rc;
}

static void start(void)
{
    static const char rules_yaml[] = "monitors:\n"
                                     "  - name: workflow-failed\n"
                                     "    when: {runtime: {to: failed}}\n"
                                     "    severity: high\n";
    char *api = vg_http_receiver_url(API, "/api");
    char *hook = vg_http_receiver_url(HOOK, "/services/T000/B000/XXXX");
    char *sinks =
        vg_asprintf("  bot: {type: slack, token: \"${VIGIL_TEST_SLACK_TOKEN}\", channel: \"#ops\", "
                    "api_url: \"%s\", rate: 50/s, console_url: \"https://vigil.example\"}\n"
                    "  hook: {type: slack, webhook_url: \"%s\", rate: 50/s}\n",
                    api, hook);

    setenv("VIGIL_TEST_SLACK_TOKEN", TOKEN, 1);
    assert_true(vg_test_env_spawn_with(&E, rules_yaml, sinks));
    E.opts.sinks = NULL; /* the config is written: `sinks` may go */
    vg_free(api);
    vg_free(hook);
    vg_free(sinks);
}

static void put(const char *inc, int seq, const char *status, const char *sink)
{
    char *id = vg_asprintf("%s-%d", inc, seq);
    char *body = vg_test_page_body(inc, status, "slacked");
    char *sid = vg_test_outbox_put(&E, id, sink, "oncall", body);

    assert_non_null(sid);
    vg_free(sid);
    vg_free(id);
    vg_free(body);
}

static void test_bot_update_and_thread(void **state)
{
    struct vg_http_request *q;
    cJSON *j;
    redisReply *memo;

    (void)state;
    start();
    put("5151515151515151", 1, "firing", "bot");
    assert_true(vg_http_receiver_wait(API, 1, 20000));
    assert_true(vg_test_outbox_wait_drained(&E, 20000));
    q = vg_http_receiver_request(API, 0);
    assert_string_equal(q->path, "/api/chat.postMessage");
    assert_string_equal(vg_http_request_header(q, "authorization"), "Bearer " TOKEN);
    assert_non_null(strstr(vg_http_request_header(q, "content-type"), "application/json"));
    j = cJSON_Parse(q->body);
    assert_string_equal(cJSON_GetObjectItem(j, "channel")->valuestring, "#ops");
    assert_non_null(strstr(cJSON_GetObjectItem(j, "text")->valuestring, "workflow-failed"));
    {
        cJSON *att = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "attachments"), 0);
        cJSON *blocks = cJSON_GetObjectItem(att, "blocks");
        assert_string_equal(cJSON_GetObjectItem(att, "color")->valuestring, "#E8590C");
        assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(blocks, 0), "type")->valuestring,
                            "header");
        assert_true(cJSON_GetArraySize(blocks) <= 50);
    }
    assert_non_null(strstr(q->body, "running \xe2\x86\x92 failed"));
    assert_non_null(strstr(q->body, "https://vigil.example/resources/workflow:v1:slacked:public"));
    cJSON_Delete(j);
    vg_http_request_free(q);
    /* the message ts is kept per incident in Redis */
    memo = vg_test_env_redis(&E, "HGET %s:notif:{5151515151515151} bot", E.prefix);
    assert_non_null(memo);
    assert_int_equal(memo->type, REDIS_REPLY_STRING);
    assert_string_equal(memo->str, "C024BE91L 1700000000.000100");
    freeReplyObject(memo);

    /* resolved: the original message is updated in place, and a reply goes into its thread */
    put("5151515151515151", 2, "resolved", "bot");
    assert_true(vg_http_receiver_wait(API, 3, 20000));
    assert_true(vg_test_outbox_wait_drained(&E, 20000));
    q = vg_http_receiver_request(API, 1);
    assert_string_equal(q->path, "/api/chat.update");
    j = cJSON_Parse(q->body);
    assert_string_equal(cJSON_GetObjectItem(j, "channel")->valuestring, "C024BE91L");
    assert_string_equal(cJSON_GetObjectItem(j, "ts")->valuestring, "1700000000.000100");
    assert_non_null(strstr(q->body, "RESOLVED"));
    assert_non_null(strstr(q->body, "#2EB67D"));
    cJSON_Delete(j);
    vg_http_request_free(q);
    q = vg_http_receiver_request(API, 2);
    assert_string_equal(q->path, "/api/chat.postMessage");
    j = cJSON_Parse(q->body);
    assert_string_equal(cJSON_GetObjectItem(j, "thread_ts")->valuestring, "1700000000.000100");
    assert_string_equal(cJSON_GetObjectItem(j, "channel")->valuestring, "C024BE91L");
    cJSON_Delete(j);
    vg_http_request_free(q);
    assert_int_equal(vg_http_receiver_count(API), 3);
}

static void test_limits_and_errors(void **state)
{
    struct vg_http_behaviour busy = {.action = VG_HTTP_ANSWER, .status = 429, .retry_after_s = 1};
    struct vg_http_behaviour nochan = {.action = VG_HTTP_ANSWER,
                                       .status = 200,
                                       .body = "{\"ok\":false,\"error\":\"channel_not_found\"}"};
    struct vg_http_behaviour invalid = {
        .action = VG_HTTP_ANSWER, .status = 400, .body = "invalid_payload"};
    struct vg_http_request *a;
    struct vg_http_request *b;
    char *out = NULL;
    char *err = NULL;
    cJSON *dlq;
    bool saw_nochan = false;
    bool saw_invalid = false;
    cJSON *e;

    (void)state;
    vg_http_receiver_push(API, &busy);
    start();
    put("6161616161616161", 1, "firing", "bot");
    assert_true(vg_http_receiver_wait(API, 2, 20000));
    assert_true(vg_test_outbox_wait_drained(&E, 20000));
    a = vg_http_receiver_request(API, 0);
    b = vg_http_receiver_request(API, 1);
    if (b->at_mono_ms - a->at_mono_ms < 990) {
        fail_msg("retried %lld ms after a 429 with Retry-After: 1",
                 (long long)(b->at_mono_ms - a->at_mono_ms));
    }
    vg_http_request_free(a);
    vg_http_request_free(b);

    vg_http_receiver_push(API, &nochan);
    put("7171717171717171", 1, "firing", "bot");
    vg_http_receiver_push(HOOK, &invalid);
    put("8181818181818181", 1, "firing", "hook");
    assert_true(vg_http_receiver_wait(HOOK, 1, 20000));
    assert_true(vg_test_outbox_wait_drained(&E, 20000));
    /* the incoming webhook got Block Kit without a channel */
    a = vg_http_receiver_request(HOOK, 0);
    assert_string_equal(a->path, "/services/T000/B000/XXXX");
    assert_null(strstr(a->body, "\"channel\""));
    assert_non_null(strstr(a->body, "\"blocks\""));
    vg_http_request_free(a);
    assert_int_equal(vg_test_env_run_cli(&E, &out, &err, "dlq", "list", "-o", "json", NULL), 0);
    dlq = cJSON_Parse(out);
    assert_int_equal(cJSON_GetArraySize(dlq), 2);
    cJSON_ArrayForEach(e, dlq)
    {
        const char *reason = cJSON_GetObjectItem(e, "reason")->valuestring;
        saw_nochan = saw_nochan || strstr(reason, "channel_not_found");
        saw_invalid = saw_invalid || strstr(reason, "invalid_payload");
        assert_int_equal(cJSON_GetObjectItem(e, "attempts")->valueint, 1);
    }
    assert_true(saw_nochan);
    assert_true(saw_invalid);
    cJSON_Delete(dlq);
    assert_null(strstr(out, "/services/T000"));
    vg_free(out);
    vg_free(err);
    {
        char *logs = vg_test_env_logs(&E);
        assert_null(strstr(logs, TOKEN));
        assert_null(strstr(logs, "T000/B000"));
        vg_free(logs);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_bot_update_and_thread, setup, teardown),
        cmocka_unit_test_setup_teardown(test_limits_and_errors, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
