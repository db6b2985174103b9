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

#define PARTITIONS 4
#define N_RES 16
#define N_EVS 1500

static struct cluster_test T;
static struct cluster_test_case C = {&T, "cluster-failover", PARTITIONS};

static void test_failover_while_running(void **state)
{
    struct vg_ref_log log;
    /* the primary of vigil's slot; the replica must not have fallen behind before */
    struct cluster_failover f = {T.owner, T.replica, -1, N_EVS / 3};
    (void)state;

    vg_ref_log_make_runtimes(&log, "cl", N_RES, N_EVS, (unsigned)getpid(), 0);
    assert_true(cluster_failover_run(&T, &log, &f));
    vg_ref_log_fini(&log);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_prestate_setup_teardown(test_failover_while_running, cluster_test_setup,
                                                 cluster_test_teardown, &C),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
