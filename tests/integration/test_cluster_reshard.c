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
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "cluster_common.h"
#include "support.h"
#include "vigil/mem.h"
#include "vigil/util.h"

#define PARTITIONS 4
#define N_RES 16
#define N_EVS 1500
#define CHUNK 25

static struct cluster_test T;
static struct cluster_test_case C = {&T, "cluster-reshard", PARTITIONS};

struct child_wait {
    pid_t pid;
    int status;
};

static bool child_done(void *arg)
{
    struct child_wait *w = arg;

    return waitpid(w->pid, &w->status, WNOHANG) == w->pid;
}

static void test_reshard_while_running(void **state)
{
    struct vg_ref_log log;
    int to = vg_test_cluster_other_primary(&T.rc, T.owner);
    char *from_id = vg_test_cluster_id(&T.rc, (size_t)T.owner);
    char *to_id;
    char addr[64];
    char n_slots[16];
    struct child_wait w = {0};
    size_t produced;
    bool done = false;
    (void)state;

    assert_true(to >= 0);
    to_id = vg_test_cluster_id(&T.rc, (size_t)to);
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", T.rc.nodes[T.owner].port);
    snprintf(n_slots, sizeof(n_slots), "%d", CLUSTER_TEST_SLOT_MAX);
    vg_ref_log_make_runtimes(&log, "cl", N_RES, N_EVS, (unsigned)getpid(), 0);
    assert_true(vg_test_env_spawn(&T.e));
    assert_true(vg_ref_produce_env(&T.e, &log, 0, N_EVS / 3));
    assert_true(vg_ref_wait_applied(&T.e, N_EVS / 3, 60000));

    {
        /* redis-cli moves the source's lowest slots first: vigil's slot is among them */
        const char *argv[] = {"--cluster", "reshard",       addr,  "--cluster-from",
                              from_id,     "--cluster-to",  to_id, "--cluster-slots",
                              n_slots,     "--cluster-yes", NULL};

        w.pid = vg_test_cluster_cli_spawn(&T.rc, argv, "reshard.log");
    }
    assert_true(w.pid > 0);
    /* events flow while the slots move: a chunk at a time until redis-cli is done */
    produced = N_EVS / 3;
    while (produced < 2 * N_EVS / 3) {
        size_t to_ev = produced + CHUNK;

        assert_true(vg_ref_produce_env(&T.e, &log, produced, to_ev));
        produced = to_ev;
        done = done || child_done(&w);
    }
    assert_true(done || vg_test_wait_for(child_done, &w, 60000));
    assert_true(WIFEXITED(w.status));
    assert_int_equal(WEXITSTATUS(w.status), 0);
    /* the slot has moved */
    assert_int_equal(vg_test_cluster_owner(&T.rc, (size_t)to, T.slot), to);

    /* the rest applied: vigil followed its slot to the new primary; exactly once (state and
     * every history entry as the model says), every page there */
    assert_true(cluster_finish_moved(&T, &log, produced));
    free(from_id);
    free(to_id);
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
