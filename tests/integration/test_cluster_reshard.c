/*
 * vigil on a Redis Cluster while the slot of its keys moves: `vigil run`
 * applies a generated event log while `redis-cli --cluster reshard` moves
 * the lowest slots of their primary, the one holding vigil's hash tag
 * among them, to another primary. vigil meets ASK/TRYAGAIN during the
 * migration and MOVED after it, follows the slot (and says so in its
 * log), and at the end every event was applied exactly once: the state
 * and history of every Resource equal the reference model, and every
 * expected page was delivered.
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
#include "vigil/util.h"

#define PARTITIONS 4
#define N_RES 16
#define N_EVS 1500

static struct cluster_test T;
static struct cluster_test_case C = {&T, "cluster-reshard", PARTITIONS};

static void test_reshard_while_running(void **state)
{
    struct vg_ref_log log;
    int to = vg_test_cluster_other_primary(&T.rc, T.owner);
    size_t produced = 0;
    (void)state;

    assert_true(to >= 0);
    vg_ref_log_make_runtimes(&log, "cl", N_RES, N_EVS, (unsigned)getpid(), 0);
    /* redis-cli moves the source's lowest slots first: vigil's slot is among them */
    assert_true(
        cluster_reshard_run(&T, &log, T.owner, to, CLUSTER_TEST_SLOT_MAX, 60000, &produced));
    /* the slot has moved */
    assert_int_equal(vg_test_cluster_owner(&T.rc, (size_t)to, T.slot), to);

    /* the rest applied: vigil followed its slot to the new primary; exactly once (state and
     * every history entry as the model says), every page there */
    assert_true(cluster_finish_moved(&T, &log, produced));
    vg_ref_log_fini(&log);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_prestate_setup_teardown(test_reshard_while_running, cluster_test_setup,
                                                 cluster_test_teardown, &C),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
