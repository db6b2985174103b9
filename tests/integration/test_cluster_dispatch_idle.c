/*
 * The dispatcher of an idle vigil on a Redis Cluster with `layout:
 * partitioned`: no read can BLOCK on every partition's outbox (they span
 * slots), so it polls them. A real cluster (three primaries, one replica
 * each) and the real `vigil run`:
 * - idle, it costs the primaries at most a few XREADGROUP per stream per
 *   second (INFO commandstats), and a page that no commit of its own
 *   announced (written straight into a partition's outbox, as another
 *   process would) is still delivered within dispatch.idle_poll_ms;
 * - with dispatch.idle_poll_ms 30000, a page its own pipeline commits after
 *   a long idle time (the dispatcher's wait grown past 20 s) reaches the
 *   real HTTP receiver long before the next poll would have found it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <hiredis/hiredis.h>

#include "cluster_common.h"
#include "outbox.h"
#include "page_body.h"
#include "support.h"
#include "vigil/mem.h"

#define PARTITIONS 4
/* every partition's outbox and the global scope's */
#define STREAMS (PARTITIONS + 1)
/* the measured idle window, and the most XREADGROUP per stream per second it may cost */
#define IDLE_WINDOW_MS 3000
#define MAX_READS_PER_STREAM_S 3.0

static struct cluster_test T;
static struct cluster_test_case C_IDLE = {&T, "cluster-dispidle", PARTITIONS};
static struct cluster_test_case C_WAKE = {&T, "cluster-dispwake", PARTITIONS};

/* XREADGROUP calls (INFO commandstats) summed over every running node; -1: one did not answer. */
static long long xreadgroup_calls(void)
{
    long long total = 0;

    for (size_t i = 0; i < T.rc.n; i++) {
        redisContext *ctx;
        redisReply *r;
        const char *at;

        if (T.rc.nodes[i].pid <= 0) {
            continue;
        }
        ctx = vg_test_cluster_connect(&T.rc, i);
        if (!ctx) {
            return -1;
        }
        r = redisCommand(ctx, "INFO commandstats");
        if (!r || r->type != REDIS_REPLY_STRING) {
            fprintf(stderr, "node %zu: INFO commandstats: no answer\n", i);
            if (r) {
                freeReplyObject(r);
            }
            redisFree(ctx);
            return -1;
        }
        at = strstr(r->str, "cmdstat_xreadgroup:calls=");
        if (at) {
            total += strtoll(at + strlen("cmdstat_xreadgroup:calls="), NULL, 10);
        }
        freeReplyObject(r);
        redisFree(ctx);
    }
    return total;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) != 0) {
    }
}

/* One more workflow running on each partition: every partition's scope registered, vigil caught
 * up with everything produced. */
static void warm_up(void)
{
    for (int p = 0; p < PARTITIONS; p++) {
        char name[32];

        snprintf(name, sizeof(name), "warm-%d", p);
        vg_test_env_produce_workflow_to(&T.e, p, name, "running");
    }
    if (!cluster_wait_applied(&T, T.e.produced, 30000)) {
        fail_msg("the warm-up events were not applied");
    }
}

static bool has_request_for(void *arg)
{
    return vg_test_requests_with_key(T.e.rcv, arg) >= 1;
}

static void test_idle_costs_a_few_reads_and_still_finds_other_pages(void **state)
{
    const char *id = "eeeeeeeeeeeeee01-1";
    long long before;
    long long after;
    double per_stream_s;
    char *key;
    char *body;
    redisContext *ctx;
    redisReply *r;
    size_t mark;

    (void)state;
    T.e.opts.debug = "sinks";
    assert_true(vg_test_env_spawn(&T.e));
    warm_up();

    /*
     * Idle: the dispatcher's wait has grown to its ceiling (dispatch.idle_poll_ms, 1000). A
     * dispatcher that never says so is measured all the same: the count decides.
     */
    if (!vg_test_env_wait_log(&T.e, "outbox idle: next look in 1000 ms", 10000)) {
        fprintf(stderr, "cluster: the dispatcher never said it waits 1000 ms; measuring\n");
    }
    before = xreadgroup_calls();
    assert_true(before >= 0);
    sleep_ms(IDLE_WINDOW_MS); /* the window the rate is measured over, not a wait for vigil */
    after = xreadgroup_calls();
    assert_true(after >= before);
    per_stream_s = (double)(after - before) / STREAMS / (IDLE_WINDOW_MS / 1000.0);
    fprintf(stderr,
            "cluster: idle vigil ran %lld XREADGROUP in %d ms over %d streams: %.2f per stream "
            "per second\n",
            after - before, IDLE_WINDOW_MS, STREAMS, per_stream_s);
    if (per_stream_s > MAX_READS_PER_STREAM_S) {
        vg_test_env_dump_logs(&T.e);
        fail_msg("idle: %.2f XREADGROUP per stream per second, at most %.1f expected", per_stream_s,
                 MAX_READS_PER_STREAM_S);
    }
    assert_true(vg_test_env_running(&T.e));

    /*
     * A page no commit of this vigil announced: written into partition 1's
     * outbox as another process (or a dead instance) leaves it, on its
     * slot's primary. Only the idle poll can find it.
     */
    mark = vg_test_env_log_size(&T.e);
    key = vg_asprintf("%s:{%s/1}:outbox", T.e.prefix, T.e.topic);
    body = vg_test_page_body("eeeeeeeeeeeeee01", "firing", "left-behind");
    ctx = vg_test_cluster_connect_key(&T.rc, key);
    assert_non_null(ctx);
    r = redisCommand(ctx, "XADD %s * id %s sink ops pager ops body %s", key, id, body);
    assert_non_null(r);
    if (r->type != REDIS_REPLY_STRING) {
        fail_msg("XADD %s: %s", key, r->str ? r->str : "?");
    }
    freeReplyObject(r);
    redisFree(ctx);
    vg_free(body);
    vg_free(key);
    if (!vg_test_wait_for(has_request_for, (void *)id, 10000)) {
        vg_test_env_dump_logs(&T.e);
        fail_msg("the page left in partition 1's outbox was not delivered");
    }
    /* the receiver has it before the dispatcher logs the answer: wait for the line */
    assert_true(
        vg_test_env_wait_log_count(&T.e, mark, "page sent id=eeeeeeeeeeeeee01-1", 1, 10000));
    assert_int_equal(vg_test_env_log_count(&T.e, mark, "page sent id=eeeeeeeeeeeeee01-1"), 1);
}

static void test_own_page_leaves_at_once_after_a_long_idle(void **state)
{
    (void)state;
    T.e.opts.debug = "sinks";
    T.e.opts.extra = "dispatch:\n  idle_poll_ms: 30000\n";
    vg_test_env_write_config(&T.e);
    assert_true(vg_test_env_spawn(&T.e));
    vg_test_env_produce_workflow_to(&T.e, 2, "nightly", "running");
    warm_up();

    /*
     * Idle for about 20 s: the dispatcher has just started a wait of 20480
     * ms. Without a wake-up the page below would be found when that wait
     * ends, 20 s from now; it must arrive within 10.
     */
    assert_true(vg_test_env_wait_log(&T.e, "outbox idle: next look in 20480 ms", 60000));
    vg_test_env_produce_workflow_to(&T.e, 2, "nightly", "failed");
    if (!vg_test_env_wait_requests(&T.e, 1, 10000)) {
        vg_test_env_dump_logs(&T.e);
        fail_msg("the page committed after a long idle time did not leave at once");
    }
    assert_true(vg_test_env_page_is(&T.e, 0, "resource", "name", "nightly", 1000));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_prestate_setup_teardown(
            test_idle_costs_a_few_reads_and_still_finds_other_pages, cluster_test_setup_partitioned,
            cluster_test_teardown, &C_IDLE),
        cmocka_unit_test_prestate_setup_teardown(test_own_page_leaves_at_once_after_a_long_idle,
                                                 cluster_test_setup_partitioned,
                                                 cluster_test_teardown, &C_WAKE),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
