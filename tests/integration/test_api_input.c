/*
 * Hostile input to the real `vigil run`'s HTTP API: every error answer is
 * the JSON error shape in valid UTF-8 (414, 413, 431, 400, 404, 401, 421,
 * including answers that echo input), a wrong Host header is refused (421:
 * DNS rebinding), a NUL or other control character, invalid UTF-8, an
 * overlong encoding or a lone surrogate in any field of a write request is
 * a 400 (it used to be cut off silently), as are too many query parameters
 * and deep JSON; each refusal is counted by reason in /metrics.
 */
#include <cjson/cJSON.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "env.h"
#include "support.h"
#include "vigil/json.h"
#include "vigil/mem.h"
#include "vigil/util.h"

#define AUTH VG_TEST_ENV_AUTH

static struct vg_test_env E;

static int setup(void **state)
{
    struct vg_test_env_opts o = {0};

    (void)state;
    vg_test_env_opts_secured(&o);
    return vg_test_env_up(&E, "api-input", &o) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    return vg_test_env_stop(&E);
}

/* Send `raw` (a whole request, any bytes) and read the answer: status, body. */
static int raw_request(const char *raw, size_t len, char **body)
{
    struct vg_test_http_reply r = vg_test_env_http_raw(&E, raw, len);
    int status = r.status;

    *body = vg_strdup(r.body ? r.body : "");
    vg_test_http_reply_free(&r);
    return status;
}

/* `body` is {"error": "..."} in valid UTF-8; the message contains `needle` (NULL: any). */
static void assert_json_error(const char *what, int status, int want, const char *body,
                              const char *needle)
{
    cJSON *j = cJSON_Parse(body);
    const cJSON *msg = j ? cJSON_GetObjectItem(j, "error") : NULL;

    if (status != want || !vg_utf8_valid(body, strlen(body)) || !cJSON_IsString(msg) ||
        (needle && !strstr(msg->valuestring, needle))) {
        fail_msg("%s: %d %s (wanted %d, a JSON error in UTF-8 with \"%s\")", what, status, body,
                 want, needle ? needle : "");
    }
    cJSON_Delete(j);
}

static void expect(const char *method, const char *path, const char *extra, const char *body,
                   int want, const char *needle)
{
    struct vg_test_http_reply r = vg_test_env_http(&E, method, path, extra, body);
    const char *ct = vg_test_http_header(&r, "content-type");
    char *what = vg_asprintf("%s %.80s", method, path);

    assert_json_error(what, r.status, want, r.body ? r.body : "", needle);
    assert_non_null(ct);
    assert_non_null(strstr(ct, "application/json"));
    free(what);
    vg_test_http_reply_free(&r);
}

static void expect_raw(const char *raw, int want, const char *needle)
{
    char *body = NULL;
    int status = raw_request(raw, strlen(raw), &body);
    char *what = vg_asprintf("raw %.60s", raw);

    assert_json_error(what, status, want, body, needle);
    free(what);
    free(body);
}

/* ---- error bodies ------------------------------------------------------------------ */

static void test_error_bodies_are_json(void **state)
{
    struct vg_buf b = {0};
    char *huge;
    (void)state;

    /* 414: a request target of 20 000 bytes (libmicrohttpd's own answer was HTML). */
    vg_buf_puts(&b, "/api/v1/resources?q=");
    for (int i = 0; i < 20000; i++) {
        vg_buf_putc(&b, 'a');
    }
    expect("GET", b.data, NULL, NULL, 414, "longer");
    /* 414 past what libmicrohttpd could even hold (70 000 bytes) */
    for (int i = 0; i < 50000; i++) {
        vg_buf_putc(&b, 'a');
    }
    expect("GET", b.data, NULL, NULL, 414, "longer");
    vg_buf_reset(&b);

    /* 431: a header flood, and one enormous header */
    for (int i = 0; i < 100; i++) {
        vg_buf_printf(&b, "X-Flood-%d: %d\r\n", i, i);
    }
    expect("GET", "/healthz", b.data, NULL, 431, "header");
    vg_buf_reset(&b);
    vg_buf_puts(&b, "X-Big: ");
    for (int i = 0; i < 30000; i++) {
        vg_buf_putc(&b, 'b');
    }
    vg_buf_puts(&b, "\r\n");
    expect("GET", "/healthz", b.data, NULL, 431, "larger");
    vg_buf_fini(&b);

    /* 413, declared and undeclared */
    huge = vg_malloc(70 * 1024 + 1);
    memset(huge, 'x', 70 * 1024);
    huge[70 * 1024] = '\0';
    expect("POST", "/api/v1/silences", AUTH, huge, 413, "larger");
    free(huge);

    /* 400s, 404s, 401, 405 */
    expect("GET", "/api/v1/resources?tpye=x", NULL, NULL, 400, "tpye");
    expect("GET", "/api/v1/nothing-\xc3\xa9t\xc3\xa9", NULL, NULL, 404,
           "nothing-\xc3\xa9t\xc3\xa9");
    expect("GET", "/api/v1/resources/no-such-resource", NULL, NULL, 404, "no-such-resource");
    expect("POST", "/api/v1/silences", NULL, "{}", 401, "Bearer");
    expect("POST", "/metrics", NULL, NULL, 405, NULL);

    /* input that is not UTF-8 is refused, never echoed raw */
    expect("GET", "/api/v1/resources/%ff%fe", NULL, NULL, 400, "UTF-8");
    expect("GET", "/nothing\xff\xfe", NULL, NULL, 400, "UTF-8");
    expect("GET", "/api/v1/resources?q=%c0%af", NULL, NULL, 400, "UTF-8");    /* overlong / */
    expect("GET", "/api/v1/resources?q=%ed%a0%80", NULL, NULL, 400, "UTF-8"); /* surrogate */
    expect("GET", "/api/v1/resources?q=a%00b", NULL, NULL, 400, "control");   /* NUL */
    expect("GET", "/api/v1/resources/a%00b", NULL, NULL, 400, "control");
    expect("GET", "/api/v1/resources?q=%zz", NULL, NULL, 400, "escape");
    expect("GET", "/api/v1/resources/x/history?limit=%ff", NULL, NULL, 400, "UTF-8");

    /* many query parameters */
    b = (struct vg_buf){0};
    vg_buf_puts(&b, "/api/v1/resources?limit=1");
    for (int i = 0; i < 40; i++) {
        vg_buf_puts(&b, "&limit=1");
    }
    expect("GET", b.data, NULL, NULL, 400, "query parameters");
    vg_buf_fini(&b);

    /* broken request heads get the JSON shape too */
    expect_raw("GET /healthz HTTP/2.0\r\n\r\n", 505, "HTTP/1.1");
    expect_raw("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nno colon here\r\n\r\n", 400, "header");
    expect_raw("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Ctl: a\x01"
               "b\r\n\r\n",
               400, "control");
    expect_raw("POST /api/v1/silences HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 12x\r\n\r\n",
               400, "Content-Length");
    expect_raw("POST /api/v1/silences HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: "
               "chunked\r\n\r\n0\r\n\r\n",
               411, "Content-Length");
    expect_raw("GET /healthz HTTP/1.1\r\n\r\n", 400, "Host");
}

/* ---- the Host header ------------------------------------------------------------------ */

static void test_host_header(void **state)
{
    char *hdr;
    struct vg_test_http_reply r;
    double before = vg_test_env_metric(&E, "vigil_http_rejected_total{reason=\"host\"}");
    (void)state;

    /* DNS rebinding: a page of evil.example resolved its own name to 127.0.0.1 */
    expect_raw("GET /api/v1/resources HTTP/1.1\r\nHost: evil.example:8089\r\n\r\n", 421,
               "evil.example");
    expect_raw("GET /metrics HTTP/1.1\r\nHost: 127.0.0.1.nip.io\r\n\r\n", 421, "allowed_hosts");
    expect_raw("GET /healthz HTTP/1.1\r\nHost: \xff\xfe\r\n\r\n", 421, NULL);

    /* loopback names, any case, with or without a port or a trailing dot */
    static const char *const good[] = {"localhost",
                                       "LOCALHOST:", "localhost.:", "127.0.0.1:", "[::1]:"};
    for (size_t i = 0; i < VG_ARRAY_LEN(good); i++) {
        size_t gl = strlen(good[i]);
        char *host =
            good[i][gl - 1] == ':' ? vg_asprintf("%s%d", good[i], E.port) : vg_strdup(good[i]);
        char *req = vg_asprintf("GET /healthz HTTP/1.1\r\nHost: %s\r\n\r\n", host);
        char *body = NULL;
        int status = raw_request(req, strlen(req), &body);
        if (status != 200) {
            fail_msg("Host: %s -> %d %s", host, status, body);
        }
        free(body);
        free(req);
        free(host);
    }
    hdr = vg_asprintf("GET /healthz HTTP/1.0\r\n\r\n"); /* HTTP/1.0 without Host: no browser */
    {
        char *body = NULL;
        assert_int_equal(raw_request(hdr, strlen(hdr), &body), 200);
        free(body);
    }
    free(hdr);
    assert_true(vg_test_env_metric(&E, "vigil_http_rejected_total{reason=\"host\"}") >= before + 3);
    if (!vg_test_env_log_has(&E, "refused reason=host client=127.0.0.1")) {
        vg_test_env_dump_logs(&E);
        fail_msg("no WARN line for the Host refusal");
    }
    r = vg_test_env_http(&E, "GET", "/healthz", NULL, NULL);
    assert_int_equal(r.status, 200);
    vg_test_http_reply_free(&r);
}

/* ---- write requests --------------------------------------------------------------------- */

static void test_control_characters_in_writes(void **state)
{
    static const struct {
        const char *body;
        const char *needle;
    } bad[] = {
        /* a NUL used to cut the matcher to "monitor=a" and answer 201 */
        {"{\"matchers\": [\"monitor=a\\u0000b\"], \"duration\": \"1h\"}", "control"},
        {"{\"matchers\": {\"monitor\": \"a\\u0000b\"}, \"duration\": \"1h\"}", "control"},
        {"{\"matchers\": [\"monitor=a\\u001fb\"], \"duration\": \"1h\"}", "control"},
        {"{\"matchers\": [\"monitor=a\\u007fb\"], \"duration\": \"1h\"}", "control"},
        {"{\"matchers\": [\"monitor=a\\u0085b\"], \"duration\": \"1h\"}", "control"},
        {"{\"matchers\": [\"monitor=a\\nb\"], \"duration\": \"1h\"}", "control"},
        {"{\"matchers\": [\"monitor=a\tb\"], \"duration\": \"1h\"}", "control"},
        {"{\"matchers\": [\"monitor=x\"], \"duration\": \"1h\", \"comment\": \"a\\u0000\"}",
         "control"},
        {"{\"matchers\": [\"monitor=x\"], \"duration\": \"1h\", \"created_by\": \"\\u0000\"}",
         "control"},
        {"{\"matchers\": [\"monitor=x\"], \"duration\": \"1h\\u0000garbage\"}", "control"},
        {"{\"matchers\": [\"mon\\u0000itor=x\"], \"duration\": \"1h\"}", "control"},
        {"{\"matchers\": {\"mon\\u0000itor\": \"x\"}, \"duration\": \"1h\"}", "control"},
        /* not UTF-8: invalid bytes, an overlong "/", an encoded surrogate, lone \u surrogates */
        {"{\"matchers\": [\"monitor=\xff\"], \"duration\": \"1h\"}", "UTF-8"},
        {"{\"matchers\": [\"monitor=\xc0\xaf\"], \"duration\": \"1h\"}", "UTF-8"},
        {"{\"matchers\": [\"monitor=\xed\xa0\x80\"], \"duration\": \"1h\"}", "UTF-8"},
        {"{\"matchers\": [\"monitor=\\ud800\"], \"duration\": \"1h\"}", "surrogate"},
        {"{\"matchers\": [\"monitor=\\udc00x\"], \"duration\": \"1h\"}", "surrogate"},
        {"{\"matchers\": [\"monitor=\\ud800\\u0041\"], \"duration\": \"1h\"}", "surrogate"},
    };
    struct vg_buf deep = {0};
    struct vg_test_http_reply r;
    cJSON *j;
    double before = vg_test_env_metric(&E, "vigil_http_rejected_total{reason=\"bad_request\"}");
    (void)state;

    for (size_t i = 0; i < VG_ARRAY_LEN(bad); i++) {
        expect("POST", "/api/v1/silences", AUTH, bad[i].body, 400, bad[i].needle);
    }
    /* deep nesting */
    vg_buf_puts(&deep, "{\"matchers\": [\"monitor=x\"], \"duration\": \"1h\", \"comment\": ");
    for (int i = 0; i < 5000; i++) {
        vg_buf_putc(&deep, '[');
    }
    for (int i = 0; i < 5000; i++) {
        vg_buf_putc(&deep, ']');
    }
    vg_buf_putc(&deep, '}');
    expect("POST", "/api/v1/silences", AUTH, deep.data, 400, "nested");
    vg_buf_fini(&deep);
    /* a control character in the path of a write */
    expect("DELETE", "/api/v1/silences/abc%00def", AUTH, NULL, 400, "control");
    expect("POST", "/api/v1/dlq/1-0%0a/retry", AUTH, NULL, 400, "control");

    /* nothing was created; a clean silence (with a surrogate pair and accents) still is */
    j = NULL;
    r = vg_test_env_http(&E, "GET", "/api/v1/silences", NULL, NULL);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "\"count\": 0"));
    vg_test_http_reply_free(&r);
    r = vg_test_env_http(&E, "POST", "/api/v1/silences", AUTH,
                         "{\"matchers\": [\"monitor=caf\xc3\xa9\"], \"duration\": \"1h\", "
                         "\"comment\": \"\\ud83d\\ude00 ok\"}");
    assert_int_equal(r.status, 201);
    j = cJSON_Parse(r.body);
    assert_non_null(j);
    assert_string_equal(cJSON_GetObjectItem(j, "comment")->valuestring, "\xf0\x9f\x98\x80 ok");
    cJSON_Delete(j);
    vg_test_http_reply_free(&r);
    assert_true(vg_test_env_metric(&E, "vigil_http_rejected_total{reason=\"bad_request\"}") >=
                before + (double)VG_ARRAY_LEN(bad) + 3);
}

/* ---- the count ----------------------------------------------------------------------------- */

static void test_refusals_are_counted(void **state)
{
    static const char *const reasons[] = {"host", "too_large", "bad_request", "unauthorized"};
    (void)state;

    for (size_t i = 0; i < VG_ARRAY_LEN(reasons); i++) {
        char *series = vg_asprintf("vigil_http_rejected_total{reason=\"%s\"}", reasons[i]);
        double v = vg_test_env_metric(&E, series);
        if (v <= 0) {
            fail_msg("%s is %g", series, v);
        }
        free(series);
    }
    /* every reason is exported from the start, at 0 when nothing was refused for it */
    assert_true(vg_test_env_metric(&E, "vigil_http_rejected_total{reason=\"timeout\"}") >= 0);
    assert_true(vg_test_env_metric(&E, "vigil_http_rejected_total{reason=\"per_ip_limit\"}") >= 0);
    assert_true(
        vg_test_env_metric(&E, "vigil_http_rejected_total{reason=\"too_many_connections\"}") >= 0);
    if (!vg_test_env_log_has(&E, "refused reason=too_large client=127.0.0.1")) {
        vg_test_env_dump_logs(&E);
        fail_msg("no WARN line for too_large");
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_error_bodies_are_json),
        cmocka_unit_test(test_host_header),
        cmocka_unit_test(test_control_characters_in_writes),
        cmocka_unit_test(test_refusals_are_counted),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
