/*
 * `vigil replay` end to end: the real vigil binary pages a produced log
 * with failures; its state (`vigil get -o json`, `vigil history`) is the
 * reference. Replayed into an empty Redis the state is exactly the same
 * and nothing is paged; --dry-run changes nothing; --page sends the pages
 * again; progress is printed as plain lines, and as bars on a terminal;
 * --topic replays one topic only.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <cmocka.h>
#include <hiredis/hiredis.h>

#include "env.h"
#include "outbox.h"
#include "support.h"
#include "vigil/mem.h"

#define WORKFLOWS 12
#define FAILURES 4 /* wf-00 .. wf-03 fail: one page each */

/* A rule with a held condition too, to show that replayed timers stay pending. */
#define RULES                                                                                      \
    "monitors:\n"                                                                                  \
    "  - name: workflow-failed\n"                                                                  \
    "    match: {type: [workflow]}\n"                                                              \
    "    when: {runtime: {to: failed}}\n"                                                          \
    "    severity: high\n"                                                                         \
    "  - name: pending-long\n"                                                                     \
    "    match: {type: [job]}\n"                                                                   \
    "    when: {runtime: {is: pending, for: 1h}}\n"                                                \
    "    severity: high\n"                                                                         \
    "pagers:\n"                                                                                    \
    "  - name: ops\n"                                                                              \
    "    match: {severity: [high, critical]}\n"                                                    \
    "    sinks: [ops]\n"

static const char *const HISTORY_IDS[] = {"workflow:v1:wf-00:ws", "workflow:v1:wf-07:ws",
                                          "job:v1:nightly:ws"};

struct snapshot {
    char *get;
    char *hist[VG_ARRAY_LEN(HISTORY_IDS)];
};

static void produce_log(struct vg_test_env *e)
{
    char name[32];
    char t[40];

    for (int i = 0; i < WORKFLOWS; i++) {
        snprintf(name, sizeof(name), "wf-%02d", i);
        snprintf(t, sizeof(t), "2026-11-28T10:00:%02dZ", i);
        vg_test_env_produce(e, "workflow", name, "ws", "active", "pending", t, NULL);
        vg_test_env_produce(e, "workflow", name, "ws", NULL, "running", t, NULL);
    }
    for (int i = 0; i < WORKFLOWS; i++) {
        snprintf(name, sizeof(name), "wf-%02d", i);
        snprintf(t, sizeof(t), "2026-11-28T10:01:%02dZ", i);
        vg_test_env_produce(e, "workflow", name, "ws", NULL, i < FAILURES ? "failed" : "succeeded",
                            t, i < FAILURES ? "OOMKilled" : NULL);
    }
    vg_test_env_produce(e, "job", "nightly", "ws", "active", "pending", "2026-11-28T10:02:00Z",
                        NULL);
    /* not JSON: dead-lettered, its offset applied all the same */
    vg_test_env_produce_raw(e, 0, "junk", "{not json", 9);
}

/*
 * `vigil history -o json ID` without each entry's stream_id: the Redis
 * stream entry id is the time the entry was written, the one thing a
 * replay cannot reproduce (docs/state.md). Everything else must be equal.
 */
static char *history_of(struct vg_test_env *e, const char *id)
{
    char *out = NULL;
    cJSON *doc;
    cJSON *entry;
    char *text;

    assert_int_equal(vg_test_env_run_cli(e, &out, NULL, "history", "-o", "json", id, NULL), 0);
    doc = cJSON_Parse(out);
    assert_non_null(doc);
    assert_true(cJSON_GetArraySize(doc) > 0);
    cJSON_ArrayForEach(entry, doc)
    {
        assert_non_null(cJSON_GetObjectItemCaseSensitive(entry, "stream_id"));
        cJSON_DeleteItemFromObjectCaseSensitive(entry, "stream_id");
    }
    text = cJSON_Print(doc);
    cJSON_Delete(doc);
    free(out);
    return text;
}

static void snapshot_take(struct vg_test_env *e, struct snapshot *s)
{
    assert_int_equal(vg_test_env_run_cli(e, &s->get, NULL, "get", "-a", "-o", "json", NULL), 0);
    for (size_t i = 0; i < VG_ARRAY_LEN(HISTORY_IDS); i++) {
        s->hist[i] = history_of(e, HISTORY_IDS[i]);
    }
}

static void snapshot_free(struct snapshot *s)
{
    free(s->get);
    for (size_t i = 0; i < VG_ARRAY_LEN(HISTORY_IDS); i++) {
        free(s->hist[i]);
    }
}

static void assert_same_state(struct vg_test_env *e, const struct snapshot *want)
{
    struct snapshot got = {0};

    snapshot_take(e, &got);
    assert_string_equal(got.get, want->get);
    for (size_t i = 0; i < VG_ARRAY_LEN(HISTORY_IDS); i++) {
        assert_string_equal(got.hist[i], want->hist[i]);
    }
    snapshot_free(&got);
}

/* Number of keys matching `pattern` in the test's Redis. */
static long long count_keys(struct vg_test_env *e, const char *pattern)
{
    redisReply *reply = vg_test_env_redis(e, "KEYS %s", pattern);
    long long n;

    assert_non_null(reply);
    n = reply->type == REDIS_REPLY_ARRAY ? (long long)reply->elements : -1;
    freeReplyObject(reply);
    return n;
}

static void flush_redis(struct vg_test_env *e)
{
    redisReply *reply = vg_test_env_redis(e, "FLUSHALL");

    assert_non_null(reply);
    freeReplyObject(reply);
    assert_int_equal(count_keys(e, "*"), 0);
}

static int replay(struct vg_test_env *e, char **out, char **err, const char *a1, const char *a2)
{
    return vg_test_env_run_cli(e, out, err, "replay", "--from-beginning", "--progress-interval",
                               "20ms", a1, a2, NULL);
}

static void replay_rebuilds_state_without_paging(void **state)
{
    struct vg_test_env_opts o = {.rules = RULES};
    struct vg_test_env e;
    struct snapshot live = {0};
    char pattern[256];
    char *out = NULL;
    char *err = NULL;
    size_t pages;

    (void)state;
    assert_true(vg_test_env_up(&e, "replay", &o));
    produce_log(&e);
    assert_true(vg_test_env_wait_applied(&e, 60000));
    assert_true(vg_test_env_wait_requests(&e, FAILURES, 30000));
    assert_true(vg_test_outbox_wait_drained(&e, 30000));
    pages = vg_http_receiver_count(e.rcv);
    assert_int_equal(pages, FAILURES);
    snapshot_take(&e, &live);
    assert_non_null(strstr(live.get, "wf-00"));
    assert_int_equal(vg_test_env_kill(&e, SIGTERM), 0);

    /* --dry-run: a summary, and nothing changed (no swap, the temporary prefix deleted) */
    assert_int_equal(replay(&e, &out, &err, "--dry-run", NULL), 0);
    printf("%s%s", out, err);
    assert_non_null(strstr(out, "Resources          13"));
    assert_non_null(strstr(out, "pages              4 would have been sent"));
    assert_non_null(strstr(out, "dry run: nothing swapped"));
    free(out);
    free(err);
    snprintf(pattern, sizeof(pattern), "%s:replay:*", e.prefix);
    assert_int_equal(count_keys(&e, pattern), 0);
    snprintf(pattern, sizeof(pattern), "%s:old:*", e.prefix);
    assert_int_equal(count_keys(&e, pattern), 0);
    assert_same_state(&e, &live);

    /* into an empty Redis: the same state, and no page (the replay has finished: it exited) */
    flush_redis(&e);
    assert_int_equal(replay(&e, &out, &err, NULL, NULL), 0);
    printf("%s", out);
    assert_non_null(strstr(out, "swapped: "));
    assert_non_null(strstr(out, "incidents firing   4"));
    /* plain progress lines: one per partition and a total, at the start and at the end */
    assert_non_null(strstr(err, "replay: total 0/"));
    assert_non_null(strstr(err, "replay: total 38/38 events 100% "));
    assert_non_null(strstr(err, " events/s ETA "));
    assert_non_null(strstr(err, "[1] 0/")); /* a line per partition of the event topic */
    free(out);
    free(err);
    assert_same_state(&e, &live);
    assert_int_equal(vg_http_receiver_count(e.rcv), pages);
    snprintf(pattern, sizeof(pattern), "%s:outbox", e.prefix);
    assert_int_equal(count_keys(&e, pattern), 0);
    /* the held condition's timer was kept, due an hour after the replay applied it */
    assert_int_equal(vg_test_env_timers(&e), 1);

    /* vigil run on the swapped state: pages only what is new, nothing replayed is sent */
    assert_true(vg_test_env_spawn(&e));
    vg_test_env_produce(&e, "workflow", "wf-11", "ws", NULL, "failed", "2026-11-28T10:05:00Z",
                        NULL);
    assert_true(vg_test_env_wait_applied(&e, 30000));
    assert_true(vg_test_env_page_is(&e, pages, "resource", "name", "wf-11", 30000));
    assert_true(vg_test_outbox_wait_drained(&e, 30000));
    assert_int_equal(vg_http_receiver_count(e.rcv), pages + 1);
    assert_int_equal(vg_test_env_kill(&e, SIGTERM), 0);

    /* --page: the replay sends its pages through the outbox and the sinks */
    flush_redis(&e);
    assert_int_equal(replay(&e, &out, &err, "--page", NULL), 0);
    printf("%s", out);
    assert_non_null(strstr(out, "(delivered 5, given up 0, left in the outbox 0)"));
    free(out);
    free(err);
    assert_int_equal(vg_http_receiver_count(e.rcv), pages + 1 + FAILURES + 1);

    snapshot_free(&live);
    assert_int_equal(vg_test_env_stop(&e), 0);
}

/*
 * --topic T: only T is replayed; the new state holds T's Resources and none
 * of the other topics' (docs/cli.md). A topic that is not one of
 * kafka.topics, and a --from that is neither a time nor a duration, are
 * usage errors that touch nothing.
 */
static void replay_of_one_topic(void **state)
{
    static const char SECOND[] = "{\"resource\":{\"type\":\"service\",\"name\":\"api\","
                                 "\"workspace\":\"ws\"},\"status\":\"active\","
                                 "\"runtime\":\"running\",\"time\":\"2026-11-28T10:03:00Z\"}";
    struct vg_test_env_opts o = {.rules = RULES, .more_topics = {{.suffix = "second"}}};
    struct vg_test_env e;
    char *out = NULL;
    char *err = NULL;
    char *live = NULL;

    (void)state;
    assert_true(vg_test_env_up(&e, "replaytopic", &o));
    produce_log(&e);
    vg_test_env_produce_to(&e, e.more_topic[0], -1, "service:v1:api:ws", SECOND,
                           sizeof(SECOND) - 1);
    assert_true(vg_test_env_wait_applied_exact(&e, 60000));
    assert_int_equal(vg_test_env_run_cli(&e, &live, NULL, "get", "-a", "-o", "json", NULL), 0);
    assert_non_null(strstr(live, "\"wf-00\""));
    assert_non_null(strstr(live, "\"api\""));
    free(live);
    assert_int_equal(vg_test_env_kill(&e, SIGTERM), 0);

    /* usage errors: exit 2, a message naming what is wrong, nothing written */
    assert_int_equal(
        vg_test_env_run_cli(&e, &out, &err, "replay", "--from-beginning", "--topic", "nope", NULL),
        2);
    assert_non_null(strstr(err, "--topic nope is not one of kafka.topics"));
    free(out);
    free(err);
    assert_int_equal(vg_test_env_run_cli(&e, &out, &err, "replay", "--from", "yesterday", NULL), 2);
    assert_non_null(strstr(err, "not an RFC 3339 time or a duration: yesterday"));
    free(out);
    free(err);
    assert_int_equal(
        vg_test_env_run_cli(&e, &out, &err, "replay", "--from-beginning", "--from", "1h", NULL), 2);
    assert_non_null(strstr(err, "give exactly one of --from-beginning and --from TIME"));
    free(out);
    free(err);

    /* only the second topic: its one Resource, none of the event topic's */
    flush_redis(&e);
    assert_int_equal(vg_test_env_run_cli(&e, &out, &err, "replay", "--from-beginning", "--topic",
                                         e.more_topic[0], NULL),
                     0);
    printf("%s%s", out, err);
    assert_non_null(strstr(out, "replayed 1 events of 1 partitions"));
    assert_non_null(strstr(out, "swapped: "));
    free(out);
    free(err);
    assert_int_equal(vg_test_env_run_cli(&e, &live, NULL, "get", "-a", "-o", "json", NULL), 0);
    assert_non_null(strstr(live, "\"api\""));
    assert_null(strstr(live, "wf-0"));
    assert_null(strstr(live, "nightly"));
    free(live);

    assert_int_equal(vg_test_env_stop(&e), 0);
}

/* On a terminal (script(1) gives it one): a bar per partition, redrawn in place. */
static void replay_draws_bars_on_a_tty(void **state)
{
    struct vg_test_env e;
    char *cmd;
    char *out = NULL;
    char *err = NULL;
    int rc;

    (void)state;
    assert_int_equal(vg_test_env_start(&e, "replaytty", NULL), 0);
    produce_log(&e);
    assert_true(vg_test_env_flush(&e));
    cmd = vg_asprintf("%s replay --from-beginning --dry-run -c %s", vg_test_vigil_bin(), e.config);
    {
        char *argv[] = {(char *)"/usr/bin/script", (char *)"-qec", cmd, (char *)"/dev/null", NULL};

        rc = vg_test_run(argv, &out, &err);
    }
    printf("%s%s", out ? out : "", err ? err : "");
    assert_int_equal(rc, 0);
    assert_non_null(strstr(out, "total                    [########################] 100% 38/38"));
    assert_non_null(strstr(out, "events/s ETA"));
    assert_non_null(strstr(out, "\033[K"));
    assert_null(strstr(out, "replay: total")); /* no plain lines on a terminal */
    free(out);
    free(err);
    free(cmd);
    assert_int_equal(vg_test_env_stop(&e), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(replay_rebuilds_state_without_paging),
        cmocka_unit_test(replay_draws_bars_on_a_tty),
        cmocka_unit_test(replay_of_one_topic),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
