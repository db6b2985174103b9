/*
 * vigil on a Redis Cluster with `layout: partitioned` while the slot of one
 * partition's scope moves: `vigil run` applies a generated log over a
 * 12-partition topic while `redis-cli --cluster reshard` moves the lowest
 * slots of that partition's primary, its slot among them, to another
 * primary. vigil meets ASK/TRYAGAIN during the migration and MOVED after it
 * in that partition's scope only, follows the slot (and says so), and at
 * the end every event was applied exactly once (the reference model), and
 * every expected page was delivered.
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
#include "state_cluster.h"
#include "support.h"
#include "vigil/mem.h"
#include "vigil/util.h"

#define PARTITIONS 12
#define N_RES 48
#define N_EVS 1500

static struct cluster_test T;
static struct cluster_test_case C = {&T, "cluster-preshard", PARTITIONS};

static void test_partition_slot_moves_while_running(void **state)
{
    struct vg_ref_log log;
    int part = -1;
    int owner = -1;
    int slot = -1;
    int below = -1;
    int to;
    size_t produced = 0;
    (void)state;

    /* the partition whose slot redis-cli reaches first: fewest slots below it on its primary */
    for (int p = 0; p < PARTITIONS; p++) {
        char *tag = vg_asprintf("%s/%d", T.e.topic, p);
        int s = state_cluster_keyslot(tag, strlen(tag));
        int o = cluster_partition_owner(&T, p);
        int b = o >= 0 ? vg_test_cluster_slots_below(&T.rc, (size_t)o, s) : -1;

        free(tag);
        assert_true(b >= 0);
        if (below < 0 || b < below) {
            part = p;
            owner = o;
            slot = s;
            below = b;
        }
    }
    fprintf(stderr, "reshard: partition %d, slot %d of node %d: %d slots to move\n", part, slot,
            owner, below + 1);
    to = vg_test_cluster_other_primary(&T.rc, owner);
    assert_true(to >= 0);

    vg_ref_log_make_runtimes(&log, "pr", N_RES, N_EVS, (unsigned)getpid(), 0);
    assert_true(cluster_reshard_run(&T, &log, owner, to, below + 1, 120000, &produced));
    assert_int_equal(cluster_partition_owner(&T, part), to);

    /* the rest applied: exactly once, every page there */
    assert_true(cluster_finish_moved(&T, &log, produced));
    vg_ref_log_fini(&log);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_prestate_setup_teardown(test_partition_slot_moves_while_running,
                                                 cluster_test_setup_partitioned,
                                                 cluster_test_teardown, &C),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
