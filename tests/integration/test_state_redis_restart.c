/*
 * Redis restart mid-stream: the environment's redis-server child
 * (appendonly yes). While `vigil run` consumes, the server is SIGKILLed;
 * more events arrive; vigil pauses its partitions and says so once in its
 * log, however often it retries; the server is restarted on the same
 * directory (the AOF brings the data back); vigil resumes where it
 * stopped. At the end Redis equals the reference computed from the event
 * log and every history holds exactly the reference transitions: nothing
 * lost, nothing doubled.
 *
 * The test makes the AOF durable for every acknowledged write (appendfsync
 * always): with the child's default (everysec) a busy disk makes Redis
 * postpone AOF writes by up to 2 s while it keeps answering, so a SIGKILL
 * loses writes vigil saw succeed. That is Redis's documented trade-off,
 * not what this test is about.
 */
#include <hiredis/hiredis.h>
#include <signal.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "env.h"
#include "refmodel.h"
#include "support.h"
#include "vigil/mem.h"
#include "vigil/util.h"

#define PARTITIONS 4
#define N_RES 8
#define N_EVS 2000

static struct vg_test_env E;
static struct vg_test_env_case C = {
    &E,
    "state-redis-restart",
    {
        .partitions = PARTITIONS,
        .rules_file = VG_FIXTURES "/e2e/rules.yaml",
        .sinks = "  ops: {type: console}\n",
        .kafka_tuning = VG_REF_KAFKA_SMALL_BATCHES,
        .debug = "state", /* its "reconnect failed" lines count the retries */
    },
};

/* Every acknowledged write reaches the AOF before the reply (see the top of the file). */
static int setup(void **state)
{
    redisReply *reply;
    bool ok;

    if (vg_test_env_setup(state) != 0) {
        return -1;
    }
    reply = vg_test_env_redis(&E, "CONFIG SET appendfsync always");
    ok = reply && reply->type == REDIS_REPLY_STATUS;
    if (reply) {
        freeReplyObject(reply);
    }
    return ok ? 0 : -1;
}

static void test_redis_restart_mid_stream(void **state)
{
    struct vg_ref_log log;
    int64_t acknowledged;
    char *line;
    int bad;
    (void)state;

    vg_ref_log_make(&log, N_RES, N_EVS, (unsigned)getpid());
    assert_true(vg_ref_produce_env(&E, &log, 0, N_EVS / 2));
    assert_true(vg_test_env_spawn(&E));
    assert_true(vg_ref_wait_applied(&E, N_EVS / 8, 60000));

    /* Redis dies hard while vigil consumes; the rest of the log arrives meanwhile. */
    acknowledged = vg_ref_applied_total(E.st, E.topic, PARTITIONS);
    vg_test_env_redis_kill(&E, SIGKILL);
    assert_true(vg_ref_produce_env(&E, &log, N_EVS / 2, N_EVS));
    assert_true(vg_test_env_wait_log(&E, "pausing", 60000));
    /* It retries a few times (backoff 100 ms doubling) before Redis is back: the one
     * "pausing" line below then stands for several failed attempts. */
    assert_true(vg_test_env_wait_log_count(&E, 0, "reconnect failed", 3, 60000));
    assert_true(vg_test_env_redis_restart(&E));
    /* The AOF brought back at least what had been applied before the kill. */
    assert_true(vg_ref_applied_total(E.st, E.topic, PARTITIONS) >= acknowledged);

    assert_true(vg_ref_wait_applied(&E, N_EVS, 60000));
    assert_int_equal(vg_test_env_kill(&E, SIGTERM), 0);
    assert_int_equal(vg_ref_applied_total(E.st, E.topic, PARTITIONS), N_EVS);
    bad = vg_ref_check_redis(E.st, &log);
    assert_int_equal(bad, 0);

    /* The outage is in the log once, not once per retry or message; then the resume. */
    if (vg_test_env_log_count(&E, 0, "apply failed, pausing") != 1 ||
        vg_test_env_log_count(&E, 0, "resumed") < 1) {
        vg_test_env_dump_logs(&E);
    }
    assert_int_equal(vg_test_env_log_count(&E, 0, "apply failed, pausing"), 1);
    assert_true(vg_test_env_log_count(&E, 0, "resumed") >= 1);
    /* The one line names the Redis (its URL) and why. */
    line = vg_test_env_log_line(&E, 0, "apply failed, pausing");
    assert_non_null(line);
    fprintf(stderr, "%s\n", line);
    assert_non_null(strstr(line, "redis unix://"));
    free(line);
    vg_ref_log_fini(&log);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_prestate_setup_teardown(test_redis_restart_mid_stream, setup,
                                                 vg_test_env_teardown, &C),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
