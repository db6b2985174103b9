/*
 * redis.layout partitioned on a real Redis Cluster (three primaries, one
 * replica each): the real `vigil run` with `cluster: true` and
 * `wait_replicas: 1` applies a batch over 12 partitions as one single-slot
 * commit per partition. The partitions' slots are spread over more than
 * one primary, each Resource's hash is on the primary that owns its
 * partition's slot (and on that primary's replica), nothing was refused as
 * CROSSSLOT, the incident counts function was loaded on every primary
 * a commit with incident records went to, each partition's `for:`
 * timer fired on its own primary, and a grouped pager's groups, global,
 * paged once each, listing the Resources of every partition.
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

#include "cluster_common.h"
#include "state_cluster.h"
#include "support.h"
#include "vigil/config.h"
#include "vigil/mem.h"
#include "vigil/state.h"

#define PARTITIONS 12

static const char rules[] = "monitors:\n"
                            "  - name: workflow-failed\n"
                            "    match: {type: [workflow]}\n"
                            "    when: {runtime: {to: failed}}\n"
                            "    severity: high\n"
                            "  - name: stuck-pending\n"
                            "    match: {type: [workflow]}\n"
                            "    when: {runtime: {is: pending, for: 1s}}\n"
                            "    severity: high\n"
                            "pagers:\n"
                            "  - name: ops\n"
                            "    sinks: [ops]\n"
                            "    group_by: [monitor]\n"
                            "    group_wait: 3s\n";

static struct cluster_test T;
static struct cluster_test_case C = {&T, "cluster-parts", PARTITIONS};

/* The running node the cluster says owns `slot` (asking the first one that answers). */
static int owner_of(int slot)
{
    for (size_t i = 0; i < T.rc.n; i++) {
        int o = T.rc.nodes[i].pid != 0 ? vg_test_cluster_owner(&T.rc, i, slot) : -1;

        if (o >= 0) {
            return o;
        }
    }
    return -1;
}

/* EXISTS `key` on node i (READONLY first: a replica answers for its primary's slots). */
static long long exists_on(size_t i, const char *key)
{
    redisContext *ctx = vg_test_cluster_connect(&T.rc, i);
    redisReply *r;
    long long n = -1;

    assert_non_null(ctx);
    r = redisCommand(ctx, "READONLY");
    if (r) {
        freeReplyObject(r);
    }
    r = redisCommand(ctx, "EXISTS %s", key);
    if (r && r->type == REDIS_REPLY_INTEGER) {
        n = r->integer;
    } else if (r && r->type == REDIS_REPLY_ERROR) {
        fprintf(stderr, "node %zu: EXISTS %s: %s\n", i, key, r->str);
    }
    if (r) {
        freeReplyObject(r);
    }
    redisFree(ctx);
    return n;
}

static bool no_timers(void *arg)
{
    (void)arg;
    return vg_test_env_timers(&T.e) == 0;
}

/*
 * The grouped pages the receiver got: exactly one per monitor, each
 * listing the incident of every partition's Resource of that monitor.
 */
static void check_grouped_pages(void)
{
    size_t n_req = vg_http_receiver_count(T.e.rcv);
    int seen = 0;
    int n_grouped = 0;

    for (size_t i = 0; i < n_req; i++) {
        struct vg_http_request *req = vg_http_receiver_request(T.e.rcv, i);
        cJSON *body = cJSON_Parse(req->body);
        const cJSON *incs = cJSON_GetObjectItem(body, "incidents");
        const char *monitor = NULL;

        assert_non_null(body);
        if (cJSON_IsObject(cJSON_GetObjectItem(body, "group"))) {
            int parts = 0;

            n_grouped++;
            assert_int_equal(cJSON_GetArraySize(incs), PARTITIONS);
            for (int j = 0; j < PARTITIONS; j++) {
                const cJSON *it = cJSON_GetArrayItem(incs, j);
                const char *m = cJSON_GetObjectItem(cJSON_GetObjectItem(it, "incident"), "monitor")
                                    ->valuestring;
                const char *res =
                    cJSON_GetObjectItem(cJSON_GetObjectItem(it, "resource"), "id")->valuestring;
                int p = -1;

                assert_true(monitor == NULL || strcmp(monitor, m) == 0);
                monitor = m;
                assert_int_equal(sscanf(res, "workflow:v1:wf-p%d", &p), 1);
                assert_true(p >= 0 && p < PARTITIONS);
                parts |= 1 << p;
            }
            assert_int_equal(parts, (1 << PARTITIONS) - 1);
            seen |= strcmp(monitor, "workflow-failed") == 0 ? 1 : 2;
        }
        cJSON_Delete(body);
        vg_http_request_free(req);
    }
    if (n_grouped != 2) {
        vg_test_env_dump_logs(&T.e);
    }
    assert_int_equal(n_grouped, 2);
    assert_int_equal(seen, 3);
}

static void test_partitions_over_primaries(void **state)
{
    bool owns[VG_TEST_CLUSTER_MAX_NODES] = {false};
    int n_owners = 0;

    (void)state;
    vg_test_env_write_rules(&T.e, rules);

    assert_true(vg_test_env_spawn(&T.e));
    /* a Resource per partition that fails (an incident record in its partition's scope) */
    for (int p = 0; p < PARTITIONS; p++) {
        char name[32];

        snprintf(name, sizeof(name), "wf-p%02d", p);
        vg_test_env_produce_workflow_to(&T.e, p, name, "running");
        vg_test_env_produce_workflow_to(&T.e, p, name, "failed");
        /* and one stuck pending: a timer in the partition's scope */
        snprintf(name, sizeof(name), "wf-p%02d-stuck", p);
        vg_test_env_produce_workflow_to(&T.e, p, name, "pending");
    }
    assert_true(vg_test_env_wait_applied(&T.e, 60000));
    /* every partition's timer read on its primary and fired there, the group timers on the
     * global slot's; then every page delivered */
    assert_true(vg_test_wait_for(no_timers, NULL, 30000));
    assert_true(vg_test_env_wait_quiet(&T.e, 30000));
    check_grouped_pages();

    for (int p = 0; p < PARTITIONS; p++) {
        char *tag = vg_asprintf("%s/%d", T.e.topic, p);
        int slot = state_cluster_keyslot(tag, strlen(tag));
        int owner = owner_of(slot);
        int replica;
        char *res = vg_asprintf("%s:{%s}:res:{workflow:v1:wf-p%02d:public}", T.e.prefix, tag, p);
        char *inc = vg_asprintf("%s:{%s}:incidents:counts", T.e.prefix, tag);
        char *fired = vg_asprintf("%s:{%s}:incidents:res:{workflow:v1:wf-p%02d-stuck:public}",
                                  T.e.prefix, tag, p);

        assert_true(owner >= 0);
        if (!owns[owner]) {
            owns[owner] = true;
            n_owners++;
        }
        /* on the primary of the partition's slot, and (wait_replicas: 1) on its replica */
        assert_int_equal(exists_on((size_t)owner, res), 1);
        assert_int_equal(exists_on((size_t)owner, inc), 1);
        assert_int_equal(exists_on((size_t)owner, fired), 1);
        replica = vg_test_cluster_replica_of(&T.rc, (size_t)owner);
        assert_true(replica >= 0);
        assert_int_equal(exists_on((size_t)replica, res), 1);
        free(fired);
        free(inc);
        free(res);
        free(tag);
    }
    fprintf(stderr, "cluster: %d partitions on %d primaries\n", PARTITIONS, n_owners);
    assert_true(n_owners > 1);
    /* every commit was single-slot, and every primary had the function before its FCALL */
    assert_false(vg_test_env_log_has(&T.e, "CROSSSLOT"));
    assert_false(vg_test_env_log_has(&T.e, "incident counts function was gone"));
    assert_false(vg_test_env_log_has(&T.e, "apply failed"));
    assert_int_equal(vg_test_env_kill(&T.e, SIGTERM), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_prestate_setup_teardown(test_partitions_over_primaries,
                                                 cluster_test_setup_partitioned,
                                                 cluster_test_teardown, &C),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
