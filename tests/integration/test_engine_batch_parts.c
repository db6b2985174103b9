/*
 * kafka.batch_commit_ms: a backlog read as one large batch is applied in
 * parts, each its own commit, and still exactly once. The real binary with
 * --debug consumer, a real redis-server and the mock cluster; asserted on
 * the per-batch DEBUG lines (counts of messages) and on what Redis and the
 * receiver hold, never on time.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "env.h"
#include "support.h"
#include "vigil/mem.h"

#define BACKLOG 1000
#define FAILED_EVERY 10

/*
 * 1000 events (100 of them a workflow turning failed: a page each) are in
 * the topic before vigil starts, so the consumer's first batch holds the
 * backlog. Nothing has been measured yet when it arrives, so the first part
 * is the smallest one (256 messages); every event is applied once and
 * every page sent once.
 */
static void test_backlog_applied_in_parts(void **state)
{
    struct vg_test_env e;
    /* the backlog leaves the producer as one batch (it lingers until the flush), so the mock
     * hands it over in one fetch and the first batch is all of it under any load */
    static char linger_key[] = "linger.ms";
    static char linger_value[] = "10000";
    static const struct vg_kv one_batch[] = {{linger_key, linger_value}};
    struct vg_test_env_opts o = {.partitions = 1,
                                 .kafka_extra = "  batch_commit_ms: 1\n",
                                 .debug = "consumer",
                                 .producer_props = one_batch,
                                 .n_producer_props = VG_ARRAY_LEN(one_batch)};
    char name[32];

    (void)state;
    assert_int_equal(vg_test_env_start(&e, "engine_batch_parts", &o), 0);
    for (int i = 0; i < BACKLOG; i++) {
        snprintf(name, sizeof(name), "wf-%04d", i);
        vg_test_env_produce(&e, "workflow", name, "public", "active",
                            i % FAILED_EVERY == 0 ? "failed" : "running", "2026-11-28T10:00:00Z",
                            NULL);
    }
    assert_true(vg_test_env_flush(&e));
    assert_true(vg_test_env_spawn(&e));
    assert_true(vg_test_env_wait_applied_exact(&e, 60000));
    assert_true(vg_test_env_wait_requests(&e, BACKLOG / FAILED_EVERY, 60000));
    if (!vg_test_env_log_has(&e,
                             "DEBUG consumer: batch of 256 message(s) (part 1 of a batch of ")) {
        vg_test_env_dump_logs(&e);
        fail_msg("the backlog's batch was not cut into parts");
    }
    /* the last page is in Redis's outbox record before the receiver sees it: no page twice */
    assert_true(vg_test_env_wait_quiet(&e, 30000));
    assert_int_equal(vg_http_receiver_count(e.rcv), BACKLOG / FAILED_EVERY);
    assert_int_equal(vg_test_env_kill(&e, SIGTERM), 0);
    assert_int_equal(vg_test_env_stop(&e), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_backlog_applied_in_parts)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
