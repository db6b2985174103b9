/*
 * Redis restart mid-stream: the test owns the redis-server child
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

#include "refmodel.h"
#include "support.h"
#include "vigil/mem.h"
#include "vigil/util.h"

#define PARTITIONS 4
#define N_RES 8
#define N_EVS 2000

struct env {
    char *dir;
    char *redis_dir;
    char *topic;
    char *prefix;
    char *config;
    char *log_path;
    struct vg_redis_child *redis;
    struct vg_mock_kafka *kafka;
    struct vg_state *st;
    pid_t vigil;
};

static struct env E;

/* Every acknowledged write reaches the AOF before the reply (see the top of the file). */
static void make_durable(void)
{
    redisContext *raw = redisConnectUnix(strstr(vg_redis_child_url(E.redis), "unix://") + 7);
    redisReply *reply;

    assert_true(raw && !raw->err);
    reply = redisCommand(raw, "CONFIG SET appendfsync always");
    assert_true(reply && reply->type == REDIS_REPLY_STATUS);
    freeReplyObject(reply);
    redisFree(raw);
}

static int setup(void **state)
{
    char errstr[512];
    char *cfg;

    (void)state;
    memset(&E, 0, sizeof(E));
    signal(SIGPIPE, SIG_IGN);
    E.dir = vg_test_mkdtemp("state3-restart");
    E.redis_dir = vg_asprintf("%s/redis", E.dir);
    E.topic = vg_asprintf("restart.events.%d", (int)getpid());
    E.prefix = vg_asprintf("restart%d", (int)getpid());
    E.log_path = vg_asprintf("%s/vigil.err", E.dir);
    if (vg_redis_child_start(&E.redis, E.redis_dir, errstr, sizeof(errstr)) != VG_OK ||
        vg_state_connect(&E.st, vg_redis_child_url(E.redis), E.prefix, errstr, sizeof(errstr)) !=
            VG_OK) {
        fprintf(stderr, "redis: %s\n", errstr);
        return -1;
    }
    make_durable();
    if (vg_mock_kafka_start(&E.kafka, 1, errstr, sizeof(errstr)) != VG_OK ||
        vg_mock_kafka_create_topic(E.kafka, E.topic, PARTITIONS, errstr, sizeof(errstr)) != VG_OK ||
        vg_mock_kafka_create_topic(E.kafka, "vigil.dlq", 1, errstr, sizeof(errstr)) != VG_OK) {
        fprintf(stderr, "kafka: %s\n", errstr);
        return -1;
    }
    cfg = vg_asprintf("kafka:\n"
                      "  brokers: %s\n"
                      "  group: restart-%d\n"
                      "  topics: [%s]\n"
                      "  batch_size: 50\n"
                      "  batch_ms: 5\n"
                      "  properties: {session.timeout.ms: \"6000\", heartbeat.interval.ms: "
                      "\"500\"}\n"
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
    free(E.redis_dir);
    free(E.topic);
    free(E.prefix);
    free(E.config);
    free(E.log_path);
    return 0;
}

static void dump_log(void)
{
    char *text = vg_test_read_file(E.log_path, NULL);

    fprintf(stderr, "vigil's log:\n%s\n", text ? text : "(none)");
    free(text);
}

/* Occurrences of `needle` in vigil's log. */
static int log_count(const char *needle)
{
    char *text = vg_test_read_file(E.log_path, NULL);
    int n = 0;

    for (const char *p = text; p && (p = strstr(p, needle)) != NULL; p += strlen(needle)) {
        n++;
    }
    free(text);
    return n;
}

static bool log_says_paused(void *arg)
{
    (void)arg;
    return log_count("pausing") >= 1;
}

/* vigil retried the batch this often while Redis was away (its `--debug state` lines). */
static bool retried(void *arg)
{
    return log_count("reconnect failed") >= *(int *)arg;
}

struct progress {
    int64_t want;
};

static bool applied_at_least(void *arg)
{
    struct progress *p = arg;

    return vg_ref_applied_total(E.st, E.topic, PARTITIONS) >= p->want;
}

static void test_redis_restart_mid_stream(void **state)
{
    struct vg_ref_log log;
    struct vg_producer *p = NULL;
    struct progress prog;
    char errstr[512];
    char *argv[] = {(char *)vg_test_vigil_bin(),
                    (char *)"run",
                    (char *)"--debug",
                    (char *)"state",
                    (char *)"-c",
                    NULL,
                    NULL};
    int retries = 3;
    int64_t acknowledged;
    char *out_path = vg_asprintf("%s/vigil.out", E.dir);
    int redis_pid;
    int bad;
    (void)state;

    vg_ref_log_make(&log, N_RES, N_EVS, (unsigned)getpid());
    assert_int_equal(
        vg_producer_new(&p, vg_mock_kafka_bootstraps(E.kafka), NULL, 0, errstr, sizeof(errstr)),
        VG_OK);
    assert_true(vg_ref_produce(p, E.topic, &log, 0, N_EVS / 2));
    argv[5] = E.config;
    E.vigil = vg_test_spawn(argv, out_path, E.log_path);
    assert_true(E.vigil > 0);
    prog.want = N_EVS / 8;
    if (!vg_test_wait_for(applied_at_least, &prog, 60000)) {
        dump_log();
        fail();
    }

    /* Redis dies hard while vigil consumes; the rest of the log arrives meanwhile. */
    acknowledged = vg_ref_applied_total(E.st, E.topic, PARTITIONS);
    redis_pid = vg_redis_child_pid(E.redis);
    kill(redis_pid, SIGKILL);
    vg_redis_child_stop(E.redis); /* reaps it */
    E.redis = NULL;
    assert_true(vg_ref_produce(p, E.topic, &log, N_EVS / 2, N_EVS));
    vg_producer_destroy(p);
    if (!vg_test_wait_for(log_says_paused, NULL, 60000)) {
        dump_log();
        fail();
    }
    /* It retries a few times (backoff 100 ms doubling) before Redis is back: the one
     * "pausing" line below then stands for several failed attempts. */
    if (!vg_test_wait_for(retried, &retries, 60000)) {
        dump_log();
        fail();
    }
    assert_int_equal(vg_redis_child_start(&E.redis, E.redis_dir, errstr, sizeof(errstr)), VG_OK);
    assert_int_equal(vg_state_reconnect(E.st, errstr, sizeof(errstr)), VG_OK);
    /* The AOF brought back at least what had been applied before the kill. */
    assert_true(vg_ref_applied_total(E.st, E.topic, PARTITIONS) >= acknowledged);

    prog.want = N_EVS;
    if (!vg_test_wait_for(applied_at_least, &prog, 60000)) {
        dump_log();
        fail();
    }
    assert_int_equal(vg_test_stop(E.vigil, SIGTERM, 20000), 0);
    E.vigil = 0;
    assert_int_equal(vg_ref_applied_total(E.st, E.topic, PARTITIONS), N_EVS);
    bad = vg_ref_check_redis(E.st, &log);
    assert_int_equal(bad, 0);

    /* The outage is in the log once, not once per retry or message; then the resume. */
    if (log_count("apply failed, pausing") != 1 || log_count("resumed") < 1) {
        dump_log();
    }
    assert_int_equal(log_count("apply failed, pausing"), 1);
    assert_true(log_count("resumed") >= 1);
    /* The one line names the Redis (its URL) and why. */
    {
        char *text = vg_test_read_file(E.log_path, NULL);
        char *line = strstr(text, "apply failed, pausing");
        char *eol = strchr(line, '\n');

        *eol = '\0';
        fprintf(stderr, "%s\n", line);
        assert_non_null(strstr(line, "redis unix://"));
        free(text);
    }
    vg_ref_log_fini(&log);
    free(out_path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_redis_restart_mid_stream, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
