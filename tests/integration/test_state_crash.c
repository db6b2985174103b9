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

#include "test_state3_common.h"

#define PARTITIONS 6
#define N_RES 12
#define N_EVS 3000
#define KILLS 4

struct env {
    char *dir;
    char *topic;
    char *prefix;
    char *config;
    struct vg_redis_child *redis;
    struct vg_mock_kafka *kafka;
    struct vg_state *st;
    pid_t vigil;
    int runs;
};

static struct env E;

static void start_vigil(void)
{
    char *out = vg_asprintf("%s/vigil-%d.out", E.dir, E.runs);
    char *err = vg_asprintf("%s/vigil-%d.err", E.dir, E.runs);
    char *argv[] = {(char *)vg_test_vigil_bin(), (char *)"run", (char *)"-c", E.config, NULL};

    E.vigil = vg_test_spawn(argv, out, err);
    assert_true(E.vigil > 0);
    E.runs++;
    free(out);
    free(err);
}

static void dump_log(void)
{
    char *log = vg_asprintf("%s/vigil-%d.err", E.dir, E.runs - 1);
    char *text = vg_test_read_file(log, NULL);

    fprintf(stderr, "vigil's last log:\n%s\n", text ? text : "(none)");
    free(text);
    free(log);
}

struct progress {
    int64_t want;
};

static bool applied_at_least(void *arg)
{
    struct progress *p = arg;

    return s3_applied_total(E.st, E.topic, PARTITIONS) >= p->want;
}

static int setup(void **state)
{
    char errstr[512];
    char *cfg;

    (void)state;
    memset(&E, 0, sizeof(E));
    signal(SIGPIPE, SIG_IGN);
    E.dir = vg_test_mkdtemp("state3-crash");
    E.topic = vg_asprintf("crash.events.%d", (int)getpid());
    E.prefix = vg_asprintf("crash%d", (int)getpid());
    if (vg_redis_child_start(&E.redis, E.dir, errstr, sizeof(errstr)) != VG_OK ||
        vg_state_connect(&E.st, vg_redis_child_url(E.redis), E.prefix, errstr, sizeof(errstr)) !=
            VG_OK) {
        fprintf(stderr, "redis: %s\n", errstr);
        return -1;
    }
    if (vg_mock_kafka_start(&E.kafka, 1, errstr, sizeof(errstr)) != VG_OK ||
        vg_mock_kafka_create_topic(E.kafka, E.topic, PARTITIONS, errstr, sizeof(errstr)) != VG_OK ||
        vg_mock_kafka_create_topic(E.kafka, "vigil.dlq", 1, errstr, sizeof(errstr)) != VG_OK) {
        fprintf(stderr, "kafka: %s\n", errstr);
        return -1;
    }
    /* Small batches, so that a kill lands between many commits. */
    cfg = vg_asprintf("kafka:\n"
                      "  brokers: %s\n"
                      "  group: crash-%d\n"
                      "  topics: [%s]\n"
                      "  batch_size: 40\n"
                      "  batch_ms: 5\n"
                      "  properties: {session.timeout.ms: \"3000\", heartbeat.interval.ms: "
                      "\"300\"}\n"
                      "redis:\n"
                      "  url: %s\n"
                      "  prefix: %s\n"
                      "rules: [%s/e2e/rules.yaml]\n"
                      "sinks:\n"
                      "  ops: {type: console}\n",
                      vg_mock_kafka_bootstraps(E.kafka), (int)getpid(), E.topic,
                      vg_redis_child_url(E.redis), E.prefix, VG_FIXTURES);
    E.config = vg_asprintf("%s/vigil.yaml", E.dir);
    assert_true(vg_test_write_file(E.config, cfg, strlen(cfg)));
    free(cfg);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    if (E.vigil > 0) {
        vg_test_stop(E.vigil, SIGKILL, 5000);
    }
    vg_state_destroy(E.st);
    vg_mock_kafka_stop(E.kafka);
    vg_redis_child_stop(E.redis);
    vg_test_rmrf(E.dir);
    free(E.dir);
    free(E.topic);
    free(E.prefix);
    free(E.config);
    return 0;
}

static void test_sigkill_at_random_moments(void **state)
{
    struct s3_log log;
    struct vg_producer *p = NULL;
    struct progress prog;
    char errstr[512];
    const char *seed_env = getenv("VIGIL_TEST_SEED");
    unsigned seed = (unsigned)time(NULL) ^ (unsigned)getpid();
    int64_t end = 0;
    int bad;
    (void)state;

    if (seed_env && *seed_env) {
        int64_t v;

        assert_true(vg_parse_i64(seed_env, &v));
        seed = (unsigned)v;
    }
    fprintf(stderr, "seed %u (VIGIL_TEST_SEED=%u to replay)\n", seed, seed);
    s3_log_make(&log, N_RES, N_EVS, seed);
    assert_int_equal(
        vg_producer_new(&p, vg_mock_kafka_bootstraps(E.kafka), NULL, 0, errstr, sizeof(errstr)),
        VG_OK);
    s3_produce(p, E.topic, &log, 0, N_EVS);
    vg_producer_destroy(p);
    assert_int_equal(vg_kafka_topic_end(vg_mock_kafka_bootstraps(E.kafka), E.topic, 10000, &end,
                                        errstr, sizeof(errstr)),
                     VG_OK);
    assert_int_equal(end, N_EVS);

    for (int k = 0; k < KILLS; k++) {
        struct timespec ts;
        int64_t before = s3_applied_total(E.st, E.topic, PARTITIONS);

        /* Kill once a random share of what is left is applied, plus 0..20 ms. */
        prog.want = before + 1 + (int64_t)(s3_rand(&seed) % (uint32_t)((N_EVS - before) / 3 + 1));
        start_vigil();
        if (!vg_test_wait_for(applied_at_least, &prog, 60000)) {
            dump_log();
            fail();
        }
        ts.tv_sec = 0;
        ts.tv_nsec = (long)(s3_rand(&seed) % 20) * 1000000L;
        nanosleep(&ts, NULL);
        assert_int_equal(vg_test_stop(E.vigil, SIGKILL, 5000), 128 + SIGKILL);
        E.vigil = 0;
        fprintf(stderr, "kill %d: applied %lld of %d\n", k + 1,
                (long long)s3_applied_total(E.st, E.topic, PARTITIONS), N_EVS);
    }

    /* The last run finishes the log and stops cleanly. */
    prog.want = N_EVS;
    start_vigil();
    if (!vg_test_wait_for(applied_at_least, &prog, 60000)) {
        dump_log();
        fail();
    }
    assert_int_equal(vg_test_stop(E.vigil, SIGTERM, 20000), 0);
    E.vigil = 0;
    assert_int_equal(s3_applied_total(E.st, E.topic, PARTITIONS), N_EVS);

    bad = s3_check_redis(E.st, &log);
    if (bad) {
        fprintf(stderr, "seed %u: %d mismatches\n", seed, bad);
    }
    assert_int_equal(bad, 0);
    s3_log_fini(&log);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_sigkill_at_random_moments, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
