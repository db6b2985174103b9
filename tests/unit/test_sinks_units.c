/*
 * The pure parts of sinks/: token bucket, circuit breaker,
 * backoff bounds, the status table, Standard Webhooks signing (the spec's
 * own test vector), body templates, and the Slack and Alertmanager
 * renderers (limits, grouping, resolved). No sockets, no sleeps.
 */
#include <cjson/cJSON.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "sinks_int.h"
#include "vigil/json.h"
#include "vigil/mem.h"

#define FIRING                                                                                     \
    "{\"version\":\"1\",\"status\":\"firing\",\"incident\":{\"id\":\"0123456789abcdef\","          \
    "\"monitor\":\"workflow-failed\",\"severity\":\"high\",\"summary\":\"ingest <a> & b "          \
    "failed\",\"started_at\":\"2026-11-28T10:00:00Z\",\"resolved_at\":null},\"resource\":{"        \
    "\"id\":\"workflow:v1:ingest:public\",\"type\":\"workflow\",\"name\":\"ingest\","              \
    "\"workspace\":\"public\",\"version\":\"v1\",\"owner\":\"iamgroot\",\"status\":\"active\","    \
    "\"runtime\":\"failed\",\"health\":\"unhealthy\"},\"transition\":{\"field\":\"runtime\","      \
    "\"from\":\"running\",\"to\":\"failed\",\"at\":\"2026-11-28T10:00:00Z\"}}"

static char *resolved_body(void)
{
    return vg_strdup("{\"version\":\"1\",\"status\":\"resolved\",\"incident\":{\"id\":"
                     "\"0123456789abcdef\",\"monitor\":\"workflow-failed\",\"severity\":\"high\","
                     "\"summary\":\"x\",\"started_at\":\"2026-11-28T10:00:00Z\",\"resolved_at\":"
                     "\"2026-11-28T10:05:00Z\"},\"resource\":{\"id\":\"workflow:v1:ingest:public\","
                     "\"type\":\"workflow\",\"name\":\"ingest\",\"workspace\":\"public\","
                     "\"version\":\"v1\",\"owner\":\"\",\"status\":\"active\",\"runtime\":"
                     "\"running\",\"health\":\"progressing\"},\"transition\":{\"field\":"
                     "\"runtime\",\"from\":\"failed\",\"to\":\"running\",\"at\":"
                     "\"2026-11-28T10:05:00Z\"}}");
}

/* A grouped body (the form of grouped pages) with n incidents. */
static char *grouped_body(size_t n, const char *summary)
{
    struct vg_buf b = {0};

    vg_buf_puts(&b, "{\"version\":\"1\",\"status\":\"firing\",\"group\":{\"pager\":\"oncall\","
                    "\"labels\":{\"workspace\":\"public\"}},\"incidents\":[");
    for (size_t i = 0; i < n; i++) {
        vg_buf_printf(&b,
                      "%s{\"incident\":{\"id\":\"%016zx\",\"monitor\":\"m\",\"severity\":"
                      "\"critical\",\"summary\":\"%s\",\"started_at\":\"2026-11-28T10:00:00Z\","
                      "\"resolved_at\":null},\"resource\":{\"id\":\"workflow:v1:w%zu:public\","
                      "\"type\":\"workflow\",\"name\":\"w%zu\",\"workspace\":\"public\"},"
                      "\"transition\":{\"field\":\"runtime\",\"from\":null,\"to\":\"failed\","
                      "\"at\":\"2026-11-28T10:00:00Z\"}}",
                      i ? "," : "", i + 1, summary, i, i);
    }
    vg_buf_puts(&b, "]}");
    return vg_buf_steal(&b);
}

static void test_bucket(void **state)
{
    struct sinks_bucket b;
    int64_t wait = 0;

    (void)state;
    sinks_bucket_init(&b, 2.0, 2, 1000);
    assert_true(sinks_bucket_take(&b, 1000, &wait));
    assert_true(sinks_bucket_take(&b, 1000, &wait));
    assert_false(sinks_bucket_take(&b, 1000, &wait));
    assert_in_range(wait, 490, 510);
    assert_false(sinks_bucket_take(&b, 1400, &wait));
    assert_true(sinks_bucket_take(&b, 1500, &wait));
    /* a long idle refills to burst, never beyond */
    assert_true(sinks_bucket_take(&b, 100000, &wait));
    assert_true(sinks_bucket_take(&b, 100000, &wait));
    assert_false(sinks_bucket_take(&b, 100000, &wait));
    /* rate 0: unlimited */
    sinks_bucket_init(&b, 0, 0, 0);
    for (int i = 0; i < 1000; i++) {
        assert_true(sinks_bucket_take(&b, 0, &wait));
    }
    /* "1/m" with the default burst of 1 */
    sinks_bucket_init(&b, 1.0 / 60, 0, 0);
    assert_true(sinks_bucket_take(&b, 0, &wait));
    assert_false(sinks_bucket_take(&b, 1000, &wait));
    assert_in_range(wait, 58000, 60001);
}

static void test_breaker(void **state)
{
    struct sinks_breaker br = {0};
    int64_t wait = 0;

    (void)state;
    for (int i = 1; i < SINKS_BREAKER_THRESHOLD; i++) {
        assert_false(sinks_breaker_failure(&br, 0));
        assert_true(sinks_breaker_allow(&br, 0, &wait));
    }
    assert_true(sinks_breaker_failure(&br, 100)); /* opens */
    assert_int_equal(br.state, SINKS_BREAKER_OPEN);
    assert_false(sinks_breaker_allow(&br, 100, &wait));
    assert_int_equal(wait, SINKS_BREAKER_MIN_MS);
    /* after the cooldown: exactly one probe */
    assert_true(sinks_breaker_allow(&br, 100 + SINKS_BREAKER_MIN_MS, &wait));
    assert_false(sinks_breaker_allow(&br, 100 + SINKS_BREAKER_MIN_MS, &wait));
    assert_int_equal(wait, -1);
    /* the probe fails: twice the cooldown */
    assert_false(sinks_breaker_failure(&br, 2000));
    assert_int_equal(br.state, SINKS_BREAKER_OPEN);
    assert_false(sinks_breaker_allow(&br, 2000 + SINKS_BREAKER_MIN_MS, &wait));
    assert_true(sinks_breaker_allow(&br, 2000 + 2 * SINKS_BREAKER_MIN_MS, &wait));
    /* a cancelled probe lets another through */
    sinks_breaker_cancel(&br);
    assert_true(sinks_breaker_allow(&br, 4000, &wait));
    /* success closes */
    assert_true(sinks_breaker_success(&br));
    assert_int_equal(br.state, SINKS_BREAKER_CLOSED);
    assert_int_equal(br.failures, 0);
    assert_string_equal(sinks_breaker_name(br.state), "up");
    /* the cooldown is capped */
    for (int i = 0; i < 40; i++) {
        int64_t t = 1000000 + i * 100000;
        sinks_breaker_failure(&br, t);
        sinks_breaker_allow(&br, t + SINKS_BREAKER_MAX_MS, &wait);
    }
    assert_true(br.cooldown_ms <= SINKS_BREAKER_MAX_MS);
}

static void test_backoff(void **state)
{
    static const struct {
        int attempt;
        int64_t lo, hi;
    } cases[] = {{1, 200, 250},   {2, 400, 500},     {3, 800, 1000},
                 {6, 6400, 8000}, {7, 10000, 12500}, {50, 10000, 12500}};

    (void)state;
    for (size_t i = 0; i < VG_ARRAY_LEN(cases); i++) {
        assert_int_equal(vg_sinks_backoff_ms(cases[i].attempt, 0.0), cases[i].lo);
        assert_true(vg_sinks_backoff_ms(cases[i].attempt, 0.999) <= cases[i].hi);
        assert_true(vg_sinks_backoff_ms(cases[i].attempt, 0.999) > cases[i].lo);
    }
}

static void test_status_table(void **state)
{
    static const struct {
        long status;
        vg_err_t want;
    } cases[] = {{200, VG_OK},           {204, VG_OK},           {301, VG_ERR_REJECTED},
                 {400, VG_ERR_REJECTED}, {404, VG_ERR_REJECTED}, {410, VG_ERR_REJECTED},
                 {408, VG_ERR_BACKEND},  {429, VG_ERR_BACKEND},  {500, VG_ERR_BACKEND},
                 {503, VG_ERR_BACKEND},  {0, VG_ERR_BACKEND}};

    (void)state;
    for (size_t i = 0; i < VG_ARRAY_LEN(cases); i++) {
        if (sinks_classify_status(cases[i].status) != cases[i].want) {
            fail_msg("HTTP %ld: got %s", cases[i].status,
                     vg_err_name(sinks_classify_status(cases[i].status)));
        }
    }
}

static void test_signing(void **state)
{
    /* The Standard Webhooks specification's example (also what the npm package computes). */
    static const char body[] = "{\"test\": 2432232314}";
    struct sinks_sign_key k[2];
    char errstr[128];
    char *sig;

    (void)state;
    assert_int_equal(sinks_sign_key_parse(&k[0], "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", errstr,
                                          sizeof(errstr)),
                     VG_OK);
    assert_int_equal(k[0].len, 24);
    sig = sinks_sign_header(k, 1, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body, strlen(body));
    assert_string_equal(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    vg_free(sig);
    /* rotation: one signature per secret, space-separated, in config order */
    assert_int_equal(
        sinks_sign_key_parse(&k[1], "whsec_c2Vjb25kLXNlY3JldA==", errstr, sizeof(errstr)), VG_OK);
    assert_int_equal(k[1].len, strlen("second-secret"));
    sig = sinks_sign_header(k, 2, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body, strlen(body));
    assert_int_equal(strncmp(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE= v1,", 51), 0);
    vg_free(sig);
    sinks_sign_key_fini(&k[0]);
    sinks_sign_key_fini(&k[1]);
    {
        static const char *const bad[] = {"MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_", "whsec_a",
                                          "whsec_!!!!", "whsec_ab=c"};
        for (size_t i = 0; i < VG_ARRAY_LEN(bad); i++) {
            struct sinks_sign_key kk;
            errstr[0] = '\0';
            if (sinks_sign_key_parse(&kk, bad[i], errstr, sizeof(errstr)) != VG_ERR_INVALID) {
                fail_msg("case %zu accepted", i);
            }
            {
                const char *rest = bad[i] + (strncmp(bad[i], "whsec_", 6) ? 0 : 6);
                assert_true(strlen(rest) < 4 || !strstr(errstr, rest));
            }
        }
    }
}

static void test_template(void **state)
{
    struct sinks_tpl *tpl = NULL;
    struct sinks_notice nt;
    char errstr[256];
    char *out;
    char *grouped = grouped_body(3, "s");

    (void)state;
    assert_int_equal(sinks_notice_parse(&nt, FIRING, strlen(FIRING), errstr, sizeof(errstr)),
                     VG_OK);
    assert_int_equal(sinks_tpl_compile(&tpl, "t",
                                       "{\"text\":\"{{ incident.summary }} on "
                                       "{{resource.name}} ({{status}}, {{id}}, {{count}})\"}",
                                       errstr, sizeof(errstr)),
                     VG_OK);
    out = sinks_tpl_render(tpl, &nt, "0123456789abcdef-1", "t", true);
    assert_string_equal(out, "{\"text\":\"ingest <a> & b failed on ingest (firing, "
                             "0123456789abcdef-1, 1)\"}");
    vg_free(out);
    sinks_notice_fini(&nt);
    /* JSON escaping of values */
    assert_int_equal(sinks_notice_parse(&nt, grouped, strlen(grouped), errstr, sizeof(errstr)),
                     VG_OK);
    assert_true(nt.grouped);
    assert_int_equal(nt.n_items, 3);
    out = sinks_tpl_render(tpl, &nt, "g-1", "t", true);
    assert_non_null(strstr(out, "(firing, g-1, 3)"));
    vg_free(out);
    sinks_notice_fini(&nt);
    sinks_tpl_destroy(tpl);
    /* an unknown path is a config error; so is an unterminated hole */
    assert_int_equal(sinks_tpl_compile(&tpl, "t", "{{incident}}", errstr, sizeof(errstr)),
                     VG_ERR_INVALID);
    assert_non_null(strstr(errstr, "unknown path"));
    assert_int_equal(sinks_tpl_compile(&tpl, "t", "{{url}}", errstr, sizeof(errstr)),
                     VG_ERR_INVALID);
    assert_int_equal(sinks_tpl_compile(&tpl, "t", "x {{status", errstr, sizeof(errstr)),
                     VG_ERR_INVALID);
    vg_free(grouped);
}

/* Count blocks over the message: attachments[0].blocks. */
static cJSON *slack_blocks(cJSON *msg)
{
    return cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(msg, "attachments"), 0),
                               "blocks");
}

static void test_slack(void **state)
{
    struct sinks_notice nt;
    char errstr[128];
    char *out;
    cJSON *msg;
    cJSON *blocks;
    char *res = resolved_body();
    char *long_summary = vg_malloc(5001);
    char *grouped;

    (void)state;
    assert_int_equal(sinks_notice_parse(&nt, FIRING, strlen(FIRING), errstr, sizeof(errstr)),
                     VG_OK);
    out = sinks_slack_render(&nt, "C123", NULL, NULL, "https://console.example");
    msg = cJSON_Parse(out);
    assert_non_null(msg);
    assert_string_equal(cJSON_GetObjectItem(msg, "channel")->valuestring, "C123");
    assert_string_equal(
        cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(msg, "attachments"), 0), "color")
            ->valuestring,
        "#E8590C");
    blocks = slack_blocks(msg);
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(blocks, 0), "type")->valuestring,
                        "header");
    assert_non_null(strstr(out, ":large_orange_circle: HIGH: workflow-failed"));
    assert_non_null(strstr(out, "running \xe2\x86\x92 failed"));
    assert_non_null(strstr(out, "ingest &lt;a&gt; &amp; b failed")); /* mrkdwn-escaped */
    assert_non_null(strstr(out, "*Owner*\\niamgroot"));
    assert_non_null(strstr(out, "<!date^1795860000^"));
    assert_non_null(strstr(out, "https://console.example/resources/workflow:v1:ingest:public"));
    cJSON_Delete(msg);
    vg_free(out);
    /* the thread reply and the update name the message */
    out = sinks_slack_render(&nt, "C123", NULL, "1700.01", NULL);
    assert_non_null(strstr(out, "\"thread_ts\":\"1700.01\""));
    vg_free(out);
    sinks_notice_fini(&nt);

    assert_int_equal(sinks_notice_parse(&nt, res, strlen(res), errstr, sizeof(errstr)), VG_OK);
    out = sinks_slack_render(&nt, "C123", "1700.01", NULL, NULL);
    assert_non_null(strstr(out, "\"ts\":\"1700.01\""));
    assert_non_null(strstr(out, ":white_check_mark: RESOLVED: workflow-failed"));
    assert_non_null(strstr(out, "#2EB67D"));
    assert_non_null(strstr(out, "*Resolved at*"));
    vg_free(out);
    sinks_notice_fini(&nt);

    /* grouped: 10 listed and "and N more"; within 50 blocks; long texts truncated */
    memset(long_summary, 'x', 5000);
    long_summary[5000] = '\0';
    grouped = grouped_body(25, long_summary);
    assert_int_equal(sinks_notice_parse(&nt, grouped, strlen(grouped), errstr, sizeof(errstr)),
                     VG_OK);
    out = sinks_slack_render(&nt, NULL, NULL, NULL, NULL);
    msg = cJSON_Parse(out);
    blocks = slack_blocks(msg);
    assert_true(cJSON_GetArraySize(blocks) <= 50);
    assert_int_equal(cJSON_GetArraySize(blocks), 1 + 10 + 1);
    assert_non_null(strstr(out, "and 15 more"));
    assert_non_null(strstr(out, "25 incidents FIRING: oncall"));
    for (int i = 0; i < cJSON_GetArraySize(blocks); i++) {
        cJSON *t = cJSON_GetObjectItem(cJSON_GetArrayItem(blocks, i), "text");
        if (t) {
            assert_true(strlen(cJSON_GetObjectItem(t, "text")->valuestring) <= 3000);
        }
    }
    assert_null(cJSON_GetObjectItem(msg, "channel"));
    cJSON_Delete(msg);
    vg_free(out);
    sinks_notice_fini(&nt);
    vg_free(grouped);
    vg_free(long_summary);
    vg_free(res);
}

static void test_alertmanager(void **state)
{
    struct sinks_notice nt;
    char errstr[128];
    char *out;
    cJSON *arr;
    cJSON *a;
    cJSON *labels;
    char *res = resolved_body();

    (void)state;
    assert_int_equal(sinks_notice_parse(&nt, FIRING, strlen(FIRING), errstr, sizeof(errstr)),
                     VG_OK);
    out = sinks_render_am_alerts(&nt, "oncall", "https://console.example/");
    arr = cJSON_Parse(out);
    assert_int_equal(cJSON_GetArraySize(arr), 1);
    a = cJSON_GetArrayItem(arr, 0);
    labels = cJSON_GetObjectItem(a, "labels");
    assert_string_equal(cJSON_GetObjectItem(labels, "alertname")->valuestring, "workflow-failed");
    assert_string_equal(cJSON_GetObjectItem(labels, "severity")->valuestring, "high");
    assert_string_equal(cJSON_GetObjectItem(labels, "resource")->valuestring,
                        "workflow:v1:ingest:public");
    assert_string_equal(cJSON_GetObjectItem(labels, "workspace")->valuestring, "public");
    assert_string_equal(cJSON_GetObjectItem(labels, "pager")->valuestring, "oncall");
    assert_string_equal(cJSON_GetObjectItem(labels, "incident")->valuestring, "0123456789abcdef");
    assert_string_equal(
        cJSON_GetObjectItem(cJSON_GetObjectItem(a, "annotations"), "summary")->valuestring,
        "ingest <a> & b failed");
    assert_non_null(cJSON_GetObjectItem(cJSON_GetObjectItem(a, "annotations"), "description"));
    assert_string_equal(cJSON_GetObjectItem(a, "startsAt")->valuestring, "2026-11-28T10:00:00Z");
    assert_null(cJSON_GetObjectItem(a, "endsAt"));
    assert_string_equal(cJSON_GetObjectItem(a, "generatorURL")->valuestring,
                        "https://console.example/resources/workflow:v1:ingest:public");
    cJSON_Delete(arr);
    vg_free(out);
    /* the webhook form, version 4 */
    out = sinks_render_am_webhook(&nt, "ops", "oncall", NULL);
    arr = cJSON_Parse(out);
    assert_string_equal(cJSON_GetObjectItem(arr, "version")->valuestring, "4");
    assert_string_equal(cJSON_GetObjectItem(arr, "status")->valuestring, "firing");
    assert_string_equal(cJSON_GetObjectItem(arr, "receiver")->valuestring, "ops");
    assert_string_equal(
        cJSON_GetObjectItem(cJSON_GetObjectItem(arr, "groupLabels"), "alertname")->valuestring,
        "workflow-failed");
    assert_string_equal(
        cJSON_GetObjectItem(cJSON_GetObjectItem(arr, "commonLabels"), "severity")->valuestring,
        "high");
    assert_non_null(cJSON_GetObjectItem(arr, "externalURL"));
    assert_non_null(cJSON_GetObjectItem(arr, "groupKey"));
    a = cJSON_GetArrayItem(cJSON_GetObjectItem(arr, "alerts"), 0);
    assert_string_equal(cJSON_GetObjectItem(a, "status")->valuestring, "firing");
    assert_string_equal(cJSON_GetObjectItem(a, "endsAt")->valuestring, "0001-01-01T00:00:00Z");
    assert_int_equal(strlen(cJSON_GetObjectItem(a, "fingerprint")->valuestring), 16);
    cJSON_Delete(arr);
    vg_free(out);
    sinks_notice_fini(&nt);

    assert_int_equal(sinks_notice_parse(&nt, res, strlen(res), errstr, sizeof(errstr)), VG_OK);
    out = sinks_render_am_alerts(&nt, NULL, NULL);
    arr = cJSON_Parse(out);
    a = cJSON_GetArrayItem(arr, 0);
    assert_string_equal(cJSON_GetObjectItem(a, "endsAt")->valuestring, "2026-11-28T10:05:00Z");
    assert_null(cJSON_GetObjectItem(a, "generatorURL"));
    assert_null(
        cJSON_GetObjectItem(cJSON_GetObjectItem(a, "labels"), "owner")); /* "" is left out */
    cJSON_Delete(arr);
    vg_free(out);
    out = sinks_render_am_webhook(&nt, "ops", NULL, NULL);
    assert_non_null(strstr(out, "\"status\":\"resolved\""));
    vg_free(out);
    sinks_notice_fini(&nt);
    vg_free(res);
}

static void test_page_incidents(void **state)
{
    char **ids = NULL;
    char *grouped = grouped_body(3, "s");
    size_t n;

    (void)state;
    n = vg_sinks_page_incidents(FIRING, strlen(FIRING), &ids, 50);
    assert_int_equal(n, 1);
    assert_string_equal(ids[0], "0123456789abcdef");
    vg_free(ids[0]);
    vg_free(ids);
    n = vg_sinks_page_incidents(grouped, strlen(grouped), &ids, 2);
    assert_int_equal(n, 2);
    assert_string_equal(ids[1], "0000000000000002");
    vg_free(ids[0]);
    vg_free(ids[1]);
    vg_free(ids);
    assert_int_equal(vg_sinks_page_incidents("{", 1, &ids, 2), 0);
    assert_null(ids);
    vg_free(grouped);
}

static void test_truncate(void **state)
{
    char *s;

    (void)state;
    s = sinks_truncate_utf8("short", 10);
    assert_string_equal(s, "short");
    vg_free(s);
    /* never cut inside "é" (2 bytes): 5 bytes max = "ab" + "…" */
    s = sinks_truncate_utf8("ab\xc3\xa9"
                            "cdef",
                            5);
    assert_string_equal(s, "ab\xe2\x80\xa6");
    vg_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bucket),         cmocka_unit_test(test_breaker),
        cmocka_unit_test(test_backoff),        cmocka_unit_test(test_status_table),
        cmocka_unit_test(test_signing),        cmocka_unit_test(test_template),
        cmocka_unit_test(test_slack),          cmocka_unit_test(test_alertmanager),
        cmocka_unit_test(test_page_incidents), cmocka_unit_test(test_truncate),
    };
    vg_json_init();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
