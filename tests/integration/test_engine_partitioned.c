/*
 * redis.layout partitioned on one redis-server: the real `vigil run` on a
 * 4-partition topic applies each partition's part of a batch in that
 * partition's scope. Every key of a Resource is under its partition's hash
 * tag, each partition's applied offset is in its scope, a restart under a
 * fresh consumer group (every message delivered again) applies nothing
 * twice, `for:` timers fire per partition, a grouped pager's group spans
 * the partitions (one grouped page per group, listing the Resources of
 * every partition, in the global outbox), and a Resource whose events come from two
 * partitions is never written from one scope's copy into the other's,
 * and a Kubernetes Event finds its pod's Resource through the pod link a
 * pod event on another partition wrote (pod links are global).
 * The receiver answers 500 throughout, so the pages stay in the
 * outboxes where the test reads them.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <cmocka.h>
#include <hiredis/hiredis.h>

#include "env.h"
#include "support.h"
#include "vigil/config.h"
#include "vigil/mem.h"
#include "vigil/state.h"

#define PARTITIONS 4

static struct vg_test_env E;

static const char rules[] = "monitors:\n"
                            "  - name: workflow-failed\n"
                            "    match: {type: [workflow]}\n"
                            "    when: {runtime: {to: failed}}\n"
                            "    severity: high\n"
                            "    summary: \"{{resource.name}} failed\"\n"
                            "  - name: stuck-pending\n"
                            "    match: {type: [workflow]}\n"
                            "    when: {runtime: {is: pending, for: 2s}}\n"
                            "    severity: high\n"
                            "    summary: \"{{resource.name}} pending for {{duration}}\"\n"
                            "pagers:\n"
                            "  - name: ops\n"
                            "    sinks: [ops]\n"
                            "    group_by: [monitor]\n"
                            "    group_wait: 3s\n";

static struct vg_test_env_case C = {
    &E,
    "engine-partitioned",
    {.partitions = PARTITIONS,
     .rules = rules,
     .layout = "partitioned",
     .sinks = "  ops: {type: webhook, url: \"${VIGIL_TEST_HOOK_URL}\", max_attempts: 1000}\n"}};

/* A receiver that refuses every page. */
static void refuse_pages(void)
{
    struct vg_http_behaviour refuse = {.status = 500};

    vg_http_receiver_set_default(E.rcv, &refuse);
}

/* EXISTS of "<prefix>:{<topic>/<p>}:<kind>:{workflow:v1:<name>:public}" (p < 0: unscoped). */
static long long exists_res(int p, const char *kind, const char *name)
{
    if (p < 0) {
        return vg_test_env_int(&E, "EXISTS %s:%s:{workflow:v1:%s:public}", E.prefix, kind, name);
    }
    return vg_test_env_int(&E, "EXISTS %s:{%s/%d}:%s:{workflow:v1:%s:public}", E.prefix, E.topic, p,
                           kind, name);
}

static long long hist_len(int p, const char *name)
{
    return vg_test_env_int(&E, "XLEN %s:{%s/%d}:hist:{workflow:v1:%s:public}", E.prefix, E.topic, p,
                           name);
}

/*
 * Entries ever added to partition p's outbox, p < 0: the global one's
 * (deleted ones too: XINFO's entries-added; 0 when it never existed).
 */
static long long outbox_added(int p)
{
    redisReply *r =
        p < 0 ? vg_test_env_redis(&E, "XINFO STREAM %s:outbox", E.prefix)
              : vg_test_env_redis(&E, "XINFO STREAM %s:{%s/%d}:outbox", E.prefix, E.topic, p);
    long long n = 0;

    assert_non_null(r);
    for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i + 1 < r->elements; i += 2) {
        if (r->element[i]->type == REDIS_REPLY_STRING &&
            strcmp(r->element[i]->str, "entries-added") == 0) {
            n = r->element[i + 1]->integer;
        }
    }
    freeReplyObject(r);
    return n;
}

/* Both groups flushed: every timer fired, the global outbox got two pages. */
static bool both_groups_flushed(void *arg)
{
    (void)arg;
    return outbox_added(-1) >= 2 && vg_test_env_timers(&E) == 0;
}

static const char *incident_monitor(const cJSON *it)
{
    return cJSON_GetObjectItem(cJSON_GetObjectItem(it, "incident"), "monitor")->valuestring;
}

/*
 * The incidents `incs` of a grouped page are all of `monitor` and list
 * exactly the Resources "wf-p<p>-<which>" of every partition.
 */
static void check_group_incidents(const cJSON *incs, const char *monitor, char which)
{
    int seen = 0;

    assert_int_equal(cJSON_GetArraySize(incs), PARTITIONS);
    for (int i = 0; i < PARTITIONS; i++) {
        const cJSON *it = cJSON_GetArrayItem(incs, i);
        const char *res =
            cJSON_GetObjectItem(cJSON_GetObjectItem(it, "resource"), "id")->valuestring;
        int p = -1;
        char tail[32] = "";

        assert_string_equal(incident_monitor(it), monitor);
        assert_int_equal(sscanf(res, "workflow:v1:wf-p%d-%31s", &p, tail), 2);
        assert_true(p >= 0 && p < PARTITIONS);
        assert_true(tail[0] == which && strcmp(tail + 1, ":public") == 0);
        seen |= 1 << p;
    }
    assert_int_equal(seen, (1 << PARTITIONS) - 1);
}

/*
 * The global outbox holds two grouped pages, one per monitor (the group
 * spans the partitions), each listing the incident of the Resource of
 * every partition; no partition's outbox holds a page.
 */
static void check_grouped_pages(void)
{
    redisReply *r = vg_test_env_redis(&E, "XRANGE %s:outbox - +", E.prefix);
    int seen = 0;

    for (int p = 0; p < PARTITIONS; p++) {
        assert_int_equal(outbox_added(p), 0);
    }
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    assert_int_equal(r->elements, 2);
    for (size_t i = 0; i < r->elements; i++) {
        const redisReply *fields = r->element[i]->element[1];
        cJSON *body = NULL;
        const cJSON *incs;
        const char *monitor;
        char which;

        for (size_t j = 0; j + 1 < fields->elements; j += 2) {
            if (strcmp(fields->element[j]->str, "body") == 0) {
                body = cJSON_Parse(fields->element[j + 1]->str);
            }
        }
        assert_non_null(body);
        assert_true(cJSON_IsObject(cJSON_GetObjectItem(body, "group")));
        incs = cJSON_GetObjectItem(body, "incidents");
        assert_non_null(cJSON_GetArrayItem(incs, 0));
        monitor = incident_monitor(cJSON_GetArrayItem(incs, 0));
        /* the failed Resources are "-a", the pending ones "-b" */
        which = strcmp(monitor, "workflow-failed") == 0 ? 'a' : 'b';
        if (which == 'b') {
            assert_string_equal(monitor, "stuck-pending");
        }
        check_group_incidents(incs, monitor, which);
        seen |= which == 'a' ? 1 : 2;
        cJSON_Delete(body);
    }
    assert_int_equal(seen, 3);
    freeReplyObject(r);
}

/*
 * Every key vigil wrote is under one partition's hash tag, but for the
 * global scope's (the registry, the silences) and the dispatcher's own.
 */
static void check_keys_scoped(void)
{
    char *match = vg_asprintf("%s:*", E.prefix);
    char *tagged = vg_asprintf("%s:{%s/", E.prefix, E.topic);
    size_t lp = strlen(E.prefix);
    char cursor[32] = "0";
    long long n_tagged = 0;

    do {
        redisReply *r = vg_test_env_redis(&E, "SCAN %s MATCH %s COUNT 1000", cursor, match);

        assert_non_null(r);
        assert_int_equal(r->type, REDIS_REPLY_ARRAY);
        snprintf(cursor, sizeof(cursor), "%s", r->element[0]->str);
        for (size_t i = 0; i < r->element[1]->elements; i++) {
            const char *k = r->element[1]->element[i]->str;
            const char *suffix = k + lp + 1;

            if (strncmp(k, tagged, strlen(tagged)) == 0) {
                n_tagged++;
                continue;
            }
            if (strcmp(suffix, "parts") != 0 && strncmp(suffix, "silences", 8) != 0 &&
                strncmp(suffix, "outbox", 6) != 0 && strncmp(suffix, "audit", 5) != 0) {
                fail_msg("key %s is outside every partition's scope", k);
            }
        }
        freeReplyObject(r);
    } while (strcmp(cursor, "0") != 0);
    assert_true(n_tagged > 4 * PARTITIONS);
    free(match);
    free(tagged);
}

static void test_partitioned_pipeline(void **state)
{
    struct vg_offset *parts = NULL;
    size_t n_parts = 0;
    char errstr[256];
    long long hist[PARTITIONS][2];

    (void)state;
    refuse_pages();
    assert_true(vg_test_env_spawn(&E));
    /* per partition: one workflow fails (a page), one stays pending (a `for:` timer) */
    for (int p = 0; p < PARTITIONS; p++) {
        char a[32];
        char b[32];

        snprintf(a, sizeof(a), "wf-p%d-a", p);
        snprintf(b, sizeof(b), "wf-p%d-b", p);
        vg_test_env_produce_workflow_to(&E, p, a, "running");
        vg_test_env_produce_workflow_to(&E, p, b, "pending");
        vg_test_env_produce_workflow_to(&E, p, a, "failed");
    }
    assert_true(vg_test_env_wait_applied(&E, 60000));

    /* each Resource's hash and history under its partition's tag, none under the prefix */
    for (int p = 0; p < PARTITIONS; p++) {
        char a[32];
        int64_t off = -1;

        snprintf(a, sizeof(a), "wf-p%d-a", p);
        assert_int_equal(exists_res(p, "res", a), 1);
        assert_int_equal(exists_res(p, "hist", a), 1);
        assert_int_equal(exists_res(-1, "res", a), 0);
        assert_int_equal(exists_res((p + 1) % PARTITIONS, "res", a), 0);
        /* the applied offset in the partition's own scope: its third message */
        assert_int_equal(vg_state_applied_offset(E.st, E.topic, p, &off, errstr, sizeof(errstr)),
                         VG_OK);
        assert_int_equal(off, 2);
    }
    assert_int_equal(vg_state_scopes(E.st, &parts, &n_parts, errstr, sizeof(errstr)), VG_OK);
    assert_int_equal(n_parts, PARTITIONS);
    vg_state_scopes_free(parts, n_parts);

    /* the timers fire and each group buffer, global, flushes once: two grouped pages in all */
    assert_true(vg_test_wait_for(both_groups_flushed, NULL, 30000));
    check_grouped_pages();
    for (int p = 0; p < PARTITIONS; p++) {
        char a[32];
        char b[32];

        snprintf(a, sizeof(a), "wf-p%d-a", p);
        snprintf(b, sizeof(b), "wf-p%d-b", p);
        hist[p][0] = hist_len(p, a);
        hist[p][1] = hist_len(p, b);
        assert_true(hist[p][0] > 0 && hist[p][1] > 0);
    }
    check_keys_scoped();
    assert_int_equal(vg_test_env_kill(&E, SIGTERM), 0);

    /*
     * A fresh group reads every partition from the start: all replays, skipped by each
     * scope's applied offset. One new event per partition after them shows they were read.
     */
    vg_test_env_set_group(&E, "again");
    assert_true(vg_test_env_spawn(&E));
    for (int p = 0; p < PARTITIONS; p++) {
        char c[32];

        snprintf(c, sizeof(c), "wf-p%d-c", p);
        vg_test_env_produce_workflow_to(&E, p, c, "running");
    }
    assert_true(vg_test_env_wait_applied(&E, 60000));
    for (int p = 0; p < PARTITIONS; p++) {
        char a[32];
        char b[32];
        char c[32];
        int64_t off = -1;

        snprintf(a, sizeof(a), "wf-p%d-a", p);
        snprintf(b, sizeof(b), "wf-p%d-b", p);
        snprintf(c, sizeof(c), "wf-p%d-c", p);
        assert_int_equal(exists_res(p, "res", c), 1);
        assert_int_equal(hist_len(p, a), hist[p][0]);
        assert_int_equal(hist_len(p, b), hist[p][1]);
        assert_int_equal(outbox_added(p), 0);
        assert_int_equal(vg_state_applied_offset(E.st, E.topic, p, &off, errstr, sizeof(errstr)),
                         VG_OK);
        assert_int_equal(off, 3);
    }
    /* the replays buffered nothing again: no group waits, no page was added */
    assert_int_equal(vg_test_env_timers(&E), 0);
    assert_int_equal(outbox_added(-1), 2);
    assert_int_equal(vg_test_env_kill(&E, SIGTERM), 0);
}

/* The runtime transition of the newest history entry of `name` in partition p's scope. */
static char *last_runtime_from(int p, const char *name)
{
    redisReply *r =
        vg_test_env_redis(&E, "XREVRANGE %s:{%s/%d}:hist:{workflow:v1:%s:public} + - COUNT 1",
                          E.prefix, E.topic, p, name);
    char *from = NULL;

    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    assert_int_equal(r->elements, 1);
    {
        const redisReply *f = r->element[0]->element[1];

        /* a transition is `t` = "runtime\x1f<from>\x1f<to>" (docs/state.md) */
        for (size_t j = 0; j + 1 < f->elements; j += 2) {
            const char *v = f->element[j + 1]->str;

            if (strcmp(f->element[j]->str, "t") == 0 && strncmp(v, "runtime\x1f", 8) == 0) {
                const char *end = strchr(v + 8, '\x1f');

                assert_non_null(end);
                from = vg_strndup(v + 8, (size_t)(end - (v + 8)));
            }
        }
    }
    freeReplyObject(r);
    return from;
}

static char *runtime_in(int p, const char *name)
{
    redisReply *r = vg_test_env_redis(&E, "HGET %s:{%s/%d}:res:{workflow:v1:%s:public} runtime",
                                      E.prefix, E.topic, p, name);
    char *v = NULL;

    assert_non_null(r);
    if (r->type == REDIS_REPLY_STRING) {
        v = vg_strdup(r->str);
    }
    freeReplyObject(r);
    return v;
}

/*
 * One Resource's events from two partitions (as after a topic's partition
 * count changed): each scope keeps its own copy. Partition 0 has it
 * running, partition 1 failed, then partition 0 succeeded: partition 0's
 * transition is from running (its own copy), never from failed (the copy
 * cached from partition 1).
 */
static void test_cache_keeps_scopes_apart(void **state)
{
    char *v;

    (void)state;
    refuse_pages();
    assert_true(vg_test_env_spawn(&E));
    vg_test_env_produce_workflow_to(&E, 0, "twice", "running");
    assert_true(vg_test_env_wait_applied(&E, 30000));
    vg_test_env_produce_workflow_to(&E, 1, "twice", "failed");
    assert_true(vg_test_env_wait_applied(&E, 30000));
    vg_test_env_produce_workflow_to(&E, 0, "twice", "succeeded");
    assert_true(vg_test_env_wait_applied(&E, 30000));

    v = runtime_in(0, "twice");
    assert_non_null(v);
    assert_string_equal(v, "succeeded");
    free(v);
    v = runtime_in(1, "twice");
    assert_non_null(v);
    assert_string_equal(v, "failed");
    free(v);
    v = last_runtime_from(0, "twice");
    assert_non_null(v);
    assert_string_equal(v, "running");
    free(v);
    assert_int_equal(vg_test_env_kill(&E, SIGTERM), 0);
}

/* A fixture of tests/fixtures/k8s on an explicit partition. */
static void produce_fixture(int32_t partition, const char *name)
{
    char *path = vg_asprintf("%s/k8s/%s", VG_FIXTURES, name);
    size_t len = 0;
    char *text = vg_test_read_file(path, &len);

    assert_non_null(text);
    vg_test_env_produce_raw(&E, partition, "pod", text, len);
    free(text);
    free(path);
}

/*
 * Kubernetes Events usually come on a topic (or partition) of their own,
 * never the one of the pod events that wrote the pod links: the links
 * are in the global scope, so an Event on partition 1 finds the pod whose
 * events came on partition 0, and its log line joins that Resource's
 * history (written in the Event's partition's scope, read merged).
 */
static void test_k8s_event_finds_pod_of_another_partition(void **state)
{
    static const char id[] = "workflow:v1:ingestion-delivery-events:public";
    static const char pod[] = "public/ingestion-delivery-events-7d9f-x2";
    redisReply *r;
    struct vg_history_entry *h = NULL;
    size_t n = 0;
    char errstr[256];
    bool backoff = false;

    (void)state;
    refuse_pages();
    assert_true(vg_test_env_spawn(&E));
    produce_fixture(0, "pod-imagepull.json");
    assert_true(vg_test_env_flush(&E));
    assert_true(vg_test_env_wait_applied(&E, 30000));
    produce_fixture(1, "event-backoff.json");
    assert_true(vg_test_env_flush(&E));
    assert_true(vg_test_env_wait_applied(&E, 30000));

    r = vg_test_env_redis(&E, "GET %s:pod:%s", E.prefix, pod);
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_STRING);
    assert_string_equal(r->str, id);
    freeReplyObject(r);
    assert_int_equal(vg_test_env_int(&E, "EXISTS %s:{%s/0}:pod:%s", E.prefix, E.topic, pod), 0);
    /* the log line is in the Event's partition's history of the Resource; `vigil history` (the
     * reader) merges the scopes' histories */
    assert_int_equal(vg_state_history(E.st, id, 0, &h, &n, errstr, sizeof(errstr)), VG_OK);
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j + 1 < 2 * h[i].n_extra; j += 2) {
            backoff = backoff || (strcmp(h[i].extra[j], "reason") == 0 &&
                                  strcmp(h[i].extra[j + 1], "BackOff") == 0);
        }
    }
    vg_history_free(h, n);
    assert_true(backoff);
    assert_int_equal(vg_test_env_kill(&E, SIGTERM), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_prestate_setup_teardown(test_partitioned_pipeline, vg_test_env_setup,
                                                 vg_test_env_teardown, &C),
        cmocka_unit_test_prestate_setup_teardown(test_cache_keeps_scopes_apart, vg_test_env_setup,
                                                 vg_test_env_teardown, &C),
        cmocka_unit_test_prestate_setup_teardown(test_k8s_event_finds_pod_of_another_partition,
                                                 vg_test_env_setup, vg_test_env_teardown, &C),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
