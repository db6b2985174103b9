/*
 * The renderers of the teams, email and pagerduty sinks at their edges,
 * without sockets: Teams' 28 KB limit on a huge grouped page, mail headers
 * that event text cannot break (CR/LF in a resource name), RFC 2047
 * subjects, quoted-printable line lengths, threading headers, and the
 * PagerDuty severity mapping and one event per grouped incident.
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
#include "vigil/mem.h"

#define S(x) ((char *)(x))

/* One incident of a body: `status`, severity, resource name, summary. */
static void put_item(struct vg_buf *b, const char *status, const char *sev, const char *name,
                     const char *summary, int i)
{
    char *id = vg_asprintf("%016x", i + 1);
    cJSON *inc = cJSON_CreateObject();
    cJSON *res = cJSON_CreateObject();
    cJSON *tr = cJSON_CreateObject();
    char *s1;
    char *s2;
    char *s3;

    cJSON_AddStringToObject(inc, "id", id);
    cJSON_AddStringToObject(inc, "monitor", "workflow-failed");
    cJSON_AddStringToObject(inc, "severity", sev);
    cJSON_AddStringToObject(inc, "summary", summary);
    cJSON_AddStringToObject(inc, "started_at", "2026-11-28T10:00:00Z");
    cJSON_AddStringToObject(res, "id", "workflow:v1:x:public");
    cJSON_AddStringToObject(res, "type", "workflow");
    cJSON_AddStringToObject(res, "name", name);
    cJSON_AddStringToObject(res, "workspace", "public");
    cJSON_AddStringToObject(tr, "field", "runtime");
    cJSON_AddStringToObject(tr, "from", "running");
    cJSON_AddStringToObject(tr, "to", "failed");
    s1 = cJSON_PrintUnformatted(inc);
    s2 = cJSON_PrintUnformatted(res);
    s3 = cJSON_PrintUnformatted(tr);
    vg_buf_printf(b, "\"status\":\"%s\",\"incident\":%s,\"resource\":%s,\"transition\":%s", status,
                  s1, s2, s3);
    cJSON_free(s1);
    cJSON_free(s2);
    cJSON_free(s3);
    cJSON_Delete(inc);
    cJSON_Delete(res);
    cJSON_Delete(tr);
    vg_free(id);
}

static char *single(const char *status, const char *sev, const char *name, const char *summary)
{
    struct vg_buf b = {0};

    vg_buf_puts(&b, "{\"version\":\"1\",");
    put_item(&b, status, sev, name, summary, 0);
    vg_buf_puts(&b, "}");
    return vg_buf_steal(&b);
}

/* A grouped body listing n incidents; `truncated` > 0: that many more counted, not listed. */
static char *grouped_of(size_t n, size_t truncated, const char *summary)
{
    struct vg_buf b = {0};

    vg_buf_puts(&b, "{\"version\":\"1\",\"status\":\"firing\",\"group\":{\"pager\":\"oncall\","
                    "\"labels\":{\"workspace\":\"public\"}},");
    if (truncated > 0) {
        vg_buf_printf(&b, "\"counts\":{\"firing\":%zu,\"resolved\":0},\"truncated\":%zu,",
                      n + truncated, truncated);
    }
    vg_buf_puts(&b, "\"incidents\":[");
    for (size_t i = 0; i < n; i++) {
        char name[32];

        snprintf(name, sizeof(name), "wf-%04zu", i);
        vg_buf_puts(&b, i ? ",{" : "{");
        put_item(&b, "firing", "high", name, summary, (int)i);
        vg_buf_puts(&b, "}");
    }
    vg_buf_puts(&b, "]}");
    return vg_buf_steal(&b);
}

static char *grouped(size_t n, const char *summary)
{
    return grouped_of(n, 0, summary);
}

static void parse(struct sinks_notice *nt, const char *body)
{
    char why[128];

    assert_int_equal(sinks_notice_parse(nt, body, strlen(body), why, sizeof(why)), VG_OK);
}

static void test_teams_card_fits_28kb(void **state)
{
    static const struct {
        size_t n;
        size_t summary_len;
    } cases[] = {{1, 100000}, {30, 10}, {500, 3000}, {2000, 200}};

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *summary = vg_malloc(cases[i].summary_len + 1);
        char *body;
        struct sinks_notice nt;
        char *card;
        cJSON *j;

        memset(summary, 'x', cases[i].summary_len);
        summary[cases[i].summary_len] = '\0';
        body = cases[i].n == 1 ? single("firing", "critical", "big", summary)
                               : grouped(cases[i].n, summary);
        parse(&nt, body);
        card = sinks_teams_render(&nt, "https://vigil.example");
        if (strlen(card) > SINKS_TEAMS_MAX_BYTES) {
            fail_msg("case %zu: a card of %zu bytes", i, strlen(card));
        }
        j = cJSON_Parse(card);
        assert_non_null(j);
        if (cases[i].n > 25) {
            assert_non_null(strstr(card, " more](https://vigil.example/incidents)"));
        }
        cJSON_Delete(j);
        vg_free(card);
        sinks_notice_fini(&nt);
        vg_free(body);
        vg_free(summary);
    }
}

static struct vg_sinks *email_sinks(void)
{
    static char *to[] = {S("oncall@example.com"), NULL};
    struct vg_sink_config cfg = {.name = S("mail"),
                                 .type = S("email"),
                                 .url = S("smtp://mail.example:587"),
                                 .from = S("vigil@example.com"),
                                 .to = to,
                                 .n_to = 1};
    struct vg_sinks *sk = NULL;
    char errstr[256];

    assert_int_equal(vg_sinks_new(&sk, &cfg, 1, NULL, errstr, sizeof(errstr)), VG_OK);
    return sk;
}

/* The header block of a message: everything before the first empty line. */
static char *headers_of(const char *msg)
{
    const char *end = strstr(msg, "\r\n\r\n");

    assert_non_null(end);
    return vg_strndup(msg, (size_t)(end - msg) + 2);
}

static void test_email_headers_hold(void **state)
{
    struct vg_sinks *sk = email_sinks();
    const struct sink *s = sinks_find(sk, "mail");
    struct sinks_notice nt;
    char *body = single("firing", "high", "evil\r\nBcc: victim@example.org\r\nX-A: b", "s");
    char *msg;
    char *hdrs;

    (void)state;
    parse(&nt, body);
    msg = sinks_email_render(s, &nt, "0000000000000001-1", 1795860000);
    hdrs = headers_of(msg);
    /* the name stays on the Subject line: no header of its own */
    assert_null(strstr(hdrs, "\r\nBcc:"));
    assert_null(strstr(hdrs, "\r\nX-A:"));
    assert_non_null(strstr(hdrs, "Subject: [HIGH] workflow evil  Bcc: victim@example.org  X-A: b "
                                 "failed (public)\r\n"));
    assert_non_null(strstr(hdrs, "Date: Sat, 28 Nov 2026 10:00:00 +0000\r\n"));
    assert_non_null(strstr(hdrs, "Message-ID: <0000000000000001-1.vigil@example.com>\r\n"));
    assert_null(strstr(hdrs, "In-Reply-To"));
    /* every line of the message within 78 characters: headers and quoted-printable alike */
    for (const char *p = msg; *p;) {
        const char *eol = strstr(p, "\r\n");
        size_t len = eol ? (size_t)(eol - p) : strlen(p);
        if (len > 78) {
            fail_msg("a line of %zu characters: %.*s", len, (int)len, p);
        }
        p += len + (eol ? 2 : 0);
    }
    vg_free(hdrs);
    vg_free(msg);
    sinks_notice_fini(&nt);
    vg_free(body);

    /* a later notice answers the first; a non-ASCII subject is RFC 2047 */
    body = single("resolved", "high",
                  "caf\xc3\xa9-\xe6\x97\xa5\xe6\x9c\xac-pipeline-with-a-long-name", "s");
    parse(&nt, body);
    msg = sinks_email_render(s, &nt, "0000000000000001-2", 1795860000);
    hdrs = headers_of(msg);
    assert_non_null(strstr(hdrs, "In-Reply-To: <0000000000000001-1.vigil@example.com>\r\n"));
    assert_non_null(strstr(hdrs, "References: <0000000000000001-1.vigil@example.com>\r\n"));
    assert_non_null(strstr(hdrs, "Subject: =?UTF-8?B?"));
    for (const char *p = strstr(hdrs, "=?UTF-8?B?"); p; p = strstr(p + 1, "=?UTF-8?B?")) {
        const char *end = strstr(p, "?=");
        assert_non_null(end);
        assert_true(end + 2 - p <= 75); /* RFC 2047: an encoded word is at most 75 characters */
    }
    vg_free(hdrs);
    vg_free(msg);
    sinks_notice_fini(&nt);
    vg_free(body);
    vg_sinks_destroy(sk);
}

static void test_email_grouped_is_one_message(void **state)
{
    struct vg_sinks *sk = email_sinks();
    struct sinks_notice nt;
    char *body = grouped(150, "broke");
    char *msg;

    (void)state;
    parse(&nt, body);
    msg = sinks_email_render(sinks_find(sk, "mail"), &nt, "abcdef0123456789-g", 1795860000);
    assert_non_null(strstr(msg, "Subject: [HIGH] 150 incidents: oncall (workspace=public)\r\n"));
    assert_non_null(strstr(msg, "References: <group-"));
    assert_non_null(strstr(msg, "wf-0099"));
    assert_null(strstr(msg, "wf-0100")); /* at most 100 listed */
    assert_non_null(strstr(msg, "and 50 more"));
    vg_free(msg);
    sinks_notice_fini(&nt);
    vg_free(body);
    vg_sinks_destroy(sk);
}

static void test_pagerduty_events(void **state)
{
    static const struct {
        const char *severity;
        const char *want;
    } sev[] = {{"critical", "critical"}, {"high", "error"}, {"medium", "warning"},
               {"low", "info"},          {"info", "info"},  {"bogus", "error"}};
    struct vg_sink_config cfg = {.name = S("pd"), .type = S("pagerduty"), .routing_key = S("K3Y")};
    struct vg_sinks *sk = NULL;
    const struct sink *s;
    char errstr[256];
    struct sinks_notice nt;
    char *body;
    char *ev;
    cJSON *j;

    (void)state;
    assert_int_equal(vg_sinks_new(&sk, &cfg, 1, NULL, errstr, sizeof(errstr)), VG_OK);
    s = sinks_find(sk, "pd");
    assert_string_equal(s->url, "https://events.pagerduty.com/v2/enqueue");
    for (size_t i = 0; i < sizeof(sev) / sizeof(sev[0]); i++) {
        body = single("firing", sev[i].severity, "x", "s");
        parse(&nt, body);
        ev = sinks_pagerduty_render(s, &nt, 0);
        j = cJSON_Parse(ev);
        assert_string_equal(
            cJSON_GetObjectItem(cJSON_GetObjectItem(j, "payload"), "severity")->valuestring,
            sev[i].want);
        assert_false(sinks_pagerduty_has_next(s, body, strlen(body), 0));
        cJSON_Delete(j);
        vg_free(ev);
        sinks_notice_fini(&nt);
        vg_free(body);
    }
    /* a grouped page: step i is incident i */
    body = grouped(3, "s");
    parse(&nt, body);
    for (int step = 0; step < 3; step++) {
        char want[32];

        snprintf(want, sizeof(want), "%016x", step + 1);
        ev = sinks_pagerduty_render(s, &nt, step);
        j = cJSON_Parse(ev);
        assert_string_equal(cJSON_GetObjectItem(j, "dedup_key")->valuestring, want);
        assert_int_equal(sinks_pagerduty_has_next(s, body, strlen(body), step), step < 2);
        cJSON_Delete(j);
        vg_free(ev);
    }
    sinks_notice_fini(&nt);
    vg_free(body);
    /* the end of an incident: resolve, no payload */
    body = single("stale", "high", "x", "s");
    parse(&nt, body);
    ev = sinks_pagerduty_render(s, &nt, 0);
    j = cJSON_Parse(ev);
    assert_string_equal(cJSON_GetObjectItem(j, "event_action")->valuestring, "resolve");
    assert_null(cJSON_GetObjectItem(j, "payload"));
    cJSON_Delete(j);
    vg_free(ev);
    sinks_notice_fini(&nt);
    vg_free(body);
    vg_sinks_destroy(sk);
}

/*
 * A grouped page bounded by group_limit (20 listed, 480 counted): every
 * renderer says the group's total and how many more, with a link to the
 * console's incident list when there is a console_url.
 */
static void test_truncated_group_says_how_many_more(void **state)
{
    struct vg_sink_config cfg = {.name = S("pd"),
                                 .type = S("pagerduty"),
                                 .routing_key = S("K3Y"),
                                 .console_url = S("https://vigil.example/")};
    char *body = grouped_of(20, 480, "broke");
    struct vg_sinks *sk = NULL;
    struct vg_sinks *mail = email_sinks();
    struct sinks_notice nt;
    char errstr[256];
    char *out;
    cJSON *j;

    (void)state;
    parse(&nt, body);
    assert_int_equal(nt.n_items, 20);
    assert_int_equal(nt.truncated, 480);
    assert_int_equal(nt.n_total, 500);
    out = sinks_slack_render(&nt, NULL, NULL, NULL, "https://vigil.example");
    assert_non_null(strstr(out, "500 incidents"));
    assert_non_null(strstr(out, "<https://vigil.example/incidents|and 490 more>")); /* 10 listed */
    vg_free(out);
    out = sinks_teams_render(&nt, "https://vigil.example");
    assert_non_null(strstr(out, "500 incidents"));
    assert_non_null(strstr(out, "[and 480 more](https://vigil.example/incidents)"));
    vg_free(out);
    out = sinks_email_render(sinks_find(mail, "mail"), &nt, "abcdef0123456789-g", 1795860000);
    assert_non_null(strstr(out, "Subject: [HIGH] 500 incidents: oncall (workspace=public)\r\n"));
    assert_non_null(strstr(out, "and 480 more"));
    vg_free(out);
    out = sinks_render_am_webhook(&nt, "am", "oncall", NULL);
    j = cJSON_Parse(out);
    assert_int_equal(cJSON_GetObjectItem(j, "truncatedAlerts")->valueint, 480);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(j, "alerts")), 20);
    cJSON_Delete(j);
    vg_free(out);
    assert_int_equal(vg_sinks_new(&sk, &cfg, 1, NULL, errstr, sizeof(errstr)), VG_OK);
    out = sinks_pagerduty_render(sinks_find(sk, "pd"), &nt, 0);
    j = cJSON_Parse(out);
    assert_string_equal(
        cJSON_GetObjectItem(
            cJSON_GetObjectItem(cJSON_GetObjectItem(j, "payload"), "custom_details"), "group_more")
            ->valuestring,
        "and 480 more in this group: https://vigil.example/incidents");
    cJSON_Delete(j);
    vg_free(out);
    /* a body without "truncated" (before group_limit): nothing more */
    sinks_notice_fini(&nt);
    vg_free(body);
    body = grouped(3, "s");
    parse(&nt, body);
    assert_int_equal(nt.truncated, 0);
    assert_int_equal(nt.n_total, 3);
    sinks_notice_fini(&nt);
    vg_free(body);
    vg_sinks_destroy(sk);
    vg_sinks_destroy(mail);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_teams_card_fits_28kb),
        cmocka_unit_test(test_email_headers_hold),
        cmocka_unit_test(test_email_grouped_is_one_message),
        cmocka_unit_test(test_pagerduty_events),
        cmocka_unit_test(test_truncated_group_says_how_many_more),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
