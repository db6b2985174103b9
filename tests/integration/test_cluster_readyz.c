/*
 * Readiness on a Redis Cluster when the slot of vigil's keys moves to
 * another primary (a reshard, or a failover seen from an old connection):
 * the node vigil is connected to still answers PING, but MOVED for every
 * key of the prefix's tag. vg_state_ping must say so (VG_ERR_BACKEND) until
 * the connection is reconnected, then say ready again; and the real
 * binary's /readyz answers 503 once after a reshard moved its slot, then
 * 200 on a new connection to the new owner. One cluster (three primaries,
 * one replica each) for both.
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

#include "cluster_common.h"
#include "state_cluster.h"
#include "support.h"
#include "vigil/config.h"
#include "vigil/mem.h"
#include "vigil/state.h"
#include "vigil/util.h"

static struct cluster_test T;

static int group_setup(void **state)
{
    (void)state;
    return cluster_test_start(&T, "cluster-readyz", 2);
}

static int group_teardown(void **state)
{
    (void)state;
    return cluster_test_stop(&T) == 0 ? 0 : -1;
}

/* CLUSTER SETSLOT `slot` NODE `id` on node i; refused (a replica) is fine when !must. */
static void setslot_node(size_t i, int slot, const char *id, bool must)
{
    redisContext *ctx = vg_test_cluster_connect(&T.rc, i);
    redisReply *r = ctx ? redisCommand(ctx, "CLUSTER SETSLOT %d NODE %s", slot, id) : NULL;

    if (must && (!r || r->type == REDIS_REPLY_ERROR)) {
        fail_msg("node %zu: CLUSTER SETSLOT %d NODE %s: %s", i, slot, id,
                 r && r->str ? r->str : "no answer");
    }
    if (r) {
        freeReplyObject(r);
    }
    if (ctx) {
        redisFree(ctx);
    }
}

/*
 * The state side: a connection to the owner of an empty slot; the slot is
 * given to another primary (CLUSTER SETSLOT NODE, as the end of a
 * migration does). The old owner still answers PING; vg_state_ping reports
 * the move, on every call, until vg_state_reconnect follows the slot.
 */
static void test_ping_reports_a_moved_slot(void **state)
{
    struct vg_redis_config rc = {.cluster = true};
    struct vg_state *st = NULL;
    char errstr[512] = "";
    char *prefix = NULL;
    char *to_id;
    int slot = -1;
    int from;
    int to;

    (void)state;
    /* A prefix of its own, in a slot no other key of this test uses (not the reshard's). */
    for (int i = 0; !prefix; i++) {
        char *p = vg_asprintf("readyz-ping-%d-%d", (int)getpid(), i);

        slot = state_cluster_keyslot(p, strlen(p));
        if (slot >= CLUSTER_TEST_SLOT_MAX && slot != T.slot) {
            prefix = p;
        } else {
            free(p);
        }
    }
    from = vg_test_cluster_owner(&T.rc, 0, slot);
    assert_true(from >= 0);
    to = vg_test_cluster_other_primary(&T.rc, from);
    assert_true(to >= 0 && to != from);
    rc.prefix = prefix;
    if (vg_state_connect_config(&st, vg_test_cluster_url(&T.rc, 0), prefix, &rc, errstr,
                                sizeof(errstr)) != VG_OK) {
        fail_msg("connect: %s", errstr);
    }
    assert_int_equal(vg_state_ping(st), VG_OK);

    /* The slot is empty: it moves with SETSLOT alone, the new owner first. */
    to_id = vg_test_cluster_id(&T.rc, (size_t)to);
    setslot_node((size_t)to, slot, to_id, true);
    setslot_node((size_t)from, slot, to_id, true);
    for (size_t i = 0; i < T.rc.n; i++) {
        if ((int)i != from && (int)i != to) {
            setslot_node(i, slot, to_id, false);
        }
    }
    assert_int_equal(vg_test_cluster_owner(&T.rc, (size_t)from, slot), to);

    /* The old owner is alive and would answer PING: the readiness check sees MOVED. */
    {
        redisContext *ctx = vg_test_cluster_connect(&T.rc, (size_t)from);
        redisReply *r = ctx ? redisCommand(ctx, "PING") : NULL;

        assert_non_null(r);
        assert_string_equal(r->str, "PONG");
        freeReplyObject(r);
        redisFree(ctx);
    }
    assert_int_equal(vg_state_ping(st), VG_ERR_BACKEND);
    assert_int_equal(vg_state_ping(st), VG_ERR_BACKEND); /* until reconnected */

    /* Reconnecting loads the slot map again and goes to the new owner: ready. */
    assert_true(vg_test_cluster_wait_ready(&T.rc, 20000));
    if (vg_state_reconnect(st, errstr, sizeof(errstr)) != VG_OK) {
        fail_msg("reconnect: %s", errstr);
    }
    assert_int_equal(vg_state_ping(st), VG_OK);

    vg_state_destroy(st);
    free(to_id);
    free(prefix);
}

static bool readyz_ok(void *arg)
{
    struct vg_test_http_reply r = vg_test_env_http(arg, "GET", "/readyz", NULL, NULL);
    bool ok = r.status == 200;

    vg_test_http_reply_free(&r);
    return ok;
}

/*
 * The daemon: ready on the cluster, with keys in its slot; redis-cli
 * reshards the slot (and the owner's other lowest ones) to another primary
 * while nothing else talks to Redis through the API. The next /readyz finds
 * the API's connection on a node that answers MOVED: 503 naming redis;
 * that connection is dropped and a later /readyz, on a new one to the new
 * owner, is 200.
 */
static void test_readyz_after_a_reshard(void **state)
{
    int to = vg_test_cluster_other_primary(&T.rc, T.owner);
    struct cluster_reshard rs;
    struct vg_test_http_reply r;
    long long in_slot = 0;
    long long total = 0;

    (void)state;
    assert_true(to >= 0);
    assert_true(vg_test_env_spawn(&T.e)); /* waits for /readyz 200 */
    vg_test_env_produce(&T.e, "workflow", "etl", "public", "active", "running", NULL, NULL);
    assert_true(vg_ref_wait_applied(&T.e, 1, 60000));
    assert_true(cluster_count_keys(&T, &in_slot, &total));
    assert_true(in_slot > 0); /* the reshard moves keys, not just an empty slot */
    assert_true(readyz_ok(&T.e));

    /* redis-cli moves the source's lowest slots first: vigil's slot is among them */
    assert_true(cluster_reshard_start(&T, T.owner, to, CLUSTER_TEST_SLOT_MAX, &rs));
    assert_true(cluster_reshard_wait(&rs, 60000));
    assert_int_equal(vg_test_cluster_owner(&T.rc, (size_t)to, T.slot), to);
    assert_int_equal(vg_test_cluster_owner(&T.rc, (size_t)T.owner, T.slot), to);

    /* The old owner still answers PING; /readyz asks about vigil's keys. */
    r = vg_test_env_http(&T.e, "GET", "/readyz", NULL, NULL);
    if (r.status != 503 || !r.body || !strstr(r.body, "redis")) {
        fail_msg("/readyz after the slot moved: %d %s", r.status, r.body ? r.body : "");
    }
    vg_test_http_reply_free(&r);
    if (!vg_test_wait_for(readyz_ok, &T.e, 20000)) {
        vg_test_env_dump_logs(&T.e);
        fail_msg("/readyz never became ready again on the new owner");
    }

    assert_int_equal(vg_test_env_kill(&T.e, SIGTERM), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ping_reports_a_moved_slot),
        cmocka_unit_test(test_readyz_after_a_reshard),
    };

    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
