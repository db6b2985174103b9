/*
 * Every HTTP endpoint of a running `vigil run` (real Redis with a password,
 * mock Kafka, a webhook sink with a secret URL): filters, paging,
 * 400/401/403/404/405/413, silences, the dead-letter stream, rules, the
 * event stream, the console pages and their security headers, and /readyz
 * turning 503 when Redis goes away. Every reply and log is checked for the
 * secrets (tests/support/env.h, vg_test_env_opts_secured).
 */
#include <cjson/cJSON.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cmocka.h>

#include "env.h"
#include "support.h"
#include "vigil/mem.h"
#include "vigil/util.h"

#define AUTH VG_TEST_ENV_AUTH
#define ID_A "workflow:v1:ingestion-a:public"
#define ID_X "workflow:v1:other-x:public"

static struct vg_test_env E;

/* GET path; assert the status; return the parsed JSON body (caller deletes). */
static cJSON *get_json(const char *path, int want)
{
    struct vg_test_http_reply r = vg_test_env_http(&E, "GET", path, NULL, NULL);
    cJSON *j;

    if (r.status != want) {
        fprintf(stderr, "GET %s: %d (wanted %d)\n%s\n", path, r.status, want, r.body);
    }
    assert_int_equal(r.status, want);
    assert_non_null(strstr(vg_test_http_header(&r, "content-type"), "application/json"));
    j = cJSON_Parse(r.body);
    assert_non_null(j);
    vg_test_http_reply_free(&r);
    return j;
}

/* An error reply: {"error": "<message containing `part`>"} with `want` status. */
static void expect_error(const char *method, const char *path, const char *extra, const char *body,
                         int want, const char *part)
{
    struct vg_test_http_reply r = vg_test_env_http(&E, method, path, extra, body);
    cJSON *j = cJSON_Parse(r.body);
    const cJSON *msg = cJSON_GetObjectItem(j, "error");

    if (r.status != want || !cJSON_IsString(msg) || (part && !strstr(msg->valuestring, part))) {
        fprintf(stderr, "%s %s: %d %s (wanted %d with \"%s\")\n", method, path, r.status, r.body,
                want, part ? part : "");
    }
    assert_int_equal(r.status, want);
    assert_true(cJSON_IsString(msg));
    if (part) {
        assert_non_null(strstr(msg->valuestring, part));
    }
    cJSON_Delete(j);
    vg_test_http_reply_free(&r);
}

static size_t n_items(const cJSON *j)
{
    return (size_t)cJSON_GetArraySize(cJSON_GetObjectItem(j, "items"));
}

static const char *item_str(const cJSON *j, int i, const char *key)
{
    const cJSON *v =
        cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(j, "items"), i), key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static int group_setup(void **state)
{
    struct vg_test_env_opts o = {0};

    (void)state;
    vg_test_env_opts_secured(&o);
    return vg_test_env_up(&E, "api-endpoints", &o) ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    return vg_test_env_stop(&E);
}

static void test_health_and_seed(void **state)
{
    cJSON *j;
    (void)state;

    j = get_json("/healthz", 200);
    assert_string_equal(cJSON_GetObjectItem(j, "status")->valuestring, "ok");
    cJSON_Delete(j);
    j = get_json("/readyz", 200);
    assert_string_equal(cJSON_GetObjectItem(j, "status")->valuestring, "ready");
    cJSON_Delete(j);

    vg_test_env_produce(&E, "workflow", "ingestion-a", "public", "active", "running",
                        "2026-11-28T10:00:00Z", "started");
    vg_test_env_produce(&E, "workflow", "ingestion-a", "public", NULL, "succeeded",
                        "2026-11-28T10:05:00Z", "completed in 5m");
    vg_test_env_produce(&E, "workflow", "Ingestion-B", "public", "active", "running",
                        "2026-11-28T10:00:00Z", NULL);
    vg_test_env_produce(&E, "service", "api", "sandbox", "active", "running",
                        "2026-11-28T10:00:00Z", NULL);
    vg_test_env_produce(&E, "workflow", "other-x", "public", "active", "running",
                        "2026-11-28T10:00:00Z", NULL);
    vg_test_env_produce(&E, "workflow", "other-x", "public", NULL, "failed", "2026-11-28T10:02:00Z",
                        "OOMKilled");
    assert_true(vg_test_env_wait_applied_exact(&E, 30000));
    assert_true(vg_http_receiver_wait(E.rcv, 1, 30000)); /* the firing page was delivered */
}

static void test_resources_list_and_filters(void **state)
{
    cJSON *j;
    (void)state;

    j = get_json("/api/v1/resources", 200);
    assert_int_equal(n_items(j), 4);
    /* sorted by name, the `vigil get -o json` fields */
    assert_string_equal(item_str(j, 0, "name"), "Ingestion-B"); /* byte order: capitals first */
    assert_string_equal(item_str(j, 1, "name"), "api");
    assert_string_equal(item_str(j, 2, "id"), ID_A);
    assert_string_equal(item_str(j, 2, "version"), "v1");
    assert_string_equal(item_str(j, 2, "type"), "workflow");
    assert_string_equal(item_str(j, 2, "workspace"), "public");
    assert_string_equal(item_str(j, 2, "status"), "active");
    assert_string_equal(item_str(j, 2, "runtime"), "succeeded");
    assert_string_equal(item_str(j, 2, "owner"), "iamgroot");
    assert_string_equal(item_str(j, 2, "health"), "healthy");
    assert_string_equal(item_str(j, 2, "updated_at"), "2026-11-28T10:05:00Z");
    assert_string_equal(item_str(j, 2, "since"), "2026-11-28T10:05:00Z");
    assert_int_equal(cJSON_GetObjectItem(j, "total")->valueint, 4);
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(j, "next_cursor")));
    assert_int_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "counts"), "unhealthy")->valueint,
                     1);
    cJSON_Delete(j);

    j = get_json("/api/v1/resources?type=service", 200);
    assert_int_equal(n_items(j), 1);
    assert_string_equal(item_str(j, 0, "name"), "api");
    cJSON_Delete(j);
    j = get_json("/api/v1/resources?workspace=public", 200);
    assert_int_equal(n_items(j), 3);
    cJSON_Delete(j);
    /* search: a case-insensitive substring of the name */
    j = get_json("/api/v1/resources?q=INGESTION", 200);
    assert_int_equal(n_items(j), 2);
    cJSON_Delete(j);
    j = get_json("/api/v1/resources?q=gestion-a&type=workflow&workspace=public", 200);
    assert_int_equal(n_items(j), 1);
    assert_string_equal(item_str(j, 0, "id"), ID_A);
    cJSON_Delete(j);
    j = get_json("/api/v1/resources?q=*", 200); /* glob characters are literal */
    assert_int_equal(n_items(j), 0);
    cJSON_Delete(j);
    j = get_json("/api/v1/resources?health=unhealthy", 200);
    assert_int_equal(n_items(j), 1);
    assert_string_equal(item_str(j, 0, "id"), ID_X);
    assert_string_equal(item_str(j, 0, "runtime"), "failed");
    cJSON_Delete(j);
    j = get_json("/api/v1/resources?health=progressing", 200); /* a running workflow */
    assert_int_equal(n_items(j), 1);
    assert_string_equal(item_str(j, 0, "name"), "Ingestion-B");
    cJSON_Delete(j);

    expect_error("GET", "/api/v1/resources?health=bogus", NULL, NULL, 400, "health");
    expect_error("GET", "/api/v1/resources?limit=0", NULL, NULL, 400, "limit");
    expect_error("GET", "/api/v1/resources?limit=abc", NULL, NULL, 400, "limit");
    expect_error("GET", "/api/v1/resources?limit=1001", NULL, NULL, 400, "limit");
    expect_error("GET", "/api/v1/resources?tpye=service", NULL, NULL, 400, "tpye");
    expect_error("GET", "/api/v1/resources?cursor=zz", NULL, NULL, 400, "cursor");
    expect_error("DELETE", "/api/v1/resources", NULL, NULL, 405, "not allowed");
}

static void test_resources_paging(void **state)
{
    char seen[4][128];
    size_t n_seen = 0;
    char *path = vg_strdup("/api/v1/resources?limit=3");
    (void)state;

    for (int page = 0; page < 3 && path; page++) {
        cJSON *j = get_json(path, 200);
        const cJSON *next = cJSON_GetObjectItem(j, "next_cursor");

        free(path);
        path = NULL;
        for (size_t i = 0; i < n_items(j); i++) {
            assert_true(n_seen < 4);
            snprintf(seen[n_seen++], sizeof(seen[0]), "%s", item_str(j, (int)i, "id"));
        }
        assert_int_equal(cJSON_GetObjectItem(j, "total")->valueint, 4);
        if (cJSON_IsString(next)) {
            assert_int_equal(n_items(j), 3);
            path = vg_asprintf("/api/v1/resources?limit=3&cursor=%s", next->valuestring);
        }
        cJSON_Delete(j);
    }
    assert_null(path);
    assert_int_equal(n_seen, 4);
    for (size_t i = 0; i < n_seen; i++) {
        for (size_t k = i + 1; k < n_seen; k++) {
            assert_string_not_equal(seen[i], seen[k]);
        }
    }
    /* a filter keeps applying across pages */
    {
        cJSON *j = get_json("/api/v1/resources?workspace=public&limit=2", 200);
        const cJSON *next = cJSON_GetObjectItem(j, "next_cursor");
        char *p2;
        cJSON *j2;
        assert_int_equal(n_items(j), 2);
        assert_true(cJSON_IsString(next));
        p2 = vg_asprintf("/api/v1/resources?workspace=public&limit=2&cursor=%s", next->valuestring);
        j2 = get_json(p2, 200);
        assert_int_equal(n_items(j2), 1);
        assert_string_equal(item_str(j2, 0, "id"), ID_X);
        cJSON_Delete(j);
        cJSON_Delete(j2);
        free(p2);
    }
}

static void test_resource_detail_and_history(void **state)
{
    cJSON *j;
    const cJSON *items;
    (void)state;

    j = get_json("/api/v1/resources/" ID_X, 200);
    assert_string_equal(cJSON_GetObjectItem(j, "runtime")->valuestring, "failed");
    assert_string_equal(cJSON_GetObjectItem(j, "health")->valuestring, "unhealthy");
    assert_string_equal(cJSON_GetObjectItem(j, "message")->valuestring, "OOMKilled");
    assert_true(cJSON_IsArray(cJSON_GetObjectItem(j, "pods")));
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(j, "incidents")), 1);
    assert_string_equal(
        cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(j, "incidents"), 0), "monitor")
            ->valuestring,
        "workflow-failed");
    cJSON_Delete(j);
    expect_error("GET", "/api/v1/resources/workflow:v1:nope:public", NULL, NULL, 404, "nope");

    j = get_json("/api/v1/resources/" ID_A "/history", 200);
    items = cJSON_GetObjectItem(j, "items");
    assert_true(cJSON_GetArraySize(items) >= 4); /* status, runtime x2, health */
    {
        bool succeeded = false;
        const cJSON *it;
        cJSON_ArrayForEach(it, items)
        {
            const cJSON *to = cJSON_GetObjectItem(it, "to");
            if (cJSON_IsString(to) && !strcmp(to->valuestring, "succeeded")) {
                succeeded = true;
                assert_string_equal(cJSON_GetObjectItem(it, "field")->valuestring, "runtime");
                assert_string_equal(cJSON_GetObjectItem(it, "from")->valuestring, "running");
                assert_string_equal(cJSON_GetObjectItem(it, "message")->valuestring,
                                    "completed in 5m");
            }
        }
        assert_true(succeeded);
    }
    cJSON_Delete(j);
    j = get_json("/api/v1/resources/" ID_A "/history?limit=1", 200);
    assert_int_equal(n_items(j), 1);
    cJSON_Delete(j);
    expect_error("GET", "/api/v1/resources/workflow:v1:nope:public/history", NULL, NULL, 404,
                 "nope");
    expect_error("GET", "/api/v1/resources/" ID_A "/history?limit=-1", NULL, NULL, 400, "limit");
}

static void test_incidents(void **state)
{
    cJSON *j;
    (void)state;

    j = get_json("/api/v1/incidents", 200);
    assert_int_equal(n_items(j), 1);
    assert_string_equal(item_str(j, 0, "monitor"), "workflow-failed");
    assert_string_equal(item_str(j, 0, "resource"), ID_X);
    assert_string_equal(item_str(j, 0, "severity"), "high");
    assert_string_equal(item_str(j, 0, "status"), "firing");
    assert_string_equal(item_str(j, 0, "summary"), "other-x failed in public");
    cJSON_Delete(j);
    j = get_json("/api/v1/incidents?status=firing", 200);
    assert_int_equal(n_items(j), 1);
    cJSON_Delete(j);
    j = get_json("/api/v1/incidents?status=resolved", 200);
    assert_int_equal(n_items(j), 0);
    cJSON_Delete(j);
    expect_error("GET", "/api/v1/incidents?status=burning", NULL, NULL, 400, "status");
}

static void test_silences_and_auth(void **state)
{
    struct vg_test_http_reply r;
    cJSON *j;
    char *id;
    char *path;
    const char *body = "{\"matchers\": [\"monitor=workflow-failed\", \"resource=" ID_X "\"], "
                       "\"duration\": \"2h\", \"comment\": \"deploying a fix\"}";
    (void)state;

    j = get_json("/api/v1/silences", 200);
    assert_int_equal(n_items(j), 0);
    cJSON_Delete(j);

    /* writes: 401 without a token, 403 with a wrong one */
    r = vg_test_env_http(&E, "POST", "/api/v1/silences", NULL, body);
    assert_int_equal(r.status, 401);
    assert_non_null(vg_test_http_header(&r, "www-authenticate"));
    vg_test_http_reply_free(&r);
    expect_error("POST", "/api/v1/silences", "Authorization: Bearer wrong\r\n", body, 403, "token");
    expect_error("POST", "/api/v1/silences", "Authorization: Basic eDp5\r\n", body, 401, "Bearer");
    /* bad bodies */
    expect_error("POST", "/api/v1/silences", AUTH, "not json", 400, "JSON");
    expect_error("POST", "/api/v1/silences", AUTH, "{\"matchers\": [], \"duration\": \"1h\"}", 400,
                 "matchers");
    expect_error("POST", "/api/v1/silences", AUTH,
                 "{\"matchers\": [\"colour=red\"], \"duration\": \"1h\"}", 400, "colour");
    expect_error("POST", "/api/v1/silences", AUTH,
                 "{\"matchers\": [\"monitor=x\"], \"duration\": \"soon\"}", 400, "duration");
    expect_error("POST", "/api/v1/silences", AUTH, "{\"matchers\": [\"monitor=x\"]}", 400,
                 "duration");
    expect_error("POST", "/api/v1/silences", AUTH,
                 "{\"matchers\": [\"monitor=x\"], \"duration\": \"1h\", \"extra\": 1}", 400,
                 "extra");
    /* too large */
    {
        size_t big = 70 * 1024;
        char *huge = vg_malloc(big + 1);
        memset(huge, 'x', big);
        huge[big] = '\0';
        expect_error("POST", "/api/v1/silences", AUTH, huge, 413, "larger");
        free(huge);
    }

    r = vg_test_env_http(&E, "POST", "/api/v1/silences", AUTH, body);
    assert_int_equal(r.status, 201);
    j = cJSON_Parse(r.body);
    assert_string_equal(cJSON_GetObjectItem(j, "status")->valuestring, "active");
    assert_string_equal(cJSON_GetObjectItem(j, "comment")->valuestring, "deploying a fix");
    id = vg_strdup(cJSON_GetObjectItem(j, "id")->valuestring);
    cJSON_Delete(j);
    vg_test_http_reply_free(&r);

    j = get_json("/api/v1/silences", 200);
    assert_int_equal(n_items(j), 1);
    assert_string_equal(item_str(j, 0, "id"), id);
    cJSON_Delete(j);

    path = vg_asprintf("/api/v1/silences/%s", id);
    expect_error("DELETE", path, NULL, NULL, 401, NULL);
    expect_error("DELETE", path, "Authorization: Bearer nope\r\n", NULL, 403, NULL);
    r = vg_test_env_http(&E, "DELETE", path, AUTH, NULL);
    assert_int_equal(r.status, 200);
    vg_test_http_reply_free(&r);
    j = get_json("/api/v1/silences", 200);
    assert_string_equal(item_str(j, 0, "status"), "expired");
    cJSON_Delete(j);
    expect_error("DELETE", "/api/v1/silences/0123456789abcdef", AUTH, NULL, 404, "silence");
    free(path);
    free(id);
}

static bool one_dead(void *arg)
{
    struct vg_test_http_reply r = vg_test_env_http(&E, "GET", "/api/v1/dlq", NULL, NULL);
    bool ok = r.status == 200 && strstr(r.body, "\"count\": 1}") != NULL;

    (void)arg;
    vg_test_http_reply_free(&r);
    return ok;
}

static void test_dlq(void **state)
{
    struct vg_http_behaviour fail = {.action = VG_HTTP_ANSWER, .status = 400};
    size_t before = vg_http_receiver_count(E.rcv);
    cJSON *j;
    char *path;
    (void)state;

    /* the receiver refuses the next page for good (400): dead-lettered */
    vg_http_receiver_push(E.rcv, &fail);
    vg_test_env_produce(&E, "workflow", "ingestion-a", "public", NULL, "failed",
                        "2026-11-28T11:00:00Z", NULL);
    assert_true(vg_test_env_wait_applied_exact(&E, 30000));
    assert_true(vg_http_receiver_wait(E.rcv, before + 1, 30000));
    assert_true(vg_test_wait_for(one_dead, NULL, 20000));
    j = get_json("/api/v1/dlq", 200);
    assert_int_equal(n_items(j), 1);
    assert_string_equal(item_str(j, 0, "sink"), "ops");
    assert_non_null(item_str(j, 0, "body"));
    path = vg_asprintf("/api/v1/dlq/%s/retry", item_str(j, 0, "stream_id"));
    cJSON_Delete(j);

    expect_error("POST", path, NULL, NULL, 401, NULL);
    expect_error("POST", path, "Authorization: Bearer nope\r\n", NULL, 403, NULL);
    expect_error("GET", path, NULL, NULL, 405, NULL);
    {
        struct vg_test_http_reply r = vg_test_env_http(&E, "POST", path, AUTH, NULL);
        assert_int_equal(r.status, 200);
        assert_non_null(strstr(r.body, "\"retried\": 1"));
        vg_test_http_reply_free(&r);
    }
    assert_true(vg_http_receiver_wait(E.rcv, before + 2, 30000)); /* delivered this time */
    expect_error("POST", "/api/v1/dlq/9999999999999-0/retry", AUTH, NULL, 404, "dead-letter");
    expect_error("GET", "/api/v1/dlq?limit=x", NULL, NULL, 400, "limit");
    free(path);
}

static void test_rules_and_errors(void **state)
{
    cJSON *j;
    (void)state;

    j = get_json("/api/v1/rules", 200);
    assert_string_equal(
        cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(j, "monitors"), 0), "name")
            ->valuestring,
        "workflow-failed");
    assert_string_equal(
        cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(j, "pagers"), 0), "name")
            ->valuestring,
        "ops");
    cJSON_Delete(j);
    expect_error("GET", "/api/v1/nothing", NULL, NULL, 404, "not found");
    expect_error("GET", "/nothing", NULL, NULL, 404, "not found");
    expect_error("POST", "/metrics", NULL, NULL, 405, NULL);
}

/* Read from `fd` until `needle` shows up (true) or the deadline passes. */
static bool read_until(int fd, struct vg_buf *b, const char *needle, int timeout_ms)
{
    int64_t end = vg_mono_ms() + vg_test_timeout(timeout_ms);
    char chunk[4096];

    while (!(b->data && strstr(b->data, needle)) && vg_mono_ms() < end) {
        ssize_t got = recv(fd, chunk, sizeof(chunk), 0);
        if (got > 0) {
            vg_buf_append(b, chunk, (size_t)got);
        } else if (got == 0) {
            break;
        }
    }
    return b->data && strstr(b->data, needle);
}

static void test_stream(void **state)
{
    struct timeval tv = {.tv_sec = 0, .tv_usec = 200 * 1000};
    struct vg_buf b = {0};
    const char *req = "GET /api/v1/stream HTTP/1.0\r\nAccept: text/event-stream\r\n\r\n";
    int fd = vg_test_env_dial(&E, NULL);
    (void)state;

    assert_true(fd >= 0);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    assert_true(send(fd, req, strlen(req), MSG_NOSIGNAL) > 0);
    assert_true(read_until(fd, &b, "vigil event stream", 10000));
    assert_non_null(strstr(b.data, "text/event-stream"));

    vg_test_env_produce(&E, "workflow", "Ingestion-B", "public", NULL, "failed",
                        "2026-11-28T11:10:00Z", NULL);
    assert_true(vg_test_env_wait_applied_exact(&E, 30000));
    assert_true(read_until(fd, &b, "\"workflow:v1:Ingestion-B:public\"", 10000));
    assert_non_null(strstr(b.data, "event: transition"));
    assert_non_null(strstr(b.data, "\"to\": \"failed\""));
    /* its incident follows */
    assert_true(read_until(fd, &b, "event: incident", 10000));
    close(fd);
    vg_buf_fini(&b);
}

static void test_console_pages(void **state)
{
    struct vg_test_http_reply r;
    (void)state;

    r = vg_test_env_http(&E, "GET", "/?q=ingestion", NULL, NULL);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(vg_test_http_header(&r, "content-type"), "text/html"));
    assert_non_null(
        strstr(vg_test_http_header(&r, "content-security-policy"), "script-src 'self'"));
    assert_non_null(
        strstr(vg_test_http_header(&r, "content-security-policy"), "frame-ancestors 'none'"));
    assert_string_equal(vg_test_http_header(&r, "x-content-type-options"), "nosniff");
    assert_string_equal(vg_test_http_header(&r, "referrer-policy"), "no-referrer");
    assert_null(vg_test_http_header(&r, "access-control-allow-origin"));
    /* server-rendered rows (readable without JavaScript); no inline script */
    assert_non_null(strstr(r.body, "data-id=\"" ID_A "\""));
    assert_non_null(strstr(r.body, "ingestion-a"));
    assert_null(strstr(r.body, "other-x"));
    assert_null(strstr(r.body, "<script>"));
    assert_null(strstr(r.body, " style="));
    vg_test_http_reply_free(&r);

    r = vg_test_env_http(&E, "GET", "/resources/" ID_A, NULL, NULL);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "id=\"timeline\""));
    assert_non_null(strstr(r.body, "completed in 5m"));
    vg_test_http_reply_free(&r);
    r = vg_test_env_http(&E, "GET", "/resources/workflow:v1:nope:public", NULL, NULL);
    assert_int_equal(r.status, 404);
    vg_test_http_reply_free(&r);

    r = vg_test_env_http(&E, "GET", "/incidents", NULL, NULL);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "workflow-failed"));
    assert_non_null(strstr(r.body, "silence-dialog"));
    vg_test_http_reply_free(&r);

    r = vg_test_env_http(&E, "GET", "/console/app.js", NULL, NULL);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(vg_test_http_header(&r, "content-type"), "javascript"));
    assert_non_null(strstr(r.body, "EventSource"));
    vg_test_http_reply_free(&r);
    r = vg_test_env_http(&E, "GET", "/console/style.css", NULL, NULL);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(vg_test_http_header(&r, "content-type"), "text/css"));
    vg_test_http_reply_free(&r);
}

/* /readyz and /metrics while degraded: the receiver answers 410, which disables the sink. */
static bool readyz_degraded(void *arg)
{
    struct vg_test_http_reply r = vg_test_env_http(&E, "GET", "/readyz", NULL, NULL);
    bool ok = r.status == 200 && r.body && strstr(r.body, "\"degraded\"") &&
              strstr(r.body, "sink ops: disabled");
    (void)arg;
    vg_test_http_reply_free(&r);
    return ok;
}

static void test_readyz_degraded_sink(void **state)
{
    struct vg_http_behaviour gone = {.action = VG_HTTP_ANSWER, .status = 410};
    struct vg_test_http_reply r;
    (void)state;

    vg_http_receiver_set_default(E.rcv, &gone);
    vg_test_env_produce(&E, "workflow", "degrader", "public", "active", "running",
                        "2026-11-28T11:00:00Z", NULL);
    vg_test_env_produce(&E, "workflow", "degrader", "public", NULL, "failed",
                        "2026-11-28T11:01:00Z", NULL);
    assert_true(vg_test_env_wait_applied_exact(&E, 30000));
    if (!vg_test_wait_for(readyz_degraded, NULL, 20000)) {
        r = vg_test_env_http(&E, "GET", "/readyz", NULL, NULL);
        fprintf(stderr, "/readyz: %d %s\n", r.status, r.body);
        vg_test_http_reply_free(&r);
        fail();
    }
    r = vg_test_env_http(&E, "GET", "/metrics", NULL, NULL);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "vigil_sink_up{sink=\"ops\",state=\"disabled\"} 0"));
    vg_test_http_reply_free(&r);
}

/* Last: Redis goes away, /readyz says so with a 503 and the reason. */
static void test_readyz_without_redis(void **state)
{
    cJSON *j;
    (void)state;

    E.unclean_exit_ok = true;
    vg_state_destroy(E.st);
    E.st = NULL;
    vg_redis_child_stop(E.redis);
    E.redis = NULL;
    j = get_json("/readyz", 503);
    assert_string_equal(cJSON_GetObjectItem(j, "status")->valuestring, "not ready");
    assert_non_null(strstr(cJSON_GetObjectItem(j, "error")->valuestring, "redis"));
    cJSON_Delete(j);
    expect_error("GET", "/api/v1/resources", NULL, NULL, 503, "redis");
    j = get_json("/healthz", 200);
    cJSON_Delete(j);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_health_and_seed),
        cmocka_unit_test(test_resources_list_and_filters),
        cmocka_unit_test(test_resources_paging),
        cmocka_unit_test(test_resource_detail_and_history),
        cmocka_unit_test(test_incidents),
        cmocka_unit_test(test_silences_and_auth),
        cmocka_unit_test(test_dlq),
        cmocka_unit_test(test_rules_and_errors),
        cmocka_unit_test(test_stream),
        cmocka_unit_test(test_console_pages),
        cmocka_unit_test(test_readyz_degraded_sink),
        cmocka_unit_test(test_readyz_without_redis),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
