/*
 * The dispatcher end to end: the real `vigil run` delivers what
 * the test writes into its Redis outbox to real HTTP receivers on
 * 127.0.0.1 (and a kafka sink to a mock cluster read back with kcat).
 * Backoff timings within bounds and Retry-After; a 400 in the dead-letter
 * stream with its reason, then `vigil dlq retry|drop`; the token bucket;
 * a resolved never before its firing; an outage that loses nothing and
 * sends nothing twice; a SIGKILL during delivery; HTTP 410 and the
 * pager's fallback sink; `vigil incidents show`; a resolved held back while
 * another instance still owns its firing.
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
#include <hiredis/hiredis.h>

#include "env.h"
#include "outbox.h"
#include "page_body.h"
#include "support.h"
#include "vigil/consumer.h"
#include "vigil/mem.h"
#include "vigil/util.h"

static struct vg_test_env E;
static struct vg_http_receiver *A; /* E.rcv: the sink "ops" */
static struct vg_http_receiver *B; /* the sink "bridge", the pager's fallback */
static char *sinks;                /* the `sinks:` of the running config */

static int setup(void **state)
{
    (void)state;
    vg_test_no_proxy();
    if (vg_test_env_start(&E, "sinks-dispatch", NULL) != 0) {
        return -1;
    }
    A = E.rcv;
    B = vg_http_receiver_start();
    return B ? 0 : -1;
}

static int teardown(void **state)
{
    int rc;

    (void)state;
    rc = vg_test_env_stop(&E);
    vg_http_receiver_stop(B);
    A = B = NULL;
    vg_free(sinks);
    sinks = NULL;
    return rc;
}

/* Start vigil with one webhook sink "ops" on A (extra sink keys in `extra`) and optional more. */
static void start_with(const char *ops_extra, const char *more_sinks)
{
    static const char rules_yaml[] = "monitors:\n"
                                     "  - name: workflow-failed\n"
                                     "    when: {runtime: {to: failed}}\n"
                                     "    severity: high\n"
                                     "pagers:\n"
                                     "  - name: oncall\n"
                                     "    sinks: [ops]\n"
                                     "    fallback: bridge\n";
    char *bridge = vg_http_receiver_url(B, "/bridge");

    sinks =
        vg_asprintf("  ops: {type: webhook, url: \"%s\"%s}\n"
                    "  bridge: {type: webhook, url: \"%s\"}\n%s",
                    E.hook_url, ops_extra ? ops_extra : "", bridge, more_sinks ? more_sinks : "");
    assert_true(vg_test_env_spawn_with(&E, rules_yaml, sinks));
    vg_free(bridge);
}

/* Put notice `seq` of incident `inc` for sink ops of pager oncall; its stream id (heap). */
static char *put_sid(const char *inc, int seq, const char *status, const char *name)
{
    char *id = vg_asprintf("%s-%d", inc, seq);
    char *body = vg_test_page_body(inc, status, name);
    char *sid = vg_test_outbox_put(&E, id, "ops", "oncall", body);

    assert_non_null(sid);
    vg_free(id);
    vg_free(body);
    return sid;
}

static void put(const char *inc, int seq, const char *status, const char *name)
{
    vg_free(put_sid(inc, seq, status, name));
}

/* The firings of incidents <inc>000, <inc>001, ... (16 characters) on workflows <name>-0, ... */
static void put_firings(const char *inc, const char *name, int n)
{
    for (int i = 0; i < n; i++) {
        char id[17];
        char res[32];

        snprintf(id, sizeof(id), "%s%03d", inc, i);
        snprintf(res, sizeof(res), "%s-%d", name, i);
        put(id, 1, "firing", res);
    }
}

static void must_drain(int timeout_ms)
{
    assert_true(vg_test_outbox_wait_drained(&E, timeout_ms));
}

static struct vg_http_request *req(struct vg_http_receiver *r, size_t i)
{
    struct vg_http_request *q = vg_http_receiver_request(r, i);
    assert_non_null(q);
    return q;
}

/* `vigil ARGS -c config` (up to four, NULL-terminated early): exit 0 and JSON on stdout. */
static cJSON *vigil_json(const char *a1, const char *a2, const char *a3, const char *a4)
{
    char *out = NULL;
    char *err = NULL;
    int rc = vg_test_env_run_cli(&E, &out, &err, a1, a2, a3, a4, NULL);
    cJSON *j;

    if (rc != 0) {
        fprintf(stderr, "vigil %s %s: exit %d: %s\n", a1, a2 ? a2 : "", rc, err);
    }
    assert_int_equal(rc, 0);
    j = cJSON_Parse(out);
    if (!j) {
        fprintf(stderr, "not JSON: %s\n", out);
    }
    assert_non_null(j);
    vg_free(out);
    vg_free(err);
    return j;
}

static void test_backoff_retry_after_and_audit(void **state)
{
    struct vg_http_behaviour e500 = {.action = VG_HTTP_ANSWER, .status = 500};
    struct vg_http_behaviour e503 = {.action = VG_HTTP_ANSWER, .status = 503, .retry_after_s = 1};
    struct vg_http_request *r[3];
    int64_t gap1;
    int64_t gap2;
    cJSON *hist;
    cJSON *items;
    char *out = NULL;
    char *err = NULL;

    (void)state;
    vg_http_receiver_push(A, &e500);
    vg_http_receiver_push(A, &e503);
    start_with(", max_attempts: 5", NULL);
    put("aaaaaaaaaaaaaaa1", 1, "firing", "retry-me");
    assert_true(vg_http_receiver_wait(A, 3, 30000));
    must_drain(20000);
    assert_int_equal(vg_http_receiver_count(A), 3);
    for (int i = 0; i < 3; i++) {
        r[i] = req(A, (size_t)i);
        assert_string_equal(vg_http_request_header(r[i], "idempotency-key"), "aaaaaaaaaaaaaaa1-1");
    }
    /* attempt 2 after 200 ms (+ up to 25% jitter); attempt 3 no sooner than Retry-After */
    gap1 = r[1]->at_mono_ms - r[0]->at_mono_ms;
    gap2 = r[2]->at_mono_ms - r[1]->at_mono_ms;
    if (gap1 < 190 || gap1 > vg_test_timeout(1000) || gap2 < 990 || gap2 > vg_test_timeout(3000)) {
        fail_msg("gaps %lld ms and %lld ms, want ~200-250 and >= 1000", (long long)gap1,
                 (long long)gap2);
    }
    /* the same body every time, byte for byte */
    assert_string_equal(r[0]->body, r[2]->body);
    for (int i = 0; i < 3; i++) {
        vg_http_request_free(r[i]);
    }
    /* the notification history: two retries and the delivery */
    hist = vigil_json("incidents", "show", "aaaaaaaaaaaaaaa1", "-ojson");
    items = cJSON_GetObjectItem(hist, "notifications");
    assert_int_equal(cJSON_GetArraySize(items), 3);
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(items, 0), "outcome")->valuestring,
                        "retry");
    assert_int_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(items, 0), "status")->valueint, 500);
    assert_int_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(items, 1), "status")->valueint, 503);
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(items, 2), "outcome")->valuestring,
                        "delivered");
    assert_int_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(items, 2), "attempt")->valueint, 3);
    assert_string_equal(
        cJSON_GetObjectItem(cJSON_GetArrayItem(items, 2), "notification")->valuestring,
        "aaaaaaaaaaaaaaa1-1");
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(items, 2), "sink")->valuestring,
                        "ops");
    cJSON_Delete(hist);
    assert_int_equal(
        vg_test_env_run_cli(&E, &out, &err, "incidents", "show", "aaaaaaaaaaaaaaa1", NULL), 0);
    assert_non_null(strstr(out, "NOTIFICATION"));
    assert_non_null(strstr(out, "delivered"));
    assert_non_null(strstr(out, "aaaaaaaaaaaaaaa1-1"));
    vg_free(out);
    vg_free(err);
}

static void test_400_dead_letter_retry_drop(void **state)
{
    struct vg_http_behaviour bad = {
        .action = VG_HTTP_ANSWER, .status = 400, .body = "field \"x\" is invalid"};
    cJSON *dlq;
    cJSON *e;
    char *out = NULL;
    char *err = NULL;
    char sid[64];

    (void)state;
    vg_http_receiver_push(A, &bad);
    /* no fallback for this one: a pager without it */
    start_with(", max_attempts: 5", NULL);
    {
        char *body = vg_test_page_body("bbbbbbbbbbbbbbb1", "firing", "rejected");
        vg_free(vg_test_outbox_put(&E, "bbbbbbbbbbbbbbb1-1", "ops", "nopager", body));
        vg_free(body);
    }
    must_drain(20000);
    assert_int_equal(vg_http_receiver_count(A), 1); /* a 4xx is not retried */
    dlq = vigil_json("dlq", "list", "-o", "json");
    assert_int_equal(cJSON_GetArraySize(dlq), 1);
    e = cJSON_GetArrayItem(dlq, 0);
    assert_string_equal(cJSON_GetObjectItem(e, "notification")->valuestring, "bbbbbbbbbbbbbbb1-1");
    assert_string_equal(cJSON_GetObjectItem(e, "sink")->valuestring, "ops");
    assert_int_equal(cJSON_GetObjectItem(e, "status")->valueint, 400);
    assert_int_equal(cJSON_GetObjectItem(e, "attempts")->valueint, 1);
    assert_string_equal(cJSON_GetObjectItem(e, "reason")->valuestring, "sink ops: HTTP 400");
    assert_string_equal(cJSON_GetObjectItem(e, "response")->valuestring, "field \"x\" is invalid");
    snprintf(sid, sizeof(sid), "%s", cJSON_GetObjectItem(e, "id")->valuestring);
    cJSON_Delete(dlq);
    /* table form */
    assert_int_equal(vg_test_env_run_cli(&E, &out, &err, "dlq", "list", NULL), 0);
    assert_non_null(strstr(out, "REASON"));
    assert_non_null(strstr(out, "sink ops: HTTP 400"));
    vg_free(out);
    vg_free(err);
    /* retry by notification id: the same idempotency key goes out again */
    assert_int_equal(
        vg_test_env_run_cli(&E, &out, &err, "dlq", "retry", "bbbbbbbbbbbbbbb1-1", NULL), 0);
    vg_free(out);
    vg_free(err);
    assert_true(vg_http_receiver_wait(A, 2, 20000));
    must_drain(20000);
    assert_int_equal(vg_test_requests_with_key(A, "bbbbbbbbbbbbbbb1-1"), 2);
    dlq = vigil_json("dlq", "list", "-o", "json");
    assert_int_equal(cJSON_GetArraySize(dlq), 0);
    cJSON_Delete(dlq);
    /* unknown ids: exit 1 */
    assert_int_equal(vg_test_env_run_cli(&E, &out, &err, "dlq", "drop", sid, NULL), 1);
    vg_free(out);
    vg_free(err);
    /* drop by dead-letter id */
    vg_http_receiver_push(A, &bad);
    {
        char *body = vg_test_page_body("bbbbbbbbbbbbbbb2", "firing", "rejected2");
        vg_free(vg_test_outbox_put(&E, "bbbbbbbbbbbbbbb2-1", "ops", "nopager", body));
        vg_free(body);
    }
    must_drain(20000);
    dlq = vigil_json("dlq", "list", "-o", "json");
    assert_int_equal(cJSON_GetArraySize(dlq), 1);
    snprintf(sid, sizeof(sid), "%s",
             cJSON_GetObjectItem(cJSON_GetArrayItem(dlq, 0), "id")->valuestring);
    cJSON_Delete(dlq);
    assert_int_equal(vg_test_env_run_cli(&E, &out, &err, "dlq", "drop", sid, NULL), 0);
    assert_non_null(strstr(out, "dropped 1"));
    vg_free(out);
    vg_free(err);
    dlq = vigil_json("dlq", "list", "-o", "json");
    assert_int_equal(cJSON_GetArraySize(dlq), 0);
    cJSON_Delete(dlq);
}

static void test_rate_limit(void **state)
{
    enum { N = 8 };
    int64_t prev = 0;
    int64_t first = 0;

    (void)state;
    start_with(", rate: 5/s, burst: 1", NULL);
    put_firings("ccccccccccccc", "rl", N);
    assert_true(vg_http_receiver_wait(A, N, 30000));
    must_drain(20000);
    for (size_t i = 0; i < N; i++) {
        struct vg_http_request *q = req(A, i);
        /* 200 ms apart, give or take scheduling on a busy machine */
        if (i > 0 && q->at_mono_ms - prev < 120) {
            fail_msg("requests %zu and %zu only %lld ms apart at 5/s", i - 1, i,
                     (long long)(q->at_mono_ms - prev));
        }
        first = i == 0 ? q->at_mono_ms : first;
        prev = q->at_mono_ms;
        vg_http_request_free(q);
    }
    /* and never faster over the whole run: 7 gaps of 200 ms (burst 1) */
    if (prev - first < 7 * 200 - 60) {
        fail_msg("%d requests in %lld ms at 5/s", N, (long long)(prev - first));
    }
}

static void test_resolved_after_firing(void **state)
{
    enum { N = 6 };
    /* Slow answers: without ordering, a resolved would go out while its firing waits. */
    struct vg_http_behaviour slow = {.action = VG_HTTP_ANSWER, .status = 200, .delay_ms = 150};
    struct vg_http_behaviour e500 = {.action = VG_HTTP_ANSWER, .status = 500};

    (void)state;
    vg_http_receiver_set_default(A, &slow);
    vg_http_receiver_push(A, &e500); /* the first firing fails once and is retried */
    start_with(NULL, NULL);
    for (int i = 0; i < N; i++) {
        char inc[17];
        char name[32];
        snprintf(inc, sizeof(inc), "ddddddddddddd%03d", i);
        snprintf(name, sizeof(name), "ord-%d", i);
        put(inc, 1, "firing", name);
        put(inc, 2, "resolved", name);
    }
    assert_true(vg_http_receiver_wait(A, 2 * N + 1, 30000));
    must_drain(20000);
    for (int i = 0; i < N; i++) {
        char firing[32];
        char resolved[32];
        int64_t fired_ok = -1;
        int64_t resolved_at = -1;

        snprintf(firing, sizeof(firing), "ddddddddddddd%03d-1", i);
        snprintf(resolved, sizeof(resolved), "ddddddddddddd%03d-2", i);
        for (size_t k = 0; k < vg_http_receiver_count(A); k++) {
            struct vg_http_request *q = req(A, k);
            const char *id = vg_http_request_header(q, "idempotency-key");
            if (!strcmp(id, firing) && q->answer_status == 200) {
                fired_ok = q->at_mono_ms;
            }
            if (!strcmp(id, resolved)) {
                assert_int_equal(resolved_at, -1); /* exactly once */
                resolved_at = q->at_mono_ms;
            }
            vg_http_request_free(q);
        }
        assert_true(fired_ok >= 0 && resolved_at >= 0);
        /* the resolved left only after the firing's answer came back */
        if (resolved_at < fired_ok + 140) {
            fail_msg("incident %d: resolved at %lld, firing answered at %lld + 150", i,
                     (long long)resolved_at, (long long)fired_ok);
        }
    }
}

/*
 * Nothing but a probe may reach a sink marked down: the first comes 1 s
 * after (SINKS_BREAKER_MIN_MS), while the requests in flight when it went
 * down were recorded within milliseconds.
 */
#define PROBE_AFTER_MS 500

struct probe_wait {
    int64_t after_ms;
};

/* A request recorded after `after_ms`: the probe. */
static bool probed(void *arg)
{
    const struct probe_wait *w = arg;
    size_t n = vg_http_receiver_count(A);
    struct vg_http_request *q = n ? vg_http_receiver_request(A, n - 1) : NULL;
    bool ok = q && q->at_mono_ms >= w->after_ms;

    vg_http_request_free(q);
    return ok;
}

static void test_outage_loses_nothing(void **state)
{
    enum { N = 20 };
    struct vg_http_behaviour down = {.action = VG_HTTP_CLOSE};
    struct vg_http_behaviour up = {.action = VG_HTTP_ANSWER, .status = 200};
    struct probe_wait probe;
    size_t during;
    char *logs;

    (void)state;
    vg_http_receiver_set_default(A, &down);
    start_with(", max_attempts: 100, max_age: 10m", NULL);
    put_firings("eeeeeeeeeeeee", "out", N);
    /* the outage lasts until vigil marked the sink down and its probe failed too */
    assert_true(vg_http_receiver_wait(A, 1, 20000));
    assert_true(vg_test_env_wait_log(&E, "sink ops marked down", 20000));
    probe.after_ms = vg_mono_ms() + PROBE_AFTER_MS;
    if (!vg_test_wait_for(probed, &probe, 20000)) {
        vg_test_env_dump_logs(&E);
        fail_msg("no probe after the sink was marked down");
    }
    during = vg_http_receiver_count(A);
    vg_http_receiver_set_default(A, &up);
    must_drain(60000);
    for (int i = 0; i < N; i++) {
        char id[32];
        size_t ok = 0;
        snprintf(id, sizeof(id), "eeeeeeeeeeeee%03d-1", i);
        for (size_t k = 0; k < vg_http_receiver_count(A); k++) {
            struct vg_http_request *q = req(A, k);
            if (!strcmp(vg_http_request_header(q, "idempotency-key"), id) &&
                q->answer_status == 200) {
                ok++;
            }
            vg_http_request_free(q);
        }
        if (ok != 1) {
            fail_msg("%s was delivered %zu times", id, ok);
        }
    }
    /* marked down and probed, not hammered: 20 pages, a probe, a few requests */
    if (during > 40) {
        fail_msg("%zu requests during an outage of 20 pages", during);
    }
    logs = vg_test_env_logs(&E);
    assert_non_null(strstr(logs, "sink ops marked down"));
    assert_non_null(strstr(logs, "sink ops is up again"));
    vg_free(logs);
}

static void test_sigkill_during_delivery(void **state)
{
    enum { N = 10 };
    struct vg_http_behaviour slow = {.action = VG_HTTP_ANSWER, .status = 200, .delay_ms = 5000};
    struct vg_http_behaviour fast = {.action = VG_HTTP_ANSWER, .status = 200};

    (void)state;
    vg_http_receiver_set_default(A, &slow);
    start_with(", timeout: 20s", NULL);
    put_firings("fffffffffffff", "kill", N);
    /* all in flight (16 at once), none answered yet: kill -9 */
    assert_true(vg_http_receiver_wait(A, N, 20000));
    vg_test_env_kill(&E, SIGKILL);
    vg_http_receiver_set_default(A, &fast);
    assert_true(vg_test_env_spawn(&E));
    must_drain(30000);
    for (int i = 0; i < N; i++) {
        char id[32];
        size_t n;
        snprintf(id, sizeof(id), "fffffffffffff%03d-1", i);
        n = vg_test_requests_with_key(A, id);
        if (n != 2) { /* the one lost with the kill, and exactly one more */
            fail_msg("%s sent %zu times", id, n);
        }
    }
}

/*
 * Redis answers but refuses every outbox read (as during a cluster failover:
 * CLUSTERDOWN): the dispatcher retries with a growing pause, one WARN for the
 * whole run of failures rather than a busy loop, and delivers again once the
 * reads work.
 */
static void test_outbox_read_refused_backs_off(void **state)
{
    redisReply *r;
    size_t mark;

    (void)state;
    start_with(NULL, NULL);
    put("hhhhhhhhhhhhhhh1", 1, "firing", "refused-1");
    assert_true(vg_http_receiver_wait(A, 1, 20000));
    must_drain(20000);
    mark = vg_test_env_log_size(&E);
    r = vg_test_env_redis(&E, "ACL SETUSER default -xreadgroup");
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_STATUS);
    freeReplyObject(r);
    /* vigil had the chance: it failed, reconnected and tried again several times */
    assert_true(vg_test_env_wait_log_count(&E, mark, "dispatcher reconnected to redis", 4, 20000));
    assert_int_equal(vg_test_env_log_count(&E, mark, "outbox read failed, retrying"), 1);
    r = vg_test_env_redis(&E, "ACL SETUSER default +xreadgroup");
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_STATUS);
    freeReplyObject(r);
    put("hhhhhhhhhhhhhhh2", 1, "firing", "refused-2");
    assert_true(vg_http_receiver_wait(A, 2, 20000));
    assert_true(vg_test_env_wait_log_count(&E, mark, "outbox read works again", 1, 20000));
    must_drain(20000);
}

static void test_410_disables_and_fallback(void **state)
{
    struct vg_http_behaviour gone = {.action = VG_HTTP_ANSWER, .status = 410};
    cJSON *dlq;
    cJSON *hist;
    struct vg_http_request *q;

    (void)state;
    vg_http_receiver_push(A, &gone);
    start_with(NULL, NULL);
    put("ggggggggggggggg1", 1, "firing", "gone-1");
    assert_true(vg_http_receiver_wait(B, 1, 20000));
    must_drain(20000);
    put("ggggggggggggggg2", 1, "firing", "gone-2");
    assert_true(vg_http_receiver_wait(B, 2, 20000));
    must_drain(20000);
    /* the endpoint saw one request; then it was disabled */
    assert_int_equal(vg_http_receiver_count(A), 1);
    /* the bridge got both, with the same notification ids and bodies */
    q = req(B, 1);
    assert_string_equal(vg_http_request_header(q, "idempotency-key"), "ggggggggggggggg2-1");
    assert_non_null(strstr(q->body, "gone-2"));
    vg_http_request_free(q);
    dlq = vigil_json("dlq", "list", "-o", "json");
    assert_int_equal(cJSON_GetArraySize(dlq), 2);
    assert_int_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(dlq, 0), "status")->valueint, 410);
    assert_non_null(
        strstr(cJSON_GetObjectItem(cJSON_GetArrayItem(dlq, 1), "reason")->valuestring, "disabled"));
    cJSON_Delete(dlq);
    hist = vigil_json("incidents", "show", "ggggggggggggggg2", "-ojson");
    {
        cJSON *items = cJSON_GetObjectItem(hist, "notifications");
        bool fb = false;
        bool bridge = false;
        cJSON *it;
        cJSON_ArrayForEach(it, items)
        {
            fb = fb || !strcmp(cJSON_GetObjectItem(it, "outcome")->valuestring, "fallback");
            bridge =
                bridge || (!strcmp(cJSON_GetObjectItem(it, "sink")->valuestring, "bridge") &&
                           !strcmp(cJSON_GetObjectItem(it, "outcome")->valuestring, "delivered"));
        }
        assert_true(fb);
        assert_true(bridge);
    }
    cJSON_Delete(hist);
}

/* Another instance still owns the firing: this one holds the resolved back until it is done. */
static void test_foreign_earlier_notice_blocks(void **state)
{
    redisReply *r;
    char *fsid;
    char *rsid;

    (void)state;
    r = vg_test_env_redis(&E, "XGROUP CREATE %s:outbox dispatch 0 MKSTREAM", E.prefix);
    assert_non_null(r);
    freeReplyObject(r);
    fsid = put_sid("iiiiiiiiiiiiiii1", 1, "firing", "foreign");
    /* "other" reads the firing: pending for it, not for vigil */
    r = vg_test_env_redis(&E, "XREADGROUP GROUP dispatch other COUNT 10 STREAMS %s:outbox >",
                          E.prefix);
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    freeReplyObject(r);
    rsid = put_sid("iiiiiiiiiiiiiii1", 2, "resolved", "foreign");
    setenv("VIGIL_INSTANCE", "me", 1);
    E.opts.debug = "sinks"; /* the dispatcher says when it holds a notice back */
    start_with(NULL, NULL);
    unsetenv("VIGIL_INSTANCE");
    /* vigil has read the resolved (pending for it), looked for earlier notices, and holds it */
    assert_true(vg_test_outbox_wait_pending(&E, rsid, "me", 20000));
    assert_true(vg_test_env_wait_log(
        &E, "page iiiiiiiiiiiiiii1-2 to ops waits for an earlier notice held by another instance",
        20000));
    assert_int_equal(vg_http_receiver_count(A), 0);
    /* the other instance delivers its firing and acknowledges it */
    r = vg_test_env_redis(&E, "XACK %s:outbox dispatch %s", E.prefix, fsid);
    assert_non_null(r);
    freeReplyObject(r);
    r = vg_test_env_redis(&E, "XDEL %s:outbox %s", E.prefix, fsid);
    assert_non_null(r);
    freeReplyObject(r);
    assert_true(vg_http_receiver_wait(A, 1, 20000));
    must_drain(20000);
    assert_int_equal(vg_http_receiver_count(A), 1);
    assert_int_equal(vg_test_requests_with_key(A, "iiiiiiiiiiiiiii1-2"), 1);
    vg_free(fsid);
    vg_free(rsid);
}

static void test_kafka_sink(void **state)
{
    char errstr[256];
    char *more;
    char *out = NULL;
    char *err = NULL;
    int rc;

    (void)state;
    /* the env's mock cluster holds the sink's topic too */
    assert_int_equal(vg_mock_kafka_create_topic(E.kafka, "incidents", 2, errstr, sizeof(errstr)),
                     VG_OK);
    more = vg_asprintf("  stream: {type: kafka, topic: incidents, brokers: \"%s\"}\n",
                       vg_mock_kafka_bootstraps(E.kafka));
    start_with(NULL, more);
    {
        char *body = vg_test_page_body("hhhhhhhhhhhhhhh1", "firing", "to-kafka");
        vg_free(vg_test_outbox_put(&E, "hhhhhhhhhhhhhhh1-1", "stream", "oncall", body));
        vg_free(body);
        body = vg_test_page_body("hhhhhhhhhhhhhhh1", "resolved", "to-kafka");
        vg_free(vg_test_outbox_put(&E, "hhhhhhhhhhhhhhh1-2", "stream", "oncall", body));
        vg_free(body);
    }
    must_drain(30000);
    {
        char *argv[] = {(char *)"/usr/bin/kcat",
                        (char *)"-b",
                        (char *)vg_mock_kafka_bootstraps(E.kafka),
                        (char *)"-C",
                        (char *)"-t",
                        (char *)"incidents",
                        (char *)"-o",
                        (char *)"beginning",
                        (char *)"-e",
                        (char *)"-q",
                        (char *)"-f",
                        (char *)"%k %s\n",
                        NULL};
        rc = vg_test_run(argv, &out, &err);
    }
    if (rc != 0) {
        fprintf(stderr, "kcat: %s\n", err);
    }
    assert_int_equal(rc, 0);
    /* keyed by incident id, in order, the v1 JSON */
    {
        char *first = strstr(out, "hhhhhhhhhhhhhhh1 {\"version\":\"1\",\"status\":\"firing\"");
        char *second = strstr(out, "hhhhhhhhhhhhhhh1 {\"version\":\"1\",\"status\":\"resolved\"");
        if (!first || !second || second < first) {
            fail_msg("kcat read:\n%s", out);
        }
    }
    vg_free(out);
    vg_free(err);
    vg_free(more);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_backoff_retry_after_and_audit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_400_dead_letter_retry_drop, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rate_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_resolved_after_firing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_outage_loses_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sigkill_during_delivery, setup, teardown),
        cmocka_unit_test_setup_teardown(test_outbox_read_refused_backs_off, setup, teardown),
        cmocka_unit_test_setup_teardown(test_410_disables_and_fallback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_foreign_earlier_notice_blocks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kafka_sink, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
