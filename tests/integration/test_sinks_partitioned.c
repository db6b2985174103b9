/*
 * The dispatcher with redis.layout partitioned, on one redis-server: the
 * real `vigil run` delivers pages that sit in three Kafka partitions'
 * outboxes (each its own scope, "<prefix>:{<topic>/<partition>}:outbox",
 * registered in <prefix>:parts) to a real HTTP receiver, once each, and
 * acknowledges each in its own stream; a page its sink keeps refusing is
 * dead-lettered into its own scope and `vigil dlq list|retry` finds it
 * there and puts it back; a killed instance's pending page is claimed by
 * another instance name. The pages are written as the pipeline's commit
 * writes them (XADD into the scope's outbox), under a topic vigil does not
 * consume, so nothing else writes to these scopes.
 */
#include <cjson/cJSON.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
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
#include "vigil/config.h"
#include "vigil/mem.h"
#include "vigil/util.h"

#define TOPIC "pages"
#define PARTS 3
#define RULES                                                                                      \
    "monitors:\n"                                                                                  \
    "  - name: workflow-failed\n"                                                                  \
    "    when: {runtime: {to: failed}}\n"                                                          \
    "    severity: high\n"                                                                         \
    "pagers:\n"                                                                                    \
    "  - name: oncall\n"                                                                           \
    "    sinks: [ops]\n"

static struct vg_test_env E;
static pid_t A;
static pid_t B;

static int start_env(const char *name, const char *sinks, const char *extra)
{
    struct vg_test_env_opts o = {
        .layout = "partitioned", /* vigil's, and the test's own connection E.st */
        .sinks = sinks,
        .extra = extra,
    };
    char errstr[512];

    vg_test_no_proxy();
    if (vg_test_env_start(&E, name, &o) != 0) {
        return -1;
    }
    /* the partitions' scopes, registered as the pipeline's claim registers them */
    for (int p = 0; p < PARTS; p++) {
        int64_t epoch = 0;
        int64_t offset = 0;
        char *cluster = NULL;

        if (vg_state_partition_claim(E.st, TOPIC, p, &epoch, &offset, &cluster, errstr,
                                     sizeof(errstr)) != VG_OK) {
            fprintf(stderr, "claim %s/%d: %s\n", TOPIC, p, errstr);
            return -1;
        }
        vg_free(cluster);
    }
    return 0;
}

static int setup_plain(void **state)
{
    (void)state;
    return start_env("sinks-partitioned", NULL, NULL);
}

static int setup_dead(void **state)
{
    (void)state;
    /* two attempts, 200 ms apart: dead-lettered within a second */
    return start_env("sinks-partitioned-dead",
                     "  ops: {type: webhook, url: \"${VIGIL_TEST_HOOK_URL}\", max_attempts: 2}\n",
                     NULL);
}

static int setup_claim(void **state)
{
    (void)state;
    /* A retries for as long as the test runs; B claims after 3 s instead of a minute */
    return start_env("sinks-partitioned-claim",
                     "  ops: {type: webhook, url: \"${VIGIL_TEST_HOOK_URL}\", max_attempts: 1000, "
                     "timeout: 2s}\n",
                     "dispatch:\n  claim_idle: 3s\n");
}

static int teardown(void **state)
{
    (void)state;
    if (A > 0) {
        vg_test_env_stop_instance(&E, A, SIGTERM);
    }
    if (B > 0) {
        vg_test_env_stop_instance(&E, B, SIGTERM);
    }
    A = B = 0;
    return vg_test_env_stop(&E);
}

/* "<prefix>:{pages/<p>}:<suffix>" (heap). */
static char *scoped(int p, const char *suffix)
{
    return vg_asprintf("%s:{%s/%d}:%s", E.prefix, TOPIC, p, suffix);
}

/* XADD a page (notice 1 of incident `inc`) into partition p's outbox, as a commit writes it. */
static void put(int p, const char *inc, const char *name)
{
    char *key = scoped(p, "outbox");
    char *id = vg_asprintf("%s-1", inc);
    char *body = vg_test_page_body(inc, "firing", name);
    redisReply *r =
        vg_test_env_redis(&E, "XADD %s * id %s sink ops pager oncall body %s", key, id, body);

    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_STRING);
    freeReplyObject(r);
    vg_free(key);
    vg_free(id);
    vg_free(body);
}

/* An integer reply of `cmd key` (XLEN); -1 when not one. */
static long long int_of(const char *cmd, const char *key)
{
    redisReply *r = vg_test_env_redis(&E, "%s %s", cmd, key);
    long long n = r && r->type == REDIS_REPLY_INTEGER ? r->integer : -1;

    if (r) {
        freeReplyObject(r);
    }
    return n;
}

/* XPENDING summary count of partition p's outbox (-1: no group, no answer). */
static long long pending(int p, const char *consumer)
{
    char *key = scoped(p, "outbox");
    redisReply *r = vg_test_env_redis(&E, "XPENDING %s dispatch", key);
    long long n = -1;

    if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 4) {
        n = r->element[0]->integer;
        if (consumer) {
            const redisReply *owners = r->element[3];

            n = 0;
            for (size_t i = 0; owners->type == REDIS_REPLY_ARRAY && i < owners->elements; i++) {
                const redisReply *o = owners->element[i];
                int64_t x = 0;

                if (o->type == REDIS_REPLY_ARRAY && o->elements == 2 &&
                    strcmp(o->element[0]->str, consumer) == 0 &&
                    vg_parse_i64(o->element[1]->str, &x)) {
                    n = x;
                }
            }
        }
    }
    if (r) {
        freeReplyObject(r);
    }
    vg_free(key);
    return n;
}

static bool drained(void *arg)
{
    int64_t backlog = -1;
    char errstr[256];

    (void)arg;
    return vg_state_outbox_backlog(E.st, &backlog, errstr, sizeof(errstr)) == VG_OK && backlog == 0;
}

static void must_drain(void)
{
    if (!vg_test_wait_for(drained, NULL, 20000)) {
        vg_test_env_dump_logs(&E);
        fail_msg("the partitions' outboxes were not drained");
    }
}

/* Requests for notification `id` that were answered 2xx. */
static size_t ok_with_key(const char *id)
{
    size_t n = 0;
    size_t total = vg_http_receiver_count(E.rcv);

    for (size_t i = 0; i < total; i++) {
        struct vg_http_request *req = vg_http_receiver_request(E.rcv, i);
        const char *k = vg_http_request_header(req, "idempotency-key");

        if (k && !strcmp(k, id) && req->answer_status >= 200 && req->answer_status < 300) {
            n++;
        }
        vg_http_request_free(req);
    }
    return n;
}

static bool got_ok(void *arg)
{
    return ok_with_key(arg) >= 1;
}

static void wait_ok(const char *id)
{
    if (!vg_test_wait_for(got_ok, (void *)id, 30000)) {
        vg_test_env_dump_logs(&E);
        fail_msg("%s was never delivered", id);
    }
}

/* `vigil ARGS -o json`: exit 0 and JSON. */
static cJSON *vigil_json(const char *a1, const char *a2)
{
    char *out = NULL;
    char *err = NULL;
    int rc = vg_test_env_run_cli(&E, &out, &err, a1, a2, "-o", "json", NULL);
    cJSON *j;

    if (rc != 0) {
        fprintf(stderr, "vigil %s %s: exit %d: %s\n", a1, a2, rc, err);
    }
    assert_int_equal(rc, 0);
    j = cJSON_Parse(out);
    assert_non_null(j);
    vg_free(out);
    vg_free(err);
    return j;
}

static void test_every_partitions_outbox_is_delivered_once(void **state)
{
    static const char *const inc[PARTS] = {"aaaaaaaaaaaaaa00", "aaaaaaaaaaaaaa01",
                                           "aaaaaaaaaaaaaa02"};
    struct vg_audit_record *rec = NULL;
    size_t n_rec = 0;
    char errstr[256];

    (void)state;
    for (int p = 0; p < PARTS; p++) {
        put(p, inc[p], "part");
    }
    assert_true(vg_test_env_spawn_with(&E, RULES, E.opts.sinks));
    for (int p = 0; p < PARTS; p++) {
        char *id = vg_asprintf("%s-1", inc[p]);

        wait_ok(id);
        vg_free(id);
    }
    must_drain();
    /* a later page to partition 0 delivered proves the dispatcher went round again */
    put(0, "aaaaaaaaaaaaaa03", "later");
    wait_ok("aaaaaaaaaaaaaa03-1");
    must_drain();
    for (int p = 0; p < PARTS; p++) {
        char *id = vg_asprintf("%s-1", inc[p]);
        char *outbox = scoped(p, "outbox");
        char *audit = vg_asprintf("%s:{%s/%d}:audit:{%s}", E.prefix, TOPIC, p, inc[p]);

        /* once each, acknowledged (and deleted) in its own stream */
        assert_int_equal(vg_test_requests_with_key(E.rcv, id), 1);
        assert_int_equal(pending(p, NULL), 0);
        assert_int_equal(int_of("XLEN", outbox), 0);
        /* the attempt is recorded in the page's scope */
        assert_int_equal(int_of("XLEN", audit), 1);
        assert_int_equal(
            vg_state_audit_read(E.st, inc[p], 50, &rec, &n_rec, errstr, sizeof(errstr)), VG_OK);
        assert_int_equal(n_rec, 1);
        assert_string_equal(rec[0].outcome, "delivered");
        assert_string_equal(rec[0].id, id);
        vg_audit_records_free(rec, n_rec);
        vg_free(id);
        vg_free(outbox);
        vg_free(audit);
    }
    /* nothing went through the global scope's outbox */
    {
        char *global = vg_asprintf("%s:outbox:dead", E.prefix);

        assert_true(int_of("XLEN", global) <= 0);
        vg_free(global);
    }
}

static bool dead_in_1(void *arg)
{
    char *dead = scoped(1, "outbox:dead");
    bool ok = int_of("XLEN", dead) == 1;

    (void)arg;
    vg_free(dead);
    return ok;
}

static void test_dead_letter_in_its_scope_and_retry(void **state)
{
    struct vg_http_behaviour fail = {.action = VG_HTTP_ANSWER, .status = 500};
    struct vg_http_behaviour ok = {.action = VG_HTTP_ANSWER, .status = 200};
    struct vg_audit_record *rec = NULL;
    size_t n_rec = 0;
    int64_t depth = -1;
    char errstr[256];
    char *out = NULL;
    char *err = NULL;
    char *dead = scoped(1, "outbox:dead");
    char *global = vg_asprintf("%s:outbox:dead", E.prefix);
    cJSON *dlq;
    cJSON *e;

    (void)state;
    vg_http_receiver_set_default(E.rcv, &fail);
    put(1, "bbbbbbbbbbbbbb01", "refused");
    assert_true(vg_test_env_spawn_with(&E, RULES, E.opts.sinks));
    if (!vg_test_wait_for(dead_in_1, NULL, 30000)) {
        vg_test_env_dump_logs(&E);
        fail_msg("not dead-lettered into partition 1's scope");
    }
    must_drain();
    assert_int_equal(vg_http_receiver_count(E.rcv), 2);
    assert_true(int_of("XLEN", global) <= 0);
    assert_int_equal(vg_state_dead_depth(E.st, &depth, errstr, sizeof(errstr)), VG_OK);
    assert_int_equal(depth, 1);
    /* `vigil dlq list` finds it across the scopes */
    dlq = vigil_json("dlq", "list");
    assert_int_equal(cJSON_GetArraySize(dlq), 1);
    e = cJSON_GetArrayItem(dlq, 0);
    assert_string_equal(cJSON_GetObjectItem(e, "notification")->valuestring, "bbbbbbbbbbbbbb01-1");
    assert_int_equal(cJSON_GetObjectItem(e, "status")->valueint, 500);
    assert_int_equal(cJSON_GetObjectItem(e, "attempts")->valueint, 2);
    cJSON_Delete(dlq);
    /* retry puts it back into its own scope's outbox: delivered once the receiver is fine */
    vg_http_receiver_set_default(E.rcv, &ok);
    assert_int_equal(
        vg_test_env_run_cli(&E, &out, &err, "dlq", "retry", "bbbbbbbbbbbbbb01-1", NULL), 0);
    vg_free(out);
    vg_free(err);
    wait_ok("bbbbbbbbbbbbbb01-1");
    must_drain();
    assert_int_equal(int_of("XLEN", dead), 0);
    assert_int_equal(vg_test_requests_with_key(E.rcv, "bbbbbbbbbbbbbb01-1"), 3);
    dlq = vigil_json("dlq", "list");
    assert_int_equal(cJSON_GetArraySize(dlq), 0);
    cJSON_Delete(dlq);
    assert_int_equal(vg_state_dead_depth(E.st, &depth, errstr, sizeof(errstr)), VG_OK);
    assert_int_equal(depth, 0);
    /* the history, from the page's scope: retry, failed + dead, then delivered */
    assert_int_equal(
        vg_state_audit_read(E.st, "bbbbbbbbbbbbbb01", 50, &rec, &n_rec, errstr, sizeof(errstr)),
        VG_OK);
    assert_true(n_rec >= 3);
    assert_string_equal(rec[0].outcome, "retry");
    assert_string_equal(rec[n_rec - 1].outcome, "delivered");
    vg_audit_records_free(rec, n_rec);
    vg_free(dead);
    vg_free(global);
}

static bool pending_for_a(void *arg)
{
    (void)arg;
    return pending(2, "part-a") == 1;
}

static void test_killed_instances_page_is_claimed(void **state)
{
    struct vg_http_behaviour fail = {.action = VG_HTTP_ANSWER, .status = 500};
    struct vg_http_behaviour ok = {.action = VG_HTTP_ANSWER, .status = 200};
    int port = 0;

    (void)state;
    vg_http_receiver_set_default(E.rcv, &fail);
    vg_test_env_write_rules(&E, RULES);
    A = vg_test_env_spawn_instance(&E, "part-a", &port);
    assert_true(A > 0);
    put(2, "cccccccccccccc02", "claimed");
    if (!vg_test_wait_for(pending_for_a, NULL, 30000)) {
        vg_test_env_dump_logs(&E);
        fail_msg("the page never became pending for instance part-a");
    }
    assert_true(vg_http_receiver_wait(E.rcv, 1, 30000));
    vg_test_env_stop_instance(&E, A, SIGKILL);
    A = 0;
    vg_http_receiver_set_default(E.rcv, &ok);
    B = vg_test_env_spawn_instance(&E, "part-b", &port);
    assert_true(B > 0);
    wait_ok("cccccccccccccc02-1");
    must_drain();
    assert_int_equal(ok_with_key("cccccccccccccc02-1"), 1);
    assert_int_equal(pending(2, NULL), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_every_partitions_outbox_is_delivered_once, setup_plain,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_dead_letter_in_its_scope_and_retry, setup_dead,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_killed_instances_page_is_claimed, setup_claim,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
