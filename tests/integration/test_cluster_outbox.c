/*
 * The dispatcher with redis.layout partitioned on a real Redis Cluster
 * (three primaries, one replica each): pages sit in the outboxes of
 * partitions whose scopes hash to slots on different primaries, and the
 * real `vigil run`, given a replica's address with `cluster: true`,
 * delivers every one of them once to a real HTTP receiver and acknowledges
 * each on its own primary. The pages are written as the pipeline's commit
 * writes them (XADD into the scope's outbox, on the slot's owner), under a
 * topic vigil does not consume.
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

#include "cluster_common.h"
#include "outbox.h"
#include "page_body.h"
#include "state_cluster.h"
#include "support.h"
#include "vigil/config.h"
#include "vigil/mem.h"

#define TOPIC "pages"
#define PAGES 3
#define CANDIDATES 64

static struct cluster_test T;
static struct cluster_test_case C = {&T, "cluster-outbox", 2};

struct scope_page {
    int partition;
    int owner; /* fixture index of the primary of its slot */
    char inc[17];
    char id[24];
};

static bool delivered_all(void *arg)
{
    const struct scope_page *v = arg;

    for (int i = 0; i < PAGES; i++) {
        if (vg_test_requests_with_key(T.e.rcv, v[i].id) < 1) {
            return false;
        }
    }
    return true;
}

static bool drained(void *arg)
{
    int64_t backlog = -1;
    char errstr[256];

    return vg_state_outbox_backlog(arg, &backlog, errstr, sizeof(errstr)) == VG_OK && backlog == 0;
}

/* `cmd key [args]` on node i: an integer reply, or the XPENDING summary's count; -1 if neither. */
static long long on_node(int i, const char *cmd, const char *key, const char *more)
{
    redisContext *ctx = vg_test_cluster_connect(&T.rc, (size_t)i);
    redisReply *r;
    long long n = -1;

    if (!ctx) {
        return -1;
    }
    r = more ? redisCommand(ctx, "%s %s %s", cmd, key, more) : redisCommand(ctx, "%s %s", cmd, key);
    if (r && r->type == REDIS_REPLY_INTEGER) {
        n = r->integer;
    } else if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 4) {
        n = r->element[0]->integer;
    } else if (r && r->type == REDIS_REPLY_ERROR) {
        fprintf(stderr, "node %d: %s %s: %s\n", i, cmd, key, r->str);
    }
    if (r) {
        freeReplyObject(r);
    }
    redisFree(ctx);
    return n;
}

static void test_every_partitions_outbox_on_several_primaries(void **state)
{
    struct scope_page v[PAGES];
    struct vg_state *st = vg_test_env_state(&T.e);
    char errstr[512];
    int n = 0;
    int owners = 0;

    (void)state;
    /* partitions whose scopes hash to as many different primaries as there are pages */
    for (int p = 0; p < CANDIDATES && n < PAGES; p++) {
        char scope[32];
        int slot;
        int owner;
        bool taken = false;

        snprintf(scope, sizeof(scope), "%s/%d", TOPIC, p);
        slot = state_cluster_keyslot(scope, strlen(scope));
        owner = vg_test_cluster_owner(&T.rc, 0, slot);
        for (int k = 0; k < n; k++) {
            taken = taken || v[k].owner == owner;
        }
        if (owner < 0 || taken) {
            continue;
        }
        v[n].partition = p;
        v[n].owner = owner;
        snprintf(v[n].inc, sizeof(v[n].inc), "dddddddddddddd%02d", p);
        snprintf(v[n].id, sizeof(v[n].id), "dddddddddddddd%02d-1", p);
        n++;
        owners++;
    }
    assert_int_equal(n, PAGES);
    assert_true(owners >= 2);

    /* vigil and the test's own connection with the partitioned layout on the cluster */
    assert_non_null(st);
    for (int i = 0; i < PAGES; i++) {
        int64_t epoch = 0;
        int64_t offset = 0;
        char *cluster = NULL;
        char *key = vg_asprintf("%s:{%s/%d}:outbox", T.e.prefix, TOPIC, v[i].partition);
        char *body = vg_test_page_body(v[i].inc, "firing", "spread");
        redisContext *ctx = vg_test_cluster_connect(&T.rc, (size_t)v[i].owner);
        redisReply *r;

        /* registered as the pipeline's claim registers it, then the page on its slot's owner */
        assert_int_equal(vg_state_partition_claim(st, TOPIC, v[i].partition, &epoch, &offset,
                                                  &cluster, errstr, sizeof(errstr)),
                         VG_OK);
        vg_free(cluster);
        assert_non_null(ctx);
        r = redisCommand(ctx, "XADD %s * id %s sink ops pager ops body %s", key, v[i].id, body);
        assert_non_null(r);
        if (r->type != REDIS_REPLY_STRING) {
            fail_msg("XADD %s on node %d: %s", key, v[i].owner, r->str ? r->str : "?");
        }
        freeReplyObject(r);
        redisFree(ctx);
        fprintf(stderr, "cluster: page %s in scope %s/%d on node %d\n", v[i].id, TOPIC,
                v[i].partition, v[i].owner);
        vg_free(key);
        vg_free(body);
    }

    assert_true(vg_test_env_spawn(&T.e));
    if (!vg_test_wait_for(delivered_all, v, 30000)) {
        vg_test_env_dump_logs(&T.e);
        fail_msg("not every page was delivered");
    }
    if (!vg_test_wait_for(drained, st, 20000)) {
        vg_test_env_dump_logs(&T.e);
        fail_msg("the outboxes were not drained");
    }
    for (int i = 0; i < PAGES; i++) {
        char *key = vg_asprintf("%s:{%s/%d}:outbox", T.e.prefix, TOPIC, v[i].partition);

        /* once each, acknowledged and deleted on its own primary */
        assert_int_equal(vg_test_requests_with_key(T.e.rcv, v[i].id), 1);
        assert_int_equal(on_node(v[i].owner, "XLEN", key, NULL), 0);
        assert_int_equal(on_node(v[i].owner, "XPENDING", key, "dispatch"), 0);
        vg_free(key);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_prestate_setup_teardown(test_every_partitions_outbox_on_several_primaries,
                                                 cluster_test_setup_partitioned,
                                                 cluster_test_teardown, &C),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
