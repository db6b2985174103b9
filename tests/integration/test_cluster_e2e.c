/*
 * vigil on a Redis Cluster, end to end: a real cluster (three primaries,
 * one replica each) and the real `vigil run` given a REPLICA's address
 * with `cluster: true` and `wait_replicas: 1`. It discovers the primaries,
 * applies a generated event log (the state and every history equal the
 * reference model), delivers the pages the rules ask for, serves
 * /metrics, `vigil get` and `vigil history` read the state back, and every
 * key it wrote is in the one slot of its prefix's hash tag; `vigil replay`
 * then rebuilds the state and swaps it in within that slot.
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

#include "cluster_common.h"
#include "support.h"
#include "vigil/mem.h"

#define PARTITIONS 4
#define N_RES 12
#define N_EVS 600

static struct cluster_test T;
static struct cluster_test_case C = {&T, "cluster-e2e", PARTITIONS};

static void test_e2e_on_a_cluster(void **state)
{
    struct vg_ref_log log;
    size_t expected = 0;
    long long in_slot = -1;
    long long total = -1;
    char *out = NULL;
    char *err = NULL;
    char *id;
    int bad;
    (void)state;

    vg_ref_log_make_runtimes(&log, "cl", N_RES, N_EVS, (unsigned)getpid(), 0);
    assert_true(vg_test_env_spawn(&T.e));
    assert_true(vg_ref_produce_env(&T.e, &log, 0, N_EVS));
    assert_true(vg_ref_wait_applied(&T.e, N_EVS, 60000));

    /* the state and the whole history of every Resource, as the model says */
    bad = vg_ref_check_redis(vg_test_env_state(&T.e), &log);
    assert_int_equal(bad, 0);
    /* the pages: a workflow's runtime to failed (and back) */
    assert_int_equal(cluster_check_pages(&T.e, &log, &expected, 30000), 0);
    assert_true(expected > 0);
    /* the HTTP API reads the cluster too */
    assert_true(vg_test_env_wait_metric(
        &T.e, "vigil_events_consumed_total{topic=\"cluster-e2e.events\",outcome=\"applied\"}",
        N_EVS, 10000));

    /* the CLI, from the same config: discovery from the replica's address */
    assert_int_equal(vg_test_env_run_cli(&T.e, &out, &err, "get", "-o", "json", NULL), 0);
    assert_non_null(strstr(out, log.res[0].name));
    free(out);
    free(err);
    id = vg_strdup(log.res[0].id);
    assert_int_equal(vg_test_env_run_cli(&T.e, &out, &err, "history", "-o", "json", id, NULL), 0);
    /* its newest transition (`history` shows the newest entries, not all of them) */
    assert_true(log.res[0].n_trans == 0 ||
                strstr(out, log.res[0].trans[log.res[0].n_trans - 1].to));
    free(out);
    free(err);
    free(id);

    /* every key vigil wrote carries the one hash tag: all in its slot */
    assert_true(cluster_count_keys(&T, &in_slot, &total));
    fprintf(stderr, "cluster: %lld keys in slot %d, %lld in the cluster\n", in_slot, T.slot, total);
    assert_true(in_slot > 2 * N_RES);
    assert_int_equal(in_slot, total);

    assert_int_equal(vg_test_env_kill(&T.e, SIGTERM), 0);

    /* `vigil replay` rebuilds under {P}:replay:<ts> and renames it in: one slot throughout */
    assert_int_equal(vg_test_env_run_cli(&T.e, &out, &err, "replay", "--from-beginning", NULL), 0);
    free(out);
    free(err);
    bad = vg_ref_check_redis(vg_test_env_state(&T.e), &log);
    assert_int_equal(bad, 0);
    assert_true(cluster_count_keys(&T, &in_slot, &total));
    fprintf(stderr, "cluster: after the replay %lld keys in slot %d, %lld in the cluster\n",
            in_slot, T.slot, total);
    assert_int_equal(in_slot, total);
    vg_ref_log_fini(&log);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_prestate_setup_teardown(test_e2e_on_a_cluster, cluster_test_setup,
                                                 cluster_test_teardown, &C),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
