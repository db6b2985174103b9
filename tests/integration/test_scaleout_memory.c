/*
 * Memory stays bounded under a backlog of distinct Resources. A backlog of
 * N events, each a new Resource, waits on 16 partitions before `vigil run`
 * starts with `redis.cache_resources: 5000`. While it drains, the test
 * samples /metrics and Redis: the Resources in the pipeline's cache
 * (every Resource is seen once, so the cache holds the Resources applied
 * minus those evicted, vigil_cache_evictions_total) never exceed the
 * bound plus the batches in flight, and the process's peak RSS grows by
 * less than GROWTH_LIMIT_MB between the moment the cache is full and the
 * end, where an unbounded cache grows by more than four times that
 * (measured with the bound removed, see below). docs/scaling.md gives the
 * sizing that follows.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "refmodel.h"
#include "support.h"
#include "vigil/mem.h"
#include "vigil/util.h"

#define PARTITIONS 16
#define N_EVS 200000
#define CACHE_BOUND 5000
#define BATCH 500
/* Resolved but not yet trimmed: the trim runs after each commit, so a batch or two on top. */
#define CACHE_SLACK (2 * BATCH)
#define BASELINE_AT (N_EVS / 5) /* the cache is long full by then */
/*
 * Why growth and not an absolute RSS: ASan's shadow memory and allocator
 * make the absolute number depend on the build, while what the cache adds
 * per Resource does not go away. Freed memory sits in ASan's quarantine
 * before it is reused (256 MB by default, which alone would look like an
 * unbounded cache): the child runs with quarantine_size_mb=16. Measured
 * on the 2-core development VM (debug build, ASan+UBSan, 200,000 events,
 * growth from 40,000 applied to the end): bounded, 4.3 MB (the cache at
 * most 5,375 Resources); the same run with the bound removed
 * (vg_state_cache_limit(st, 0) in engine/engine.c), 276 MB, about 1.7 KB
 * per Resource, and the cache check fails first (200,000 Resources). The
 * limit sits far from both.
 */
#define GROWTH_LIMIT_MB 64

static struct vg_test_env E;

static int setup(void **state)
{
    struct vg_test_env_opts o = {
        .partitions = PARTITIONS,
        .http = true,
        .sinks = "  ops: {type: console}\n",
        .redis_extra = "  cache_resources: 5000\n",
        /* a small prefetch queue, so that it is not what the peak RSS measures */
        .kafka_tuning = "  batch_size: 500\n"
                        "  batch_ms: 20\n"
                        "  properties: {session.timeout.ms: \"6000\", heartbeat.interval.ms: "
                        "\"500\", queued.max.messages.kbytes: \"8192\"}\n",
    };
    const char *asan = getenv("ASAN_OPTIONS");
    char *opts =
        vg_asprintf("%s%squarantine_size_mb=16", asan ? asan : "", asan && *asan ? ":" : "");

    (void)state;
    setenv("ASAN_OPTIONS", opts, 1); /* inherited by the vigil child */
    free(opts);
    vg_test_no_proxy();
    return vg_test_env_start(&E, "scaleout-memory", &o);
}

static int teardown(void **state)
{
    (void)state;
    return vg_test_env_stop(&E);
}

/* N_EVS services, each its own Resource (no monitor matches: no pages). */
static void produce_backlog(void)
{
    char errstr[256];

    for (long i = 0; i < N_EVS; i++) {
        char key[64];
        char json[256];
        int kl = snprintf(key, sizeof(key), "service:v1:svc-%ld:ws-%ld", i, i % 100);
        int jl = snprintf(json, sizeof(json),
                          "{\"resource\":{\"type\":\"service\",\"name\":\"svc-%ld\","
                          "\"workspace\":\"ws-%ld\"},\"status\":\"active\"}",
                          i, i % 100);

        assert_true(kl > 0 && (size_t)kl < sizeof(key) && jl > 0 && (size_t)jl < sizeof(json));
        vg_test_env_produce_raw(&E, -1, key, json, (size_t)jl);
        if (i % 20000 == 19999) {
            assert_int_equal(
                vg_producer_flush(E.producer, vg_test_timeout(60000), errstr, sizeof(errstr)),
                VG_OK);
        }
    }
    assert_int_equal(vg_producer_flush(E.producer, vg_test_timeout(60000), errstr, sizeof(errstr)),
                     VG_OK);
}

static void test_cache_and_rss_bounded_under_a_backlog(void **state)
{
    char errstr[256];
    int64_t end = 0;
    int64_t deadline;
    int64_t applied = 0;
    double evicted = 0;
    int64_t cache_max = 0;
    long rss_base_kb = -1;
    long hwm_kb;
    int samples = 0;

    (void)state;
    produce_backlog();
    /* the mock broker drops old data silently past its retention: all of it is there */
    assert_int_equal(vg_kafka_topic_end(vg_mock_kafka_bootstraps(E.kafka), E.topic, 10000, &end,
                                        errstr, sizeof(errstr)),
                     VG_OK);
    assert_int_equal(end, N_EVS);

    assert_true(vg_test_env_spawn(&E));
    deadline = vg_mono_ms() + vg_test_timeout(240000);
    while (applied < N_EVS) {
        struct timespec ts = {0, 100 * 1000 * 1000};
        int64_t cache;

        if (vg_mono_ms() > deadline) {
            vg_test_env_dump_logs(&E);
            fail_msg("vigil applied %lld of %d events in time", (long long)applied, N_EVS);
        }
        /* evictions first, then applied: the difference can only overstate the cache */
        evicted = vg_test_env_metric(&E, "vigil_cache_evictions_total");
        applied = vg_ref_applied_total(E.st, E.topic, PARTITIONS);
        assert_true(evicted >= 0 && applied >= 0);
        cache = applied - (int64_t)evicted;
        if (cache > cache_max) {
            cache_max = cache;
        }
        if (rss_base_kb < 0 && applied >= BASELINE_AT) {
            rss_base_kb = vg_test_proc_kb(E.vigil, "VmRSS");
        }
        samples++;
        nanosleep(&ts, NULL);
    }
    hwm_kb = vg_test_proc_kb(E.vigil, "VmHWM");
    fprintf(stderr,
            "%d samples: cache at most %lld Resources (bound %d), %.0f evicted; RSS %ld kB when "
            "%d were applied, peak %ld kB (growth %ld kB)\n",
            samples, (long long)cache_max, CACHE_BOUND, evicted, rss_base_kb, BASELINE_AT, hwm_kb,
            hwm_kb - rss_base_kb);
    assert_true(samples >= 10); /* the drain was watched, not just its end */
    assert_true(rss_base_kb > 0 && hwm_kb > 0);
    if (cache_max > CACHE_BOUND + CACHE_SLACK) {
        fail_msg("the cache held %lld Resources, over the bound %d (+%d in flight)",
                 (long long)cache_max, CACHE_BOUND, CACHE_SLACK);
    }
    if (hwm_kb - rss_base_kb > GROWTH_LIMIT_MB * 1024L) {
        fail_msg("peak RSS grew by %ld kB while the last %d Resources were applied (limit %d MB)",
                 hwm_kb - rss_base_kb, N_EVS - BASELINE_AT, GROWTH_LIMIT_MB);
    }
    assert_int_equal(vg_test_env_kill(&E, SIGTERM), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_cache_and_rss_bounded_under_a_backlog, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
