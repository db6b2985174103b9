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
#include <sys/wait.h>
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
#define CHUNK 25

static struct cluster_test T;
static struct cluster_test_case C = {&T, "cluster-preshard", PARTITIONS};

struct child_wait {
    pid_t pid;
    int status;
};

static bool child_done(void *arg)
{
    struct child_wait *w = arg;

    return waitpid(w->pid, &w->status, WNOHANG) == w->pid;
}

static void test_partition_slot_moves_while_running(void **state)
{
    struct vg_ref_log log;
    int part = -1;
    int owner = -1;
    int slot = -1;
    int below = -1;
    int to;
    char *from_id;
    char *to_id;
    char addr[64];
    char n_slots[16];
    struct child_wait w = {0};
    size_t produced;
    bool done = false;
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
    from_id = vg_test_cluster_id(&T.rc, (size_t)owner);
    to_id = vg_test_cluster_id(&T.rc, (size_t)to);
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", T.rc.nodes[owner].port);
    snprintf(n_slots, sizeof(n_slots), "%d", below + 1);

    vg_ref_log_make_runtimes(&log, "pr", N_RES, N_EVS, (unsigned)getpid(), 0);
    assert_true(vg_test_env_spawn(&T.e));
    assert_true(vg_ref_produce_env(&T.e, &log, 0, N_EVS / 3));
    assert_true(cluster_wait_applied(&T, N_EVS / 3, 60000));
    {
        const char *argv[] = {"--cluster", "reshard",       addr,  "--cluster-from",
                              from_id,     "--cluster-to",  to_id, "--cluster-slots",
                              n_slots,     "--cluster-yes", NULL};

        w.pid = vg_test_cluster_cli_spawn(&T.rc, argv, "reshard.log");
    }
    assert_true(w.pid > 0);
    /* events flow while the slots move */
    produced = N_EVS / 3;
    while (produced < 2 * N_EVS / 3) {
        size_t to_ev = produced + CHUNK;

        assert_true(vg_ref_produce_env(&T.e, &log, produced, to_ev));
        produced = to_ev;
        done = done || child_done(&w);
    }
    assert_true(done || vg_test_wait_for(child_done, &w, 120000));
    assert_true(WIFEXITED(w.status));
    assert_int_equal(WEXITSTATUS(w.status), 0);
    assert_int_equal(cluster_partition_owner(&T, part), to);

    /* the rest applied: exactly once, every page there */
    assert_true(cluster_finish_moved(&T, &log, produced));
    free(from_id);
    free(to_id);
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
