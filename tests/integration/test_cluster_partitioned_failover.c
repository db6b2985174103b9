/*
 * vigil on a Redis Cluster with `layout: partitioned` while the primary of
 * some partitions dies: `vigil run` (with `wait_replicas: 1`) applies a
 * generated log over a 12-partition topic; the replica of one primary is
 * held (SIGSTOP, its replication link cut) while vigil applies more, so
 * that primary acknowledges writes its replica does not have; then the
 * primary is killed, the replica let go and promoted, and the old primary
 * started again as its replica. vigil's commits to that primary's
 * partitions wait for a replica (WAIT on that node's connection), so
 * nothing is lost or applied twice (the reference model) and every
 * expected page was delivered; the partitions on the other primaries were
 * never in doubt.
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
#include "support.h"
#include "vigil/mem.h"
#include "vigil/util.h"

#define PARTITIONS 12
#define N_RES 48
#define N_EVS 1500

static struct cluster_test T;
static struct cluster_test_case C = {&T, "cluster-pfailover", PARTITIONS};
static int g_victim = -1;  /* the primary that dies */
static int g_replica = -1; /* its replica, promoted */

static int teardown(void **state)
{
    if (g_replica >= 0 && T.rc.nodes[g_replica].pid > 0) {
        kill(T.rc.nodes[g_replica].pid, SIGCONT);
    }
    return cluster_test_teardown(state);
}

/* Sum of (applied offset + 1) over the partitions whose scope node i holds; -1: no answer. */
static long long applied_on(size_t i)
{
    redisContext *ctx = vg_test_cluster_connect(&T.rc, i);
    long long sum = 0;

    if (!ctx) {
        return -1;
    }
    for (int p = 0; p < PARTITIONS && sum >= 0; p++) {
        redisReply *r = redisCommand(ctx, "HGET %s:{%s/%d}:offsets %s/%d", T.e.prefix, T.e.topic, p,
                                     T.e.topic, p);

        if (!r) {
            sum = -1;
        } else if (r->type == REDIS_REPLY_STRING) {
            sum += strtoll(r->str, NULL, 10) + 1;
        }
        /* MOVED: another primary's partition */
        if (r) {
            freeReplyObject(r);
        }
    }
    redisFree(ctx);
    return sum;
}

static bool cut_replicas(size_t i)
{
    redisContext *ctx = vg_test_cluster_connect(&T.rc, i);
    redisReply *r;
    bool ok;

    if (!ctx) {
        return false;
    }
    r = redisCommand(ctx, "CLIENT KILL TYPE replica");
    ok = r && r->type == REDIS_REPLY_INTEGER && r->integer >= 1;
    if (r) {
        freeReplyObject(r);
    }
    redisFree(ctx);
    return ok;
}

struct applied_wait {
    size_t node;
    long long want;
};

static bool applied_reached(void *arg)
{
    const struct applied_wait *w = arg;

    return applied_on(w->node) >= w->want;
}

struct owner_wait {
    int part;
    int want;
};

static bool partition_owner_is(void *arg)
{
    const struct owner_wait *w = arg;

    return cluster_partition_owner(&T, w->part) == w->want;
}

static void test_primary_of_some_partitions_fails_over(void **state)
{
    struct vg_ref_log log;
    struct applied_wait aw;
    struct owner_wait ow;
    long long before;
    int part = -1;
    (void)state;

    /* a primary that holds partitions but not the global scope (the registry) */
    for (int p = 0; p < PARTITIONS && part < 0; p++) {
        int o = cluster_partition_owner(&T, p);

        assert_true(o >= 0);
        if (o != T.owner) {
            part = p;
            g_victim = o;
        }
    }
    assert_true(part >= 0);
    g_replica = vg_test_cluster_replica_of(&T.rc, (size_t)g_victim);
    assert_true(g_replica >= 0);
    ow.part = part;
    ow.want = g_replica;
    fprintf(stderr, "failover: node %d (partition %d among others) fails over to node %d\n",
            g_victim, part, g_replica);

    vg_ref_log_make_runtimes(&log, "pf", N_RES, N_EVS, (unsigned)getpid(), 0);
    assert_true(vg_test_env_spawn(&T.e));
    assert_true(vg_ref_produce_env(&T.e, &log, 0, N_EVS / 3));
    assert_true(cluster_wait_applied(&T, N_EVS / 3, 60000));

    before = applied_on((size_t)g_victim);
    assert_true(before > 0);
    assert_int_equal(kill(T.rc.nodes[g_replica].pid, SIGSTOP), 0);
    assert_true(cut_replicas((size_t)g_victim));
    assert_true(vg_ref_produce_env(&T.e, &log, N_EVS / 3, 2 * N_EVS / 3));
    /* vigil had the chance: the primary holds batches written after its replica stopped */
    aw.node = (size_t)g_victim;
    aw.want = before + 1;
    assert_true(vg_test_wait_for(applied_reached, &aw, 20000));

    vg_test_cluster_kill(&T.rc, (size_t)g_victim);
    assert_int_equal(kill(T.rc.nodes[g_replica].pid, SIGCONT), 0);
    assert_true(vg_test_wait_for(partition_owner_is, &ow, 30000));
    assert_int_equal(vg_test_cluster_restart(&T.rc, (size_t)g_victim), 0);
    assert_true(vg_test_cluster_wait_replicas(&T.rc, (size_t)g_replica, 30000));

    assert_true(cluster_finish_moved(&T, &log, 2 * N_EVS / 3));
    vg_ref_log_fini(&log);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_prestate_setup_teardown(test_primary_of_some_partitions_fails_over,
                                                 cluster_test_setup_partitioned, teardown, &C),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
