/*
 * A cooperative rebalance costs the partitions an instance keeps nothing:
 * no HGETALL of their Resources and no new claim (INCR of their epochs).
 * Instance A (`vigil run`, cooperative-sticky) applies one event for each
 * of RES_PER_PARTITION Resources on each partition of an 8-partition topic;
 * B joins the group and takes some partitions from A. Then one more event
 * for every Resource. From B's start on, Redis's MONITOR shows that the
 * only HGETALLs of Resources are B's first reads of the Resources it got
 * (one each, as many as B applied), and the epochs show one claim per
 * partition B got and none by A. Then A leaves and B is assigned A's
 * partitions on top of its own: the next event of every Resource costs B
 * HGETALLs and claims only for those. The state in Redis is every
 * Resource's last event.
 * docs/scaling.md (the rebalance) and docs/state.md (the cache) describe it.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include <cmocka.h>
#include <hiredis/hiredis.h>

#include "env.h"
#include "support.h"
#include "vigil/mem.h"
#include "vigil/util.h"

#define PARTITIONS 8
#define RES_PER_PARTITION 6
#define N_RES (PARTITIONS * RES_PER_PARTITION)
#define MONITOR_END "rebalance-cache-monitor-end"

static struct vg_test_env E;
static pid_t A;
static pid_t B;

static struct vg_test_instances_case C = {
    .env = {.env = &E,
            .name = "rebalance-cache",
            .opts =
                {
                    .partitions = PARTITIONS,
                    .http = true, /* readiness tells whether an instance holds partitions */
                    .sinks = "  ops: {type: console}\n",
                    .kafka_tuning =
                        "  batch_size: 50\n"
                        "  batch_ms: 5\n"
                        "  properties: {session.timeout.ms: \"6000\", heartbeat.interval.ms: "
                        "\"500\", partition.assignment.strategy: cooperative-sticky}\n",
                }},
    .pids = {&A, &B},
};

/* One event of Resource `k` of partition `p`, produced to that partition. */
static void produce(int p, int k, const char *runtime)
{
    char *key = vg_asprintf("workflow:v1:rc-p%d-%d:w1", p, k);
    char *json = vg_asprintf("{\"resource\":{\"type\":\"workflow\",\"name\":\"rc-p%d-%d\","
                             "\"workspace\":\"w1\",\"owner\":\"o\"},\"status\":\"active\","
                             "\"runtime\":\"%s\"}",
                             p, k, runtime);

    vg_test_env_produce_raw(&E, p, key, json, strlen(json));
    free(json);
    free(key);
}

static void produce_round(const char *runtime)
{
    for (int p = 0; p < PARTITIONS; p++) {
        for (int k = 0; k < RES_PER_PARTITION; k++) {
            produce(p, k, runtime);
        }
    }
    assert_true(vg_test_env_flush(&E));
}

/* Messages applied by the instance on `port` (its /metrics); -1 when not answered. */
static double applied_by(int port)
{
    char *series =
        vg_asprintf("vigil_events_consumed_total{topic=\"%s\",outcome=\"applied\"}", E.topic);
    double v = vg_test_metric_at(port, series);

    free(series);
    return v < 0 ? 0 : v;
}

/* The fencing epoch of each partition (0: never claimed). */
static void epochs(long long out[PARTITIONS])
{
    for (int p = 0; p < PARTITIONS; p++) {
        redisReply *r = vg_test_env_redis(&E, "GET %s:epoch:{%s/%d}", E.prefix, E.topic, p);

        assert_non_null(r);
        out[p] = 0;
        if (r->type == REDIS_REPLY_STRING) {
            char *end = NULL;

            out[p] = strtoll(r->str, &end, 10);
            assert_true(end && *end == '\0');
        }
        freeReplyObject(r);
    }
}

/* A connection that MONITORs Redis from now on (its replies are read by monitor_read). */
static redisContext *monitor_start(void)
{
    const char *url = vg_redis_child_url(E.redis);
    struct timeval tv = {.tv_sec = 30};
    redisContext *m;
    redisReply *r;

    assert_int_equal(strncmp(url, "unix://", strlen("unix://")), 0);
    m = redisConnectUnixWithTimeout(url + strlen("unix://"), tv);
    assert_non_null(m);
    assert_int_equal(m->err, 0);
    assert_int_equal(redisSetTimeout(m, tv), REDIS_OK);
    r = redisCommand(m, "MONITOR");
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_STATUS);
    freeReplyObject(r);
    return m;
}

/*
 * End the monitoring with a marker command and count, per partition, the
 * HGETALLs of its Resources' hashes that Redis executed meanwhile.
 */
static void monitor_read(redisContext *m, int hgetall[PARTITIONS])
{
    char *prefix = vg_asprintf("\"HGETALL\" \"%s:res:{workflow:v1:rc-p", E.prefix);
    redisReply *r = vg_test_env_redis(&E, "ECHO %s", MONITOR_END);
    bool end = false;

    assert_non_null(r);
    freeReplyObject(r);
    memset(hgetall, 0, sizeof(int) * PARTITIONS);
    while (!end) {
        void *reply = NULL;
        const char *at;

        assert_int_equal(redisGetReply(m, &reply), REDIS_OK);
        r = reply;
        assert_int_equal(r->type, REDIS_REPLY_STATUS);
        end = strstr(r->str, MONITOR_END) != NULL;
        at = strstr(r->str, prefix);
        if (at) {
            long p = strtol(at + strlen(prefix), NULL, 10);

            assert_true(p >= 0 && p < PARTITIONS);
            hgetall[p]++;
        }
        freeReplyObject(r);
    }
    free(prefix);
    redisFree(m);
}

/* Every Resource's runtime in Redis is `want`; the number that are not. */
static int runtimes_not(const char *want)
{
    int bad = 0;

    for (int p = 0; p < PARTITIONS; p++) {
        for (int k = 0; k < RES_PER_PARTITION; k++) {
            redisReply *r = vg_test_env_redis(&E, "HGET %s:res:{workflow:v1:rc-p%d-%d:w1} runtime",
                                              E.prefix, p, k);

            assert_non_null(r);
            if (r->type != REDIS_REPLY_STRING || strcmp(r->str, want) != 0) {
                fprintf(stderr, "rc-p%d-%d: runtime %s, want %s\n", p, k,
                        r->type == REDIS_REPLY_STRING ? r->str : "(none)", want);
                bad++;
            }
            freeReplyObject(r);
        }
    }
    return bad;
}

/* Claims (epoch increments) and Resource HGETALLs per partition over a stretch of the test. */
struct window {
    long long epochs[PARTITIONS];
    redisContext *monitor;
    long long claims[PARTITIONS];
    int hgetall[PARTITIONS];
};

static void window_open(struct window *w)
{
    epochs(w->epochs);
    w->monitor = monitor_start();
}

static void window_close(struct window *w)
{
    long long now[PARTITIONS];

    monitor_read(w->monitor, w->hgetall);
    w->monitor = NULL;
    epochs(now);
    for (int p = 0; p < PARTITIONS; p++) {
        w->claims[p] = now[p] - w->epochs[p];
        fprintf(stderr, "partition %d: %lld claim(s), %d HGETALL(s) of its resources\n", p,
                w->claims[p], w->hgetall[p]);
    }
}

static void test_kept_partitions_keep_their_cache_and_claims(void **state)
{
    int port_a = 0;
    int port_b = 0;
    int revoked;
    int assigned;
    struct window w = {0};
    double a0;
    double b0;
    double by_a;
    double by_b;
    bool b_holds[PARTITIONS];
    int kept = 0;
    int moved = 0;
    int reads = 0;

    (void)state;
    A = vg_test_env_spawn_instance(&E, "rebalance-a", &port_a);
    assert_true(A > 0);
    assert_true(vg_test_wait_http_ready(port_a, 60000));
    produce_round("pending");
    assert_true(vg_test_env_wait_applied(&E, 60000));

    /* From here on every claim and every HGETALL counts (A's idle timer rounds claim too). */
    window_open(&w);
    /* B joins: the group takes some of A's partitions and gives them to B */
    revoked = vg_test_env_log_count(&E, 0, "INFO consumer: revoked ");
    B = vg_test_env_spawn_instance(&E, "rebalance-b", &port_b);
    assert_true(B > 0);
    assert_true(vg_test_wait_http_ready(port_b, 60000));
    assert_true(vg_test_wait_http_ready(port_a, 60000));
    assert_true(vg_test_env_wait_log_count(&E, 0, "INFO consumer: revoked ", revoked + 1, 60000));
    /* only the moved partitions were revoked from A, not all of them */
    assert_int_equal(vg_test_env_log_count(&E, 0, "partitions (eager)"), 0);
    /* one more event for every Resource */
    a0 = applied_by(port_a);
    b0 = applied_by(port_b);
    produce_round("running");
    assert_true(vg_test_env_wait_applied(&E, 60000));
    window_close(&w);
    by_a = applied_by(port_a) - a0;
    by_b = applied_by(port_b) - b0;
    fprintf(stderr, "applied after B joined: A %.0f, B %.0f\n", by_a, by_b);
    assert_true(by_a + by_b == N_RES);
    assert_true(by_a > 0 && by_b > 0); /* both hold partitions */
    for (int p = 0; p < PARTITIONS; p++) {
        assert_true(w.claims[p] == 0 || w.claims[p] == 1);
        b_holds[p] = w.claims[p] == 1;
        if (!b_holds[p]) {
            kept++; /* held by A all along: its Resources came from A's cache */
            assert_int_equal(w.hgetall[p], 0);
        } else {
            moved++; /* B claimed it and read each Resource once */
            assert_int_equal(w.hgetall[p], RES_PER_PARTITION);
        }
        reads += w.hgetall[p];
    }
    /* A neither claimed nor read again what it kept: exactly B's partitions were */
    assert_int_equal(kept * RES_PER_PARTITION, (int)by_a);
    assert_int_equal(moved * RES_PER_PARTITION, (int)by_b);
    assert_int_equal(reads, (int)by_b);
    assert_int_equal(runtimes_not("running"), 0);

    /*
     * A leaves: B is assigned A's partitions on top of its own (an incremental
     * assign). Counted over all logs: A's log, before B's in them, grows.
     */
    window_open(&w);
    assigned = vg_test_env_log_count(&E, 0, "INFO consumer: assigned ");
    assert_int_equal(vg_test_env_stop_instance(&E, A, SIGTERM), 0);
    A = 0;
    assert_true(vg_test_env_wait_log_count(&E, 0, "INFO consumer: assigned ", assigned + 1, 60000));
    b0 = applied_by(port_b);
    produce_round("succeeded");
    assert_true(vg_test_env_wait_applied(&E, 60000));
    window_close(&w);
    by_b = applied_by(port_b) - b0;
    assert_true(by_b == N_RES);
    for (int p = 0; p < PARTITIONS; p++) {
        /* B kept its cache and claims; it claimed and read only what it got */
        assert_int_equal(w.claims[p], b_holds[p] ? 0 : 1);
        assert_int_equal(w.hgetall[p], b_holds[p] ? 0 : RES_PER_PARTITION);
    }
    assert_int_equal(runtimes_not("succeeded"), 0);

    assert_int_equal(vg_test_env_stop_instance(&E, B, SIGTERM), 0);
    B = 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_prestate_setup_teardown(test_kept_partitions_keep_their_cache_and_claims,
                                                 vg_test_instances_setup,
                                                 vg_test_instances_teardown, &C),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
