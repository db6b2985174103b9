/*
 * Crash safety: a few thousand events over 12 Resources, random
 * status/runtime walks, spread over 6 partitions of the mock cluster, are
 * consumed by the real `vigil run`, which this test SIGKILLs at random
 * moments (4 times: each once Redis has applied a random share of the log,
 * plus a random few ms) and restarts. At the end Redis equals the
 * reference computed here from the event log, and every Resource's
 * history holds exactly the reference transitions, in order: nothing
 * lost, nothing applied twice. The seed is printed; VIGIL_TEST_SEED
 * replays one.
 */
#include <signal.h>
#include <time.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "refmodel.h"
#include "support.h"
#include "vigil/mem.h"
#include "vigil/util.h"

#define PARTITIONS 6
#define N_RES 12
#define N_EVS 3000
#define KILLS 4

static struct vg_test_env E;

static int setup(void **state)
{
    (void)state;
    /* Small batches, so that a kill lands between many commits. */
    return vg_ref_env_start(&E, "state-crash", PARTITIONS, VG_FIXTURES "/e2e/rules.yaml",
                            "  ops: {type: console}\n",
                            "  batch_size: 40\n"
                            "  batch_ms: 5\n"
                            "  properties: {session.timeout.ms: \"3000\", heartbeat.interval.ms: "
                            "\"300\"}\n");
}

static int teardown(void **state)
{
    (void)state;
    return vg_test_env_stop(&E);
}

static void test_sigkill_at_random_moments(void **state)
{
    struct vg_ref_log log;
    int64_t want;
    char errstr[512];
    unsigned seed;
    int64_t end = 0;
    size_t mark;
    int bad;
    (void)state;

    assert_true(vg_test_seed(&seed));
    vg_ref_log_make(&log, N_RES, N_EVS, seed);
    assert_true(vg_ref_produce_env(&E, &log, 0, N_EVS));
    assert_int_equal(vg_kafka_topic_end(vg_mock_kafka_bootstraps(E.kafka), E.topic, 10000, &end,
                                        errstr, sizeof(errstr)),
                     VG_OK);
    assert_int_equal(end, N_EVS);

    for (int k = 0; k < KILLS; k++) {
        struct timespec ts;
        int64_t before = vg_ref_applied_total(E.st, E.topic, PARTITIONS);

        /* Kill once a random share of what is left is applied, plus 0..20 ms. */
        want = before + 1 + (int64_t)(vg_ref_rand(&seed) % (uint32_t)((N_EVS - before) / 3 + 1));
        assert_true(vg_test_env_spawn(&E));
        assert_true(vg_ref_wait_applied(&E, want, 60000));
        ts.tv_sec = 0;
        ts.tv_nsec = (long)(vg_ref_rand(&seed) % 20) * 1000000L;
        nanosleep(&ts, NULL);
        assert_int_equal(vg_test_env_kill(&E, SIGKILL), 128 + SIGKILL);
        fprintf(stderr, "kill %d: applied %lld of %d\n", k + 1,
                (long long)vg_ref_applied_total(E.st, E.topic, PARTITIONS), N_EVS);
    }

    /*
     * The last run finishes the log and stops cleanly. The last kill may have come after
     * everything was applied: the SIGTERM then waits until this run consumes, so that it
     * tests the drain, not the start.
     */
    mark = vg_test_env_log_size(&E);
    assert_true(vg_test_env_spawn(&E));
    assert_true(vg_test_env_wait_log_count(&E, mark, "consuming 1 topic(s)", 1, 60000));
    assert_true(vg_ref_wait_applied(&E, N_EVS, 60000));
    assert_int_equal(vg_test_env_kill(&E, SIGTERM), 0);
    assert_int_equal(vg_ref_applied_total(E.st, E.topic, PARTITIONS), N_EVS);

    bad = vg_ref_check_redis(E.st, &log);
    if (bad) {
        fprintf(stderr, "seed %u: %d mismatches\n", seed, bad);
    }
    assert_int_equal(bad, 0);
    vg_ref_log_fini(&log);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_sigkill_at_random_moments, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
