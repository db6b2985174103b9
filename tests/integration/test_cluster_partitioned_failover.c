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
#include "vigil/util.h"

#define PARTITIONS 12
#define N_RES 48
#define N_EVS 1500

static struct cluster_test T;
static struct cluster_test_case C = {&T, "cluster-pfailover", PARTITIONS};

static void test_primary_of_some_partitions_fails_over(void **state)
{
    struct vg_ref_log log;
    struct cluster_failover f = {-1, -1, -1, 1};
    (void)state;

    /* a primary that holds partitions but not the global scope (the registry) */
    for (int p = 0; p < PARTITIONS && f.part < 0; p++) {
        int o = cluster_partition_owner(&T, p);

        assert_true(o >= 0);
        if (o != T.owner) {
            f.part = p;
            f.victim = o;
        }
    }
    assert_true(f.part >= 0);
    f.replica = vg_test_cluster_replica_of(&T.rc, (size_t)f.victim);
    assert_true(f.replica >= 0);
    fprintf(stderr, "failover: node %d (partition %d among others) fails over to node %d\n",
            f.victim, f.part, f.replica);

    vg_ref_log_make_runtimes(&log, "pf", N_RES, N_EVS, (unsigned)getpid(), 0);
    assert_true(cluster_failover_run(&T, &log, &f));
    vg_ref_log_fini(&log);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_prestate_setup_teardown(test_primary_of_some_partitions_fails_over,
                                                 cluster_test_setup_partitioned,
                                                 cluster_test_teardown, &C),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
