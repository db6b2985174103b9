/*
 * An owed WAIT (redis.wait_replicas, docs/state.md "Replicas: an owed WAIT"):
 * a commit whose WAIT fell short leaves its node owing the proof that its
 * replicas have it, and vg_state_reconnect (and a claim) fail until that node
 * gives it. On one redis-server with a real replica (REPLICAOF): the replica
 * held (SIGSTOP), a commit's WAIT falls short, its connection is killed, and
 * reconnecting fails, again and again, until the replica is let go; the proof
 * then came from a mark written on a new connection, which expires by
 * itself. On a real Redis Cluster (three primaries, one replica each):
 * commits to partitions on two primaries in flight together, the first
 * one's replica held, its WAIT falls short while the other lands, and
 * reconnecting (from the other node's scope) fails, naming the first node,
 * until its replica is let go. A claim (the retry of a batch failed without
 * a reconnect) settles what is owed too.
 */
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
#define WAIT_TIMEOUT_MS 300

/* one redis-server and its replica */
static char *g_dir;
static struct vg_redis_child *g_primary;
static struct vg_redis_child *g_replica;
static int g_port; /* the primary's TCP port: a replica follows a host and port */
static redisContext *g_raw_primary;
static redisContext *g_raw_replica;

static struct vg_test_cluster g_rc; /* three primaries, one replica each */
static pid_t g_held;                /* a stopped replica, let go at teardown whatever happened */

/* ---- helpers ---- */

static redisReply *must(redisContext *ctx, const char *fmt, ...)
{
    va_list ap;
    redisReply *r;

    va_start(ap, fmt);
    r = redisvCommand(ctx, fmt, ap);
    va_end(ap);
    if (!r) {
        fail_msg("%s: no reply: %s", fmt, ctx->errstr);
    }
    if (r->type == REDIS_REPLY_ERROR) {
        fail_msg("%s: %s", fmt, r->str);
    }
    return r;
}

static bool stopped(void *arg)
{
    char path[64];
    char *stat;
    const char *p;
    bool is_t;

    snprintf(path, sizeof(path), "/proc/%d/stat", (int)*(pid_t *)arg);
    stat = vg_test_read_file(path, NULL);
    p = stat ? strrchr(stat, ')') : NULL;
    is_t = p && p[1] == ' ' && p[2] == 'T';
    free(stat);
    return is_t;
}

/* SIGSTOP `pid` and wait until it is stopped: from then on it acknowledges nothing. */
static void hold(pid_t pid)
{
    assert_int_equal(kill(pid, SIGSTOP), 0);
    g_held = pid;
    assert_true(vg_test_wait_for(stopped, &pid, 5000));
}

static void let_go(void)
{
    if (g_held > 0) {
        (void)kill(g_held, SIGCONT);
        g_held = 0;
    }
}

static struct vg_state *connect_waiting(const char *url, const char *prefix, bool cluster)
{
    struct vg_redis_config rc = {0};
    struct vg_state *st;

    rc.prefix = (char *)prefix;
    rc.cluster = cluster;
    rc.partitioned = cluster;
    rc.wait_replicas = 1;
    rc.wait_timeout_ms = WAIT_TIMEOUT_MS;
    st = vg_test_state_connect_config(url, prefix, &rc);
    assert_non_null(st);
    return st;
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

static void send_in(struct vg_state *st, struct vg_test_part_commit *pc)
{
    char errstr[512] = "";
    vg_err_t err = vg_state_commit_send(st, &pc->cm, errstr, sizeof(errstr));

    if (err != VG_OK) {
        fail_msg("send %s: %s: %s", pc->ev.id, vg_err_name(err), errstr);
    }
}

struct reconnect_arg {
    struct vg_state *st;
    char errstr[512];
};

static bool reconnects(void *arg)
{
    struct reconnect_arg *ra = arg;

    return vg_state_reconnect(ra->st, ra->errstr, sizeof(ra->errstr)) == VG_OK;
}

/* vg_state_reconnect fails with VG_ERR_BACKEND, its message holding `want`. */
static void reconnect_refused(struct vg_state *st, const char *want)
{
    char errstr[512] = "";
    vg_err_t err = vg_state_reconnect(st, errstr, sizeof(errstr));

    if (err != VG_ERR_BACKEND || !strstr(errstr, want)) {
        fail_msg("reconnect: %s: \"%s\", want VG_ERR_BACKEND with \"%s\"", vg_err_name(err), errstr,
                 want);
    }
    fprintf(stderr, "reconnect refused: %s\n", errstr);
}

/* ---- one redis-server with a replica ---- */

static bool replica_in_sync(void *arg)
{
    redisReply *p = redisCommand(g_raw_primary, "INFO replication");
    redisReply *r = redisCommand(g_raw_replica, "INFO replication");
    bool ok = p && r && p->type == REDIS_REPLY_STRING && r->type == REDIS_REPLY_STRING &&
              strstr(p->str, ",state=online,") && strstr(r->str, "master_link_status:up");
    (void)arg;

    if (p) {
        freeReplyObject(p);
    }
    if (r) {
        freeReplyObject(r);
    }
    return ok;
}

static redisContext *raw_connect(const struct vg_redis_child *rc)
{
    const char *url = vg_redis_child_url(rc);
    redisContext *ctx = redisConnectUnix(url + strlen("unix://"));

    if (!ctx || ctx->err) {
        fprintf(stderr, "raw connect %s: %s\n", url, ctx ? ctx->errstr : "out of memory");
        return NULL;
    }
    return ctx;
}

static int redis_setup(void **state)
{
    struct vg_redis_child_opts o = {0};
    char errstr[512];
    char *dir;
    redisReply *r;
    (void)state;

    signal(SIGPIPE, SIG_IGN);
    g_dir = vg_test_mkdtemp("state-wait-owed");
    g_port = vg_test_free_port();
    if (g_port <= 0) {
        fprintf(stderr, "no free loopback port\n");
        return -1;
    }
    o.tcp_port = g_port;
    dir = vg_asprintf("%s/primary", g_dir);
    if (vg_redis_child_start_opts(&g_primary, dir, &o, errstr, sizeof(errstr)) != VG_OK) {
        fprintf(stderr, "primary: %s\n", errstr);
        vg_free(dir);
        return -1;
    }
    vg_free(dir);
    dir = vg_asprintf("%s/replica", g_dir);
    if (vg_redis_child_start(&g_replica, dir, errstr, sizeof(errstr)) != VG_OK) {
        fprintf(stderr, "replica: %s\n", errstr);
        vg_free(dir);
        return -1;
    }
    vg_free(dir);
    g_raw_primary = raw_connect(g_primary);
    g_raw_replica = raw_connect(g_replica);
    if (!g_raw_primary || !g_raw_replica) {
        return -1;
    }
    r = redisCommand(g_raw_replica, "REPLICAOF 127.0.0.1 %d", g_port);
    if (!r || r->type != REDIS_REPLY_STATUS) {
        fprintf(stderr, "REPLICAOF: %s\n", r && r->str ? r->str : g_raw_replica->errstr);
        return -1;
    }
    freeReplyObject(r);
    if (!vg_test_wait_for(replica_in_sync, NULL, 20000)) {
        fprintf(stderr, "the replica did not come online\n");
        return -1;
    }
    return 0;
}

static int redis_teardown(void **state)
{
    (void)state;
    let_go();
    if (g_raw_primary) {
        redisFree(g_raw_primary);
    }
    if (g_raw_replica) {
        redisFree(g_raw_replica);
    }
    vg_redis_child_stop(g_replica);
    vg_redis_child_stop(g_primary);
    if (g_dir) {
        vg_test_rmrf(g_dir);
    }
    vg_free(g_dir);
    return 0;
}

static vg_err_t apply_at(struct vg_state *st, const char *topic, int64_t offset,
                         const char *runtime, char *errstr, size_t errstr_size)
{
    struct vg_event ev;
    vg_err_t err;

    vg_test_event_workflow(&ev, "wf-owed", "ws", runtime, topic, 0, offset, T0 + offset);
    err = vg_test_state_apply_one(st, &vg_test_hc_workflow, &ev, errstr, errstr_size);
    vg_event_fini(&ev);
    return err;
}

/*
 * The replica held: a commit's WAIT falls short (the primary has the batch),
 * and its connection is then killed. The owed WAIT outlives the connection:
 * vg_state_reconnect fails, and again (the debt is not dropped by a failed
 * try), a claim fails too; once the replica is let go, a reconnect succeeds,
 * after a mark written on its new connection reached the replica.
 */
static void owed_wait_outlives_its_connection(void **state)
{
    char *prefix = vg_asprintf("owed-%d", (int)getpid());
    const char *topic = "ev";
    struct vg_state *st = connect_waiting(vg_redis_child_url(g_primary), prefix, false);
    struct reconnect_arg ra = {.st = st};
    pid_t replica = vg_redis_child_pid(g_replica);
    char errstr[512] = "";
    int64_t epoch = 0;
    int64_t offset = -1;
    char *cluster = NULL;
    redisReply *r;
    vg_err_t err;
    (void)state;

    /* with the replica following, a commit's WAIT is answered */
    err = apply_at(st, topic, 1, "pending", errstr, sizeof(errstr));
    if (err != VG_OK) {
        fail_msg("first commit: %s: %s", vg_err_name(err), errstr);
    }

    hold(replica);
    err = apply_at(st, topic, 2, "running", errstr, sizeof(errstr));
    assert_int_equal(err, VG_ERR_BACKEND);
    assert_non_null(strstr(errstr, "batch replicated to 0 of 1 replicas"));
    /* the primary has it: a retry would find it replayed and send no WAIT */
    r = must(g_raw_primary, "HGET %s:offsets %s/0", prefix, topic);
    assert_int_equal(r->type, REDIS_REPLY_STRING);
    assert_string_equal(r->str, "2");
    freeReplyObject(r);

    /* the connection that owed the WAIT goes */
    r = must(g_raw_primary, "CLIENT KILL TYPE normal SKIPME yes");
    assert_true(r->integer >= 1);
    freeReplyObject(r);
    assert_int_equal(vg_state_ping(st), VG_ERR_BACKEND);
    assert_null(st->ctx);

    reconnect_refused(st, "replicated to 0 of 1 replicas");
    reconnect_refused(st, "replicated to 0 of 1 replicas");
    err = vg_state_partition_claim(st, topic, 0, &epoch, &offset, &cluster, errstr, sizeof(errstr));
    assert_int_equal(err, VG_ERR_BACKEND);
    assert_null(cluster);

    let_go();
    if (!vg_test_wait_for(reconnects, &ra, 20000)) {
        fail_msg("no reconnect after the replica was let go: %s", ra.errstr);
    }
    /* proven by a write of its own on the new connection, which the replica has */
    r = must(g_raw_replica, "GET %s:wait-mark", prefix);
    assert_int_equal(r->type, REDIS_REPLY_STRING);
    freeReplyObject(r);
    /* the mark goes by itself: written with its expiry (a minute), not kept forever */
    r = must(g_raw_primary, "PTTL %s:wait-mark", prefix);
    assert_int_equal(r->type, REDIS_REPLY_INTEGER);
    if (r->integer <= 0 || r->integer > 60000) {
        fail_msg("wait-mark PTTL %lld, want 1..60000 ms", (long long)r->integer);
    }
    freeReplyObject(r);
    r = must(g_raw_replica, "HGET %s:offsets %s/0", prefix, topic);
    assert_int_equal(r->type, REDIS_REPLY_STRING);
    assert_string_equal(r->str, "2");
    freeReplyObject(r);
    err = vg_state_partition_claim(st, topic, 0, &epoch, &offset, &cluster, errstr, sizeof(errstr));
    if (err != VG_OK) {
        fail_msg("claim: %s: %s", vg_err_name(err), errstr);
    }
    assert_int_equal(offset, 2);
    free(cluster);
    err = apply_at(st, topic, 3, "succeeded", errstr, sizeof(errstr));
    if (err != VG_OK) {
        fail_msg("commit after: %s: %s", vg_err_name(err), errstr);
    }
    vg_state_destroy(st);
    free(prefix);
}

struct claim_arg {
    struct vg_state *st;
    const char *topic;
    int64_t offset;
    char errstr[512];
};

static bool claims(void *arg)
{
    struct claim_arg *ca = arg;
    int64_t epoch = 0;
    char *cluster = NULL;
    vg_err_t err = vg_state_partition_claim(ca->st, ca->topic, 0, &epoch, &ca->offset, &cluster,
                                            ca->errstr, sizeof(ca->errstr));

    free(cluster);
    return err == VG_OK;
}

/*
 * A batch that failed without a reconnect (a conflict of another part) is
 * retried after claiming again: the claim settles what is owed first. The
 * connection that wrote the commit stands, so a WAIT on it proves it, with
 * no mark: the claim fails while the replica is held and succeeds once it
 * is let go, and no P:wait-mark was written.
 */
static void owed_wait_before_a_claim(void **state)
{
    char *prefix = vg_asprintf("owed-claim-%d", (int)getpid());
    struct vg_state *st = connect_waiting(vg_redis_child_url(g_primary), prefix, false);
    struct claim_arg ca = {.st = st, .topic = "ev"};
    pid_t replica = vg_redis_child_pid(g_replica);
    const redisContext *wrote;
    char errstr[512] = "";
    redisReply *r;
    vg_err_t err;
    (void)state;

    hold(replica);
    err = apply_at(st, ca.topic, 5, "running", errstr, sizeof(errstr));
    assert_int_equal(err, VG_ERR_BACKEND);
    assert_non_null(strstr(errstr, "batch replicated to 0 of 1 replicas"));
    wrote = st->ctx;
    assert_non_null(wrote);

    assert_false(claims(&ca));
    assert_non_null(strstr(ca.errstr, "replicated to 0 of 1 replicas"));
    assert_true(st->ctx == wrote); /* the same connection: what it wrote is what WAIT covers */

    let_go();
    if (!vg_test_wait_for(claims, &ca, 20000)) {
        fail_msg("no claim after the replica was let go: %s", ca.errstr);
    }
    assert_int_equal(ca.offset, 5);
    r = must(g_raw_replica, "HGET %s:offsets ev/0", prefix);
    assert_int_equal(r->type, REDIS_REPLY_STRING);
    assert_string_equal(r->str, "5");
    freeReplyObject(r);
    r = must(g_raw_primary, "EXISTS %s:wait-mark", prefix);
    assert_int_equal(r->integer, 0);
    freeReplyObject(r);
    vg_state_destroy(st);
    free(prefix);
}

/* ---- a Redis Cluster ---- */

static int cluster_setup(void **state)
{
    (void)state;
    return vg_test_cluster_start(&g_rc, "state-wait-owed", 3, 1);
}

static int cluster_teardown(void **state)
{
    (void)state;
    let_go();
    vg_test_cluster_stop(&g_rc);
    return 0;
}

/* A topic whose partitions 0 and 1 have slots on two different primaries: their indexes. */
static char *topic_on_two_primaries(int *first, int *second)
{
    for (int k = 0;; k++) {
        char *topic = vg_asprintf("owed-%d-%d", (int)getpid(), k);
        char *tag0 = vg_asprintf("{%s/0}", topic);
        char *tag1 = vg_asprintf("{%s/1}", topic);

        *first = vg_test_cluster_key_owner(&g_rc, tag0);
        *second = vg_test_cluster_key_owner(&g_rc, tag1);
        free(tag0);
        free(tag1);
        assert_true(*first >= 0 && *second >= 0);
        if (*first != *second) {
            return topic;
        }
        free(topic);
    }
}

/*
 * Commits to partitions on two primaries in flight together; the first
 * one's replica held and cut off, so its WAIT falls short while the other
 * lands. From the second partition's scope (its node's replica is fine),
 * vg_state_reconnect fails naming the first node, again, until that replica
 * is let go and has caught up.
 */
static void owed_wait_on_the_node_that_took_it(void **state)
{
    char *prefix = vg_asprintf("owed-c-%d", (int)getpid());
    int first = -1;
    int second = -1;
    char *topic = topic_on_two_primaries(&first, &second);
    int replica = vg_test_cluster_replica_of(&g_rc, (size_t)first);
    /* seeded by the other node: the message names the first one as the slot's owner */
    struct vg_state *st = connect_waiting(vg_test_cluster_url(&g_rc, (size_t)second), prefix, true);
    struct reconnect_arg ra = {.st = st};
    struct vg_test_part_commit pc[3];
    int64_t epochs[2];
    char errstr[512] = "";
    char node[64];
    redisContext *raw;
    redisReply *r;
    vg_err_t err;
    (void)state;

    assert_true(replica >= 0);
    assert_true(vg_test_cluster_wait_replicas(&g_rc, (size_t)first, 20000));
    assert_true(vg_test_cluster_wait_replicas(&g_rc, (size_t)second, 20000));
    epochs[0] = claim(st, topic, 0);
    epochs[1] = claim(st, topic, 1);

    /* the first primary's replica gets nothing from now on */
    hold(g_rc.nodes[replica].pid);
    raw = vg_test_cluster_connect(&g_rc, (size_t)first);
    assert_non_null(raw);
    r = must(raw, "CLIENT KILL TYPE replica");
    assert_true(r->integer >= 1);
    freeReplyObject(r);
    redisFree(raw);

    build_in(st, &pc[0], topic, 0, 10, "wf-0", epochs[0]);
    send_in(st, &pc[0]);
    build_in(st, &pc[1], topic, 1, 20, "wf-1", epochs[1]);
    send_in(st, &pc[1]);
    err = vg_state_commit_finish(st, errstr, sizeof(errstr));
    assert_int_equal(err, VG_ERR_BACKEND);
    assert_non_null(strstr(errstr, "batch replicated to 0 of 1 replicas"));
    err = vg_state_commit_finish(st, errstr, sizeof(errstr));
    if (err != VG_OK) {
        fail_msg("the second primary's commit: %s: %s", vg_err_name(err), errstr);
    }
    {
        /* the first primary has its batch, unreplicated */
        char *key = vg_asprintf("%s:{%s/0}:offsets", prefix, topic);

        raw = vg_test_cluster_connect(&g_rc, (size_t)first);
        assert_non_null(raw);
        r = must(raw, "HGET %s %s/0", key, topic);
        assert_int_equal(r->type, REDIS_REPLY_STRING);
        assert_string_equal(r->str, "10");
        freeReplyObject(r);
        redisFree(raw);
        vg_free(key);
    }

    /* in the second partition's scope: its node's WAIT would say yes */
    enter(st, topic, 1);
    snprintf(node, sizeof(node), "(slot owner 127.0.0.1:%d)", g_rc.nodes[first].port);
    reconnect_refused(st, node);
    reconnect_refused(st, "replicated to 0 of 1 replicas");

    let_go();
    if (!vg_test_wait_for(reconnects, &ra, 30000)) {
        fail_msg("no reconnect after the replica was let go: %s", ra.errstr);
    }
    /* the batch is on the replica now */
    raw = vg_test_cluster_connect(&g_rc, (size_t)replica);
    assert_non_null(raw);
    r = must(raw, "READONLY");
    freeReplyObject(r);
    r = must(raw, "HGET %s:{%s/0}:offsets %s/0", prefix, topic, topic);
    assert_int_equal(r->type, REDIS_REPLY_STRING);
    assert_string_equal(r->str, "10");
    freeReplyObject(r);
    redisFree(raw);

    /* and the first partition commits again, with its WAIT answered */
    epochs[0] = claim(st, topic, 0);
    build_in(st, &pc[2], topic, 0, 11, "wf-0", epochs[0]);
    send_in(st, &pc[2]);
    err = vg_state_commit_finish(st, errstr, sizeof(errstr));
    if (err != VG_OK) {
        fail_msg("commit after: %s: %s", vg_err_name(err), errstr);
    }
    for (int i = 0; i < 3; i++) {
        vg_event_fini(&pc[i].ev);
    }
    vg_state_destroy(st);
    free(topic);
    free(prefix);
}

int main(void)
{
    const struct CMUnitTest redis_tests[] = {
        cmocka_unit_test(owed_wait_outlives_its_connection),
        cmocka_unit_test(owed_wait_before_a_claim),
    };
    const struct CMUnitTest cluster_tests[] = {
        cmocka_unit_test(owed_wait_on_the_node_that_took_it),
    };
    int failed = cmocka_run_group_tests_name("one redis with a replica", redis_tests, redis_setup,
                                             redis_teardown);

    failed +=
        cmocka_run_group_tests_name("cluster", cluster_tests, cluster_setup, cluster_teardown);
    return failed;
}
