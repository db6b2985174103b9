/*
 * vigil on a Redis Cluster while the primary of its slot dies: `vigil
 * run` (with `wait_replicas: 1`) applies a generated event log; the
 * replica of that primary is held (SIGSTOP, its replication link cut)
 * while vigil applies more, so the primary acknowledges writes its
 * replica does not have; then the
 * primary is killed (kill -9), the replica let go and promoted, and the
 * old primary started again (it comes back as the new primary's
 * replica). Without WAIT the writes the replica missed are lost while
 * their Kafka offsets moved on; with it no batch counts until a replica
 * has it. At the end nothing is lost or applied twice (the reference
 * model) and every expected page was delivered (repeats only with the
 * same idempotency id).
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

#define PARTITIONS 4
#define N_RES 16
#define N_EVS 1500

static struct cluster_test T;
static struct cluster_test_case C = {&T, "cluster-failover", PARTITIONS};

/* A failed assertion may leave the replica stopped. */
static int teardown(void **state)
{
    if (T.rc.nodes[T.replica].pid > 0) {
        kill(T.rc.nodes[T.replica].pid, SIGCONT);
    }
    return cluster_test_teardown(state);
}

/* Sum of (applied offset + 1) in node i's copy of the offsets hash; -1 when it does not answer. */
static long long applied_on(size_t i)
{
    redisContext *ctx = vg_test_cluster_connect(&T.rc, i);
    redisReply *r;
    long long sum = -1;

    if (!ctx) {
        return -1;
    }
    r = redisCommand(ctx, "HVALS {%s}:offsets", T.e.prefix);
    if (r && r->type == REDIS_REPLY_ARRAY) {
        sum = 0;
        for (size_t k = 0; k < r->elements; k++) {
            sum += strtoll(r->element[k]->str, NULL, 10) + 1;
        }
    }
    if (r) {
        freeReplyObject(r);
    }
    redisFree(ctx);
    return sum;
}

/* CLIENT KILL TYPE replica on node i: its replicas lose the replication link. */
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
    size_t asked;
    int slot;
    int want;
};

static bool owner_is(void *arg)
{
    const struct owner_wait *w = arg;

    return vg_test_cluster_owner(&T.rc, w->asked, w->slot) == w->want;
}

static void test_failover_while_running(void **state)
{
    struct vg_ref_log log;
    struct applied_wait aw;
    struct owner_wait ow = {(size_t)T.replica, T.slot, T.replica};
    long long before;
    (void)state;

    vg_ref_log_make_runtimes(&log, "cl", N_RES, N_EVS, (unsigned)getpid(), 0);
    assert_true(vg_test_env_spawn(&T.e));
    assert_true(vg_ref_produce_env(&T.e, &log, 0, N_EVS / 3));
    assert_true(vg_ref_wait_applied(&T.e, N_EVS / 3, 60000));

    /* The replica falls behind: the primary acknowledges what it will never get. */
    before = applied_on((size_t)T.owner);
    assert_true(before >= N_EVS / 3);
    assert_int_equal(kill(T.rc.nodes[T.replica].pid, SIGSTOP), 0);
    /* What the primary already sent sits in the stopped replica's socket buffer and would
     * still arrive: cut the link, so that nothing written from now on reaches it. */
    assert_true(cut_replicas((size_t)T.owner));
    assert_true(vg_ref_produce_env(&T.e, &log, N_EVS / 3, 2 * N_EVS / 3));
    /* vigil had the chance: the primary holds batches written after the replica stopped */
    aw.node = (size_t)T.owner;
    aw.want = before + 1;
    assert_true(vg_test_wait_for(applied_reached, &aw, 20000));

    /* The primary dies; the replica, let go, is promoted; the old primary comes back as its
     * replica (a WAIT 1 needs one). */
    vg_test_cluster_kill(&T.rc, (size_t)T.owner);
    assert_int_equal(kill(T.rc.nodes[T.replica].pid, SIGCONT), 0);
    assert_true(vg_test_wait_for(owner_is, &ow, 30000));
    fprintf(stderr, "failover: node %d serves slot %d now\n", T.replica, T.slot);
    assert_int_equal(vg_test_cluster_restart(&T.rc, (size_t)T.owner), 0);
    assert_true(vg_test_cluster_wait_replicas(&T.rc, (size_t)T.replica, 30000));

    /* vigil recovers within a deadline and applies the rest: nothing lost, nothing twice;
     * every page delivered */
    assert_true(cluster_finish_moved(&T, &log, 2 * N_EVS / 3));
    vg_ref_log_fini(&log);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_prestate_setup_teardown(test_failover_while_running, cluster_test_setup,
                                                 teardown, &C),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
