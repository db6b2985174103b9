/*
 * The pipeline's parts of a batch in flight together (redis.layout
 * partitioned, docs/state.md "Commits in flight"), through its batch handler
 * against a real redis-server: a batch over four partitions has the commits
 * of the parts before each part still in flight when that part's commit is
 * written (seen from the fence hook), and lands whole; when the fence of a
 * middle part moves between its WATCH and its EXEC, the parts around it
 * land, the batch fails with that part's conflict, and its retry applies the
 * rest without applying anything twice (each history holds its transitions
 * once, every applied offset is the partition's last). Both on one commit
 * lane (each part's fence checked by its own send, none sent ahead) and on
 * four (redis.commit_connections), every part's fence sent ahead; on four,
 * a lane's connection killed with the fences ahead fails the batch, and
 * its retry applies each part once.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <hiredis/hiredis.h>

#include "engine_int.h"
#include "state_int.h"
#include "state_redis.h"
#include "support.h"
#include "vigil/config.h"
#include "vigil/consumer.h"
#include "vigil/event.h"
#include "vigil/mem.h"
#include "vigil/rules.h"
#include "vigil/state.h"
#include "vigil/util.h"

#define TOPIC "ev"
#define PARTS 4
#define PER_PART 3 /* events per partition: pending, running, succeeded */

static const char *const runtimes[PER_PART] = {"pending", "running", "succeeded"};

static struct vg_test_redis fx;

/* A pipeline on a partitioned vg_state of its own prefix. */
struct rig {
    char *prefix;
    struct vg_state *st;
    struct vg_ruleset *rs;
    struct vg_decode_config dc;
    struct eng_report report;
    struct eng_pipeline *pl;
    struct vg_consumer_handler h;
    /* the batch: PER_PART events of workflow wf-<p> in each partition p */
    struct vg_kafka_msg msgs[PARTS * PER_PART];
    char *payloads[PARTS * PER_PART];
    char *keys[PARTS * PER_PART];
};

static void rig_start(struct rig *r, const char *name, int lanes)
{
    struct vg_redis_config rc = {0};
    int64_t t0 = vg_now_ms() - 60000;
    size_t k = 0;

    memset(r, 0, sizeof(*r));
    r->prefix = vg_asprintf("%s-%d", name, (int)getpid());
    rc.prefix = r->prefix;
    rc.partitioned = true;
    rc.commit_connections = lanes;
    r->st = vg_test_state_connect_config(vg_test_redis_url(&fx), r->prefix, &rc);
    assert_non_null(r->st);
    vg_state_commit_lanes_set(r->st, (unsigned)lanes); /* as the engine does for its pipeline */
    r->rs = vg_ruleset_new();
    vg_decode_config_init(&r->dc);
    r->pl = eng_pipeline_new(r->st, r->rs, &vg_test_hc_workflow, &r->report);
    eng_pipeline_set_input(r->pl, NULL, &r->dc, NULL, NULL);
    eng_pipeline_handler(r->pl, &r->h);
    /* Kafka order: the partitions interleaved, as a fetch delivers them */
    for (int e = 0; e < PER_PART; e++) {
        for (int p = 0; p < PARTS; p++) {
            struct vg_kafka_msg *m = &r->msgs[k];

            r->keys[k] = vg_asprintf("workflow:v1:wf-%d:ws", p);
            r->payloads[k] = vg_asprintf("{\"resource\":{\"type\":\"workflow\",\"name\":\"wf-%d\","
                                         "\"workspace\":\"ws\"},\"status\":\"active\","
                                         "\"runtime\":\"%s\"}",
                                         p, runtimes[e]);
            *m = (struct vg_kafka_msg){.topic = TOPIC,
                                       .partition = p,
                                       .offset = 100 + e,
                                       .key = r->keys[k],
                                       .key_len = strlen(r->keys[k]),
                                       .payload = r->payloads[k],
                                       .len = strlen(r->payloads[k]),
                                       .timestamp_ms = t0 + e * 1000};
            k++;
        }
    }
}

static void rig_stop(struct rig *r)
{
    eng_pipeline_destroy(r->pl);
    vg_ruleset_destroy(r->rs);
    vg_decode_config_fini(&r->dc);
    vg_state_destroy(r->st);
    for (size_t i = 0; i < PARTS * PER_PART; i++) {
        free(r->payloads[i]);
        free(r->keys[i]);
    }
    free(r->prefix);
}

static vg_err_t run_batch(struct rig *r)
{
    return r->h.batch(r->h.opaque, r->msgs, PARTS * PER_PART);
}

static long long applied(const struct rig *r, int p)
{
    return vg_test_redis_int(&fx, "HGET %s:{%s/%d}:offsets %s/%d", r->prefix, TOPIC, p, TOPIC, p);
}

/* Transitions in wf-<p>'s history: each event's runtime change, exactly once. */
static long long history_entries(const struct rig *r, int p)
{
    return vg_test_redis_int(&fx, "XLEN %s:{%s/%d}:hist:{workflow:v1:wf-%d:ws}", r->prefix, TOPIC,
                             p, p);
}

/* ---- the fence hook: runs after each commit's fence check, before its MULTI ---- */

struct hook {
    struct vg_state *st;
    int calls;
    size_t max_in_flight; /* commits in flight when a commit is about to be written */
    size_t max_unread;    /* of those, the ones whose replies nobody read yet */
    size_t max_ahead;     /* fences sent ahead (vg_state_fence_ahead) not finished yet */
    int bump_at;          /* the call (from 1) that moves an epoch; 0: none */
    char bump_key[256];
    int kill_at; /* the call (from 1) that kills the client kill_id; 0: none */
    long long kill_id;
};

static struct hook g_hook;

static void on_fenced(void *arg)
{
    struct hook *hk = arg;
    const struct vg_state *st = hk->st;
    size_t n = 0;
    size_t unread = 0;
    size_t ahead = 0;

    for (size_t i = st->inflight_head; i < st->n_inflight; i++) {
        if (!st->inflight[i].fence_ahead) { /* commits, not the fences sent ahead */
            n++;
            unread += st->inflight[i].read ? 0 : 1;
        } else {
            ahead++;
        }
    }
    if (ahead > hk->max_ahead) {
        hk->max_ahead = ahead;
    }
    hk->calls++;
    if (n > hk->max_in_flight) {
        hk->max_in_flight = n;
    }
    if (unread > hk->max_unread) {
        hk->max_unread = unread;
    }
    if (hk->calls == hk->kill_at) {
        /* a commit lane's connection lost while fences are ahead on every lane */
        assert_int_equal(
            vg_test_redis_expect(&fx, REDIS_REPLY_INTEGER, "CLIENT KILL ID %lld", hk->kill_id), 0);
    }
    if (hk->calls == hk->bump_at) {
        /* another instance claims the partition between this commit's WATCH and EXEC */
        assert_int_equal(vg_test_redis_expect(&fx, REDIS_REPLY_INTEGER, "INCR %s", hk->bump_key),
                         0);
    }
}

static int setup(void **state)
{
    (void)state;
    return vg_test_redis_start(&fx, "engine-commit-inflight", NULL, false);
}

static int teardown(void **state)
{
    (void)state;
    state_test_on_fenced(NULL, NULL);
    vg_test_redis_stop(&fx);
    return 0;
}

/*
 * One batch over four partitions: when each part's commit is written, the commits
 * of every part before it are still in flight (three when the fourth is written),
 * and the whole batch lands.
 */
static void parts_in_flight_on(int lanes)
{
    struct rig r;

    long long unwatch;

    rig_start(&r, lanes > 1 ? "inflight-lanes" : "inflight-all", lanes);
    g_hook = (struct hook){.st = r.st};
    unwatch = vg_test_redis_calls(&fx, "unwatch");
    state_test_on_fenced(on_fenced, &g_hook);
    assert_int_equal(run_batch(&r), VG_OK);
    state_test_on_fenced(NULL, NULL);
    assert_int_equal(g_hook.calls, PARTS);
    assert_int_equal(g_hook.max_in_flight, PARTS - 1);
    if (lanes > 1) {
        /* every part's commit took the verdict of a fence sent ahead on its lane */
        assert_int_equal(g_hook.max_ahead, PARTS);
    } else {
        /* one lane: each part's send checks its fence itself, as before lanes: no fence
         * sent ahead, and so no UNWATCH */
        assert_int_equal(g_hook.max_ahead, 0);
        assert_int_equal(vg_test_redis_calls(&fx, "unwatch"), unwatch);
    }
    if (lanes >= PARTS) {
        /* each part on a lane of its own: no part read another's connection, so the commits
         * of the three before the fourth were all unread when it was written */
        assert_int_equal(g_hook.max_unread, PARTS - 1);
    }
    assert_int_equal(r.st->n_inflight - r.st->inflight_head, 0);
    for (int p = 0; p < PARTS; p++) {
        assert_int_equal(applied(&r, p), 100 + PER_PART - 1);
        assert_int_equal(history_entries(&r, p), 1); /* one entry: the batch's transitions */
    }
    /* the same batch again: every message a replay, nothing written twice */
    assert_int_equal(run_batch(&r), VG_OK);
    for (int p = 0; p < PARTS; p++) {
        assert_int_equal(history_entries(&r, p), 1);
    }
    rig_stop(&r);
}

static void parts_in_flight_together(void **state)
{
    (void)state;
    parts_in_flight_on(1);
}

/*
 * The same on four commit lanes (redis.commit_connections 4): the fences of the
 * four parts go ahead, one per lane, and no part's commit waits for another's.
 */
static void parts_in_flight_on_four_lanes(void **state)
{
    (void)state;
    parts_in_flight_on(4);
}

/*
 * The fence of the second part moves between its WATCH and its EXEC: the first
 * part landed before, the third and fourth were written after it and land too
 * (in flight, finished), the batch fails with the second part's conflict. The
 * retry skips the parts in Redis as replays and applies the second: nothing lost,
 * nothing twice.
 */
static void middle_part_fenced_out_on(int lanes)
{
    struct rig r;
    char *lasterr;

    rig_start(&r, lanes > 1 ? "inflight-mid-lanes" : "inflight-mid", lanes);
    g_hook = (struct hook){.st = r.st, .bump_at = 2};
    snprintf(g_hook.bump_key, sizeof(g_hook.bump_key), "%s:{%s/1}:epoch:{%s/1}", r.prefix, TOPIC,
             TOPIC);
    state_test_on_fenced(on_fenced, &g_hook);
    assert_int_equal(run_batch(&r), VG_ERR_CONFLICT);
    state_test_on_fenced(NULL, NULL);
    lasterr = vg_strdup(r.h.last_error(r.h.opaque));
    if (!strstr(lasterr, "partition " TOPIC "/1 was taken by another instance")) {
        fail_msg("last error: %s", lasterr);
    }
    free(lasterr);
    assert_int_equal(applied(&r, 0), 100 + PER_PART - 1);
    assert_int_equal(applied(&r, 1), -1);
    assert_int_equal(applied(&r, 2), 100 + PER_PART - 1);
    assert_int_equal(applied(&r, 3), 100 + PER_PART - 1);
    assert_int_equal(history_entries(&r, 1), 0);

    /* the consumer retries the whole batch */
    assert_int_equal(run_batch(&r), VG_OK);
    for (int p = 0; p < PARTS; p++) {
        assert_int_equal(applied(&r, p), 100 + PER_PART - 1);
        assert_int_equal(history_entries(&r, p), 1);
        assert_int_equal(vg_test_redis_int(&fx, "EXISTS %s:{%s/%d}:res:{workflow:v1:wf-%d:ws}",
                                           r.prefix, TOPIC, p, p),
                         1);
    }
    rig_stop(&r);
}

static void middle_part_fenced_out(void **state)
{
    (void)state;
    middle_part_fenced_out_on(1);
}

/* The same with the fences sent ahead on four commit lanes. */
static void middle_part_fenced_out_on_four_lanes(void **state)
{
    (void)state;
    middle_part_fenced_out_on(4);
}

/* The id Redis gives the connection of partition p's commit lane (between batches). */
static long long lane_client_id(struct rig *r, int p)
{
    redisReply *reply;
    long long id;

    assert_true(vg_test_state_enter(r->st, TOPIC, p));
    reply = redisCommand(r->st->ctx, "CLIENT ID");
    assert_non_null(reply);
    assert_int_equal(reply->type, REDIS_REPLY_INTEGER);
    id = reply->integer;
    freeReplyObject(reply);
    return id;
}

/*
 * Four commit lanes, opened by a first batch that lands. In the second batch
 * (the same workflows again, ten offsets on), when the first part's commit
 * is about to be written, every lane's fence sent ahead, the connection of
 * partition 3's lane is killed: the batch fails with VG_ERR_BACKEND, the
 * parts on the live lanes land, nothing of partition 3's. The consumer's
 * retry (the pipeline reconnects and claims again) skips the parts that
 * landed and applies partition 3's: every applied offset is the partition's
 * last, and each history holds the second batch's transitions once (as
 * many entries as the others got).
 */
static void lane_lost_with_fences_ahead(void **state)
{
    struct rig r;
    long long before[PARTS]; /* history entries after the first batch */
    long long added;         /* those the second batch adds to a partition's history */
    vg_err_t err;
    (void)state;

    rig_start(&r, "inflight-lane-lost", 4);
    assert_int_equal(run_batch(&r), VG_OK);
    for (int p = 0; p < PARTS; p++) {
        before[p] = history_entries(&r, p);
    }
    for (size_t i = 0; i < PARTS * PER_PART; i++) {
        r.msgs[i].offset += 10;
    }
    g_hook = (struct hook){.st = r.st, .kill_at = 1, .kill_id = lane_client_id(&r, 3)};
    state_test_on_fenced(on_fenced, &g_hook);
    err = run_batch(&r);
    state_test_on_fenced(NULL, NULL);
    assert_int_equal(err, VG_ERR_BACKEND);
    assert_int_equal(g_hook.max_ahead, PARTS);
    assert_int_equal(r.st->n_inflight - r.st->inflight_head, 0);
    added = history_entries(&r, 0) - before[0];
    assert_true(added > 0);
    for (int p = 0; p < PARTS; p++) {
        assert_int_equal(applied(&r, p), (p == 3 ? 100 : 110) + PER_PART - 1);
        assert_int_equal(history_entries(&r, p), before[p] + (p == 3 ? 0 : added));
    }

    /* the consumer retries the whole batch */
    err = run_batch(&r);
    if (err != VG_OK) {
        fail_msg("retry: %s: %s", vg_err_name(err), r.h.last_error(r.h.opaque));
    }
    for (int p = 0; p < PARTS; p++) {
        assert_int_equal(applied(&r, p), 110 + PER_PART - 1);
        assert_int_equal(history_entries(&r, p), before[p] + added);
    }
    rig_stop(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(parts_in_flight_together),
        cmocka_unit_test(middle_part_fenced_out),
        cmocka_unit_test(parts_in_flight_on_four_lanes),
        cmocka_unit_test(middle_part_fenced_out_on_four_lanes),
        cmocka_unit_test(lane_lost_with_fences_ahead),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
