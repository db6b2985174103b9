/*
 * The pure request parsers of api/api_parse.c: the silence body (a
 * duration that would overflow past a far starts_at is refused, found
 * while fuzzing), cursors, the q glob and the request head. No sockets.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "api_int.h"
#include "vigil/json.h"
#include "vigil/page.h"

#define NOW_MS INT64_C(1795860000000) /* 2026-11-28 */

static void test_silence_body(void **state)
{
    static const struct {
        const char *body;
        const char *want; /* NULL: parses; else a part of the 400's message */
    } cases[] = {
        {"{\"matchers\":[\"monitor=x\"],\"duration\":\"2h\"}", NULL},
        {"{\"matchers\":{\"severity\":\"high\"},\"ends_at\":\"2099-01-01T00:00:00Z\"}", NULL},
        {"{\"matchers\":[\"monitor=x\"],\"starts_at\":\"9999-12-31T23:59:59Z\","
         "\"duration\":\"2562047788015h\"}",
         "duration: too long"},
        {"{\"matchers\":[\"monitor=x\"],\"starts_at\":\"0000-01-01T00:00:00Z\","
         "\"duration\":\"2562047788015h\"}",
         NULL},
        {"{\"matchers\":[\"monitor=x\"],\"duration\":\"0s\"}", "duration: expected"},
        {"{\"matchers\":[],\"duration\":\"1h\"}", "at least one"},
        {"{\"matchers\":[\"nope=x\"],\"duration\":\"1h\"}", "expected key=glob"},
        /* as `vigil silence add -m` refuses them */
        {"{\"matchers\":[\"name=ingest-[ab\"],\"duration\":\"1h\"}", "invalid glob"},
        {"{\"matchers\":{\"name\":\"[!x\"},\"duration\":\"1h\"}", "invalid glob"},
        {"{\"matchers\":[\"name=[!x]*\"],\"duration\":\"1h\"}", NULL},
        {"{\"matchers\":[\"version=v1\"],\"duration\":\"1h\"}", NULL},
        {"{\"matchers\":[\"monitor=x\"]}", "give either ends_at"},
        {"[1]", "expected a JSON object"},
    };
    int bad = 0;

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct vg_silence s;
        struct vg_buf why = {0};
        bool ok = api_silence_parse(cases[i].body, strlen(cases[i].body), NOW_MS, &s, &why);

        if (cases[i].want ? ok || !strstr(why.data ? why.data : "", cases[i].want)
                          : !ok || s.ends_at_ms <= s.starts_at_ms) {
            print_error("case %zu: ok=%d why=\"%s\"\n", i, ok, why.data ? why.data : "");
            bad++;
        }
        vg_silence_fini(&s);
        vg_buf_fini(&why);
    }
    assert_int_equal(bad, 0);
}

static void test_cursor(void **state)
{
    char *name = NULL;
    char *id = NULL;
    char *hex = api_cursor_encode("ingest", "workflow:v1:ingest:public");

    (void)state;
    assert_true(api_cursor_decode(hex, &name, &id));
    assert_string_equal(name, "ingest");
    assert_string_equal(id, "workflow:v1:ingest:public");
    free(name);
    free(id);
    free(hex);
    assert_false(api_cursor_decode("abc", &name, &id));      /* odd */
    assert_false(api_cursor_decode("00411f42", &name, &id)); /* a NUL inside */
    assert_false(api_cursor_decode("4142", &name, &id));     /* no separator */
}

static void test_q(void **state)
{
    char *glob = api_q_glob("a*[");

    (void)state;
    assert_string_equal(glob, "*[aA]\\*\\[*");
    assert_true(api_name_matches("xxA*[yy", "a*["));
    assert_false(api_name_matches("xxA*yy", "a*["));
    free(glob);
}

static void test_head(void **state)
{
    static const struct {
        const char *head;
        enum api_head_verdict want;
        unsigned status;
    } cases[] = {
        {"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", API_HEAD_OK, 0},
        {"GET /healthz HTTP/1.1\r\nHost: x\r\n", API_HEAD_WAIT, 0},
        {"GET / HTTP/2.0\r\n\r\n", API_HEAD_REFUSED, 505},
        {"GET /a\x01 HTTP/1.1\r\n\r\n", API_HEAD_REFUSED, 400},
        {"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", API_HEAD_REFUSED, 411},
        {"POST / HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n", API_HEAD_REFUSED, 400},
        {"POST / HTTP/1.1\r\nContent-Length: 70000\r\n\r\n", API_HEAD_REFUSED, 413},
    };
    int bad = 0;

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct api_head head;
        enum api_head_verdict v = api_head_check(cases[i].head, strlen(cases[i].head), &head);

        if (v != cases[i].want || (v == API_HEAD_REFUSED && head.status != cases[i].status)) {
            print_error("case %zu: verdict %d status %u (%s)\n", i, (int)v, head.status,
                        head.message);
            bad++;
        }
    }
    assert_int_equal(bad, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_silence_body),
        cmocka_unit_test(test_cursor),
        cmocka_unit_test(test_q),
        cmocka_unit_test(test_head),
    };
    vg_json_init();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
