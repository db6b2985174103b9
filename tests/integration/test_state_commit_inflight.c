/*
 * Commits in flight together (docs/state.md "Commits in flight"): with
 * redis.layout partitioned, vg_state_commit_send may be called again before
 * the commits before it are finished. Against a real redis-server: three
 * commits to three scopes written back to back with a read between them
 * that gets its own reply, one of them fenced out (an epoch moved between
 * its WATCH and its EXEC) reported as VG_ERR_CONFLICT naming its partition
 * while the others land; a connection killed with two commits in flight
 * fails both, and the next commit works after the reconnect. With four
 * commit lanes (redis.commit_connections) and fences sent ahead: four
 * partitions' commits on four connections, none waiting for another's
 * reply; an epoch moved after its fence went ahead, or another instance's
 * claim after it, refuses only that part; a fence forgotten does not fence
 * the lane's next commit. On a real Redis Cluster (three primaries):
 * commits to partitions on every primary in flight at once, all land.
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

#include "redis_cluster.h"
#include "state_int.h"
#include "state_redis.h"
#include "support.h"
#include "vigil/config.h"
#include "vigil/event.h"
#include "vigil/mem.h"
#include "vigil/state.h"
#include "vigil/util.h"

#define T0 1764323400000LL
#define N_CLUSTER_PARTS 6

static struct vg_test_redis fx;     /* one redis-server */
static struct vg_test_cluster g_rc; /* three primaries */

static struct vg_state *connect_lanes(const char *url, const char *prefix, bool cluster, int lanes)
{
    struct vg_redis_config rc = {0};
    struct vg_state *st;

    rc.prefix = (char *)prefix;
    rc.cluster = cluster;
    rc.partitioned = true;
    rc.commit_connections = lanes;
    st = vg_test_state_connect_config(url, prefix, &rc);
    assert_non_null(st);
    vg_state_commit_lanes_set(st, (unsigned)lanes); /* as the engine asks for its pipeline's */
    return st;
}

/* One commit lane, as before redis.commit_connections. */
static struct vg_state *connect_partitioned(const char *url, const char *prefix, bool cluster)
{
    return connect_lanes(url, prefix, cluster, 1);
}

static int64_t claim(struct vg_state *st, const char *topic, int32_t partition)
{
    int64_t epoch = vg_test_state_claim(st, topic, partition, NULL);

    assert_true(epoch > 0);
    return epoch;
}

static void enter(struct vg_state *st, const char *topic, int32_t partition)
{
    assert_true(vg_test_state_enter(st, topic, partition));
}

/* One partition's commit of one event (workflow `name` running), built in its scope as the
 * pipeline builds a part, fenced at `epoch` (0: no fence). */
static void build_in(struct vg_state *st, struct vg_test_part_commit *pc, const char *topic,
                     int32_t partition, int64_t offset, const char *name, int64_t epoch)
{
    assert_true(vg_test_part_commit_workflow(st, &vg_test_hc_workflow, pc, topic, partition, offset,
                                             name, T0 + offset, epoch));
}

/*
 * Partitions 0..3 each with one commit built in its scope, fenced at its
 * claim: workflow "wf-<tag><p>" at offset base + p.
 */
static void build_four_claimed(struct vg_state *st, struct vg_test_part_commit pc[4],
                               const char *topic, char tag, int64_t base)
{
    for (int32_t p = 0; p < 4; p++) {
        char name[32];

        snprintf(name, sizeof(name), "wf-%c%d", tag, (int)p);
        build_in(st, &pc[p], topic, p, base + p, name, claim(st, topic, p));
    }
}

/* Partitions 0..3 applied at base + p, but for `lost`, applied nowhere (-1). */
static void assert_applied_but(struct vg_state *st, const char *topic, int64_t base, int32_t lost)
{
    for (int32_t p = 0; p < 4; p++) {
        assert_int_equal(vg_test_state_applied(st, topic, p), p == lost ? -1 : base + p);
    }
}

static void send_in(struct vg_state *st, struct vg_test_part_commit *pc)
{
    char errstr[512] = "";
    vg_err_t err = vg_state_commit_send(st, &pc->cm, errstr, sizeof(errstr));

    if (err != VG_OK) {
        fail_msg("send %s: %s: %s", pc->ev.id, vg_err_name(err), errstr);
    }
    /* what the commit needs is copied: the caller's arrays may change now */
    memset(pc->trans, 0, sizeof(pc->trans));
    pc->off.offset = -7;
}

/* Commits in flight whose replies nobody has read yet. */
static size_t unread(const struct vg_state *st)
{
    size_t n = 0;

    for (size_t i = st->inflight_head; i < st->n_inflight; i++) {
        n += st->inflight[i].read ? 0 : 1;
    }
    return n;
}

static size_t in_flight(const struct vg_state *st)
{
    return st->n_inflight - st->inflight_head;
}

/* errstr is what a commit refused for partition `partition` of `topic` says, its claim moved on to
 * epoch `epoch_now` by another instance. */
static void assert_taken(const char *errstr, const char *topic, int32_t partition,
                         int64_t epoch_now)
{
    char want[256];

    snprintf(want, sizeof(want), "partition %s/%d was taken by another instance (epoch now %lld",
             topic, (int)partition, (long long)epoch_now);
    if (strncmp(errstr, want, strlen(want)) != 0) {
        fail_msg("errstr \"%s\", want \"%s...\"", errstr, want);
    }
}

/* The end of a test: the events of pc[0..n), the state, the prefix. */
static void test_done(struct vg_state *st, struct vg_test_part_commit *pc, size_t n, char *prefix)
{
    for (size_t i = 0; i < n; i++) {
        vg_event_fini(&pc[i].ev);
    }
    vg_state_destroy(st);
    free(prefix);
}

/* ---- one redis-server ---- */

static int redis_setup(void **state)
{
    *state = &fx;
    return vg_test_redis_start(&fx, "state-commit-inflight", NULL, false);
}

/* The fence hook: another instance claims the partition between the commit's WATCH and EXEC. */
struct epoch_bump {
    char key[256];
};

static void bump_epoch(void *arg)
{
    const struct epoch_bump *b = arg;

    assert_int_equal(vg_test_redis_expect(&fx, REDIS_REPLY_INTEGER, "INCR %s", b->key), 0);
}

/*
 * Three commits, three scopes, written back to back; between the first two a
 * read (vg_state_get, through every scope) gets its own reply, not a commit's.
 * The second is fenced out between its WATCH and its EXEC: its finish says
 * VG_ERR_CONFLICT naming its partition, nothing of it is in Redis, and the other
 * two landed.
 */
static void three_scopes_one_fenced_out(void **state)
{
    char *prefix = vg_asprintf("inflight-%d", (int)getpid());
    const char *topic = "ev";
    struct vg_state *st = connect_partitioned(vg_test_redis_url(&fx), prefix, false);
    struct vg_test_part_commit pc[3];
    struct epoch_bump bump;
    struct vg_resource *got = NULL;
    char errstr[512] = "";
    int64_t epochs[3];
    vg_err_t err;
    (void)state;

    for (int32_t p = 0; p < 3; p++) {
        epochs[p] = claim(st, topic, p);
    }
    build_in(st, &pc[0], topic, 0, 10, "wf-a", epochs[0]);
    send_in(st, &pc[0]);
    assert_int_equal(in_flight(st), 1);

    /* a read with a commit in flight on the connection: the commit's replies come first */
    assert_int_equal(vg_state_get(st, pc[0].ev.id, &got, errstr, sizeof(errstr)), VG_OK);
    assert_non_null(got);
    assert_string_equal(got->runtime, "running");
    assert_int_equal(got->pos.offset, 10);
    vg_resource_destroy(got);
    assert_int_equal(in_flight(st), 1); /* read, judged, not finished */
    assert_int_equal(unread(st), 0);

    build_in(st, &pc[1], topic, 1, 20, "wf-b", epochs[1]);
    snprintf(bump.key, sizeof(bump.key), "%s:{%s/1}:epoch:{%s/1}", prefix, topic, topic);
    state_test_on_fenced(bump_epoch, &bump);
    send_in(st, &pc[1]);
    state_test_on_fenced(NULL, NULL);
    build_in(st, &pc[2], topic, 2, 30, "wf-c", epochs[2]);
    send_in(st, &pc[2]);
    assert_int_equal(in_flight(st), 3);
    assert_int_equal(unread(st), 1); /* the third's fence check read the second's replies */

    assert_int_equal(vg_state_commit_finish(st, errstr, sizeof(errstr)), VG_OK);
    assert_false(pc[0].res->dirty);
    err = vg_state_commit_finish(st, errstr, sizeof(errstr));
    assert_int_equal(err, VG_ERR_CONFLICT);
    assert_taken(errstr, topic, 1, epochs[1] + 1);
    assert_int_equal(pc[1].fence_lost, 0);
    assert_true((pc[1].res->dirty_mask & VG_DIRTY_REPLACE) != 0);
    errstr[0] = '\0';
    assert_int_equal(vg_state_commit_finish(st, errstr, sizeof(errstr)), VG_OK);
    assert_string_equal(errstr, "");
    assert_false(pc[2].res->dirty);
    assert_int_equal(in_flight(st), 0);
    /* no finish owed: VG_OK, nothing read */
    assert_int_equal(vg_state_commit_finish(st, errstr, sizeof(errstr)), VG_OK);

    assert_int_equal(vg_test_state_applied(st, topic, 0), 10);
    assert_int_equal(vg_test_state_applied(st, topic, 1), -1);
    assert_int_equal(vg_test_state_applied(st, topic, 2), 30);
    assert_int_equal(
        vg_test_redis_int(&fx, "EXISTS %s:{%s/1}:res:{%s}", prefix, topic, pc[1].ev.id), 0);
    test_done(st, pc, 3, prefix);
}

/*
 * Two commits in flight (unfenced: a fence check would read, and take the replies
 * before it) when the connection is killed before Redis ran them: both fail with
 * VG_ERR_BACKEND, nothing of either is in Redis, and after the reconnect the next
 * commit lands.
 */
static void connection_killed_with_two_in_flight(void **state)
{
    char *prefix = vg_asprintf("inflight-kill-%d", (int)getpid());
    const char *topic = "ev";
    struct vg_state *st = connect_partitioned(vg_test_redis_url(&fx), prefix, false);
    struct vg_test_part_commit pc[3];
    char errstr[512] = "";
    vg_err_t err;
    (void)state;

    claim(st, topic, 0);
    claim(st, topic, 1);
    build_in(st, &pc[0], topic, 0, 40, "wf-k0", 0);
    build_in(st, &pc[1], topic, 1, 50, "wf-k1", 0); /* its read comes before the sends */
    /* EXEC of a transaction with writes waits while writes are paused: the kill comes first */
    assert_int_equal(vg_test_redis_expect(&fx, REDIS_REPLY_STATUS, "CLIENT PAUSE 10000 WRITE"), 0);
    enter(st, topic, 0);
    send_in(st, &pc[0]);
    enter(st, topic, 1);
    send_in(st, &pc[1]);
    assert_int_equal(unread(st), 2);
    assert_int_equal(
        vg_test_redis_expect(&fx, REDIS_REPLY_INTEGER, "CLIENT KILL TYPE normal SKIPME yes"), 0);
    assert_int_equal(vg_test_redis_expect(&fx, REDIS_REPLY_STATUS, "CLIENT UNPAUSE"), 0);

    err = vg_state_commit_finish(st, errstr, sizeof(errstr));
    assert_int_equal(err, VG_ERR_BACKEND);
    assert_non_null(strstr(errstr, ": commit: "));
    assert_true((pc[0].res->dirty_mask & VG_DIRTY_REPLACE) != 0);
    err = vg_state_commit_finish(st, errstr, sizeof(errstr));
    assert_int_equal(err, VG_ERR_BACKEND);
    assert_non_null(strstr(errstr, "connection lost with the commit in flight"));
    assert_int_equal(in_flight(st), 0);
    assert_null(st->ctx);

    assert_int_equal(vg_state_reconnect(st, errstr, sizeof(errstr)), VG_OK);
    assert_int_equal(vg_test_state_applied(st, topic, 0), -1);
    assert_int_equal(vg_test_state_applied(st, topic, 1), -1);
    vg_state_cache_clear(st); /* as the pipeline does after a failed batch */
    build_in(st, &pc[2], topic, 1, 50, "wf-k1", 0);
    send_in(st, &pc[2]);
    assert_int_equal(vg_state_commit_finish(st, errstr, sizeof(errstr)), VG_OK);
    assert_int_equal(vg_test_state_applied(st, topic, 1), 50);
    test_done(st, pc, 3, prefix);
}

/*
 * A connection closed (a reconnect) with a commit in flight: the commit fails
 * unread, and no entry keeps the freed connection.
 */
static void reconnect_fails_the_commit_in_flight(void **state)
{
    char *prefix = vg_asprintf("inflight-reconnect-%d", (int)getpid());
    struct vg_state *st = connect_partitioned(vg_test_redis_url(&fx), prefix, false);
    struct vg_test_part_commit pc;
    char errstr[512] = "";
    (void)state;

    claim(st, "ev", 3);
    build_in(st, &pc, "ev", 3, 60, "wf-r", 0);
    send_in(st, &pc);
    assert_int_equal(vg_state_reconnect(st, errstr, sizeof(errstr)), VG_OK);
    assert_null(st->inflight[st->inflight_head].ctx);
    assert_int_equal(vg_state_commit_finish(st, errstr, sizeof(errstr)), VG_ERR_BACKEND);
    assert_non_null(strstr(errstr, "connection lost with the commit in flight"));
    vg_event_fini(&pc.ev);
    vg_state_destroy(st);
    free(prefix);
}

/* The connections st holds: st->ctx and the parked ones. */
static size_t connections(const struct vg_state *st)
{
    size_t n = st->ctx ? 1 : 0;

    for (size_t i = 0; i < st->n_parked; i++) {
        n += st->parked[i] ? 1 : 0;
    }
    return n;
}

static void fence_ahead_in(struct vg_state *st, struct vg_test_part_commit *pc)
{
    char errstr[512] = "";
    vg_err_t err;

    enter(st, pc->fence.topic, pc->fence.partition);
    err = vg_state_fence_ahead(st, &pc->fence, 1, errstr, sizeof(errstr));
    if (err != VG_OK) {
        fail_msg("fence ahead %s: %s: %s", pc->ev.id, vg_err_name(err), errstr);
    }
}

/* The commands Redis ran so far (INFO stats total_commands_processed). */
static long long commands_processed(void)
{
    redisReply *r = redisCommand(fx.raw, "INFO stats");
    const char *at;
    long long n = -1;

    assert_non_null(r);
    at = strstr(r->str, "total_commands_processed:");
    assert_non_null(at);
    n = strtoll(at + strlen("total_commands_processed:"), NULL, 10);
    freeReplyObject(r);
    return n;
}

/*
 * Four commit lanes, four partitions: each part's fence goes ahead on its
 * lane, then the four commits are written, each taking its fence's verdict
 * (the four answered together) and none waiting for another commit: all
 * four commits are unread when the last EXEC is written. Four connections,
 * one per lane; all four land.
 */
static void four_lanes_fences_ahead(void **state)
{
    char *prefix = vg_asprintf("inflight-lanes-%d", (int)getpid());
    const char *topic = "ev";
    struct vg_state *st = connect_lanes(vg_test_redis_url(&fx), prefix, false, 4);
    struct vg_test_part_commit pc[4];
    char errstr[512] = "";
    long long before;
    (void)state;

    assert_int_equal(vg_state_commit_lanes(st), 4);
    build_four_claimed(st, pc, topic, 'l', 200);
    assert_int_equal(connections(st), 4); /* lane p serves partition p */
    before = commands_processed();
    for (int32_t p = 0; p < 4; p++) {
        fence_ahead_in(st, &pc[p]);
    }
    for (int32_t p = 0; p < 4; p++) {
        enter(st, topic, p);
        send_in(st, &pc[p]);
    }
    assert_int_equal(in_flight(st), 8);
    /* each commit read its own fence's verdict (all four answered in one turn), and no
     * commit's reply was waited for before the last EXEC went out */
    assert_int_equal(unread(st), 4);
    for (size_t i = st->inflight_head; i < st->n_inflight; i++) {
        assert_true(st->inflight[i].fence_ahead == st->inflight[i].read);
    }
    assert_int_equal(connections(st), 4);
    for (int32_t p = 0; p < 4; p++) {
        vg_err_t err = vg_state_commit_finish(st, errstr, sizeof(errstr));

        if (err != VG_OK) {
            fail_msg("finish %d: %s: %s", (int)p, vg_err_name(err), errstr);
        }
        assert_false(pc[p].res->dirty);
    }
    assert_int_equal(in_flight(st), 0);
    /* 4 x (UNWATCH, WATCH, MGET, MULTI, EXEC + its queued commands) ran: at least 20 */
    assert_true(commands_processed() - before >= 21);
    for (int32_t p = 0; p < 4; p++) {
        assert_int_equal(vg_test_state_applied(st, topic, p), 200 + p);
        vg_event_fini(&pc[p].ev);
    }
    vg_state_destroy(st);
    free(prefix);
}

/*
 * Fences sent ahead on four lanes; partition 1's epoch moves after its
 * fence's verdict and before its EXEC (another instance's claim): only
 * that part is refused, VG_ERR_CONFLICT naming it, and the others land.
 */
static void fence_moved_after_ahead_refuses_only_that_part(void **state)
{
    char *prefix = vg_asprintf("inflight-ahead-moved-%d", (int)getpid());
    const char *topic = "ev";
    struct vg_state *st = connect_lanes(vg_test_redis_url(&fx), prefix, false, 4);
    struct vg_test_part_commit pc[4];
    struct epoch_bump bump;
    int64_t epochs[4];
    char errstr[512] = "";
    (void)state;

    for (int32_t p = 0; p < 4; p++) {
        char name[32];

        snprintf(name, sizeof(name), "wf-m%d", (int)p);
        epochs[p] = claim(st, topic, p);
        build_in(st, &pc[p], topic, p, 300 + p, name, epochs[p]);
    }
    for (int32_t p = 0; p < 4; p++) {
        fence_ahead_in(st, &pc[p]);
    }
    for (int32_t p = 0; p < 4; p++) {
        enter(st, topic, p);
        if (p == 1) {
            snprintf(bump.key, sizeof(bump.key), "%s:{%s/1}:epoch:{%s/1}", prefix, topic, topic);
            state_test_on_fenced(bump_epoch, &bump);
        }
        send_in(st, &pc[p]);
        state_test_on_fenced(NULL, NULL);
    }
    for (int32_t p = 0; p < 4; p++) {
        vg_err_t err = vg_state_commit_finish(st, errstr, sizeof(errstr));

        if (p != 1) {
            if (err != VG_OK) {
                fail_msg("finish %d: %s: %s", (int)p, vg_err_name(err), errstr);
            }
            continue;
        }
        assert_int_equal(err, VG_ERR_CONFLICT);
        assert_taken(errstr, topic, 1, epochs[1] + 1);
        assert_int_equal(pc[1].fence_lost, 0);
    }
    assert_int_equal(vg_test_state_applied(st, topic, 0), 300);
    assert_int_equal(vg_test_state_applied(st, topic, 1), -1);
    assert_int_equal(vg_test_state_applied(st, topic, 2), 302);
    assert_int_equal(vg_test_state_applied(st, topic, 3), 303);
    test_done(st, pc, 4, prefix);
}

/*
 * Another instance claims partition 2 after this one's fence for it went
 * ahead: whether its INCR reached Redis before the MGET (the send refuses
 * at once) or after the WATCH (EXEC refuses), partition 2's part is refused
 * with VG_ERR_CONFLICT naming it, nothing of it lands, and the others do.
 * A fence sent ahead for a part that then commits nothing is forgotten
 * (UNWATCH): the lane's next commit lands although that epoch moved.
 */
static void claim_after_ahead_refuses_it(void **state)
{
    char *prefix = vg_asprintf("inflight-ahead-claim-%d", (int)getpid());
    const char *topic = "ev";
    struct vg_state *st = connect_lanes(vg_test_redis_url(&fx), prefix, false, 4);
    struct vg_state *other = connect_lanes(vg_test_redis_url(&fx), prefix, false, 4);
    struct vg_test_part_commit pc[5];
    size_t n_finish = 0;
    char errstr[512] = "";
    bool refused = false;
    vg_err_t err;
    (void)state;

    build_four_claimed(st, pc, topic, 'c', 400);
    for (int32_t p = 0; p < 4; p++) {
        fence_ahead_in(st, &pc[p]);
    }
    assert_true(claim(other, topic, 2) > pc[2].fence.epoch);
    for (int32_t p = 0; p < 4; p++) {
        enter(st, topic, p);
        err = vg_state_commit_send(st, &pc[p].cm, errstr, sizeof(errstr));
        if (p == 2 && err == VG_ERR_CONFLICT) {
            refused = true; /* the MGET saw it: nothing queued, no finish owed */
            assert_non_null(strstr(errstr, "partition ev/2 was taken by another instance"));
            continue;
        }
        assert_int_equal(err, VG_OK);
        n_finish++;
    }
    for (size_t i = 0; i < n_finish; i++) {
        err = vg_state_commit_finish(st, errstr, sizeof(errstr));
        if (err == VG_ERR_CONFLICT) {
            assert_false(refused);
            refused = true;
            assert_non_null(strstr(errstr, "partition ev/2 was taken by another instance"));
        } else if (err != VG_OK) {
            fail_msg("finish %zu: %s: %s", i, vg_err_name(err), errstr);
        }
    }
    assert_true(refused);
    vg_state_fences_ahead_drop(st, false);
    assert_int_equal(in_flight(st), 0);
    assert_applied_but(st, topic, 400, 2);

    /* lane 0: a fence ahead for partition 4 whose part commits nothing, its epoch then moved;
     * partition 0's next commit on the lane is not fenced by it */
    build_in(st, &pc[4], topic, 4, 500, "wf-c4", claim(st, topic, 4));
    fence_ahead_in(st, &pc[4]);
    vg_state_fences_ahead_drop(st, false);
    assert_int_equal(in_flight(st), 0);
    assert_true(claim(other, topic, 4) > pc[4].fence.epoch);
    vg_event_fini(&pc[0].ev);
    build_in(st, &pc[0], topic, 0, 410, "wf-c0", pc[0].fence.epoch);
    send_in(st, &pc[0]);
    err = vg_state_commit_finish(st, errstr, sizeof(errstr));
    if (err != VG_OK) {
        fail_msg("commit after the drop: %s: %s", vg_err_name(err), errstr);
    }
    assert_int_equal(vg_test_state_applied(st, topic, 0), 410);
    for (int32_t p = 0; p < 5; p++) {
        vg_event_fini(&pc[p].ev);
    }
    vg_state_destroy(other);
    vg_state_destroy(st);
    free(prefix);
}

/*
 * Only a state that asks for commit lanes (the pipeline's) has them: a
 * reader connected with the same redis section (commit_connections 4)
 * walks eight partitions' scopes, reading in each, on one connection; the
 * pipeline's state, which asked for four lanes, is on four after the same
 * walk.
 */
static void readers_keep_one_connection(void **state)
{
    char *prefix = vg_asprintf("inflight-reader-%d", (int)getpid());
    struct vg_redis_config rc = {0};
    struct vg_state *reader = NULL;
    struct vg_state *st;
    (void)state;

    rc.prefix = prefix;
    rc.partitioned = true;
    rc.commit_connections = 4;
    reader = vg_test_state_connect_config(vg_test_redis_url(&fx), prefix, &rc);
    assert_non_null(reader);
    st = connect_lanes(vg_test_redis_url(&fx), prefix, false, 4);
    assert_int_equal(vg_state_commit_lanes(reader), 1);
    assert_int_equal(vg_state_commit_lanes(st), 4);
    for (int32_t p = 0; p < 8; p++) {
        enter(reader, "ev", p);
        assert_int_equal(vg_test_state_applied(reader, "ev", p), -1);
        enter(st, "ev", p);
        assert_int_equal(vg_test_state_applied(st, "ev", p), -1);
    }
    assert_int_equal(connections(reader), 1);
    assert_int_equal(connections(st), 4);
    vg_state_destroy(reader);
    vg_state_destroy(st);
    free(prefix);
}

/* The id Redis gives the connection of `partition`'s commit lane (nothing in flight on it). */
static long long lane_client_id(struct vg_state *st, const char *topic, int32_t partition)
{
    redisReply *r;
    long long id;

    enter(st, topic, partition);
    assert_false(state_commits_pending(st));
    r = redisCommand(st->ctx, "CLIENT ID");
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_INTEGER);
    id = r->integer;
    freeReplyObject(r);
    return id;
}

/* Entries in the history stream of the workflow `name`'s Resource in topic/partition's scope. */
static long long history_len(const char *prefix, const char *topic, int32_t partition,
                             const struct vg_test_part_commit *pc)
{
    return vg_test_redis_int(&fx, "XLEN %s:{%s/%d}:hist:{%s}", prefix, topic, (int)partition,
                             pc->ev.id);
}

/*
 * Four lanes, fences sent ahead on all four, then lane 2's connection is
 * killed (CLIENT KILL ID) before the commits are written. The part on the
 * dead lane fails with VG_ERR_BACKEND (from its send, when the fence's
 * replies were lost with the connection, or from its finish, when they had
 * arrived and the commit then met the closed connection), within a bound
 * and with its errstr saying so; the parts on the three live lanes land.
 * Nothing of the dead lane's part is in Redis. After vg_state_reconnect and
 * a claim, its retry lands once: one history entry, its applied offset,
 * and the live lanes' parts are still there once each.
 */
static void lane_lost_with_fences_ahead(void **state)
{
    char *prefix = vg_asprintf("inflight-lane-lost-%d", (int)getpid());
    const char *topic = "ev";
    struct vg_state *st = connect_lanes(vg_test_redis_url(&fx), prefix, false, 4);
    struct vg_test_part_commit pc[4];
    bool sent[4] = {false};
    char errstr[512] = "";
    long long id;
    int failed = 0;
    vg_err_t err;
    (void)state;

    build_four_claimed(st, pc, topic, 'x', 600);
    id = lane_client_id(st, topic, 2);
    for (int32_t p = 0; p < 4; p++) {
        fence_ahead_in(st, &pc[p]);
    }
    assert_int_equal(vg_test_redis_expect(&fx, REDIS_REPLY_INTEGER, "CLIENT KILL ID %lld", id), 0);
    for (int32_t p = 0; p < 4; p++) {
        enter(st, topic, p);
        errstr[0] = '\0';
        err = vg_state_commit_send(st, &pc[p].cm, errstr, sizeof(errstr));
        if (p != 2 && err != VG_OK) {
            fail_msg("send %d: %s: %s", (int)p, vg_err_name(err), errstr);
        }
        if (p == 2 && err != VG_OK) {
            /* the fence's replies went with the connection: not in flight */
            assert_int_equal(err, VG_ERR_BACKEND);
            assert_non_null(strstr(errstr, "connection"));
            failed++;
        }
        sent[p] = err == VG_OK;
    }
    for (int32_t p = 0; p < 4; p++) {
        if (!sent[p]) {
            continue;
        }
        errstr[0] = '\0';
        err = vg_state_commit_finish(st, errstr, sizeof(errstr));
        if (p != 2 && err != VG_OK) {
            fail_msg("finish %d: %s: %s", (int)p, vg_err_name(err), errstr);
        }
        if (p == 2) {
            /* the fence's verdict had arrived; the commit met the closed connection */
            assert_int_equal(err, VG_ERR_BACKEND);
            assert_int_equal(strncmp(errstr, "redis ", 6), 0); /* "redis URL: commit: ..." */
            assert_true((pc[2].res->dirty_mask & VG_DIRTY_REPLACE) != 0);
            failed++;
        }
    }
    assert_int_equal(failed, 1);
    vg_state_fences_ahead_drop(st, false);
    assert_int_equal(in_flight(st), 0);
    assert_applied_but(st, topic, 600, 2);
    assert_int_equal(history_len(prefix, topic, 2, &pc[2]), 0);

    /* the retry, as the pipeline does it: reconnect, the cache dropped, claim again */
    err = vg_state_reconnect(st, errstr, sizeof(errstr));
    if (err != VG_OK) {
        fail_msg("reconnect: %s: %s", vg_err_name(err), errstr);
    }
    vg_state_cache_clear(st);
    vg_event_fini(&pc[2].ev);
    build_in(st, &pc[2], topic, 2, 602, "wf-x2", claim(st, topic, 2));
    fence_ahead_in(st, &pc[2]);
    send_in(st, &pc[2]);
    err = vg_state_commit_finish(st, errstr, sizeof(errstr));
    if (err != VG_OK) {
        fail_msg("retry: %s: %s", vg_err_name(err), errstr);
    }
    vg_state_fences_ahead_drop(st, false);
    assert_int_equal(in_flight(st), 0);
    for (int32_t p = 0; p < 4; p++) {
        assert_int_equal(vg_test_state_applied(st, topic, p), 600 + p);
        assert_int_equal(history_len(prefix, topic, p, &pc[p]), 1);
        vg_event_fini(&pc[p].ev);
    }
    vg_state_destroy(st);
    free(prefix);
}

/* ---- a Redis Cluster ---- */

static int cluster_setup(void **state)
{
    (void)state;
    return vg_test_cluster_start(&g_rc, "state-commit-inflight", 3, 0);
}

static int cluster_teardown(void **state)
{
    (void)state;
    vg_test_cluster_stop(&g_rc);
    return 0;
}

/*
 * Six partitions over the three primaries, one commit each, all sent before any
 * is finished: the commits on different primaries are unread at once (each
 * primary runs its own), and all land.
 */
static void cluster_commits_on_every_primary(void **state)
{
    char *prefix = vg_asprintf("inflight-c-%d", (int)getpid());
    char *topic = vg_test_cluster_topic_spread(&g_rc, "inflight", N_CLUSTER_PARTS, 3);
    struct vg_state *st = connect_partitioned(vg_test_cluster_url(&g_rc, 0), prefix, true);
    struct vg_test_part_commit pc[N_CLUSTER_PARTS];
    int64_t epochs[N_CLUSTER_PARTS];
    char errstr[512] = "";
    (void)state;

    assert_non_null(topic);
    for (int32_t p = 0; p < N_CLUSTER_PARTS; p++) {
        epochs[p] = claim(st, topic, p);
    }
    for (int32_t p = 0; p < N_CLUSTER_PARTS; p++) {
        char name[32];

        snprintf(name, sizeof(name), "wf-%d", (int)p);
        build_in(st, &pc[p], topic, p, 100 + p, name, epochs[p]);
        send_in(st, &pc[p]);
    }
    assert_int_equal(in_flight(st), N_CLUSTER_PARTS);
    /* at least the last commit on each primary is still unread */
    fprintf(stderr, "inflight: %zu of %d commits unread before the first finish\n", unread(st),
            N_CLUSTER_PARTS);
    assert_true(unread(st) >= 3);
    for (int32_t p = 0; p < N_CLUSTER_PARTS; p++) {
        vg_err_t err = vg_state_commit_finish(st, errstr, sizeof(errstr));

        if (err != VG_OK) {
            fail_msg("finish %d: %s: %s", (int)p, vg_err_name(err), errstr);
        }
        assert_false(pc[p].res->dirty);
    }
    for (int32_t p = 0; p < N_CLUSTER_PARTS; p++) {
        assert_int_equal(vg_test_state_applied(st, topic, p), 100 + p);
        vg_event_fini(&pc[p].ev);
    }
    vg_state_destroy(st);
    free(topic);
    free(prefix);
}

int main(void)
{
    const struct CMUnitTest redis_tests[] = {
        cmocka_unit_test(three_scopes_one_fenced_out),
        cmocka_unit_test(connection_killed_with_two_in_flight),
        cmocka_unit_test(reconnect_fails_the_commit_in_flight),
        cmocka_unit_test(four_lanes_fences_ahead),
        cmocka_unit_test(fence_moved_after_ahead_refuses_only_that_part),
        cmocka_unit_test(claim_after_ahead_refuses_it),
        cmocka_unit_test(readers_keep_one_connection),
        cmocka_unit_test(lane_lost_with_fences_ahead),
    };
    const struct CMUnitTest cluster_tests[] = {
        cmocka_unit_test(cluster_commits_on_every_primary),
    };
    int failed =
        cmocka_run_group_tests_name("one redis", redis_tests, redis_setup, vg_test_redis_teardown);

    failed +=
        cmocka_run_group_tests_name("cluster", cluster_tests, cluster_setup, cluster_teardown);
    return failed;
}
