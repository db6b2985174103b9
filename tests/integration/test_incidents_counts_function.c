/*
 * The firing counts of incident records (P:incidents:counts) kept by the
 * commit's counts script, against a real redis-server, on both ways the
 * script runs: as a Redis function (FCALL, loaded once per connection) and
 * as EVAL where the server has no functions (here: an ACL that denies
 * FUNCTION, which vigil treats like Redis 6's unknown command). The hard
 * cases: a notification and a silence rewrite a firing record (no second
 * count), a rules reload changes a firing incident's severity (the count
 * moves), an ended record written again (no negative count), a pending
 * record, a redis-server restart (the function comes back from the AOF
 * and the new connection uses it), and the function flushed from the
 * server under a connected vigil (that commit's records are written, the
 * counts are rebuilt from them by the next reader).
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <hiredis/hiredis.h>

#include "state_redis.h"
#include "support.h"
#include "vigil/page.h"
#include "vigil/state.h"

#define BASE_MS 1764900000000LL

/* One record write: incident `inc` (0..2) of monitor `monitor` in `state` with `severity`. */
struct step {
    int inc;
    const char *monitor;
    const char *severity;
    const char *state;
};

/* What P:incidents:counts must say after a step: up to 3 "<monitor>/<severity>" = n. */
struct want {
    const char *pair;
    long n;
};

static void record_make(struct vg_incident_record *r, const struct step *s, int64_t at)
{
    char id[17];
    char res[64];

    snprintf(id, sizeof(id), "%016x", 0xabc000 + s->inc);
    snprintf(res, sizeof(res), "workflow:v1:wf-%d:public", s->inc);
    memset(r, 0, sizeof(*r));
    r->id = strdup(id);
    r->monitor = strdup(s->monitor);
    r->resource = strdup(res);
    r->severity = strdup(s->severity);
    r->incident_type = strdup("");
    r->state = strdup(s->state);
    r->summary = strdup("wf failed");
    r->description = strdup("");
    r->topic = strdup("vigil.events");
    r->started_at_ms = BASE_MS;
    r->updated_at_ms = at;
    r->ended_at_ms = strcmp(s->state, "firing") && strcmp(s->state, "pending") ? at : 0;
    r->seq = 1;
}

static vg_err_t commit_step(struct vg_state *st, const struct step *s, int64_t at, char *errstr,
                            size_t errstr_size)
{
    struct vg_incident_record r;
    struct vg_commit cm = {0};
    vg_err_t err;

    record_make(&r, s, at);
    cm.incidents = &r;
    cm.n_incidents = 1;
    err = vg_state_commit(st, &cm, errstr, errstr_size);
    vg_incident_record_fini(&r);
    return err;
}

/* The counts as vigil reads them (/metrics), equal to `want` (pairs absent: 0, no field). */
static void check_counts(struct vg_test_redis *r, const struct want *want, size_t n_want,
                         const char *after)
{
    struct vg_incident_count *v = NULL;
    size_t n = 0;
    size_t matched = 0;
    char errstr[512];

    assert_int_equal(vg_state_incidents_firing_counts(r->st, &v, &n, errstr, sizeof(errstr)),
                     VG_OK);
    for (size_t i = 0; i < n; i++) {
        char pair[128];
        bool found = false;

        snprintf(pair, sizeof(pair), "%s/%s", v[i].monitor, v[i].severity);
        for (size_t k = 0; k < n_want; k++) {
            if (!strcmp(want[k].pair, pair)) {
                found = true;
                matched++;
                if (v[i].firing != want[k].n) {
                    fprintf(stderr, "after %s: %s counts %lld, want %ld\n", after, pair,
                            (long long)v[i].firing, want[k].n);
                    fail();
                }
            }
        }
        if (!found) {
            fprintf(stderr, "after %s: %s counts %lld, want none\n", after, pair,
                    (long long)v[i].firing);
            fail();
        }
    }
    if (matched != n_want) {
        fprintf(stderr, "after %s: %zu of %zu expected pairs counted\n", after, matched, n_want);
        fail();
    }
    vg_incident_counts_free(v, n);
    /* A pair with nothing firing has no field at all (HLEN counts what is there). */
    {
        redisReply *reply = redisCommand(r->raw, "HLEN %s:incidents:counts", r->prefix);

        assert_non_null(reply);
        assert_int_equal(reply->integer, (long long)n_want);
        freeReplyObject(reply);
    }
}

/*
 * The hard cases, in order, each with the counts after it. Incidents 0 and
 * 1 of monitor m1, 2 of m2.
 */
static void run_cases(struct vg_test_redis *r)
{
    static const struct {
        struct step s;
        const char *what;
        struct want want[3];
        size_t n_want;
    } cases[] = {
        {{0, "m1", "high", "firing"}, "0 opens", {{"m1/high", 1}}, 1},
        {{1, "m1", "high", "firing"}, "1 opens", {{"m1/high", 2}}, 1},
        {{2, "m2", "critical", "firing"}, "2 opens", {{"m1/high", 2}, {"m2/critical", 1}}, 2},
        {{0, "m1", "high", "firing"}, "0 notified again", {{"m1/high", 2}, {"m2/critical", 1}}, 2},
        {{1, "m1", "high", "firing"}, "1 silenced", {{"m1/high", 2}, {"m2/critical", 1}}, 2},
        {{0, "m1", "critical", "firing"},
         "a rules reload makes 0 critical",
         {{"m1/high", 1}, {"m1/critical", 1}, {"m2/critical", 1}},
         3},
        {{1, "m1", "high", "resolved"}, "1 resolves", {{"m1/critical", 1}, {"m2/critical", 1}}, 2},
        {{1, "m1", "high", "resolved"},
         "1 written again, ended",
         {{"m1/critical", 1}, {"m2/critical", 1}},
         2},
        {{2, "m2", "critical", "pending"}, "2 back to pending", {{"m1/critical", 1}}, 1},
        {{2, "m2", "critical", "firing"},
         "2 fires again",
         {{"m1/critical", 1}, {"m2/critical", 1}},
         2},
        {{0, "m1", "critical", "stale"}, "0 goes stale", {{"m2/critical", 1}}, 1},
    };
    char errstr[512];

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        if (commit_step(r->st, &cases[i].s, BASE_MS + 1000 * (int64_t)(i + 1), errstr,
                        sizeof(errstr)) != VG_OK) {
            fprintf(stderr, "case %zu (%s): commit: %s\n", i, cases[i].what, errstr);
            fail();
        }
        check_counts(r, cases[i].want, cases[i].n_want, cases[i].what);
    }
}

/*
 * Start redis-server with a vg_state on it, and mark the counts complete: a
 * reader would otherwise rebuild them from the records on its first read
 * and hide what the commits counted.
 */
static void start(struct vg_test_redis *r, const char *name)
{
    redisReply *reply;

    assert_int_equal(vg_test_redis_start(r, name, NULL, true), 0);
    reply = redisCommand(r->raw, "SET %s:incidents:indexed 1", r->prefix);
    assert_non_null(reply);
    freeReplyObject(reply);
}

static bool child_gone(void *arg)
{
    char how[128];

    return vg_redis_child_exited(arg, how, sizeof(how));
}

/* SIGKILL redis-server, start it again on its AOF, reconnect both connections. */
static void redis_restart(struct vg_test_redis *r)
{
    char errstr[512];
    const char *url = vg_redis_child_url(r->rc);

    assert_int_equal(kill(vg_redis_child_pid(r->rc), SIGKILL), 0);
    assert_true(vg_test_wait_for(child_gone, r->rc, 10000));
    assert_int_equal(vg_redis_child_restart(r->rc, errstr, sizeof(errstr)), VG_OK);
    redisFree(r->raw);
    r->raw = redisConnectUnix(url + strlen("unix://"));
    assert_non_null(r->raw);
    assert_int_equal(r->raw->err, 0);
    assert_int_equal(vg_state_reconnect(r->st, errstr, sizeof(errstr)), VG_OK);
}

static void test_counts_by_function(void **state)
{
    struct vg_test_redis r;
    char errstr[512];
    const struct want after_restart[] = {{"m2/critical", 1}, {"m3/low", 1}};
    const struct step opens = {0, "m3", "low", "firing"};

    (void)state;
    start(&r, "inc-fn");
    run_cases(&r);
    assert_true(vg_test_redis_calls(&r, "fcall") > 0);
    assert_int_equal(vg_test_redis_calls(&r, "eval"), 0);

    /* The function is in the AOF: after a restart the new connection finds it there. */
    redis_restart(&r);
    assert_int_equal(commit_step(r.st, &opens, BASE_MS + 100000, errstr, sizeof(errstr)), VG_OK);
    check_counts(&r, after_restart, 2, "a restart, then 0 opens again under m3");
    assert_int_equal(vg_test_redis_calls(&r, "fcall"), 1);
    assert_int_equal(vg_test_redis_calls(&r, "eval"), 0);
    vg_test_redis_stop(&r);
}

static void test_counts_by_eval_without_functions(void **state)
{
    struct vg_test_redis r;
    redisReply *reply;

    (void)state;
    start(&r, "inc-eval");
    /* Like Redis 6, where FUNCTION is an unknown command: this server refuses it. */
    reply = redisCommand(r.raw, "ACL SETUSER default -function");
    assert_non_null(reply);
    assert_int_equal(reply->type, REDIS_REPLY_STATUS);
    freeReplyObject(reply);
    run_cases(&r);
    assert_true(vg_test_redis_calls(&r, "eval") > 0);
    assert_int_equal(vg_test_redis_calls(&r, "fcall"), 0);
    vg_test_redis_stop(&r);
}

static void test_function_flushed_under_vigil(void **state)
{
    struct vg_test_redis r;
    char errstr[512];
    redisReply *reply;
    const struct step open0 = {0, "m1", "high", "firing"};
    const struct step open1 = {1, "m1", "high", "firing"};
    const struct step end0 = {0, "m1", "high", "resolved"};
    const struct want two[] = {{"m1/high", 2}};
    const struct want one[] = {{"m1/high", 1}};

    (void)state;
    start(&r, "inc-flush");
    assert_int_equal(commit_step(r.st, &open0, BASE_MS + 1000, errstr, sizeof(errstr)), VG_OK);
    reply = redisCommand(r.raw, "FUNCTION FLUSH");
    assert_non_null(reply);
    assert_int_equal(reply->type, REDIS_REPLY_STATUS);
    freeReplyObject(reply);

    /* The commit's FCALL fails inside EXEC: reported, its record written all the same ... */
    assert_int_not_equal(commit_step(r.st, &open1, BASE_MS + 2000, errstr, sizeof(errstr)), VG_OK);
    reply = redisCommand(r.raw, "EXISTS %s:incident:%016x", r.prefix, 0xabc001);
    assert_non_null(reply);
    assert_int_equal(reply->integer, 1);
    freeReplyObject(reply);
    /* ... and its count rebuilt from the records by the next reader */
    check_counts(&r, two, 1, "the function flushed, then 1 opens");
    /* the next commit loads the function again */
    assert_int_equal(commit_step(r.st, &end0, BASE_MS + 3000, errstr, sizeof(errstr)), VG_OK);
    check_counts(&r, one, 1, "0 resolves");
    vg_test_redis_stop(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_counts_by_function),
        cmocka_unit_test(test_counts_by_eval_without_functions),
        cmocka_unit_test(test_function_flushed_under_vigil),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
